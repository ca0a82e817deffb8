"""`onnxaudit diff OLD NEW`: fixture pairs the project has, with the expected differences as arithmetic."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from builders import (
    MODELS,
    empty_nodes,
    fixture_meta,
    init,
    linear,
    model,
    node,
    save,
    save_with_hole,
    seed_cnn,
    value,
)
from hostile import CliRunner
from onnx import TensorProto, numpy_helper

from onnxaudit.api import compare
from onnxaudit.cli.main import main
from onnxaudit.diff.names import layer_key, strip_decorations, tensor_module
from onnxaudit.diff.result import CHANGED, ONLY_NEW, ONLY_OLD, RENAMED, SAME, DiffReport, LayerDiff
from onnxaudit.diff.values import SAMPLES
from onnxaudit.render import diff as render_diff
from onnxaudit.render.diff import MOST_ROWS, RENDERERS, render_diff_text, write_diff_json
from onnxaudit.render.summary import escape_markdown

# resnet_tiny's BatchNorms and their channels: bn1, layer1.{0,1}.bn{1,2} over 16; layer2.0.bn{1,2} and
# the downsample's BN over 32
RESNET_BN_CHANNELS = [16] * 5 + [32] * 3
RESNET_CONVS = {  # conv -> (out channels, weight elements out x in x kh x kw), no bias
    "conv1": (16, 16 * 3 * 3 * 3),
    "layer1.0.conv1": (16, 16 * 16 * 9),
    "layer1.0.conv2": (16, 16 * 16 * 9),
    "layer1.1.conv1": (16, 16 * 16 * 9),
    "layer1.1.conv2": (16, 16 * 16 * 9),
    "layer2.0.conv1": (32, 32 * 16 * 9),
    "layer2.0.conv2": (32, 32 * 32 * 9),
    "layer2.0.downsample.0": (32, 32 * 16 * 1 * 1),
}
CONV_WEIGHTS = sum(w for _, w in RESNET_CONVS.values())
FC = 10 * 32 + 10


def _pair(old: str, new: str, **kwargs) -> DiffReport:
    return compare(MODELS / f"{old}.onnx", MODELS / f"{new}.onnx", **kwargs)


def _layer(report: DiffReport, old: str | None = None, new: str | None = None) -> LayerDiff:
    found = [la for la in report.layers if (old is None or la.old == old) and (new is None or la.new == new)]
    assert len(found) == 1, [(la.old, la.new) for la in found]
    return found[0]


def _stored(report: DiffReport, key: str) -> tuple[int | None, int | None, int | None]:
    d = report.totals.stored[key]
    return d.old, d.new, d.delta


def _logical(report: DiffReport, key: str):
    return report.totals.framework[key]


def test_legacy_export_vs_dynamo_of_one_module():
    """dynamo folds bn0 (4 x 32) into conv0 and keeps conv0's state_dict names under bn0's scope."""
    report = _pair("torch/seed_cnn__legacy_nofold", "torch/seed_cnn__dynamo")
    keras = fixture_meta(MODELS / "torch/seed_cnn__legacy_nofold.onnx")["keras_equivalent"]
    assert _stored(report, "total") == (keras["total"], keras["total"] - 4 * 32, -4 * 32)
    assert _stored(report, "non_trainable") == (2 * 32, 0, -2 * 32)
    for key in ("total", "trainable", "non_trainable"):
        figure = _logical(report, key)
        assert figure.agree and figure.old.lo == figure.new.lo == figure.new.hi == keras[key]
    conv = _layer(report, old="conv0")
    assert conv.new == "bn0" and conv.matched_by == "name" and conv.status == RENAMED
    assert conv.params.old == conv.params.new == 32 * 3 * 7 * 7 + 32
    assert conv.values == "different"  # the BN's scale and shift are folded into the weights
    bn = _layer(report, old="bn0", new=None)
    assert bn.status == ONLY_OLD and bn.params.old == 4 * 32 and bn.non_trainable.old == 2 * 32
    fc = _layer(report, old="fc")
    assert fc.status == SAME and fc.values == "same" and fc.params.new == 32 * 32 * 32 + 1
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_nofold_vs_fold_each_bn_becomes_a_conv_bias():
    """A fold drops a BN's 4 x C and gives its conv a bias of C: -3 x C per BN, -2 x C non-trainable."""
    report = _pair("torch/resnet_tiny__legacy_nofold", "torch/resnet_tiny__legacy_fold")
    c = sum(RESNET_BN_CHANNELS)
    total = CONV_WEIGHTS + 4 * c + FC
    assert _stored(report, "total") == (total, total - 3 * c, -3 * c)
    assert _stored(report, "trainable")[2] == -2 * c + c
    assert _stored(report, "non_trainable") == (2 * c, 0, -2 * c)
    # the fold's figure is a range (a folded BN may have had no affine): it holds the unfolded count
    figure = _logical(report, "total")
    assert figure.agree and figure.new.lo <= total <= figure.new.hi and not figure.new.exact
    for conv, (channels, weights) in RESNET_CONVS.items():
        row = _layer(report, old=conv)
        assert row.new == conv and row.status == CHANGED and "params" in row.changes
        assert row.params.new == weights + channels and row.values == "different"  # BN folded in, bias gained
    gone = sorted(la.params.old for la in report.layers if la.status == ONLY_OLD and la.params.old)
    assert gone == sorted(4 * ch for ch in RESNET_BN_CHANNELS)
    assert report.exit_code() == 0


