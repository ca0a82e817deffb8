"""Golden outputs: what each command prints for every fixture in models/, kept in tests/golden/.

The golden files are the safety net for refactoring: `tests/test_golden.py` compares the current output
with them byte for byte. They change only through an explicit regeneration:

    python tests/golden_cases.py            # rewrite every golden file
    python tests/golden_cases.py --check    # list the cases whose output differs, write nothing
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
GOLDEN = ROOT / "tests" / "golden"

# (section title, command line after the model path is put in) — text outputs, kept in <case>.txt
TEXT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("summary", "{model}", "--explain"),
    ("summary", "{model}", "--convention", "pytorch"),
    ("summary", "{model}", "--format", "markdown", "--by", "op"),
    ("check", "{model}", "--fail-on", "warning"),
)
JSON_COMMAND = ("summary", "{model}", "--format", "json")


def fixtures() -> list[Path]:
    """Every fixture model, as a path relative to the repository root (the form the output prints)."""
    return sorted(p.relative_to(ROOT) for p in MODELS.rglob("*.onnx"))


def _run(words: tuple[str, ...], model: Path) -> tuple[int, str, str]:
    from onnxaudit.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = [w.format(model=model.as_posix()) for w in words]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def render_case(model: Path) -> dict[str, str]:
    """The golden files of one fixture: {suffix: content}. Run with the repository root as cwd."""
    parts = []
    for words in TEXT_COMMANDS:
        code, out, err = _run(words, model)
        shown = " ".join(w.format(model=model.as_posix()) for w in words)
        parts.append(f"$ onnxaudit {shown}\n[exit {code}]\n{out}")
        if err:
            parts.append(f"[stderr]\n{err}")
    code, out, err = _run(JSON_COMMAND, model)
    if code == 0:
        report = json.loads(out)
        rewrites = (report.get("framework") or {}).get("rewrites", [])
        parts.append("$ rewrites applied, in order\n" + "".join(f"{r}\n" for r in rewrites))
    return {".txt": "\n".join(parts), ".json": out if code == 0 else f"[exit {code}]\n{err}"}


def golden_path(model: Path, suffix: str) -> Path:
    return GOLDEN / model.relative_to("models").with_suffix(suffix)


@contextlib.contextmanager
def at_root() -> Iterator[None]:
    import os

    before = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(before)


def main(argv: list[str]) -> int:
    check_only = "--check" in argv
    differ = []
    with at_root():
        for model in fixtures():
            for suffix, content in render_case(model).items():
                path = golden_path(model, suffix)
                if path.exists() and path.read_text(encoding="utf-8") == content:
                    continue
                differ.append(path)
                if not check_only:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(content, encoding="utf-8")
    for path in differ:
        print(("differs: " if check_only else "written: ") + str(path.relative_to(ROOT)))
    return 1 if check_only and differ else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
