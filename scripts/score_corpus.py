"""Score onnxaudit on a corpus of exports with the framework's own figures beside each file.

For every <name>.onnx with <name>.counts.json beside it (written by scripts/export_torch_corpus.py: the
shape `verify --torch-counts` reads), in the PyTorch convention:
- bounds: each framework-view figure (total, parameters, buffers) holds torch's figure (lo <= truth <= hi),
- exact: a figure shown as exact (lo == hi) equals torch's figure (an exact-looking wrong figure fails),
- verify: `onnxaudit verify --torch-counts` exits 0 on torch's own counts (totals; and with its modules),
  1 on a wrong expectation outside what the file can hold (parameters 10% off, at least 2 away); with
  torch's totals, 1 on wrong modules: the largest module 10% off (at least 2), and 10% of it (at least 2)
  moved to the next largest module that is neither above nor below it,
- tight: how many files show every figure exact.

Run with the onnxaudit venv only:
    python scripts/score_corpus.py [CORPUS_DIR] [--jobs 2] [--json OUT] [--verbose]
(default CORPUS_DIR ~/.cache/onnxaudit-corpus/torch)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT = Path.home() / ".cache" / "onnxaudit-corpus" / "torch"
FIGURES = ("total", "trainable", "non_trainable")


@dataclass
class Score:
    file: str
    bounds: bool = False
    exact_wrong: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    tight: bool = False
    verify_true: int = -1
    verify_modules: int = -1
    verify_wrong: int = -1
    modules_off: int = -1  # the largest module 10% off: exit 1 expected (-1: no modules)
    modules_moved: int = -1  # 10% of it moved to another module: exit 1 expected
    error: str = ""

    @property
    def right(self) -> bool:
        return self.bounds and not self.exact_wrong and self.verify_true == 0 and self.verify_wrong == 1

    @property
    def modules_right(self) -> bool:
        """verify with torch's modules exits 0, and 1 with either wrong set of modules."""
        return self.verify_modules == 0 and self.modules_off in (1, -1) and self.modules_moved in (1, -1)


def _onnxaudit(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "onnxaudit", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def _verify(model: Path, counts: dict[str, object], tmp: Path, tag: str) -> int:
    path = tmp / f"{model.stem}.{tag}.json"
    path.write_text(json.dumps(counts))
    return _onnxaudit("verify", str(model), "--torch-counts", str(path)).returncode


def score(model: Path, tmp: Path) -> Score:
    result = Score(model.name)
    truth = json.loads(model.with_name(model.stem + ".counts.json").read_text())
    want = {"trainable": truth["parameters"], "non_trainable": truth["running_stats"]}
    want["total"] = want["trainable"] + want["non_trainable"]
    run = _onnxaudit("summary", str(model), "--format", "json", "--convention", "pytorch")
    if run.returncode != 0:
        result.error = (run.stderr.strip().splitlines() or [f"exit {run.returncode}"])[-1]
        return result
    framework = json.loads(run.stdout)["framework"]
    result.bounds, result.tight = True, True
    for figure in FIGURES:
        lo, hi = framework[figure]["lo"], framework[figure]["hi"]  # hi None: no upper bound
        if not lo <= want[figure] <= (want[figure] if hi is None else hi):
            result.bounds = False
            shown = f"{lo:,}" if lo == hi else f"{lo:,}..{'' if hi is None else f'{hi:,}'}"
            result.misses.append(f"{figure} {shown} (torch {want[figure]:,})")
        if lo == hi and lo != want[figure]:
            result.exact_wrong.append(figure)
        result.tight &= lo == hi
    base = {"parameters": truth["parameters"], "running_stats": truth["running_stats"]}
    result.verify_true = _verify(model, base, tmp, "true")
    result.verify_modules = _verify(model, {**base, "modules": truth["modules"]}, tmp, "modules")
    off = max(2, truth["parameters"] // 10)
    result.verify_wrong = _verify(model, {**base, "parameters": truth["parameters"] + off}, tmp, "wrong")
    wrong = wrong_modules(truth["modules"])
    if wrong is not None:
        result.modules_off = _verify(model, {**base, "modules": wrong[0]}, tmp, "modules_off")
        if wrong[1] is not None:
            result.modules_moved = _verify(model, {**base, "modules": wrong[1]}, tmp, "modules_moved")
    return result


def wrong_modules(modules: dict[str, dict[str, int]]) -> tuple[dict[str, object], dict[str, object] | None] | None:
    """torch's modules with the largest one 10% off, and with 10% of it moved to the next largest module
    that is neither above nor below it (None: no modules; the second None: no such pair)."""
    if not modules:
        return None
    ranked = sorted(modules, key=lambda n: (-modules[n]["parameters"], n))
    big = ranked[0]
    step = max(2, modules[big]["parameters"] // 10)
    off = {**modules, big: {**modules[big], "parameters": modules[big]["parameters"] + step}}
    other = next((n for n in ranked[1:] if not n.startswith(big + ".") and not big.startswith(n + ".")), None)
    if other is None or modules[big]["parameters"] < step:
        return off, None
    moved = {
        **modules,
        big: {**modules[big], "parameters": modules[big]["parameters"] - step},
        other: {**modules[other], "parameters": modules[other]["parameters"] + step},
    }
    return off, moved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", default="", help="score files whose name contains this")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    models = sorted(
        p for p in args.corpus.glob("*.onnx") if p.with_name(p.stem + ".counts.json").exists() and args.only in p.name
    )
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        scores = list(pool.map(lambda m: score(m, Path(tmp)), models))
    names = {m.stem.split("__")[0] for m in models}
    kinds = {m.stem.split("__")[-1] for m in models}
    for s in scores:
        if args.verbose or not s.right:
            flags = [
                "ok" if s.right else "WRONG",
                f"bounds={'ok' if s.bounds else 'MISS'}",
                f"exact_wrong={','.join(s.exact_wrong) or '-'}",
                f"verify true/modules/wrong={s.verify_true}/{s.verify_modules}/{s.verify_wrong}",
                f"modules off/moved={s.modules_off}/{s.modules_moved}",
            ]
            print(f"{s.file}: {' '.join(flags)} {'; '.join(s.misses)} {s.error}".rstrip())
        elif not s.modules_right:
            print(f"{s.file}: modules true/off/moved={s.verify_modules}/{s.modules_off}/{s.modules_moved}")
    n = len(scores)

    def count(flag: str, test: object) -> str:
        k = sum(1 for s in scores if test(s))  # type: ignore[operator]
        return f"{flag} {k}/{n}"

    print(f"corpus: {n} files, {len(names)} models, export kinds {', '.join(sorted(kinds))}")
    print(
        " · ".join(
            [
                count("right", lambda s: s.right),
                count("bounds hold", lambda s: s.bounds),
                count("no exact-looking wrong figure", lambda s: not s.exact_wrong and not s.error),
                count("verify true exit 0", lambda s: s.verify_true == 0),
                count("verify true+modules exit 0", lambda s: s.verify_modules == 0),
                count("verify wrong exit 1", lambda s: s.verify_wrong == 1),
                count("wrong module exit 1", lambda s: s.modules_off in (1, -1)),
                count("moved module exit 1", lambda s: s.modules_moved in (1, -1)),
                count("modules right", lambda s: s.modules_right),
                count("every figure exact", lambda s: s.tight and s.bounds),
            ]
        )
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in scores], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