@pytest.mark.parametrize(
    ("kind", "storage", "weight_dtype"),
    [
        ("qdq_static", "int8 QDQ", "int8"),
        ("qoperator_static", "int8 QOperator", "int8"),
        ("dynamic", "uint8 QOperator", "uint8"),
    ],
)
def test_source_vs_onnxruntime_quantization(kind: str, storage: str, weight_dtype: str):
    """The logical count is intact; each conv's weight went from 4 bytes an element to 1."""
    report = _pair("torch/resnet_tiny__legacy_nofold", f"ort/resnet_tiny__legacy_nofold__{kind}")
    total = CONV_WEIGHTS + 4 * sum(RESNET_BN_CHANNELS) + FC
    assert _stored(report, "total") == (total, total, 0)
    assert all(
        f.agree and f.old.exact and f.new.exact and f.old.lo == f.new.lo for f in report.totals.framework.values()
    )
    for conv, (_, weights) in RESNET_CONVS.items():
        row = _layer(report, old=conv)
        assert row.new == conv and row.params.old == row.params.new == weights
        assert row.bytes.old == 4 * weights and row.bytes.new == weights and row.bytes.delta == -3 * weights
        assert row.old_quantization is None and row.new_quantization == storage and row.changes == ["dtype"]
        assert row.tensors[0].values == "not compared"  # float32 against integers
    assert report.totals.by_dtype[weight_dtype]["params"].new >= CONV_WEIGHTS
    assert report.logical_agree and report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_qdq_counts_by_dtype():
    """QDQ stores conv and fc weights and BN gammas as int8, BN betas and the fc bias as int32; the
    running statistics stay float32."""
    report = _pair("torch/resnet_tiny__legacy_nofold", "ort/resnet_tiny__legacy_nofold__qdq_static")
    c = sum(RESNET_BN_CHANNELS)
    by = report.totals.by_dtype
    assert by["int8"]["params"].new == CONV_WEIGHTS + 10 * 32 + c
    assert by["int32"]["params"].new == c + 10
    assert by["float32"]["params"].new == 2 * c
    assert by["int8"]["bytes"].new == by["int8"]["params"].new and by["int32"]["bytes"].new == 4 * (c + 10)


def test_float_vs_matmul_nbits_4bit():
    """MatMulNBits packs 4-bit blocks of 32: 784 inputs in 25 blocks of 16 bytes per output."""
    report = _pair("keras/seed_geron_code__tf2onnx_op17", "ort/seed_geron_code__tf2onnx_op17__matmul_nbits")
    dense = _layer(report, old="dense")
    assert dense.params.old == dense.params.new == 784 * 300
    assert dense.bytes.old == 4 * 784 * 300 and dense.bytes.new == 300 * 25 * 16
    assert dense.new_quantization == "4-bit packed QOperator" and dense.old_quantization is None
    assert report.logical_agree and _logical(report, "total").new.lo == 267_810


