"""Runtime shape confirmation: every value run in onnxruntime (child process, limits) and compared.

The key tests run with both methods: `profile` (shapes from onnxruntime's profiler) and `outputs`
(every value a graph output); without --method the values' sizes choose. The child is forked where
this process runs one thread (a CLI run) and a fresh interpreter otherwise (pytest has numpy's
threads): both ways are tested."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from builders import (
    MODELS,
    batch_collapse,
    constant_of_shape,
    custom_domain_op,
    dense_relu,
    embedding,
    infinite_loop,
    layer_row,
    mixed_inputs,
    model,
    node,
    reshape_to,
    save,
    unnamed_nodes,
    value,
)

from onnxaudit import audit
from onnxaudit.cli.main import main
from onnxaudit.model.load import load
from onnxaudit.model.view import ValueInfo
from onnxaudit.shapes import ortchild, sandbox
from onnxaudit.shapes.confirm import ShapeOptions, begin, confirm, confirm_path
from onnxaudit.shapes.feeds import index_bound, plan_feeds
from onnxaudit.shapes.options import PROFILE_EVENT_BYTES
from onnxaudit.shapes.plan import choose_method, estimate_memory
from onnxaudit.shapes.profile import Event, observe

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
METHODS = ["profile", "outputs"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_shapes_all_confirmed(name, method):
    _, check = confirm_path(MODELS / name, ShapeOptions(method=method))
    assert (check.status, check.method) == ("confirmed", method), (check.message, check.findings, check.limits)
    assert check.values and all(v.status == "confirmed" for v in check.values)
    assert all(v.actual is not None for v in check.values)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_declared_output_is_a_mismatch(tmp_path, capsys, method):
    path = save(dense_relu(out_shape=("N", 4)), tmp_path / "wrong.onnx")
    code, out, _ = _run(capsys, "shapes", str(path), "--method", method)
    assert code == 1
    mismatch = [line for line in out.splitlines() if line.startswith("Mismatch:")]
    assert mismatch == ["Mismatch: 'y': declared (N, 4), onnxruntime produced (1, 3) (axis 1: 4 vs 3)"]


@pytest.mark.parametrize("method", METHODS)
def test_consistent_model_passes_and_keeps_symbolic_names(tmp_path, capsys, method):
    path = save(dense_relu(), tmp_path / "ok.onnx")
    code, out, err = _run(capsys, "shapes", str(path), "--format", "json", "--method", method)
    assert (code, err) == (0, "")
    check = json.loads(out)["shape_check"]
    assert check["status"] == "confirmed" and check["bindings"] == {"N": 1} and check["method"] == method
    y = next(v for v in check["values"] if v["name"] == "y")
    assert (y["declared"], y["actual"], y["shown"], y["dtype"]) == (["N", 3], [1, 3], ["N", 3], "float32")


@pytest.mark.parametrize("method", METHODS)
def test_symbolic_dims_must_bind_consistently(tmp_path, method):
    path = save(batch_collapse(), tmp_path / "collapse.onnx")
    # N=1: summing the batch leaves 1 row, still "N"
    assert confirm_path(path, ShapeOptions(method=method))[1].status == "confirmed"
    _, check = confirm_path(path, ShapeOptions(dims={"N": 2}, method=method))
    assert check.status == "mismatch"
    assert check.findings == ["'y': declared (N, 4), onnxruntime produced (1, 4) (dim 'N' is 1 here but 2 in --dim)"]


def test_infinite_loop_is_killed_by_the_timeout(tmp_path):
    path = save(infinite_loop(), tmp_path / "loop.onnx")
    proc = subprocess.run(
        [sys.executable, "-m", "onnxaudit", "shapes", str(path), "--timeout", "3", "--wide"],
        capture_output=True,
        text=True,
        timeout=60,  # a guard against a hang, not a timing assertion
    )
    assert proc.returncode == 2
    assert "run killed: no result after 3 s (--timeout 3)" in _one_line(proc.stderr)
    assert "Loop 'forever'" in proc.stdout  # its body's values are a stated limit


def _children() -> list[str]:
    """This process's live child processes (Linux)."""
    path = Path(f"/proc/self/task/{os.getpid()}/children")
    return path.read_text().split() if path.exists() else []


