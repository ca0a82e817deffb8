"""Sizes chosen for free input dims (model/sizes.py) and values the model accepts, one strategy a test,
each confirmed by a real onnxruntime run through `onnxaudit shapes` with no flags."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from builders import embedding as embedding_model
from builders import (
    positional_embedding,
    reshape_by_16,
    save,
    scalar_switch,
    strided_convs,
    unnamed_dims,
    zero_d_scale,
)

from onnxaudit.cli.main import main
from onnxaudit.model.load import load
from onnxaudit.model.sizes import choose_sizes
from onnxaudit.shapes.confirm import ShapeOptions, confirm_path


def _shapes(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["shapes", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _chose(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("Chose: ")]


def test_spatial_dims_take_the_smallest_size_every_window_accepts(tmp_path, capsys):
    path = save(strided_convs(), tmp_path / "convs.onnx")
    by_label = {c.label: c for c in choose_sizes(load(path))}
    # strides 2 x 2 = 4; at 4 the second 3x3 window would see 1 row, so 8
    assert {k: (c.value, c.kind) for k, c in by_label.items()} == {
        "batch": (1, "batch"),
        "height": (8, "spatial"),
        "width": (8, "spatial"),
    }
    assert by_label["height"].retry == (12, 16, 20)
    code, out, err = _shapes(capsys, str(path))
    assert (code, err) == (0, ""), err
    assert "Chose: height = 8: spatial (reaches Conv 'conv1'): smallest size the windows accept" in out
    assert "Input x: float32 (1, 3, 8, 8)" in out
    # summary --run-shapes runs with the same sizes
    assert main(["summary", str(path), "--run-shapes", "--wide"]) == 0  # the header on one line
    out = capsys.readouterr().out
    assert "shapes: confirmed by onnxruntime (batch=1, height=8, width=8)" in out
    assert "Note: shape run chose height = 8: spatial (reaches Conv 'conv1')" in out


def test_bound_dims_show_values_not_derived_names(tmp_path, capsys):
    path = save(strided_convs(), tmp_path / "convs.onnx")
    code, out, _ = _shapes(capsys, str(path), "--dim", "width=320", "--format", "json")
    assert code == 0
    check = json.loads(out)["shape_check"]
    y = next(v for v in check["values"] if v["name"] == "y")
    # height chosen 8 -> 1 row, width 320 -> 79 columns; the file's own names for them are not kept
    assert (y["actual"], y["shown"]) == ([1, 4, 1, 79], ["batch", 4, 1, 79])
    assert check["bindings"] == {"width": 320, "batch": 1, "height": 8}


def test_sequence_dims_take_a_short_length_and_ids_stay_in_range(tmp_path, capsys):
    path = save(embedding_model(vocab=5, seq="seq"), tmp_path / "emb.onnx")
    code, out, err = _shapes(capsys, str(path))
    assert (code, err) == (0, "")
    assert _chose(out) == ["Chose: batch = 1: batch-like: 1", "Chose: seq = 8: sequence-like: a short length"]
    assert "Input ids: int64 (1, 8), ids in [0, 5) for Gather 'embed'" in out
    code, out, _ = _shapes(capsys, str(path), "--dim", "seq=5")
    assert code == 0 and "(batch, seq, 3) float32" in out and _chose(out) == ["Chose: batch = 1: batch-like: 1"]


def test_minus_one_dims_are_free_and_bound_by_position(tmp_path, capsys):
    path = save(unnamed_dims((-1, 3)), tmp_path / "minus.onnx")
    code, out, err = _shapes(capsys, str(path))
    assert (code, err) == (0, ""), out  # the declared -1 is no mismatch with the 1 that ran
    assert _chose(out) == ["Chose: x:0 = 1: batch-like: 1"]
    code, out, _ = _shapes(capsys, str(path), "--dim", "x:0=4")
    assert code == 0 and "Input x: float32 (4, 3)" in out and _chose(out) == []
    batch = tmp_path / "two.npy"
    np.save(batch, np.ones((2, 3), dtype=np.float32))
    code, out, err = _shapes(capsys, str(path), "--input", f"x={batch}")
    assert (code, err) == (0, "") and "Input x: float32 (2, 3)" in out


def test_unnamed_dims_are_chosen_and_named_by_position(tmp_path, capsys):
    path = save(unnamed_dims((None, "?", 4)), tmp_path / "unnamed.onnx")
    code, out, _ = _shapes(capsys, str(path))
    assert code == 0
    assert _chose(out) == ["Chose: x:0 = 1: batch-like: 1", "Chose: x:1 = 8: sequence-like: a short length"]
    code, out, _ = _shapes(capsys, str(path), "--dim", "x:1=5", "--dim", "x:-3=2")
    assert code == 0 and "Input x: float32 (2, 5, 4)" in out
    code, _, err = _shapes(capsys, str(path), "--dim", "x:2=5")
    assert code == 2 and "axis 2 of input 'x' is fixed at 4" in err
    code, _, err = _shapes(capsys, str(path), "--dim", "length=5")
    assert code == 2 and "unnamed dims by position: x:0, x:1" in err


def test_an_integer_scalar_compared_with_a_constant_takes_it(tmp_path, capsys):
    path = save(scalar_switch(16000), tmp_path / "switch.onnx")
    code, out, err = _shapes(capsys, str(path))
    assert (code, err) == (0, ""), out
    assert "Input sr: int64 (), 16000, a value Equal 'is_rate' compares it with (16000)" in out
    # any other value takes the branch that cannot run: the choice is what makes the run work
    other = tmp_path / "sr.npy"
    np.save(other, np.array(8000, dtype=np.int64))
    code, _, err = _shapes(capsys, str(path), "--input", f"sr={other}")
    assert code == 2 and "run failed" in err


def test_a_zero_d_input_file_stays_zero_d(tmp_path, capsys):
    path = save(zero_d_scale(), tmp_path / "scale.onnx")
    scale = tmp_path / "s.npy"
    np.save(scale, np.array(2.5, dtype=np.float32))
    code, out, err = _shapes(capsys, str(path), "--input", f"s={scale}", "--format", "json")
    assert (code, err) == (0, "")
    check = json.loads(out)["shape_check"]
    assert check["status"] == "confirmed" and check["findings"] == []
    assert [(i["name"], i["shape"]) for i in check["inputs"]] == [("x", [2, 3]), ("s", [])]


def test_a_rejected_size_is_retried_within_the_timeout(tmp_path, capsys):
    path = save(reshape_by_16(), tmp_path / "blocks.onnx")
    _, check = confirm_path(path, ShapeOptions())
    assert check.status == "confirmed", check.message
    assert [c.value for c in check.choices] == [1, 16]
    assert len(check.tries) == 2 and check.tries[0].startswith("batch=1, seq=8: ")
    assert check.tries[1] == "batch=1, seq=16: ran"
    code, out, _ = _shapes(capsys, str(path))
    assert code == 0 and "Tried: batch=1, seq=8: " in out and "Chose: seq = 16: sequence-like" in out


def test_a_failed_run_prints_one_line_naming_the_flag_and_no_value_rows(tmp_path, capsys):
    path = save(reshape_by_16(), tmp_path / "blocks.onnx")
    code, out, err = _shapes(capsys, str(path), "--dim", "seq=7")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Values confirmed: 0 of 1 (not run)" in out and "blocks (Reshape)" not in out
    path = save(reshape_by_16(seq=None), tmp_path / "blocks_unnamed.onnx")
    _, check = confirm_path(path, ShapeOptions(timeout=0.5))  # no time for another try
    assert check.status in ("failed", "killed")


def test_choose_sizes_needs_no_onnxruntime(tmp_path):
    path = save(strided_convs(), tmp_path / "convs.onnx")
    code = (
        "import sys; from onnxaudit.model.load import load; from onnxaudit.model.sizes import choose_sizes; "
        f"print([c.value for c in choose_sizes(load({str(path)!r}))], 'onnxruntime' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["[1,", "8,", "8]", "False"]


def test_a_metadata_image_size_comes_first_and_long_dims_get_a_legend(tmp_path, capsys):
    m = strided_convs()
    m.metadata_props.add(key="imgsz", value="[16, 24]")  # as Ultralytics writes it
    path = save(m, tmp_path / "hinted.onnx")
    assert [(c.label, c.value, c.kind) for c in choose_sizes(load(path))] == [
        ("batch", 1, "batch"),
        ("height", 16, "hint"),
        ("width", 24, "hint"),
    ]
    code, out, _ = _shapes(capsys, str(path))
    assert code == 0 and "Chose: height = 16: hint: the metadata imgsz=[16, 24]" in out
    # the declared 'floor(height/2 - 1/2) + 1' is longer than a column should be: a short name and a legend
    assert "Symbolic dims:\n  s1 = floor(height/2 - 1/2) + 1\n" in out
    assert all(len(line) < 200 for line in out.splitlines())


def test_the_batch_axis_of_a_recurrent_state_is_one(tmp_path):
    path = save(unnamed_dims((2, None, 8)), tmp_path / "state.onnx")
    assert [(c.label, c.value, c.kind) for c in choose_sizes(load(path))] == [("x:1", 1, "state")]


def test_a_sequence_stays_within_the_positional_table(tmp_path, capsys):
    path = save(positional_embedding(positions=5), tmp_path / "positions.onnx")
    (seq,) = [c for c in choose_sizes(load(path)) if c.name == "seq"]
    # 8 would index past the table's 5 rows: onnxruntime fails the Gather
    assert (seq.value, seq.retry) == (5, ())
    assert seq.reason == "sequence-like: a short length, within the 5 positions of 'pos.weight'"
    code, out, err = _shapes(capsys, str(path))
    assert (code, err) == (0, "") and "Input ids: int64 (1, 5)" in out
    code, _, err = _shapes(capsys, str(path), "--dim", "seq=8")
    assert code == 2 and "within the inclusive range [-5,4]" in err
    big = save(positional_embedding(positions=100), tmp_path / "positions100.onnx")
    (seq,) = [c for c in choose_sizes(load(big)) if c.name == "seq"]
    assert (seq.value, seq.retry) == (8, (16, 64, 100))