def test_source_vs_simplifier_and_ort_optimizer():
    """onnx-simplifier and onnxruntime's optimizer fold bn0 (4 x 32) into conv0, which keeps its bias."""
    for new in ("simplified/seed_cnn__legacy_nofold__onnxsim", "ortopt/seed_cnn__legacy_nofold__ort_all"):
        report = _pair("torch/seed_cnn__legacy_nofold", new)
        assert _stored(report, "total")[2] == -4 * 32 and _stored(report, "non_trainable")[2] == -2 * 32
        assert report.logical_agree and _logical(report, "total").new.contains(37_633)
        conv = next(la for la in report.layers if la.old == "conv0")
        assert conv.new is not None and conv.params.new == conv.params.old == 32 * 3 * 49 + 32
        assert conv.values == "different"
        assert _layer(report, old="bn0").status == ONLY_OLD
        assert _layer(report, old="fc").values == "same"


def test_keras_tf2onnx_vs_model_export_is_the_same_model():
    report = _pair("keras/seed_cnn__tf2onnx_op17", "keras/seed_cnn__keras3_export")
    assert [la.status for la in report.layers] == [SAME] * len(report.layers)
    assert {la.values for la in report.layers if la.params.old} == {"same"}
    assert report.exit_code(strict=True) == 0


