#!/usr/bin/env python3
"""Score onnxaudit on a Keras corpus with truth (issue #18): run in the onnxaudit venv only.

For every ``<case>__<kind>.onnx`` with its ``.json`` (Keras's own figures) in the corpus folders
(default: models/keras and /root/.cache/onnxaudit-corpus/keras, as written by
scripts/export_keras.py and scripts/export_keras_corpus.py), checks:

  bounds      the framework view's total, trainable and non-trainable each hold Keras's figure
              (an exact figure must equal it)
  layers      every Keras layer with parameters whose name survives in the file: its row holds
              Keras's figure
  expect_ok   `verify --expect` with Keras's three figures exits 0
  summary_ok  `verify --keras-summary` exits 0 on each saved summary layout (.summary*.txt)
  wrong_*     exits 1 on wrong expectations: truth + 1 trainable; BN statistics counted trainable
              (non-trainable moved into trainable, when there are any); a summary whose totals and
              first weighted row are 1 higher

Prints one line per failed check and a score per check; ``--json`` writes every result.

    python scripts/score_keras_corpus.py [DIR ...] [--json out.json] [--cli]

``--cli`` runs the installed ``onnxaudit verify`` command per check (exit codes as a user sees
them) instead of the library calls (the same code, faster).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from onnxaudit.api import audit
from onnxaudit.errors import AuditError
from onnxaudit.verify.expectations import Expectation, parse_expect, parse_keras_summary
from onnxaudit.verify.verify import verify

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = [REPO / "models" / "keras", Path("/root/.cache/onnxaudit-corpus/keras")]


def _wrong_summary(text: str) -> str:
    """The summary with each total, and the first row with parameters, 1 higher."""

    def bump(m: re.Match[str]) -> str:
        return f"{m.group(1)}{int(m.group(2).replace(',', '')) + 1:,}"

    text = re.sub(r"((?:Total|(?<!Non-)Trainable) params:\s*)([\d,]+)", bump, text)
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        m = re.search(r"(\s)([1-9][\d,]*)(\s*│?\s*)$", line.rstrip("\n"))
        if m and "params" not in line and "(" in line:
            start, end = m.span(2)
            value = int(m.group(2).replace(",", "")) + 1
            new = f"{value:,}" if "," in m.group(2) else str(value)
            lines[i] = line[:start] + new + line[end:]
            break
    return "".join(lines)


def _keras_rows(layers: list[dict[str, object]], rows: dict[str, object]) -> dict[str, int]:
    """Keras's per-layer counts by the file's row names: a layer named with a slash (tf_keras's
    MobileNetV3 `Conv/BatchNorm`, `expanded_conv/depthwise`) that the file shows as its first scope
    (`Conv`) is added to that row, as verify does."""
    out: dict[str, int] = {}
    for la in layers:
        name, params = str(la["name"]), int(la["params"])  # type: ignore[call-overload]
        if name not in rows and name.partition("/")[0] in rows:
            name = name.partition("/")[0]
        if name in rows:
            out[name] = out.get(name, 0) + params
    return out


class Scorer:
    def __init__(self, cli: bool) -> None:
        self.cli = cli

    def consistent(self, model: Path, report: object, expect: str | None = None, summary: str | None = None) -> bool:
        if self.cli:
            with tempfile.TemporaryDirectory() as tmp:
                args = ["onnxaudit", "verify", str(model)]
                if expect is not None:
                    args += ["--expect", expect]
                if summary is not None:
                    path = Path(tmp) / "summary.txt"
                    path.write_text(summary, encoding="utf-8")
                    args += ["--keras-summary", str(path)]
                code = subprocess.run(args, capture_output=True, check=False).returncode
                if code not in (0, 1):
                    raise AuditError(f"{model}: verify exited {code}")
                return code == 0
        if expect is not None:
            expectation: Expectation = parse_expect(expect)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "summary.txt"
                path.write_text(summary or "", encoding="utf-8")
                expectation = parse_keras_summary(path)
        return verify(report, expectation).consistent  # type: ignore[arg-type]

    def score(self, onnx_path: Path) -> dict[str, object]:
        truth = json.loads(onnx_path.with_suffix(".json").read_text())
        t, tr, nt = truth["total"], truth["trainable"], truth["non_trainable"]
        out: dict[str, object] = {"file": str(onnx_path), "total": t, "trainable": tr, "non_trainable": nt}
        report = audit(onnx_path)
        fw = report.framework
        assert fw is not None
        checks: dict[str, bool] = {}
        found = {"total": fw.total, "trainable": fw.trainable, "non_trainable": fw.non_trainable}
        checks["bounds"] = all(
            found[k].contains(v) for k, v in (("total", t), ("trainable", tr), ("non_trainable", nt))
        )
        out["found"] = {k: f.text() for k, f in found.items()}
        out["exact"] = all(f.exact for f in found.values())
        by_name = {la.name: la for la in fw.layers}
        bad_layers = [
            f"{name} {params} vs {by_name[name].total.text()}"
            for name, params in _keras_rows(truth["layers"], by_name).items()
            if params and not by_name[name].total.contains(params)
        ]
        checks["layers"] = not bad_layers
        out["bad_layers"] = bad_layers
        checks["expect_ok"] = self.consistent(onnx_path, report, expect=f"total={t},trainable={tr},non_trainable={nt}")
        checks["wrong_plus1"] = not self.consistent(
            onnx_path, report, expect=f"total={t + 1},trainable={tr + 1},non_trainable={nt}"
        )
        if nt:
            checks["wrong_stats_trainable"] = not self.consistent(
                onnx_path, report, expect=f"total={t},trainable={tr + nt},non_trainable=0"
            )
        stem = onnx_path.name.removesuffix(".onnx")
        for summary in sorted(onnx_path.parent.glob(stem + ".summary*.txt")):
            layout = summary.name.removeprefix(stem + ".").removesuffix(".txt")
            text = summary.read_text(encoding="utf-8")
            checks[f"{layout}_ok"] = self.consistent(onnx_path, report, summary=text)
            checks[f"{layout}_wrong"] = not self.consistent(onnx_path, report, summary=_wrong_summary(text))
        out["checks"] = checks
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=DEFAULT_DIRS)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--cli", action="store_true")
    args = ap.parse_args()
    scorer = Scorer(args.cli)
    results = []
    files = sorted(p for d in args.dirs for p in d.glob("*.onnx") if p.with_suffix(".json").exists())
    passed: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    all_ok = 0
    for path in files:
        try:
            result = scorer.score(path)
        except Exception as exc:  # a crash is a failed file, named
            print(f"CRASH {path}: {type(exc).__name__}: {exc}")
            seen["crash"] += 1
            continue
        results.append(result)
        checks = result["checks"]
        assert isinstance(checks, dict)
        failed = [k for k, ok in checks.items() if not ok]
        for k, ok in checks.items():
            key = re.sub(r"^summary\w*_", "summary_", k)
            seen[key] += 1
            passed[key] += bool(ok)
        all_ok += not failed
        if failed:
            print(
                f"FAIL {path.name}: {', '.join(failed)}  found {result['found']}  truth {result['total']}/"
                f"{result['trainable']}/{result['non_trainable']}  {'; '.join(result['bad_layers'])}"
            )  # type: ignore[arg-type]
    print(f"\nfiles: {len(files)}  all checks pass: {all_ok}/{len(files)}  crashes: {seen['crash']}")
    for key in sorted(k for k in seen if k != "crash"):
        print(f"  {key:24s} {passed[key]}/{seen[key]}")
    print(f"  exact on every figure: {sum(bool(r['exact']) for r in results)}/{len(results)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0 if all_ok == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