def test_huge_constant_of_shape_is_refused_before_running(tmp_path, capsys):
    path = save(constant_of_shape(), tmp_path / "big.onnx")
    code, out, err = _run(capsys, "shapes", str(path), "--timeout", "5")
    assert code == 2
    line = _one_line(err)
    assert "run refused" in line and "'big' (4, 1073741824) float32, 16.00 GiB" in line
    assert "Total params: 0" in out
    assert _children() == []  # the child that was loading the model is gone with the refusal


@pytest.mark.parametrize("method", METHODS)
def test_runtime_only_allocation_is_stopped_by_the_memory_limit(tmp_path, capsys, method):
    path = save(constant_of_shape(from_input=True), tmp_path / "big_at_runtime.onnx")
    np.save(tmp_path / "shape.npy", np.array([4, 2**30], dtype=np.int64))
    code, _, err = _run(
        capsys, "shapes", str(path), "--input", f"shape={tmp_path / 'shape.npy'}", "--max-memory", "1GiB",
        "--timeout", "5", "--method", method,
    )  # fmt: skip
    assert code == 2
    assert "run stopped at the memory limit (--max-memory 1.00 GiB)" in _one_line(err)


@pytest.mark.parametrize("method", METHODS)
def test_token_ids_stay_inside_the_embedding_table(tmp_path, method):
    # vocabulary of 1: any id but 0 would make Gather fail, so a confirmed run proves the range
    m = embedding(vocab=1, seq=32)
    view = load(save(m, tmp_path / "emb.onnx"))
    assert index_bound(view, "ids") == (1, "embed")  # found through the Cast
    _, check = confirm_path(tmp_path / "emb.onnx", ShapeOptions(method=method))
    assert check.status == "confirmed", check.message
    assert check.inputs[0].values == "ids in [0, 1) for Gather 'embed'"
    assert [v.actual for v in check.values] == [[1, 32], [1, 32, 8], [1, 32, 3]]


def test_token_ids_found_through_a_negative_index_fix_up(tmp_path):
    view = load(save(embedding(vocab=7, wrap_negative=True), tmp_path / "emb.onnx"))
    assert index_bound(view, "ids") == (7, "embed")
    _, check = confirm_path(tmp_path / "emb.onnx")
    assert check.status == "confirmed", check.message


@pytest.mark.parametrize("method", METHODS)
def test_float16_bool_and_int_inputs(tmp_path, method):
    path = save(mixed_inputs(), tmp_path / "mixed.onnx")
    _, check = confirm_path(path, ShapeOptions(dims={"batch": 3}, method=method))
    assert check.status == "confirmed", check.message
    assert [(i.name, i.dtype, i.shape) for i in check.inputs] == [
        ("x", "float16", [3, 2]),
        ("mask", "bool", [3, 2]),
        ("counts", "int32", [3, 2]),
    ]


def test_custom_domain_op_is_not_runnable_but_counted(tmp_path, capsys):
    path = save(custom_domain_op(), tmp_path / "custom.onnx")
    code, out, err = _run(capsys, "summary", str(path), "--run-shapes", "--wide")  # the header on one line
    assert code == 2
    line = _one_line(err)
    assert "not runnable" in line and "'example.custom:Mystery' (node 'mystery')" in line
    assert "Total params: 112" in out  # 4x3x3x3 + 4
    assert "shapes: onnx shape inference (static; not confirmed: not runnable)" in out