def _fp16(m: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with every float32 initializer and graph value stored as float16."""
    out = onnx.ModelProto()
    out.CopyFrom(m)
    for t in out.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for v in [*out.graph.input, *out.graph.output]:
        v.type.tensor_type.elem_type = TensorProto.FLOAT16
    return out


def test_fp32_vs_fp16_halves_the_bytes(tmp_path):
    m = seed_cnn()
    report = compare(save(m, tmp_path / "fp32.onnx"), save(_fp16(m), tmp_path / "fp16.onnx"))
    total = 32 * 3 * 49 + 32 + 4 * 32 + 32 * 32 * 32 + 1
    assert _stored(report, "total") == (total, total, 0)
    assert _stored(report, "total_bytes") == (4 * total, 2 * total, -2 * total)
    assert report.totals.by_dtype["float16"]["params"].new == total
    for row in report.layers:
        if row.params.old:
            assert row.status == CHANGED and row.changes == ["dtype"] and row.values == "not compared"
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_values_sampled_full_and_budget(tmp_path):
    weight = init("fc.weight", [256, 512])
    old = save(linear(weight), tmp_path / "old.onnx")
    same = save(linear(weight), tmp_path / "same.onnx")
    values = numpy_helper.to_array(weight).copy()
    values += 1
    shifted = save(linear(numpy_helper.from_array(values, "fc.weight")), tmp_path / "shifted.onnx")
    values = numpy_helper.to_array(weight).copy()
    values[200, 300] += 1
    one = save(linear(numpy_helper.from_array(values, "fc.weight")), tmp_path / "one.onnx")

    report = compare(old, same)
    assert (
        report.layers[0].tensors[0].values == "same" and f"{SAMPLES} sampled" in report.layers[0].tensors[0].values_how
    )
    assert report.exit_code(strict=True) == 0
    assert compare(old, shifted).layers[0].values == "different"
    assert compare(old, shifted).exit_code() == 0 and compare(old, shifted).exit_code(strict=True) == 1
    full = compare(old, one, values="full").layers[0].tensors[0]
    assert full.values == "different" and f"all {256 * 512 * 4:,} bytes" in full.values_how
    over = compare(old, one, values="full", budget=1000).layers[0].tensors[0]
    assert "sampled" in over.values_how or "differ at sampled" in over.values_how
    assert compare(old, same, values="none").layers[0].values == "not compared"


def test_rows_without_names_in_common_pair_by_structure(tmp_path):
    weight = init("fc.weight", [64, 8])
    old = save(linear(weight), tmp_path / "old.onnx")
    renamed = linear(numpy_helper.from_array(numpy_helper.to_array(weight), "onnx::MatMul_7"))
    renamed.graph.node[0].name = "/MatMul"
    renamed.graph.node[0].input[1] = "onnx::MatMul_7"
    report = compare(old, save(renamed, tmp_path / "new.onnx"))
    (row,) = report.layers
    assert row.matched_by == "structure" and row.status == RENAMED and row.values == "same"


def test_name_normalization():
    assert strip_decorations("ConvBnFusion_BN_B_bn1.bias") == "bn1.bias"
    assert strip_decorations("layer1.0.conv1.weight_quantized") == "layer1.0.conv1.weight"
    assert strip_decorations("conv1.weight_bias") == "conv1.bias"
    assert tensor_module("layer1.0.bn1.running_mean") == "layer1.0.bn1"
    assert tensor_module("conv1.weight_DequantizeLinear") == "conv1"
    assert tensor_module("onnx::Conv_81") is None and tensor_module("_v_74") is None
    assert tensor_module("reorder_token_3") is None
    assert layer_key("/Sigmoid") == layer_key("node_sigmoid") == "sigmoid"
    assert layer_key("dense_merged_2") == "dense"


# pairs whose diffs hold every kind of value the compact encoders write: renamed and structure-matched layers,
# layers in one file only, quantization, tensors of unlike dims and dtypes, value verdicts of each kind
_JSON_PAIRS = [
    ("torch/seed_cnn__legacy_nofold", "torch/seed_cnn__dynamo"),
    ("torch/resnet_tiny__legacy_nofold", "ort/resnet_tiny__legacy_nofold__qdq_static"),
    ("keras/seed_geron_code__tf2onnx_op17", "ort/seed_geron_code__tf2onnx_op17__matmul_nbits"),
    ("keras/bottleneck_bias__tf2onnx_op17", "keras/bottleneck_bias__keras3_torch_export"),
]


def _compact_json_is_json_dumps(report: DiffReport, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_diff, "PRETTY_JSON_ITEMS", 0)  # the hand-made encoders of big diffs
    expected = json.dumps(report.to_dict(), sort_keys=True) + "\n"
    assert RENDERERS["json"](report) == expected
    stream = io.StringIO()
    write_diff_json(report, stream)
    assert stream.getvalue() == expected


@pytest.mark.parametrize(("old", "new"), _JSON_PAIRS)
def test_compact_json_is_what_json_dumps_writes(old, new, monkeypatch):
    _compact_json_is_json_dumps(_pair(old, new), monkeypatch)


def test_compact_json_of_hostile_names_and_grown_macs_is_what_json_dumps_writes(tmp_path, monkeypatch, capsys):
    evil = '::error::x\n\x1b[2J|`"\\é\u2028\U0001f600'
    old = model(
        [node("MatMul", ["x", evil], ["y"], name=evil)],
        [value("x", ["N", 4])],
        [value("y", None)],
        [init(evil, [4, 3])],
    )
    new = model(
        [node("MatMul", ["x", evil], ["h"], name=evil), node("MatMul", ["h", "head.weight"], ["y"], name="head")],
        [value("x", ["N", 4])],
        [value("y", None)],
        [init(evil, [4, 3], np.float16), init("head.weight", [3, 2])],
    )
    report = compare(save(old, tmp_path / "old.onnx"), save(new, tmp_path / "new.onnx"))
    assert {la.status for la in report.layers} == {CHANGED, ONLY_NEW}
    assert any(la.macs.delta_terms for la in report.layers)
    _compact_json_is_json_dumps(report, monkeypatch)
    assert main(["diff", str(tmp_path / "old.onnx"), str(tmp_path / "new.onnx"), "--format", "json"]) == 1
    assert capsys.readouterr().out == json.dumps(report.to_dict(), sort_keys=True) + "\n"


def test_json_is_deterministic_with_a_schema_version():
    first = RENDERERS["json"](_pair("torch/seed_cnn__legacy_nofold", "torch/seed_cnn__dynamo"))
    second = RENDERERS["json"](_pair("torch/seed_cnn__legacy_nofold", "torch/seed_cnn__dynamo"))
    assert first == second
    data = json.loads(first)
    assert data["schema_version"] == 2 and data["values_mode"] == "sample"
    assert data["totals"]["stored"]["total"] == {"old": 37_633, "new": 37_633 - 128, "delta": -128}
    # conv0: 32 x 3 x 7 x 7 x 64 x 64 per image, fc: 32 x 32 x 32; dynamo's fused conv costs the same
    macs = 32 * 3 * 7 * 7 * 64 * 64 + 32 * 32 * 32
    assert data["totals"]["macs"] == {
        "old": f"{macs:,} x batch", "new": f"{macs:,} x batch", "delta": 0, "same": True, "delta_terms": {}
    }  # fmt: skip


def test_names_printed_are_escaped(tmp_path):
    evil = "fc\x1b[31m|x"
    m = linear(init("W", [4, 4]))
    m.graph.node[0].name = evil
    path = save(m, tmp_path / "m.onnx")
    report = compare(path, path)
    text, markdown = RENDERERS["text"](report), RENDERERS["markdown"](report)
    assert "\x1b" not in text and "\\x1b" in text
    assert "\x1b" not in markdown and "\\|x" in markdown


def test_cli_exit_codes_and_one_line_errors(tmp_path, capsys):
    old, new = MODELS / "torch/seed_cnn__legacy_nofold.onnx", MODELS / "torch/seed_cnn__dynamo.onnx"
    assert main(["diff", str(old), str(new)]) == 0
    assert "Logical counts agree" in capsys.readouterr().out
    assert main(["diff", str(old), str(new), "--strict", "--format", "markdown"]) == 1
    assert "| Status |" in capsys.readouterr().out
    assert main(["diff", str(old), str(new), "--convention", "pytorch", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["trainable_label"] == "Parameters"
    # a logical difference: seed_cnn against seed_cnn with the BN over 64 rows (axis typo, +2 x 2 x 32)
    typo = save(seed_cnn(axis_typo=True), tmp_path / "typo.onnx")
    plain = save(seed_cnn(), tmp_path / "plain.onnx")
    assert main(["diff", str(plain), str(typo), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["totals"]["framework"]["total"]["agree"] is False
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all" * 50)
    for argv in ([str(garbage), str(new)], [str(old), str(tmp_path / "missing.onnx")]):
        assert main(["diff", *argv]) == 2
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert captured.out == "" and len(lines) == 1 and argv[0 if "garbage" in argv[0] else 1] in lines[0]
        assert "Traceback" not in captured.err


def test_huge_sparse_files_are_read_only_in_bounded_pieces(tmp_path, monkeypatch):
    """Two 2.5 GiB models (their weight a hole). In this process the data map and the value reads go
    through pread and read, counted here: --values full with a 1 MiB budget falls back to SAMPLES
    positions of 4 bytes. The structure reader maps the file in a forked child; the CLI run below
    shows the whole command never holds a weight in memory."""
    rows, cols = 640, 2**20
    graph = model([node("MatMul", ["x", "W"], ["y"], name="fc")], [value("x", ["N", rows])], [value("y", None)])
    old = save_with_hole(graph, "W", [rows, cols], tmp_path / "old.onnx")
    new = save_with_hole(graph, "W", [rows, cols], tmp_path / "new.onnx")
    read = []
    real_pread, real_read = os.pread, os.read

    def pread(fd: int, n: int, offset: int) -> bytes:
        read.append(n)
        return real_pread(fd, n, offset)

    def os_read(fd: int, n: int) -> bytes:
        read.append(n)
        return real_read(fd, n)

    with monkeypatch.context() as patch:
        patch.setattr(os, "pread", pread)
        patch.setattr(os, "read", os_read)
        report = compare(old, new, values="full", budget=1 << 20)
    (tensor,) = report.layers[0].tensors
    assert tensor.params.new == rows * cols and tensor.values == "same" and "sampled" in tensor.values_how
    assert sum(read) < 16 << 20, sum(read)  # the structure in 1 MiB windows, then 2 x 64 x 4 bytes

    runner = CliRunner()
    try:
        out = runner.run(["diff", str(old), str(new), "--values", "full", "--format", "json"], tmp_path)
    finally:
        runner.close()
    assert out.code == 0, out.stderr
    assert out.peak_kib < 2**20, f"peak {out.peak_kib} KiB for two 2.5 GiB files"
    assert json.loads(out.stdout)["layers"][0]["values"] == "same"


def test_markdown_and_text_render_every_layer_row():
    report = _pair("torch/resnet_tiny__legacy_nofold", "ort/resnet_tiny__legacy_nofold__qdq_static")
    steps = [
        la for la in report.layers if la.status == ONLY_NEW and not la.params.new and la.new_ops == ["DequantizeLinear"]
    ]
    text = render_diff_text(report, width=None)  # --wide: every name whole
    assert f"{len(steps)} quantize/dequantize step rows only in NEW (not shown)" in text
    for la in report.layers:
        if la not in steps:
            assert (la.old or la.new) in text
    assert escape_markdown(Path(report.old.model).name) in RENDERERS["markdown"](report)


def test_framework_view_layer_by_layer():
    """The framework view's layers pair by name, then kind: a folded BN (a range) is the BN it was."""
    fold = _pair("torch/resnet_tiny__legacy_nofold", "torch/resnet_tiny__legacy_fold")
    assert len(fold.framework_layers) == len(RESNET_CONVS) + len(RESNET_BN_CHANNELS) + 1  # + fc
    assert all(la.agree and la.old and la.new for la in fold.framework_layers)
    bns = [la for la in fold.framework_layers if la.old_kind == "BatchNormalization"]
    assert [la.total.old.lo for la in bns] == [4 * c for c in RESNET_BN_CHANNELS]
    assert all("folded" in la.new and not la.total.new.exact for la in bns)
    dynamo = _pair("torch/seed_cnn__legacy_nofold", "torch/seed_cnn__dynamo")
    assert [(la.old, la.new, la.agree) for la in dynamo.framework_layers] == [
        ("conv0", "conv0", True),
        ("bn0", "bn0", True),
        ("fc", "fc", True),
    ]
    # Keras 3 on the torch backend writes a conv's bias as its own Add: 3 x 3 x 2 x 18 + 18 against 54 + 18
    split = _pair("keras/bottleneck_bias__tf2onnx_op17", "keras/bottleneck_bias__keras3_torch_export")
    conv = next(la for la in split.framework_layers if la.old == "conv2d")
    assert conv.new_kind == "Conv" and (conv.total.old.lo, conv.total.new.lo) == (1 * 1 * 3 * 18 + 18, 1 * 1 * 3 * 18)
    assert not conv.agree and split.logical_agree
    text = RENDERERS["text"](split)
    assert f"Framework view by layer: {sum(la.agree for la in split.framework_layers)} of " in text


def test_macs_delta_terms_per_layer(tmp_path):
    """fc 4 -> 3 becomes 4 -> 5: 8 more MACs per row of the free batch dim N; a layer only in NEW counts
    from 0 (its whole figure)."""
    old = save(linear(init("fc.weight", [4, 3])), tmp_path / "old.onnx")
    report = compare(old, save(linear(init("fc.weight", [4, 5])), tmp_path / "new.onnx"))
    (fc,) = report.layers
    assert fc.macs.delta_terms == {"N": 4 * 5 - 4 * 3} and fc.macs.delta is None and not fc.macs.same
    grown = model(
        [
            node("MatMul", ["x", "fc.weight"], ["h"], name="fc"),
            node("MatMul", ["h", "head.weight"], ["y"], name="head"),
        ],
        [value("x", ["N", 4])],
        [value("y", None)],
        [init("fc.weight", [4, 3]), init("head.weight", [3, 2])],
    )
    layers = {la.new: la for la in compare(old, save(grown, tmp_path / "grown.onnx")).layers}
    assert layers["fc"].macs.delta_terms == {} and layers["head"].macs.delta_terms == {"N": 3 * 2}


def test_a_table_of_more_than_most_rows_counts_the_unchanged_layers(tmp_path, capsys):
    """A file at the node limit against itself listed 250,000 'same' rows in text (12 MB, most of the diff's time):
    past MOST_ROWS rows, text and markdown count the layers in which nothing changed instead of listing them, and
    still list a layer whose values differ; JSON lists every layer. A smaller table lists every row as before."""
    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    old.write_bytes(empty_nodes(MOST_ROWS + 5))
    new.write_bytes(empty_nodes(MOST_ROWS + 5))  # fc's weight drawn again: its values differ
    rows = 1 + MOST_ROWS + 5  # fc and the empty nodes
    for form, row_start in (("text", "same "), ("markdown", "| same |")):
        assert main(["diff", str(old), str(new), "--format", form]) == 0
        out = capsys.readouterr().out
        assert f"{rows - 1:,} unchanged layers not shown (over {MOST_ROWS:,} rows; --format json lists" in out
        listed = [line for line in out.splitlines() if line.startswith(row_start)]
        assert len(listed) == 1 and " fc (MatMul) " in listed[0] and "different" in listed[0], listed
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert len(layers) == rows and sum(la["values"] == "different" for la in layers) == 1
    small = tmp_path / "small.onnx"
    small.write_bytes(empty_nodes(MOST_ROWS - 1))
    assert main(["diff", str(small), str(small)]) == 0
    out = capsys.readouterr().out
    assert "unchanged layers" not in out and sum(line.startswith("same ") for line in out.splitlines()) == MOST_ROWS
