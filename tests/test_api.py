"""The typed public API as a user meets it: `onnxaudit.audit`, `onnxaudit.check` and their types from the
package itself, options a type checker can check, a cheap `import onnxaudit`, py.typed shipped."""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

import onnxaudit
from onnxaudit.cli.main import build_parser, main
from onnxaudit.render.html import render_html
from onnxaudit.render.summary import render_markdown, render_text

ROOT = Path(__file__).resolve().parent.parent
KERAS = ROOT / "models" / "keras" / "seed_cnn__tf2onnx_op17.onnx"
TORCH = ROOT / "models" / "torch" / "seed_cnn__legacy_nofold.onnx"
AXIS_TYPO = ROOT / "models" / "keras" / "seed_cnn_axis_typo__tf2onnx_op17.onnx"


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_audit_counts_a_fixture_as_a_users_test_would() -> None:
    torch = json.loads(TORCH.with_suffix(".json").read_text())  # what PyTorch itself reported
    report = onnxaudit.audit(TORCH, convention="pytorch")
    assert isinstance(report, onnxaudit.Report)
    assert report.totals.trainable == torch["parameters"]
    assert report.totals.non_trainable == torch["running_stats"] == 2 * 32  # BN's running mean and var
    rows = {row.name: row for row in report.rows}
    assert rows["conv0"].params == 32 * 3 * 7 * 7 + 32  # a 7x7 conv from 3 to 32 channels, with bias
    assert (rows["bn0"].trainable, rows["bn0"].non_trainable) == (2 * 32, 2 * 32)

    report = onnxaudit.audit(str(TORCH))  # the Keras view of the same file
    keras = torch["keras_equivalent"]
    assert (report.totals.total, report.totals.trainable, report.totals.non_trainable) == (
        keras["total"],
        keras["trainable"],
        keras["non_trainable"],
    )

    # tf2onnx folded the BN into the conv: the file holds 64 values fewer, the framework view rebuilds Keras's
    keras = json.loads(KERAS.with_suffix(".json").read_text())
    report = onnxaudit.audit(KERAS)
    assert report.totals.total == keras["total"] - 2 * 32
    assert report.framework is not None
    assert report.framework.total.shown == keras["total"] and report.framework.total.contains(keras["total"])
    assert report.framework.non_trainable.lo == keras["non_trainable"]


def test_audit_leaves_out_what_the_format_never_shows() -> None:
    """for_format (the summary command's): verify's evidence (report.shared_reads) is left out for every
    format, and but for JSON the rows of tensors that are not unclassified (their count kept); what each
    format prints is unchanged. The library's default keeps both: lm_head's row reads the embedding table it
    shares."""
    tied = ROOT / "models" / "ort" / "tied_lm__legacy_nofold__matmul_dynamic.onnx"
    full, json_only = onnxaudit.audit(tied), onnxaudit.audit(tied, for_format="json")
    assert full.shared_reads["lm_head"] == ["embed.weight"] and json_only.shared_reads == {}
    assert json_only.to_dict() == full.to_dict()
    assert full.tensors_left_out == json_only.tensors_left_out == 0
    # a file with unclassified tensors: text keeps their rows, consumers and all, and the count of every row
    odd = ROOT / "models" / "keras" / "attn_norm__tfkeras_op13.onnx"
    full = onnxaudit.audit(odd)
    unclassified = [t for t in full.tensors if t.bucket == "unclassified"]
    assert unclassified and len(unclassified) < len(full.tensors)
    for fmt in ("text", "markdown", "html"):
        shown = onnxaudit.audit(odd, for_format=fmt)
        assert shown.tensors == unclassified and shown.tensor_count() == full.tensor_count() == len(full.tensors)
        assert shown.tensors_left_out == len(full.tensors) - len(unclassified)
    text = onnxaudit.audit(odd, for_format="text")
    for explain in (False, True):
        assert render_text(text, explain=explain) == render_text(full, explain=explain)
        assert render_html(text, explain=explain) == render_html(full, explain=explain)
    assert render_markdown(text) == render_markdown(full)


def test_audit_keeps_what_it_built_for_a_caller_that_ends_the_process() -> None:
    """keep= (the CLI's, whose process ends with os._exit): the view, classification, table, layers and
    framework view are appended to the caller's list instead of being freed on return; the report is the same."""
    kept: list[object] = []
    report = onnxaudit.audit(KERAS, keep=kept)
    assert report.to_dict() == onnxaudit.audit(KERAS).to_dict()
    kinds = {type(o).__name__ for o in kept}
    assert {"ModelView", "ParamTable", "FrameworkView"} <= kinds
    assert any(isinstance(o, list) and o and type(o[0]).__name__ == "Layer" for o in kept)


CYCLE_CASES = [
    KERAS,
    TORCH,
    ROOT / "models" / "jax" / "scanned_gru.onnx",  # Scan bodies: the scopes each main node runs
    ROOT / "models" / "torchzoo" / "cond_buffers__dynamo.onnx",  # dynamo's metadata, If branches
    ROOT / "models" / "ort" / "llama_tiny__ort_fused__matmul_nbits_gather.onnx",  # contrib ops' slot rules
]


