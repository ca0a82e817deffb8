"""What the user says the model should hold: `--expect`, a Keras `model.summary()` text, torch counts JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from onnxaudit.errors import AuditError, UsageError

FIGURES = ("total", "trainable", "non_trainable")
_ALIASES = {"non-trainable": "non_trainable", "nontrainable": "non_trainable", "params": "total"}
MAX_TEXT_BYTES = 16 * 2**20  # a summary or counts file larger than this is not one


@dataclass
class LayerExpectation:
    name: str
    kind: str
    params: int
    trainable: int | None = None
    non_trainable: int | None = None


@dataclass
class Expectation:
    source: str
    figures: dict[str, int] = field(default_factory=dict)  # total / trainable / non_trainable
    layers: list[LayerExpectation] = field(default_factory=list)
    # torch's per-module counts: each module's own parameters under its dotted path (compared by module tree)
    modules: bool = False


def parse_expect(text: str) -> Expectation:
    """`total=271346,trainable=268978,non_trainable=2368` (any subset; `_` allowed in numbers)."""
    figures: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = _ALIASES.get(key.strip().lower(), key.strip().lower())
        if not sep or key not in FIGURES:
            raise UsageError(f"--expect: {item!r} is not one of total=N, trainable=N, non_trainable=N")
        try:
            number = int(value.strip().replace("_", ""))
        except ValueError:
            raise UsageError(f"--expect: {value.strip()!r} is not a whole number") from None
        if number < 0:
            raise UsageError(f"--expect: {key} cannot be negative")
        figures[key] = number
    if not figures:
        raise UsageError("--expect needs at least one of total=N, trainable=N, non_trainable=N")
    return Expectation("--expect", figures)


def _read_text(path: Path, what: str) -> str:
    try:
        if not path.is_file():
            raise AuditError(f"{path}: not a regular file ({what})")
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise AuditError(f"{path}: too large for a {what}")
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AuditError(f"{path}: cannot read {what} ({exc.strerror})") from None


_NUMBER = r"([\d,]+)"
_TOTALS = {
    "total": re.compile(r"Total params:\s*" + _NUMBER),
    "trainable": re.compile(r"(?<!Non-)Trainable params:\s*" + _NUMBER),
    "non_trainable": re.compile(r"Non-trainable params:\s*" + _NUMBER),
}


def _int(text: str) -> int:
    return int(text.replace(",", ""))


# Keras 2: ` dense (Dense)     (None, 300)     235500    ['flatten[0][0]']`; a long `name (Type)` wraps onto
# the next line(s), the other columns blank there (` separable_conv1d (Separabl` then ` eConv1D)`)
_KERAS2_HEADER = re.compile(r"^\s*Layer \(type\)\s+Output Shape\s+Param #")
_KERAS2_NAME = re.compile(r"^([^\s(]+)\s*\((.+)\)$")
_KERAS2_PARAMS = re.compile(r"[\d,]+")


def _keras2_rows(lines: list[str]) -> list[LayerExpectation]:
    """The rows of a Keras 2 summary, a wrapped first column joined back; cut by the header's columns."""
    start = next((i for i, line in enumerate(lines) if _KERAS2_HEADER.match(line)), None)
    if start is None:
        return []
    header = lines[start]
    shape_at, param_at = header.index("Output Shape"), header.index("Param #")
    connected = header.find("Connected to", param_at)
    layers: list[LayerExpectation] = []
    rows: list[list[str]] = []  # [first column, params] of each row, the first column still growing
    current: list[str] | None = None
    for line in lines[start + 1 :]:
        first = line[1:shape_at].rstrip()  # one space before the name (nested models: '|' marks)
        params = line[param_at : connected if connected > 0 else None].strip()
        if _KERAS2_PARAMS.fullmatch(params) and first.strip():
            current = [first.strip(), params]
            rows.append(current)
        elif current is not None and first.strip() and not params:
            current[0] += first  # the cut falls anywhere: mid-word, or before the space and the type
        else:
            current = None
    for first, params in rows:
        match = _KERAS2_NAME.match(first)
        if match:
            layers.append(LayerExpectation(match.group(1), match.group(2), _int(params)))
    return layers