@pytest.mark.parametrize("method", METHODS)
def test_a_run_onnxruntime_rejects_is_one_line(tmp_path, capsys, method):
    path = save(reshape_to([3]), tmp_path / "reshape.onnx")
    code, out, err = _run(capsys, "shapes", str(path), "--method", method)
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
    code, _, err = _run(capsys, "summary", str(path), "--timeout", "5")
    assert code == 2 and "need --run-shapes" in _one_line(err)
    code, out, _ = _run(capsys, "summary", str(path), "--dim", "N=2")  # without a run: binds the cost's dims
    assert code == 0 and f"Total mult-adds (MACs): {2 * 3 * 4:,} (at N=2)" in out
    code, _, err = _run(capsys, "summary", str(path), "--dim", "batch=2")
    assert code == 2 and "no model input has a dim named 'batch'" in _one_line(err)
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


# ---------------------------------------------------------------- the profile method


def test_profile_finds_a_wrong_declared_shape_and_confirms_a_correct_one(tmp_path):
    m = dense_relu()
    m.graph.value_info[0].CopyFrom(value("h", ["N", 5]))  # MatMul gives (N, 3)
    _, check = confirm_path(save(m, tmp_path / "wrong_h.onnx"), ShapeOptions(method="profile"))
    assert (check.method, check.status) == ("profile", "mismatch")
    assert check.findings == ["'h': declared (N, 5), onnxruntime produced (1, 3) (axis 1: 5 vs 3)"]
    assert [(v.name, v.status, v.shown) for v in check.values] == [
        ("h", "mismatch", ["N", 3]),
        ("y", "confirmed", ["N", 3]),
    ]


def test_profile_ties_unnamed_nodes_to_their_values(tmp_path):
    path = save(unnamed_nodes(), tmp_path / "unnamed.onnx")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    runs = {m: confirm_path(path, ShapeOptions(dims={"N": 3}, method=m))[1] for m in METHODS}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # the user's file is never changed
    for check in runs.values():
        assert check.status == "confirmed", (check.message, check.findings, check.limits)
    # Relu_0 and Relu_5 each name two events of other shapes (the If branch's, the named node's)
    seen = [(v.name, v.actual, v.dtype) for v in runs["profile"].values]
    assert seen == [(v.name, v.actual, v.dtype) for v in runs["outputs"].values]
    assert seen == [
        ("a", [3, 4], "float32"), ("zero", [], "float32"), ("s", [], "float32"), ("cond", [], "bool"),
        ("b", [3, 4], "float32"), ("c", [], "float32"), ("d", [3, 4], "float32"), ("y", [3, 4], "float32"),
    ]  # fmt: skip
    wrong = save(unnamed_nodes(a_shape=["N", 5]), tmp_path / "unnamed_wrong.onnx")
    _, check = confirm_path(wrong, ShapeOptions(dims={"N": 3}, method="profile"))
    assert check.findings == ["'a': declared (N, 5), onnxruntime produced (3, 4) (axis 1: 5 vs 4)"]


def test_profile_events_that_cannot_be_trusted_are_not_observed(tmp_path):
    view = load(save(dense_relu(), tmp_path / "ok.onnx"))
    wanted, y = ["h", "y"], {"y": {"shape": [1, 3], "type": "tensor(float)"}}
    dense = Event("dense", "MatMul", 0, 10, 5, (("float", [1, 3]),), (("float", [1, 4]), ("float", [4, 3])))
    # two events claim the node: neither is taken
    twice = observe(view, wanted, [dense, Event("dense", "MatMul", 0, 30, 5, dense.outputs, ())], y, {}, {})
    assert "h" not in twice.values and "could not be told apart ('dense')" in twice.limits[0]
    # a named node at another index than expected: onnxruntime's numbering is not trusted for unnamed ones
    moved = observe(view, wanted, [Event("dense", "MatMul", 7, 10, 5, dense.outputs, ())], y, {}, {})
    assert moved.values["h"] == {"shape": [1, 3], "type": "tensor(float)"}
    assert moved.limits[0].startswith("onnxruntime numbered the main graph's nodes differently")
    # float16 run in float32 between onnxruntime's Casts: the shape counts, the type is the file's
    half = observe(view, wanted, [dense], y, {}, {"h": onnx.TensorProto.FLOAT16}, precision_casts=2)
    assert half.values["h"]["type"] == "tensor(float16)" and "computed 1 16-bit float value(s)" in half.limits[0]
    # onnxruntime records no entry for a non-tensor output: pairing skips the values known not to be tensors
    m = model([node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2)], [value("x", [1, 4])], [], opset=18)
    view = load(save(m, tmp_path / "split.onnx"))
    split = [Event("a", "Split", 0, 10, 5, (("float", [1, 2]),), ())]
    known = observe(view, ["a", "b"], split, {}, {"a": "sequence"}, {})
    assert known.values == {"a": {"kind": "sequence"}, "b": {"shape": [1, 2], "type": "tensor(float)"}}
    unknown = observe(view, ["a", "b"], split, {}, {}, {})
    assert not unknown.values and "1 node(s) recorded fewer tensors than they have outputs ('a')" in unknown.limits[0]