@pytest.mark.parametrize("path", CYCLE_CASES, ids=lambda p: p.stem)
def test_an_audit_leaves_no_reference_cycle_of_its_own(path: Path) -> None:
    # audit() pauses the collector, so an object the pipeline puts in a cycle stays alive until the
    # end of the whole audit instead of being freed when its stage ends (a classifier holding bound
    # methods of itself kept 66 MB alive at 200k nodes). Dropped, the report must free everything.
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds stays in gc.garbage to be looked at
    try:
        onnxaudit.audit(path, convention="pytorch" if path.parent.name != "keras" else "keras")
        gc.collect()
        ours = [
            o
            for o in gc.garbage
            if type(o).__module__.startswith("onnxaudit") or "<locals>" in getattr(o, "__qualname__", "")
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert ours == []


def test_check_as_a_library_call() -> None:
    strict = onnxaudit.check(AXIS_TYPO, fail_on="warning")
    assert isinstance(strict, onnxaudit.CheckReport)
    assert "OA212" in {f.rule for f in strict.findings}  # a BN that is not over the channel axis
    assert (strict.passed, strict.exit_code, strict.counts["warning"]) == (False, 1, 1)
    lenient = onnxaudit.check(AXIS_TYPO)  # fail_on="error": the warning does not fail
    assert (lenient.passed, lenient.fail_on) == (True, "error")
    assert onnxaudit.check(KERAS, fail_on="warning").passed


def test_check_stays_callable_once_its_package_is_imported() -> None:
    # importing onnxaudit.check.* sets the attribute onnxaudit.check to the package: it runs a check too
    out = _python(
        "import onnxaudit\n"
        "import onnxaudit.check.registry\n"
        f"print(onnxaudit.check({str(AXIS_TYPO)!r}, fail_on='never').passed, callable(onnxaudit.check))\n"
    )
    assert out.split() == ["True", "True"]


def test_options_are_typed_and_still_refused_at_run_time() -> None:
    from onnxaudit.api import GROUPINGS, Convention, Grouping
    from onnxaudit.check.runner import FAIL_ON, FailOn
    from onnxaudit.count.conventions import CONVENTIONS
    from onnxaudit.render.check import RENDERERS, CheckFormat
    from onnxaudit.render.summary import SUMMARY_FORMATS

    assert set(get_args(Convention)) == set(CONVENTIONS)
    assert GROUPINGS == get_args(Grouping) == ("layer", "op", "role", "tensor")
    assert FAIL_ON == get_args(FailOn) == ("error", "warning", "never")
    assert set(get_args(CheckFormat)) == set(RENDERERS)
    assert SUMMARY_FORMATS == ("text", "json", "markdown", "html")
    for fmt in SUMMARY_FORMATS:  # the command line offers exactly these
        assert build_parser("summary").parse_args(["summary", "m.onnx", "--format", fmt]).format == fmt
    with pytest.raises(SystemExit):
        build_parser("summary").parse_args(["summary", "m.onnx", "--format", "yaml"])
    with pytest.raises(onnxaudit.AuditError, match="unknown convention 'kers'"):
        onnxaudit.audit(KERAS, convention="kers")  # type: ignore[arg-type]
    with pytest.raises(onnxaudit.AuditError, match="--fail-on"):
        onnxaudit.check(KERAS, fail_on="warn")  # type: ignore[arg-type]


def test_a_type_checker_sees_the_api(tmp_path: Path) -> None:
    user = tmp_path / "user_test.py"
    user.write_text(
        "import onnxaudit\n"
        "report: onnxaudit.Report = onnxaudit.audit('m.onnx', convention='pytorch', by='op')\n"
        "result: onnxaudit.CheckReport = onnxaudit.check('m.onnx', fail_on='warning')\n"
        "options = onnxaudit.ShapeOptions()\n"
        "wrong = onnxaudit.audit('m.onnx', convention='kers')\n"
        "worse = onnxaudit.check('m.onnx', fail_on='warn')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(user)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["5", "6"], done.stdout + done.stderr
    assert "Literal['keras', 'pytorch']" in errors[0] and "Literal['error', 'warning', 'never']" in errors[1]


def test_importing_the_package_loads_no_pipeline() -> None:
    out = _python(
        "import sys, onnxaudit\n"
        "heavy = ('onnx', 'onnxruntime', 'numpy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('onnxaudit.')))\n"
        "print(all(getattr(onnxaudit, name) is not None for name in onnxaudit.__all__))\n"
    )
    loaded, resolved = out.splitlines()
    assert loaded == "['onnxaudit._version', 'onnxaudit.errors']"
    assert resolved == "True"
    assert set(onnxaudit.__all__) >= {"audit", "check", "Report", "CheckReport", "ShapeOptions", "AuditError"}


def test_the_wheel_ships_py_typed(tmp_path: Path) -> None:
    # setuptools' build_py lays out exactly what bdist_wheel packs (modules and package data), offline
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "onnxaudit", tmp_path / "onnxaudit", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "-d", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    built = tmp_path / "out" / "onnxaudit"
    assert (built / "py.typed").is_file()
    assert (built / "api.py").is_file() and (built / "check" / "runner.py").is_file()


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"onnxaudit {onnxaudit.__version__}\n"
    from importlib.metadata import version

    assert version("onnxaudit") == onnxaudit.__version__  # pyproject reads the same one (dynamic version)