def parse_keras_summary(path: Path) -> Expectation:
    """The text `model.summary()` prints, Keras 3 (box drawing, names wrapped) or Keras 2 layout."""
    text = _read_text(path, "Keras summary")
    expectation = Expectation(f"Keras summary {path.name}")
    for key, pattern in _TOTALS.items():
        match = pattern.search(text)
        if match:
            expectation.figures[key] = _int(match.group(1))
    if "total" not in expectation.figures:
        raise AuditError(f"{path}: not a Keras model.summary() text (no 'Total params:' line)")
    lines = text.splitlines()
    if any("│" in line for line in lines):
        header = next((line for line in lines if "Param #" in line), "")
        heads = [c.strip() for c in header.strip().strip("┃│").split("┃" if "┃" in header else "│")]
        column = heads.index("Param #") if "Param #" in heads else -1  # before `Connected to`, when there is one
        for line in lines:
            if "│" in line:
                _keras3_row(line, expectation.layers, column)
    else:
        expectation.layers = _keras2_rows(lines)
    return expectation


def _keras3_row(line: str, layers: list[LayerExpectation], column: int) -> None:
    cells = [c.strip() for c in line.strip().strip("│").split("│")]
    if not cells or cells[0].startswith("Layer (type)"):
        return
    first, params = cells[0], cells[column] if len(cells) > 2 and -len(cells) <= column < len(cells) else ""
    if first.startswith("(") and not params and layers:
        # the type wrapped onto its own line, cut with an ellipsis in a narrow table: `(BatchNormalizatio…`
        layers[-1].kind = first[1:].removesuffix(")")
        return
    if not re.fullmatch(r"[\d,]+", params):
        if layers and first and not params:  # a long name wrapped: continue the previous one
            layers[-1].name += first
        return
    name, _, kind = first.partition(" (")
    layers.append(LayerExpectation(name.strip(), kind.rstrip(")"), _int(params)))


def _running_stats(data: dict[str, object]) -> int | None:
    """BN running statistics: "running_stats" when given (all "buffers" may hold position ids and
    causal masks, which are no statistics), else "buffers"."""
    for key in ("running_stats", "buffers"):
        value = data.get(key)
        if isinstance(value, int):
            return int(value)
    return None


def parse_torch_counts(path: Path) -> Expectation:
    """A small JSON written by a few lines of PyTorch (see README):
    {"parameters": N, "trainable": N, "buffers": N, "modules": {"conv1": {"parameters": N, "buffers": N}}}."""
    text = _read_text(path, "torch counts JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), int):
        raise AuditError(f'{path}: expected an object with an integer "parameters"')
    expectation = Expectation(f"torch counts {path.name}", modules=True)
    expectation.figures["trainable"] = data["parameters"]
    stats = _running_stats(data)
    if stats is not None:
        expectation.figures["non_trainable"] = stats
        expectation.figures["total"] = data["parameters"] + stats
    modules = data.get("modules", {})
    if not isinstance(modules, dict):
        raise AuditError(f'{path}: "modules" must be an object of name -> counts')
    for name, counts in modules.items():
        if not isinstance(counts, dict) or not isinstance(counts.get("parameters", 0), int):
            raise AuditError(f"{path}: module {name!r} needs integer counts")
        params, buffers = counts.get("parameters", 0), counts.get("buffers", 0)
        if not isinstance(buffers, int):
            raise AuditError(f"{path}: module {name!r} needs integer counts")
        layer = LayerExpectation(str(name), str(counts.get("class", "")), params + buffers, params, buffers)
        expectation.layers.append(layer)
    return expectation
