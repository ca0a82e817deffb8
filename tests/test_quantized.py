"""onnxruntime's own quantizers (QDQ, QOperator, dynamic ConvInteger/MatMulInteger, MatMulNBits) change
dtypes, not element counts: each quantized fixture in models/ort counts what its float source counts."""

from __future__ import annotations

import pytest
from builders import MODELS, fixture_meta, tensor_row

from onnxaudit import audit

QUANTIZED = sorted((MODELS / "ort").glob("*.onnx"))


@pytest.mark.parametrize("path", QUANTIZED, ids=lambda p: p.stem)
def test_quantized_counts_equal_float_source(path):
    meta = fixture_meta(path)
    source = audit(MODELS / meta["source"]).totals
    quantized = audit(path)
    q = quantized.totals
    assert (q.total, q.trainable, q.non_trainable, q.unclassified) == (
        source.total,
        source.trainable,
        source.non_trainable,
        source.unclassified,
    )
    if any(op.startswith(("QLinear", "ConvInteger", "MatMulInteger", "MatMulNBits")) for op in meta["ops"]):
        assert quantized.constants.tensors.get("quantization", 0) > 0
        assert q.total_bytes < source.total_bytes  # int8 / 4-bit storage


def test_torch_recorded_parameters_survive_quantization():
    path = MODELS / "ort" / "resnet_tiny__legacy_nofold__qoperator_static.onnx"
    meta = fixture_meta(path)
    pytorch = audit(path, convention="pytorch").totals
    assert (pytorch.trainable, pytorch.non_trainable) == (
        meta["source_recorded"]["parameters"],
        meta["source_recorded"]["running_stats"],
    )


def test_matmulnbits_counts_logical_k_not_padded_blocks():
    report = audit(MODELS / "ort" / "seed_geron_code__tf2onnx_op17__matmul_nbits.onnx")
    packed = [t for t in report.tensors if any("MatMulNBits" in c for c in t.consumers) and t.role == "weight"]
    assert sorted(t.count for t in packed) == sorted([784 * 300, 300 * 100, 100 * 10])
    first = next(t for t in packed if t.count == 784 * 300)
    blocks = -(-784 // 32)  # K=784 is padded to 25 blocks of 32 in storage
    assert first.bytes == 300 * blocks * 32 * 4 // 8


@pytest.mark.parametrize("kind", ["qdq_static", "qoperator_static"])
def test_statically_quantized_linear_bias_is_a_bias(kind):
    """quantize_static stores a MatMul + Add Linear's bias as an integer `<bias>_quantized`, read through
    DequantizeLinear by the Add (QDQ: its other operand comes through the activation's Quantize/Dequantize
    pair) or by QLinearAdd (QOperator): a bias, not a shape constant."""
    path = MODELS / "ort" / f"rescaled_norm__legacy__{kind}.onnx"
    report = audit(path, convention="pytorch")
    bias = next(t for t in report.tensors if t.name == "head.bias_quantized")
    assert (bias.role, bias.count) == ("bias", 4)  # nn.Linear(16, 4) in scripts/export_torch_zoo.py
    assert report.totals.trainable == fixture_meta(path)["source_recorded"]["parameters"]


@pytest.mark.parametrize("kind", ["qdq_static", "qoperator_static"])
def test_static_quantization_keeps_a_folded_bn_in_the_framework_view(kind):
    """torch.onnx folded each BN into its conv (`onnx::Conv_N`); quantize_static renames the folds
    `onnx::Conv_N_quantized` and re-saves the file as its own producer: still torch's folds."""
    path = MODELS / "ort" / f"resnet_tiny__legacy_fold__{kind}.onnx"
    fw = audit(path, convention="pytorch").framework
    recorded = fixture_meta(path)["source_recorded"]
    assert (fw.origin, fw.status) == ("pytorch", "ambiguous")
    assert fw.trainable.lo <= recorded["parameters"] <= fw.trainable.hi
    assert fw.non_trainable.lo == recorded["running_stats"] == fw.non_trainable.hi


@pytest.mark.parametrize("kind", ["qdq_static", "qoperator_static"])
def test_statically_quantized_norm_scale_is_a_parameter(kind):
    """A norm written out as ops, quantized: its weight is read through DequantizeLinear by a Mul whose
    other operand comes through Quantize/DequantizeLinear pairs (QDQ), or by QLinearMul (QOperator)."""
    path = MODELS / "ort" / f"rescaled_norm__legacy__{kind}.onnx"
    report = audit(path, convention="pytorch")
    assert tensor_row(report, "weight_quantized").role == "norm_scale"