def test_profile_reader_streams_and_keeps_what_precedes_a_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(ortchild, "_CHUNK", 7)  # every event straddles chunks
    events = [{"cat": "Session", "name": "model_run", "args": {}}]
    events += [
        {"cat": "Node", "name": f"n{i}_kernel_time", "ts": i, "dur": 1,
         "args": {"op_name": "Relu", "node_index": str(i), "output_type_shape": [{"float": [1, i]}],
                  "input_type_shape": [{"float": [1, i]}], "thread_scheduling_stats": {"main_thread": {}}}}
        for i in range(3)
    ]  # fmt: skip
    text = "[\n" + ",\n".join(json.dumps(e) for e in events) + "\n]\n"
    path = tmp_path / "profile.json"
    path.write_text(text)
    wanted = {"n0": "Relu", "n2": "Relu"}
    read = ortchild.read_profile(str(path), wanted)
    assert read["complete"] and read["kernels"] == 3
    assert read["events"] == [["n0", "Relu", 0, 0, 1, [["float", [1, 0]]], [["float", [1, 0]]]],
                              ["n2", "Relu", 2, 2, 1, [["float", [1, 2]]], [["float", [1, 2]]]]]  # fmt: skip
    path.write_text(text[: text.index('"n2_kernel_time') + 20])  # cut at the file-size limit
    read = ortchild.read_profile(str(path), wanted)
    assert not read["complete"] and [e[0] for e in read["events"]] == ["n0"]
    path.write_text('{"not": "an array"}')
    with pytest.raises(ValueError, match="not a JSON array"):
        ortchild.read_profile(str(path), wanted)


def test_method_options(tmp_path, capsys):
    path = str(save(dense_relu(), tmp_path / "ok.onnx"))
    code, _, err = _run(capsys, "shapes", path, "--method", "profile", "--optimized")
    assert code == 2 and "--optimized needs --method outputs" in _one_line(err)
    code, out, _ = _run(capsys, "shapes", path, "--optimized", "--format", "json")
    assert code == 0 and json.loads(out)["shape_check"]["method"] == "outputs"
    code, out, _ = _run(capsys, "shapes", path, "--wide")
    assert code == 0 and "every value an output" in out  # tiny values: the sizes chose outputs
    code, out, _ = _run(capsys, "shapes", path, "--method", "profile", "--wide")
    assert code == 0 and "shapes from its profile" in out
    code, _, err = _run(capsys, "summary", path, "--method", "outputs")
    assert code == 2 and "need --run-shapes" in _one_line(err)


def test_names_a_profile_may_not_escape_fall_back_to_outputs(tmp_path):
    m = dense_relu()
    m.graph.node[0].name = 'den"se\\'
    _, check = confirm_path(save(m, tmp_path / "quoted.onnx"), ShapeOptions(method="profile"))
    assert (check.status, check.method) == ("confirmed", "outputs")
    assert any(limit.startswith("node names with quotes") for limit in check.limits)


