"""Runtime shape confirmation: every value run in onnxruntime (child process, limits) and compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import (
    batch_collapse,
    constant_of_shape,
    custom_domain_op,
    dense_relu,
    embedding,
    infinite_loop,
    layer_row,
    mixed_inputs,
    reshape_to,
    save,
)

from onnxaudit import audit
from onnxaudit.cli import main
from onnxaudit.feeds import index_bound
from onnxaudit.load import load
from onnxaudit.shapes import ShapeOptions, confirm_path

MODELS = Path(__file__).resolve().parent.parent / "models"
# A few representative exports: torch legacy and dynamo (with and without optimization), an RNN,
# token ids into an embedding, and Keras through tf2onnx, Keras 3 export and tf_keras.
FIXTURES = [
    "torch/resnet_tiny__legacy_nofold.onnx",
    "torch/mobilenetv2_tiny__dynamo.onnx",
    "torch/lstm__dynamo_noopt.onnx",
    "torch/tied_lm__legacy_nofold.onnx",
    "keras/seed_cnn__tf2onnx_op17.onnx",
    "keras/bottleneck_bias__keras3_export.onnx",
    "keras/seed_geron_book__tfkeras_op13.onnx",
]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_shapes_all_confirmed(name):
    _, check = confirm_path(MODELS / name)
    assert check.status == "confirmed", (check.message, check.findings)
    assert check.values and all(v.status == "confirmed" for v in check.values)
    assert all(v.actual is not None for v in check.values)


def test_wrong_declared_output_is_a_mismatch(tmp_path, capsys):
    path = save(dense_relu(out_shape=("N", 4)), tmp_path / "wrong.onnx")
    code, out, _ = _run(capsys, "shapes", str(path))
    assert code == 1
    mismatch = [line for line in out.splitlines() if line.startswith("Mismatch:")]
    assert mismatch == ["Mismatch: 'y': declared (N, 4), onnxruntime produced (1, 3) (axis 1: 4 vs 3)"]


def test_consistent_model_passes_and_keeps_symbolic_names(tmp_path, capsys):
    path = save(dense_relu(), tmp_path / "ok.onnx")
    code, out, err = _run(capsys, "shapes", str(path), "--format", "json")
    assert (code, err) == (0, "")
    check = json.loads(out)["shape_check"]
    assert check["status"] == "confirmed" and check["bindings"] == {"N": 1}
    y = next(v for v in check["values"] if v["name"] == "y")
    assert (y["declared"], y["actual"], y["shown"], y["dtype"]) == (["N", 3], [1, 3], ["N", 3], "float32")


def test_symbolic_dims_must_bind_consistently(tmp_path):
    path = save(batch_collapse(), tmp_path / "collapse.onnx")
    assert confirm_path(path)[1].status == "confirmed"  # N=1: summing the batch leaves 1 row, still "N"
    _, check = confirm_path(path, ShapeOptions(dims={"N": 2}))
    assert check.status == "mismatch"
    assert check.findings == ["'y': declared (N, 4), onnxruntime produced (1, 4) (dim 'N' is 1 here but 2 in --dim)"]


def test_infinite_loop_is_killed_by_the_timeout(tmp_path):
    path = save(infinite_loop(), tmp_path / "loop.onnx")
    proc = subprocess.run(
        [sys.executable, "-m", "onnxaudit", "shapes", str(path), "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=60,  # a guard against a hang, not a timing assertion
    )
    assert proc.returncode == 2
    assert "run killed: no result after 3 s (--timeout 3)" in _one_line(proc.stderr)
    assert "Loop 'forever'" in proc.stdout  # its body's values are a stated limit


def test_huge_constant_of_shape_is_refused_before_running(tmp_path, capsys):
    path = save(constant_of_shape(), tmp_path / "big.onnx")
    code, out, err = _run(capsys, "shapes", str(path), "--timeout", "5")
    assert code == 2
    line = _one_line(err)
    assert "run refused" in line and "'big' (4, 1073741824) float32, 16.00 GiB" in line
    assert "Total params: 0" in out


def test_runtime_only_allocation_is_stopped_by_the_memory_limit(tmp_path, capsys):
    path = save(constant_of_shape(from_input=True), tmp_path / "big_at_runtime.onnx")
    np.save(tmp_path / "shape.npy", np.array([4, 2**30], dtype=np.int64))
    code, _, err = _run(
        capsys, "shapes", str(path), "--input", f"shape={tmp_path / 'shape.npy'}", "--max-memory", "1GiB",
        "--timeout", "5",
    )  # fmt: skip
    assert code == 2
    assert "run stopped at the memory limit (--max-memory 1.00 GiB)" in _one_line(err)


def test_token_ids_stay_inside_the_embedding_table(tmp_path):
    # vocabulary of 1: any id but 0 would make Gather fail, so a confirmed run proves the range
    m = embedding(vocab=1, seq=32)
    view = load(save(m, tmp_path / "emb.onnx"))
    assert index_bound(view, "ids") == (1, "embed")  # found through the Cast
    _, check = confirm_path(tmp_path / "emb.onnx")
    assert check.status == "confirmed", check.message
    assert check.inputs[0].values == "ids in [0, 1) for Gather 'embed'"
    assert [v.actual for v in check.values] == [[1, 32], [1, 32, 8], [1, 32, 3]]


def test_token_ids_found_through_a_negative_index_fix_up(tmp_path):
    view = load(save(embedding(vocab=7, wrap_negative=True), tmp_path / "emb.onnx"))
    assert index_bound(view, "ids") == (7, "embed")
    _, check = confirm_path(tmp_path / "emb.onnx")
    assert check.status == "confirmed", check.message


def test_dims_that_cannot_be_guessed_are_named(tmp_path, capsys):
    path = save(embedding(seq="seq"), tmp_path / "emb_seq.onnx")
    code, out, err = _run(capsys, "shapes", str(path))
    assert code == 2
    assert "cannot guess dims 'seq' (input 'ids' axis 1)" in _one_line(err)
    assert "Total params: 424" in out
    code, out, _ = _run(capsys, "shapes", str(path), "--dim", "seq=5")
    assert code == 0 and "(batch, seq, 3) float32" in out


def test_float16_bool_and_int_inputs(tmp_path):
    _, check = confirm_path(save(mixed_inputs(), tmp_path / "mixed.onnx"), ShapeOptions(dims={"batch": 3}))
    assert check.status == "confirmed", check.message
    assert [(i.name, i.dtype, i.shape) for i in check.inputs] == [
        ("x", "float16", [3, 2]),
        ("mask", "bool", [3, 2]),
        ("counts", "int32", [3, 2]),
    ]


def test_custom_domain_op_is_not_runnable_but_counted(tmp_path, capsys):
    path = save(custom_domain_op(), tmp_path / "custom.onnx")
    code, out, err = _run(capsys, "summary", str(path), "--run-shapes")
    assert code == 2
    line = _one_line(err)
    assert "not runnable" in line and "'example.custom:Mystery' (node 'mystery')" in line
    assert "Total params: 112" in out  # 4x3x3x3 + 4
    assert "shapes: onnx shape inference (static; not confirmed: not runnable)" in out


def test_a_run_onnxruntime_rejects_is_one_line(tmp_path, capsys):
    code, out, err = _run(capsys, "shapes", str(save(reshape_to([3]), tmp_path / "reshape.onnx")))
    assert code == 2
    line = _one_line(err)
    assert "run failed: onnxruntime raised" in line and "requested shape:{3}" in line
    assert "Values confirmed: 0 of 1" in out


def test_summary_run_shapes_fills_the_column(tmp_path, capsys):
    path = save(embedding(), tmp_path / "emb.onnx")
    report = audit(path)
    assert report.shape_check is None and report.shapes_source.startswith("onnx shape inference")
    code, out, err = _run(capsys, "summary", str(path), "--run-shapes", "--dim", "batch=2")
    assert (code, err) == (0, "")
    assert "shapes: confirmed by onnxruntime (batch=2)" in out
    report = audit(path, shapes=ShapeOptions(dims={"batch": 2}))
    assert layer_row(report, "embed").output_shape == ["batch", 6, 8]
    assert report.shape_check is not None and report.shape_check.exit_code == 0


def test_run_options_need_run_shapes_and_valid_inputs(tmp_path, capsys):
    path = save(dense_relu(), tmp_path / "ok.onnx")
    code, _, err = _run(capsys, "summary", str(path), "--dim", "N=2")
    assert code == 2 and "need --run-shapes" in _one_line(err)
    code, _, err = _run(capsys, "shapes", str(path), "--dim", "batch=2")
    assert code == 2 and "no model input has a dim named 'batch'" in _one_line(err)
    np.save(tmp_path / "x.npy", np.zeros((1, 4), dtype=np.int32))
    code, _, err = _run(capsys, "shapes", str(path), "--input", f"x={tmp_path / 'x.npy'}")
    assert code == 2 and "holds int32, the model wants float32" in _one_line(err)
    np.save(tmp_path / "x.npy", np.ones((2, 4), dtype=np.float32))
    code, out, _ = _run(capsys, "shapes", str(path), "--input", f"x={tmp_path / 'x.npy'}")
    assert code == 0 and "shapes: confirmed by onnxruntime (N=2)" in out


def test_json_is_deterministic(tmp_path, capsys):
    path = str(save(dense_relu(), tmp_path / "ok.onnx"))
    first = _run(capsys, "shapes", path, "--format", "json")[1]
    assert _run(capsys, "shapes", path, "--format", "json")[1] == first
