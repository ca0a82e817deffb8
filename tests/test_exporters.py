"""Exporter facts (model/exporters.py) the counting and the report ask."""

from __future__ import annotations

from onnxaudit.model.exporters import called_again, op_behind_layout


def test_a_layer_that_hands_its_result_on_through_transposes_shows_the_op_behind_them():
    # tf2onnx: Conv (NCHW), then the Transpose back to NHWC is what the next layer reads
    assert op_behind_layout(["Transpose"], ["Transpose", "Conv", "Transpose"]) == "Conv"
    # a Reshape whose target is computed by Shape/Gather/Concat: the plumbing is no real op
    assert op_behind_layout(["Reshape"], ["MatMul", "Shape", "Gather", "Concat", "Constant", "Reshape"]) == "MatMul"


def test_no_op_behind_layout_when_a_real_op_hands_the_result_on_or_none_exists():
    assert op_behind_layout(["Conv", "Transpose"], ["Conv", "Transpose"]) is None
    assert op_behind_layout([], ["Conv"]) is None
    assert op_behind_layout(["Flatten"], ["Shape", "Flatten"]) is None


def test_later_calls_of_a_module_name_the_first():
    assert called_again("encoder.layer_2") == "encoder.layer"
    assert called_again("conv") is None