def test_profile_memory_estimate_counts_what_must_exist_at_once(tmp_path):
    view = load(save(dense_relu(), tmp_path / "ok.onnx"))
    big = {name: ValueInfo(name, onnx.TensorProto.FLOAT, (1024, 1024)) for name in ("h", "y")}  # 4 MiB each
    outputs, _, _ = estimate_memory(view, [], big, ["h", "y"], "outputs")
    profile, _, largest = estimate_memory(view, [], big, ["h", "y"], "profile")
    assert outputs - profile == 4 * 2**20 - 2 * PROFILE_EVENT_BYTES  # only y, the larger of largest and outputs
    assert largest is not None and largest[1] == 4 * 2**20


# ---------------------------------------------------------------- choosing the method, the child


def test_without_method_the_values_sizes_choose(tmp_path):
    view = load(save(dense_relu(), tmp_path / "ok.onnx"))
    plan = plan_feeds(view, {}, {})
    assert choose_method(view, plan, ["h", "y"], 2**32) == "outputs"  # a few bytes of values
    m = model([node("ReduceSum", ["x"], ["s"], keepdims=0)], [value("x", [2, 3])], [value("s", [])])
    view = load(save(m, tmp_path / "scalar.onnx"))
    assert choose_method(view, plan_feeds(view, {}, {}), ["s"], 2**32) == "outputs"  # a scalar has a size
    # one Relu over 16 MiB: keeping it costs more than the profile of one node
    m = model([node("Relu", ["x"], ["y"])], [value("x", ["N", 4096, 1024])], [value("y", ["N", 4096, 1024])])
    view = load(save(m, tmp_path / "wide.onnx"))
    assert choose_method(view, plan_feeds(view, {}, {}), ["y"], 2**32) == "profile"
    _, check = confirm_path(tmp_path / "wide.onnx")
    assert (check.status, check.method) == ("confirmed", "profile")


def test_forked_child_confirms_and_is_limited(tmp_path):
    # a fresh interpreter without numpy runs one thread: the child is forked from it
    ok = save(dense_relu(), tmp_path / "ok.onnx")
    big = save(constant_of_shape(from_input=True), tmp_path / "big_at_runtime.onnx")
    np.save(tmp_path / "shape.npy", np.array([4, 2**30], dtype=np.int64))
    script = f"""
import sys
from onnxaudit.shapes import sandbox
from onnxaudit.shapes.confirm import ShapeOptions, confirm_path
assert sandbox.fork_safe() and "numpy" not in sys.modules
for method in ("profile", "outputs"):
    _, check = confirm_path({str(ok)!r}, ShapeOptions(method=method))
    assert (check.status, check.method) == ("confirmed", method), (check.message, check.findings)
    assert [v.actual for v in check.values] == [[1, 3], [1, 3]]
_, check = confirm_path({str(big)!r}, ShapeOptions(inputs={{"shape": {str(tmp_path / "shape.npy")!r}}},
                        max_memory=2**30, timeout=10))
assert check.status == "killed" and "memory limit" in check.message, check.message
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_spawned_child_runs_where_fork_is_not_safe(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "fork_safe", lambda: False)
    _, check = confirm_path(save(dense_relu(), tmp_path / "ok.onnx"))
    assert check.status == "confirmed"
    with sandbox.Child({}, fork=False) as child:  # limits it cannot read: one line, no hang
        child.send_job({}, b"")
        result = child.run(10)
    assert result.outcome == "error"


def test_begin_loads_while_the_caller_goes_on_and_finish_confirms(tmp_path):
    view = load(save(dense_relu(), tmp_path / "ok.onnx"))
    with begin(view, ShapeOptions()) as pending:
        assert pending.children and pending.children[0].used  # the child has its job already
        check = pending.finish()
    assert (check.status, [v.actual for v in check.values]) == ("confirmed", [[1, 3], [1, 3]])
    assert [v.actual for v in confirm(view, ShapeOptions()).values] == [[1, 3], [1, 3]]
    with pytest.raises(KeyError), begin(view, ShapeOptions()) as pending:
        raise KeyError("the caller failed in between")
    assert pending.children[0].status is not None and _children() == []  # killed and reaped
