"""Role table: every op/slot the issue names, and tracing weights through constant-only paths."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from builders import MODELS, audit_model, fixture_meta, init, ints, layer_row, model, node, tensor_row, value
from onnx import TensorProto, helper

from onnxaudit import audit


def test_seed_cnn_keras_figures(tmp_path):
    from builders import seed_cnn

    report = audit_model(tmp_path, seed_cnn())
    assert report.totals.total == 37_633
    assert report.totals.trainable == 37_569
    assert report.totals.non_trainable == 64
    assert layer_row(report, "conv0").params == 7 * 7 * 3 * 32 + 32
    bn0 = layer_row(report, "bn0")
    assert (bn0.params, bn0.trainable, bn0.non_trainable) == (4 * 32, 2 * 32, 2 * 32)
    assert layer_row(report, "fc").params == 32 * 32 * 32 * 1 + 1
    for zero in ("zero_padding2d", "max_pool", "flatten", "re_lu"):
        assert layer_row(report, zero).params == 0
    assert tensor_row(report, "pads").category == "shape"


def test_seed_cnn_axis_typo_counts_bn_over_64_rows(tmp_path):
    from builders import seed_cnn

    report = audit_model(tmp_path, seed_cnn(axis_typo=True))
    assert report.totals.total == 7 * 7 * 3 * 32 + 32 + 4 * 64 + 32 * 32 * 32 + 1 == 37_761
    assert report.totals.non_trainable == 2 * 64 == 128
    assert layer_row(report, "bn0").params == 4 * 64


def test_matmul_constant_operand_and_add_bias(tmp_path):
    m = model(
        [node("MatMul", ["x", "W"], ["h"]), node("Add", ["h", "b"], ["y"]), node("Mul", ["y", "half"], ["z"])],
        [value("x", ["N", 4096])],
        [value("z", ["N", 512])],
        [init("W", [4096, 512]), init("b", [512]), init("half", [])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "W").role == "weight"
    assert tensor_row(report, "b").role == "bias"
    assert tensor_row(report, "half").category == "literal"
    assert report.totals.trainable == 4096 * 512 + 512


def test_matmul_with_constant_left_operand(tmp_path):
    m = model([node("MatMul", ["W", "x"], ["y"])], [value("x", [8, "N"])], [value("y", [4, "N"])], [init("W", [4, 8])])
    assert tensor_row(audit_model(tmp_path, m), "W").role == "weight"


def test_gemm_respects_which_operand_is_constant(tmp_path):
    m = model(
        [node("Gemm", ["W", "x", "c"], ["y"], transA=1)],
        [value("x", [16, "N"])],
        [value("y", [8, "N"])],
        [init("W", [16, 8]), init("c", [8, 1])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "W").role == "weight"
    assert tensor_row(report, "c").role == "bias"
    assert report.totals.total == 16 * 8 + 8


def test_transposed_and_cast_weight_traced_to_source_once(tmp_path):
    m = model(
        [
            node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
            node("Cast", ["Wt"], ["Wc"], to=TensorProto.FLOAT),
            node("MatMul", ["x", "Wc"], ["y"]),
        ],
        [value("x", ["N", 8])],
        [value("y", ["N", 4])],
        [init("W", [4, 8], np.float16)],
    )
    report = audit_model(tmp_path, m)
    row = tensor_row(report, "W")
    assert (row.role, row.count, row.dtype) == ("weight", 4 * 8, "float16")
    assert "Transpose -> Cast -> MatMul" in row.consumers[0]
    assert len(report.tensors) == 1


@pytest.mark.parametrize("order", ["file", "reversed", "written_twice"])
def test_constant_paths_out_of_file_order(tmp_path, order):
    """A graph in file order is settled in one pass; out of order (or with a name written twice) the
    classifier asks node by node instead: the roles come out the same either way."""
    nodes = [
        node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
        node("Cast", ["Wt"], ["Wc"], to=TensorProto.FLOAT),
        node("MatMul", ["x", "Wc"], ["p"]),
        node("Add", ["p", "b"], ["y"]),
    ]
    if order == "reversed":
        nodes.reverse()
    elif order == "written_twice":  # an Identity writes Wt before the Transpose writes it again
        nodes.insert(0, node("Identity", ["W"], ["Wt"]))
    m = model(nodes, [value("x", ["N", 8])], [value("y", ["N", 4])], [init("W", [4, 8]), init("b", [4])])
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "W").role, tensor_row(report, "b").role) == ("weight", "bias")
    assert "Transpose -> Cast -> MatMul" in tensor_row(report, "W").consumers[-1]
    assert report.totals.total == 4 * 8 + 4


def test_tied_embedding_counted_once(tmp_path):
    m = model(
        [
            node("Gather", ["E", "ids"], ["e"]),
            node("Transpose", ["E"], ["Et"], perm=[1, 0]),
            node("MatMul", ["e", "Et"], ["logits"]),
        ],
        [value("ids", ["N", 16], TensorProto.INT64)],
        [value("logits", ["N", 16, 100])],
        [init("E", [100, 32])],
    )
    report = audit_model(tmp_path, m)
    row = tensor_row(report, "E")
    assert row.role == "embedding" and row.count == 100 * 32
    assert report.totals.total == 100 * 32
    assert any("used as" in n for n in row.notes)


def test_weight_shared_by_two_convs_counted_once(tmp_path):
    m = model(
        [node("Conv", ["x", "W"], ["a"]), node("Conv", ["a", "W"], ["b"])],
        [value("x", [1, 4, 8, 8])],
        [value("b", [1, 4, 4, 4])],
        [init("W", [4, 4, 3, 3])],
    )
    assert audit_model(tmp_path, m).totals.total == 4 * 4 * 3 * 3


def test_dequantize_linear_weight_and_quant_constants(tmp_path):
    m = model(
        [
            node("DequantizeLinear", ["Wq", "s", "zp"], ["W"], axis=0),
            node("Conv", ["x", "W", "B"], ["y"]),
        ],
        [value("x", [1, 3, 8, 8])],
        [value("y", [1, 16, 6, 6])],
        [init("Wq", [16, 3, 3, 3], np.int8), init("s", [16]), init("zp", [16], np.int8), init("B", [16])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "Wq").role == "weight"
    assert tensor_row(report, "s").role == "quant_scale"
    assert tensor_row(report, "zp").role == "quant_zero_point"
    assert report.totals.total == 16 * 3 * 3 * 3 + 16
    assert report.constants.tensors["quantization"] == 2


def test_qlinearconv_convinteger_matmulinteger(tmp_path):
    m = model(
        [
            node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y1"]),
            node("ConvInteger", ["x", "w2", "xz", "wz"], ["y2"]),
            node("MatMulInteger", ["a", "m", "xz", "wz"], ["y3"]),
        ],
        [value("x", [1, 3, 8, 8], TensorProto.UINT8), value("a", [2, 5], TensorProto.UINT8)],
        [value("y1", None), value("y2", None), value("y3", None)],
        [
            *(init(n, [], np.float32) for n in ("xs", "ws", "ys")),
            init("xz", [], np.uint8),
            init("wz", [], np.uint8),
            init("yz", [], np.uint8),
            init("w", [4, 3, 3, 3], np.uint8),
            init("b", [4], np.int32),
            init("w2", [6, 3, 1, 1], np.uint8),
            init("m", [5, 7], np.uint8),
        ],
    )
    report = audit_model(tmp_path, m)
    assert report.totals.total == 4 * 3 * 3 * 3 + 4 + 6 * 3 + 5 * 7
    assert {tensor_row(report, n).category for n in ("xs", "ws", "ys", "xz", "wz", "yz")} == {"quantization"}


@pytest.mark.parametrize("domain", ["com.microsoft.nchwc", "com.ms.internal.nhwc"])
def test_onnxruntime_layout_domains_keep_the_standard_slots(tmp_path, domain):
    """onnxruntime's NCHWc and NHWC layout passes re-home Conv in their own domains: same slots (NCHWc
    adds a run-time Sum input), reordered weights."""
    m = model(
        [
            node("Conv", ["x", "W", "B", "s"], ["y"], domain=domain),
            node("BatchNormalization", ["y", *"gbmv"], ["z"], domain=domain),
        ],
        [value("x", [1, 8, 4, 4]), value("s", [1, 8, 4, 4])],
        [value("z", None)],
        [init("W", [8, 8, 3, 3]), init("B", [8]), *(init(n, [8]) for n in "gbmv")],
        extra_opsets={domain: 1},
    )
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "W").role, tensor_row(report, "B").role) == ("weight", "bias")
    assert report.totals.trainable == 8 * 8 * 3 * 3 + 8 + 2 * 8 and report.totals.non_trainable == 2 * 8
    assert report.totals.unclassified == 0


def test_legacy_deduplicated_equal_tensors_count_once_each(tmp_path):
    """torch.onnx (legacy) keeps one of several equal tensors (an untrained model's unit scales, zero
    biases and statistics) and writes an Identity named after each other one: torch counted them all."""
    c = 8
    m = model(
        [
            node("Identity", ["bn0.bias"], ["bn0.running_mean"]),
            node("Identity", ["bn0.weight"], ["bn0.running_var"]),
            node("BatchNormalization", ["x", "bn0.weight", "bn0.bias", "bn0.running_mean", "bn0.running_var"], ["y"]),
            node("Identity", ["bn0.weight"], ["bn1.weight"]),
            node("Identity", ["bn0.bias"], ["bn1.bias"]),
            node("Identity", ["bn0.bias"], ["bn1.running_mean"]),
            node("Identity", ["bn0.weight"], ["bn1.running_var"]),
            node("BatchNormalization", ["y", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"], ["z"]),
        ],
        [value("x", [1, c, 4, 4])],
        [value("z", None)],
        [init("bn0.weight", [c]), init("bn0.bias", [c])],
    )
    report = audit_model(tmp_path, m)
    assert (report.totals.trainable, report.totals.non_trainable) == (2 * 2 * c, 2 * 2 * c)
    assert tensor_row(report, "bn1.running_var").category == "statistic"
    assert "stored once" in tensor_row(report, "bn1.weight").notes[0]


def test_identity_on_a_weights_only_path_is_no_alias(tmp_path):
    m = model(
        [node("Identity", ["W"], ["W_read"]), node("MatMul", ["x", "W_read"], ["y"])],
        [value("x", [1, 4])],
        [value("y", [1, 3])],
        [init("W", [4, 3])],
    )
    report = audit_model(tmp_path, m)
    assert report.totals.trainable == 4 * 3 and tensor_row(report, "W").role == "weight"


def test_matmulnbits_counts_logical_weights(tmp_path):
    n, k, block = 64, 128, 32
    blocks = k // block
    m = model(
        [node("MatMulNBits", ["x", "B", "scales"], ["y"], domain="com.microsoft", K=k, N=n, bits=4, block_size=block)],
        [value("x", ["N", k])],
        [value("y", ["N", n])],
        [init("B", [n, blocks, block * 4 // 8], np.uint8), init("scales", [n * blocks])],
        extra_opsets={"com.microsoft": 1},
    )
    report = audit_model(tmp_path, m)
    row = tensor_row(report, "B")
    assert row.count == n * k and row.dims == [n, k]
    assert row.bytes == n * blocks * block * 4 // 8  # bytes as stored: packed 4-bit
    assert tensor_row(report, "scales").category == "quantization"


def test_recurrent_weights_and_initial_state(tmp_path):
    hidden, inp = 16, 8
    m = model(
        [
            node("LSTM", ["x", "W", "R", "B", "", "h0"], ["Y"], hidden_size=hidden),
            node("GRU", ["x", "Wg", "Rg", "Bg"], ["Yg"], hidden_size=hidden),
        ],
        [value("x", [10, "N", inp])],
        [value("Y", None), value("Yg", None)],
        [
            init("W", [1, 4 * hidden, inp]),
            init("R", [1, 4 * hidden, hidden]),
            init("B", [1, 8 * hidden]),
            init("h0", [1, 1, hidden]),
            init("Wg", [1, 3 * hidden, inp]),
            init("Rg", [1, 3 * hidden, hidden]),
            init("Bg", [1, 6 * hidden]),
        ],
    )
    report = audit_model(tmp_path, m)
    lstm = 4 * hidden * inp + 4 * hidden * hidden + 8 * hidden
    gru = 3 * hidden * inp + 3 * hidden * hidden + 6 * hidden
    assert report.totals.total == lstm + gru
    assert tensor_row(report, "R").role == "rnn_R"
    assert tensor_row(report, "h0").category == "state"


def test_normalizations_and_prelu(tmp_path):
    c = 12
    m = model(
        [
            node("LayerNormalization", ["x", "ls", "lb"], ["a"], axis=-1),
            node("InstanceNormalization", ["a", "is", "ib"], ["b"]),
            node("GroupNormalization", ["b", "gs", "gb"], ["c"], num_groups=3),
            node("PRelu", ["c", "slope"], ["y"]),
        ],
        [value("x", [1, c, 4, 4])],
        [value("y", [1, c, 4, 4])],
        [init("ls", [4]), init("lb", [4])]
        + [init(n, [c]) for n in ("is", "ib", "gs", "gb")]
        + [init("slope", [c, 1, 1])],
        opset=21,
    )
    report = audit_model(tmp_path, m)
    assert report.totals.trainable == 2 * 4 + 4 * c + c
    assert report.totals.non_trainable == 0
    assert tensor_row(report, "slope").role == "prelu_slope"


def test_bn_training_mode_is_noted(tmp_path):
    m = model(
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], training_mode=1)],
        [value("x", [2, 3, 4, 4])],
        [value("y", [2, 3, 4, 4])],
        [init(n, [3]) for n in "gbmv"],
        opset=15,
    )
    report = audit_model(tmp_path, m)
    assert any("training_mode" in note for note in tensor_row(report, "m").notes)


def test_shape_like_inputs_are_never_parameters(tmp_path):
    m = model(
        [
            node("Reshape", ["x", "shape"], ["a"]),
            node("Slice", ["a", "starts", "ends", "axes"], ["b"]),
            node("Unsqueeze", ["b", "uaxes"], ["c"]),
            node("Expand", ["c", "eshape"], ["d"]),
            node("Resize", ["d", "", "scales"], ["e"], mode="nearest"),
            node("ReduceSum", ["e", "raxes"], ["y"]),
        ],
        [value("x", [2, 12])],
        [value("y", None)],
        [
            ints("shape", [2, 3, 4]),
            ints("starts", [0]),
            ints("ends", [2]),
            ints("axes", [1]),
            ints("uaxes", [0]),
            ints("eshape", [2, 2, 2, 4]),
            init("scales", [4]),
            ints("raxes", [1]),
        ],
    )
    report = audit_model(tmp_path, m)
    assert report.totals.total == 0
    assert {t.category for t in report.tensors} == {"shape"}


def test_unknown_role_is_unclassified_never_trainable(tmp_path):
    m = model(
        [node("Add", ["x", "pos"], ["a"]), node("Custom", ["a", "table"], ["y"], domain="my.ops")],
        [value("x", [1, 10, 8])],
        [value("y", None)],
        [init("pos", [1, 10, 8]), init("table", [5, 8])],
        extra_opsets={"my.ops": 1},
    )
    report = audit_model(tmp_path, m)
    assert report.totals.trainable == 0
    assert report.totals.unclassified == 10 * 8 + 5 * 8
    assert report.totals.total == report.totals.unclassified
    assert report.unclassified_consumers == ["Add", "Custom"]


def test_unused_initializer_is_reported_not_counted(tmp_path):
    m = model(
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"])],
        [value("x", [2, 3, 4, 4])],
        [value("y", [2, 3, 4, 4])],
        [init(n, [3]) for n in "gbmv"] + [ints("bn.num_batches_tracked", [7])],
    )
    report = audit_model(tmp_path, m, convention="pytorch")
    assert tensor_row(report, "bn.num_batches_tracked").category == "unused"
    assert report.totals.total == 4 * 3
    assert any("num_batches_tracked" in n and "1 stored unused" in n for n in report.notes)


def test_constant_node_attribute_kinds(tmp_path):
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("sv", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0]),
        helper.make_tensor("si", TensorProto.INT64, [3], [0, 5, 9]),
        [4, 4],
    )
    nodes = [
        helper.make_node("Constant", [], ["W"], value=helper.make_tensor("t", TensorProto.FLOAT, [3, 2], [1.0] * 6)),
        helper.make_node("Constant", [], ["b"], value_floats=[0.5, 0.25]),
        helper.make_node("Constant", [], ["eps"], value_float=1e-5),
        helper.make_node("Constant", [], ["shape"], value_ints=[-1, 2]),
        helper.make_node("Constant", [], ["S"], sparse_value=sparse),
        node("MatMul", ["x", "W"], ["h"]),
        node("Add", ["h", "b"], ["h2"]),
        node("Add", ["h2", "eps"], ["h3"]),
        node("Reshape", ["h3", "shape"], ["h4"]),
        node("MatMul", ["x4", "S"], ["y"]),
    ]
    m = model(nodes, [value("x", [1, 3]), value("x4", [1, 4])], [value("h4", None), value("y", None)])
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "W").count == 3 * 2
    assert tensor_row(report, "b").role == "bias"
    assert tensor_row(report, "eps").category == "literal"
    assert tensor_row(report, "shape").category == "shape"
    sparse_row = tensor_row(report, "S")
    assert sparse_row.count == 4 * 4 and any("3 stored values" in n for n in sparse_row.notes)
    assert report.totals.total == 3 * 2 + 2 + 4 * 4


def test_constant_of_shape_in_a_weight_slot_is_a_filler_not_a_weight(tmp_path):
    """One value repeated to a shape cannot be trained weights: jax2onnx writes a LayerNorm's scale of
    ones without use_scale, and a zero initial RNN state, so (sweep11: such files were 'exact' +64).
    Its size still comes from the shape's values."""
    m = model(
        [
            node("ConstantOfShape", ["wshape"], ["W"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.1])),
            node("MatMul", ["x", "W"], ["y"]),
        ],
        [value("x", ["N", 6])],
        [value("y", ["N", 5])],
        [ints("wshape", [6, 5])],
    )
    report = audit_model(tmp_path, m)
    row = tensor_row(report, "W")
    assert (row.category, row.count, row.origin) == ("literal", 6 * 5, "computed")
    assert tensor_row(report, "wshape").category == "shape"
    assert report.totals.total == 0
    # not a parameter here, but a framework may hold one there (onnx's own test models): said, with the count
    assert any("ConstantOfShape" in line and f"{6 * 5:,} parameters" in line for line in report.limits)


def test_graph_input_in_weight_slot_counted_without_data(tmp_path):
    m = model(
        [node("Conv", ["x", "W"], ["y"])],
        [value("x", [1, 3, 8, 8]), value("W", [8, 3, 3, 3])],
        [value("y", None)],
    )
    row = tensor_row(audit_model(tmp_path, m), "W")
    assert row.count == 8 * 3 * 3 * 3 and row.storage == "none"
    assert any("no data" in n for n in row.notes)


def test_ir3_initializers_listed_as_inputs_count_once(tmp_path):
    m = model(
        [node("Conv", ["x", "W", "B"], ["y"])],
        [value("x", [1, 3, 8, 8]), value("W", [8, 3, 3, 3]), value("B", [8])],
        [value("y", None)],
        [init("W", [8, 3, 3, 3]), init("B", [8])],
        opset=8,
        ir_version=3,
    )
    report = audit_model(tmp_path, m)
    assert report.totals.total == 8 * 3 * 3 * 3 + 8
    assert len(report.tensors) == 2
    assert any("override" in n for n in tensor_row(report, "W").notes)


def test_if_branches_and_loop_body_weights(tmp_path):
    then_g = helper.make_graph(
        [node("MatMul", ["x", "Wt"], ["yt"])], "then", [], [value("yt", None)], [init("Wt", [4, 4])]
    )
    else_g = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["We"], value=helper.make_tensor("c", TensorProto.FLOAT, [4, 2], [0.5] * 8)
            ),
            node("MatMul", ["x", "We"], ["ye0"]),
            node("MatMul", ["ye0", "Wouter"], ["ye"]),  # an outer-scope initializer
        ],
        "else",
        [],
        [value("ye", None)],
    )
    body = helper.make_graph(
        [node("Gemm", ["carry", "Wl", "bl"], ["next"]), node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [value("i", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL), value("carry", [1, 4])],
        [value("cond_out", [], TensorProto.BOOL), value("next", [1, 4])],
        [init("Wl", [4, 4]), init("bl", [4])],
    )
    m = model(
        [
            node("If", ["c"], ["r"], then_branch=then_g, else_branch=else_g),
            node("Loop", ["trip", "", "x"], ["final"], body=body),
        ],
        [value("x", [1, 4]), value("c", [], TensorProto.BOOL), value("trip", [], TensorProto.INT64)],
        [value("r", None), value("final", None)],
        [init("Wouter", [2, 4])],
    )
    report = audit_model(tmp_path, m)
    assert report.totals.total == 4 * 4 + 4 * 2 + 2 * 4 + 4 * 4 + 4
    assert tensor_row(report, "Wt").scope.endswith(":then_branch")
    # an op inside a branch or body that reads weights has a row of its own, after the If or Loop's
    assert [(row.name, row.params) for row in report.rows] == [
        ("r", 0), ("ye0", 4 * 2), ("ye", 2 * 4), ("yt", 4 * 4), ("final", 0), ("next", 4 * 4 + 4)
    ]  # fmt: skip


def test_local_function_weights(tmp_path):
    fn = helper.make_function(
        "local",
        "Dense",
        ["X", "W"],
        ["Y"],
        [
            helper.make_node(
                "Constant", [], ["b"], value=helper.make_tensor("b", TensorProto.FLOAT, [3], [0.1, 0.2, 0.3])
            ),
            helper.make_node("MatMul", ["X", "W"], ["H"]),
            helper.make_node("Add", ["H", "b"], ["Y"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    m = model(
        [node("Dense", ["x", "W"], ["y"], domain="local")],
        [value("x", [1, 5])],
        [value("y", [1, 3])],
        [init("W", [5, 3])],
        extra_opsets={"local": 1},
        functions=[fn],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "W").role == "weight"
    assert tensor_row(report, "b").role == "bias"
    assert report.totals.total == 5 * 3 + 3


def test_contrib_transformer_ops(tmp_path):
    hidden, vocab, pos = 8, 50, 16
    m = model(
        [
            node(
                "EmbedLayerNormalization",
                ["ids", "", "we", "pe", "", "g1", "b1"],
                ["emb", "mask_index"],
                domain="com.microsoft",
            ),
            node("Attention", ["emb", "qkv_w", "qkv_b"], ["att"], domain="com.microsoft", num_heads=2),
            node("SkipLayerNormalization", ["att", "emb", "g2", "b2"], ["sln"], domain="com.microsoft"),
            node("FusedMatMul", ["sln", "fm"], ["f"], domain="com.microsoft"),
            node("FusedConv", ["img", "cw", "cb"], ["fc"], domain="com.microsoft", activation="Relu"),
        ],
        [value("ids", ["N", 16], TensorProto.INT32), value("img", [1, 2, 5, 5])],
        [value("f", None), value("fc", None)],
        [
            init("we", [vocab, hidden]),
            init("pe", [pos, hidden]),
            init("g1", [hidden]),
            init("b1", [hidden]),
            init("qkv_w", [hidden, 3 * hidden]),
            init("qkv_b", [3 * hidden]),
            init("g2", [hidden]),
            init("b2", [hidden]),
            init("fm", [hidden, hidden]),
            init("cw", [4, 2, 3, 3]),
            init("cb", [4]),
        ],
        extra_opsets={"com.microsoft": 1},
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "we").role == "embedding"
    assert tensor_row(report, "qkv_w").role == "weight"
    assert tensor_row(report, "g2").role == "norm_scale"
    expected = vocab * hidden + pos * hidden + 2 * hidden + hidden * 3 * hidden + 3 * hidden + 2 * hidden
    expected += hidden * hidden + 4 * 2 * 3 * 3 + 4
    assert report.totals.total == expected
    assert report.totals.unclassified == 0


def test_qlinearmatmul_constant_operand_is_the_weight(tmp_path):
    quant = [init(n, [], np.float32) for n in ("as", "bs", "ys")] + [init(n, [], np.uint8) for n in ("az", "bz", "yz")]
    m = model(
        [node("QLinearMatMul", ["a", "as", "az", "B", "bs", "bz", "ys", "yz"], ["y"])],
        [value("a", ["N", 16], TensorProto.UINT8)],
        [value("y", ["N", 8], TensorProto.UINT8)],
        [*quant, init("B", [16, 8], np.uint8)],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "B").role == "weight"
    assert report.totals.total == 16 * 8
    assert report.constants.tensors["quantization"] == 6


def test_weights_returned_by_if_branches_take_the_consumer_slot_role(tmp_path):
    def branch(name: str) -> onnx.GraphProto:
        const = helper.make_tensor(f"{name}_t", TensorProto.FLOAT, [8, 4], [0.5] * 32)
        return helper.make_graph(
            [helper.make_node("Constant", [], [f"{name}_W"], value=const)], name, [], [value(f"{name}_W", [8, 4])]
        )

    m = model(
        [
            node("If", ["c"], ["W"], then_branch=branch("then"), else_branch=branch("else")),
            node("MatMul", ["x", "W"], ["y"]),
        ],
        [value("x", ["N", 8]), value("c", [], TensorProto.BOOL)],
        [value("y", ["N", 4])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "then_W").role == "weight" and tensor_row(report, "else_W").role == "weight"
    assert report.totals.trainable == 2 * 8 * 4 and report.totals.unclassified == 0


def test_llm_contrib_ops_caches_and_packed_embeddings(tmp_path):
    vocab, hidden, max_pos = 64, 16, 32
    m = model(
        [
            node("GatherBlockQuantized", ["E", "ids", "escale"], ["emb"], domain="com.microsoft", bits=4),
            node(
                "GroupQueryAttention",
                ["emb", "emb", "emb", "", "", "seqlens", "total", "cos", "sin"],
                ["att"],
                domain="com.microsoft",
                num_heads=2,
                kv_num_heads=2,
                do_rotary=1,
            ),
            node("SkipSimplifiedLayerNormalization", ["att", "emb", "g"], ["y"], domain="com.microsoft"),
        ],
        [
            value("ids", ["N", 8], TensorProto.INT64),
            value("seqlens", ["N"], TensorProto.INT32),
            value("total", [], TensorProto.INT32),
        ],
        [value("y", None)],
        [
            init("E", [vocab, hidden // 2], np.uint8),
            init("escale", [vocab, hidden // 16]),
            init("cos", [max_pos, hidden // 4]),
            init("sin", [max_pos, hidden // 4]),
            init("g", [hidden]),
        ],
        extra_opsets={"com.microsoft": 1},
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "E").count == vocab * hidden  # two 4-bit values per stored byte
    assert tensor_row(report, "cos").role == "precomputed"
    assert report.totals.total == vocab * hidden + hidden
    assert report.totals.unclassified == 0


def test_layer_norm_written_out_as_ops_has_scale_and_bias(tmp_path):
    """torch.onnx below opset 17 writes LayerNorm as ReduceMean/Sub/Pow/Sqrt/Div, then * weight + bias."""
    hidden = 24
    m = model(
        [
            node("ReduceMean", ["x"], ["mean"], axes=[-1]),
            node("Sub", ["x", "mean"], ["d"]),
            node("Pow", ["d", "two"], ["sq"]),
            node("ReduceMean", ["sq"], ["var"], axes=[-1]),
            node("Add", ["var", "eps"], ["ve"]),
            node("Sqrt", ["ve"], ["std"]),
            node("Div", ["d", "std"], ["xhat"]),
            node("Mul", ["xhat", "ln.weight"], ["scaled"]),
            node("Add", ["scaled", "ln.bias"], ["y"]),
        ],
        [value("x", ["N", 8, hidden])],
        [value("y", ["N", 8, hidden])],
        [init("two", []), init("eps", []), init("ln.weight", [hidden]), init("ln.bias", [hidden])],
        opset=13,
    )
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "ln.weight").role, tensor_row(report, "ln.bias").role) == ("norm_scale", "norm_bias")
    assert report.totals.trainable == 2 * hidden and report.totals.unclassified == 0


def test_stored_statistics_lowering_is_not_a_layer_norm(tmp_path):
    """Mul + Add of folded BN vectors after a conv compute no run-time Sqrt: they stay unclassified."""
    m = model(
        [node("Conv", ["x", "W"], ["c"]), node("Mul", ["c", "s"], ["m"]), node("Add", ["m", "t"], ["y"])],
        [value("x", [1, 3, 4, 4])],
        [value("y", [1, 8, 4, 4])],
        [init("W", [8, 3, 1, 1]), init("s", [1, 8, 1, 1]), init("t", [1, 8, 1, 1])],
    )
    report = audit_model(tmp_path, m)
    assert report.totals.unclassified == 2 * 8


def test_dynamic_per_channel_weight_scale_is_quantization(tmp_path):
    """Mul(x_scale, w_scale) is onnxruntime's per-channel rescale: w_scale is no parameter, and the
    Add after the rescaled product is the bias."""
    from builders import dynamic_matmul_integer

    report = audit_model(tmp_path, dynamic_matmul_integer())
    assert tensor_row(report, "ws").role == "quant_scale"
    assert tensor_row(report, "B").role == "bias"
    assert report.totals.total == 16 * 8 + 8 and report.totals.unclassified == 0


def test_vector_multiplying_an_integer_product_stays_unclassified(tmp_path):
    """A per-channel constant multiplying the product itself may be a folded BN: not guessed."""
    from builders import dynamic_matmul_integer

    report = audit_model(tmp_path, dynamic_matmul_integer(scale_on_product=True))
    assert tensor_row(report, "ws").category == "unclassified"
    assert report.totals.total == 16 * 8 + 8 + 8


def test_boolean_constant_is_a_mask_not_a_parameter(tmp_path):
    """GPT-2's causal `attn.bias` buffer (persistent=False) is a bool table sliced at run time."""
    mask = helper.make_tensor("causal", TensorProto.BOOL, [1, 1, 8, 8], [True] * 64)
    m = model(
        [
            node("Slice", ["causal", "starts", "ends", "axes"], ["cm"]),
            node("Where", ["cm", "scores", "neg"], ["y"]),
        ],
        [value("scores", [1, 1, 4, 4])],
        [value("y", None)],
        [mask, ints("starts", [0, 0]), ints("ends", [4, 4]), ints("axes", [2, 3]), init("neg", [])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "causal").role == "mask"
    assert report.totals.total == 0 and report.totals.unclassified == 0
    assert report.constants.elements["state"] == 8 * 8


def test_more_contrib_ops_have_slot_roles(tmp_path):
    hidden = 16
    ms = {"domain": "com.microsoft"}
    m = model(
        [
            node("FusedGemm", ["x", "W", "B"], ["g"], activation="Relu", transB=1, **ms),
            node("LayerNormalization", ["g", "lg", "lb"], ["ln"], axis=-1, **ms),
            node("QuantizeLinear", ["ln", "s", "z"], ["q"]),
            node("QLinearAdd", ["q", "s", "z", "q", "s2", "z", "s3", "z"], ["qa"], **ms),
        ],
        [value("x", [2, hidden])],
        [value("qa", None, TensorProto.UINT8)],
        [
            init("W", [hidden, hidden]),
            init("B", [hidden]),
            init("lg", [hidden]),
            init("lb", [hidden]),
            init("s", []),
            init("s2", []),
            init("s3", []),
            init("z", [], np.uint8),
        ],
        extra_opsets={"com.microsoft": 1},
    )
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "W").role, tensor_row(report, "B").role) == ("weight", "bias")
    assert (tensor_row(report, "lg").role, tensor_row(report, "lb").role) == ("norm_scale", "norm_bias")
    assert tensor_row(report, "s2").role == "quant_scale"
    assert report.totals.total == hidden * hidden + hidden + 2 * hidden and report.totals.unclassified == 0


@pytest.mark.parametrize("outer", [False, True], ids=["stored-in-branches", "outer-initializers"])
def test_if_branches_of_unequal_size_are_stated(tmp_path, outer):
    from builders import if_with_unequal_branches

    report = audit_model(tmp_path, if_with_unequal_branches((4, 4), (4, 8), outer=outer))
    assert report.totals.total == 4 * 4 + 4 * 8  # the file stores both
    limit = next(text for text in report.limits if text.startswith("If r:"))
    assert f"then_branch holds {4 * 4}" in limit and f"else_branch holds {4 * 8}" in limit
    assert f"({4 * 4}..{4 * 8})" in limit


def test_branch_sizes_leave_out_the_buffers_dynamo_names():
    """torch.cond's branches each read a registered buffer of their own (scripts/export_torch_zoo.py,
    cond_buffers): the FX metadata makes them buffers, so neither branch's size counts them."""
    from onnxaudit import audit

    report = audit(MODELS / "torchzoo" / "cond_buffers__dynamo.onnx")
    then, other = 4 * 6 * 3 + 4, 8 * 5 * 3 + 8  # Conv1d(6, 4, 3) and Conv1d(5, 8, 3)
    assert (
        report.totals.total
        == then + other
        == fixture_meta(MODELS / "torchzoo" / "cond_buffers__dynamo.onnx")["parameters"]
    )
    limit = next(text for text in report.limits if text.startswith("If node_cond__0:"))
    assert f"then_branch holds {then}, else_branch holds {other} parameters" in limit


def test_if_branches_of_equal_size_need_no_statement(tmp_path):
    from builders import if_with_unequal_branches

    report = audit_model(tmp_path, if_with_unequal_branches((4, 4), (4, 4)))
    assert not any(text.startswith("If r:") for text in report.limits)


def test_ml_attribute_parameters_are_named_as_not_counted(tmp_path):
    m = model(
        [
            node(
                "LinearClassifier",
                ["x"],
                ["label", "prob"],
                domain="ai.onnx.ml",
                coefficients=[0.5] * (3 * 4),
                intercepts=[0.1, 0.2, 0.3],
                classlabels_ints=[0, 1, 2],
            )
        ],
        [value("x", [1, 4])],
        [value("label", None, TensorProto.INT64), value("prob", None)],
        extra_opsets={"ai.onnx.ml": 1},
    )
    report = audit_model(tmp_path, m)
    assert report.totals.total == 0
    assert any("LinearClassifier" in text and "not counted" in text for text in report.limits)
    fw = report.framework  # the framework's count is not 0 "exact": at least 0, no upper bound known
    assert (fw.status, fw.trainable.lo, fw.trainable.hi) == ("ambiguous", 0, None)


def test_scalar_expanded_into_a_bias_slot_is_a_filler(tmp_path):
    """torch.onnx dynamo writes a bias-less conv's bias as Expand(Cast(0.0), [C]); onnxruntime folds the
    shape into a constant. One stored value is no bias vector."""
    c = 8
    m = model(
        [
            node("Cast", ["zero"], ["zf"], to=TensorProto.FLOAT),
            node("Expand", ["zf", "cshape"], ["B"]),
            node("Conv", ["x", "W", "B"], ["y"]),
        ],
        [value("x", [1, 3, 8, 8])],
        [value("y", None)],
        [init("zero", []), ints("cshape", [c]), init("W", [c, 3, 3, 3])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "zero").category == "literal"
    assert report.totals.total == c * 3 * 3 * 3


def test_rotary_inv_freq_times_positions_is_precomputed(tmp_path):
    """Llama's rotary inv_freq (a non-persistent buffer) multiplies positions and feeds only Cos and Sin."""
    half = 4
    m = model(
        [
            node("Cast", ["pos"], ["posf"], to=TensorProto.FLOAT),
            node("MatMul", ["inv_freq", "posf"], ["freqs"]),
            node("Transpose", ["freqs"], ["ft"], perm=[0, 2, 1]),
            node("Concat", ["ft", "ft"], ["emb"], axis=-1),
            node("Cos", ["emb"], ["cos"]),
            node("Sin", ["emb"], ["sin"]),
            node("MatMul", ["x", "W"], ["y"]),  # an ordinary weight in the same graph stays a weight
        ],
        [value("pos", [1, 1, 8], TensorProto.INT64), value("x", [1, 8])],
        [value("cos", None), value("sin", None), value("y", None)],
        [init("inv_freq", [1, half, 1]), init("W", [8, 8])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "inv_freq").role == "precomputed"
    assert tensor_row(report, "W").role == "weight"
    assert report.totals.total == 8 * 8


_TABLE_DTYPES = ["UINT8", "INT8", "UINT4", "INT4"] + [n for n in ("INT2", "UINT2") if hasattr(TensorProto, n)]


@pytest.mark.parametrize("dtype", _TABLE_DTYPES)
def test_quantized_embedding_table_in_gather_is_an_embedding(tmp_path, dtype):
    """quantize_dynamic stores the table as int8/uint8 (MatMulNBits tools 4 or 2 bits) and dequantizes
    the gathered rows."""
    vocab, width = 50, 8
    table = helper.make_tensor("Eq", getattr(TensorProto, dtype), [vocab, width], [1] * (vocab * width))
    m = model(
        [
            node("Gather", ["Eq", "ids"], ["rows"]),
            node("DequantizeLinear", ["rows", "es"], ["emb"]),
            node("Shape", ["emb"], ["shp"]),
            node("Gather", ["shp", "last"], ["w"]),  # an int64 shape read by Gather stays a shape
        ],
        [value("ids", ["N", 4], TensorProto.INT64)],
        [value("emb", None), value("w", None, TensorProto.INT64)],
        [table, init("es", []), ints("last", [2])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "Eq").role == "embedding"
    assert tensor_row(report, "last").category == "shape"
    assert report.totals.total == vocab * width


def test_qembed_layer_normalization_slots():
    """onnxruntime's own quantization of the fused BERT: every table and norm vector still counted."""
    import json
    from pathlib import Path

    from onnxaudit import audit

    models = Path(__file__).resolve().parent.parent / "models"
    report = audit(models / "ort" / "bert_tiny__ort_fused__dynamic_per_channel.onnx")
    qeln = [t for t in report.tensors if any(c.startswith("QEmbedLayerNormalization") for c in t.consumers)]
    config = json.loads((models / "ortfused" / "bert_tiny__ort_fused.json").read_text())["config"]
    hidden = config["hidden"]
    assert sorted(t.role for t in qeln if t.category == "parameter") == sorted(
        ["embedding"] * 3 + ["norm_scale", "norm_bias"]
    )
    assert sum(t.count for t in qeln if t.role in ("norm_scale", "norm_bias")) == 2 * hidden
    assert report.totals.unclassified == 0


def test_zero_initial_state_expanded_to_the_batch_is_a_state(tmp_path):
    """torch.onnx (TorchScript) writes an LSTM without h0 as Expand(zeros(layers*dirs, 1, H), [.., batch, H])."""
    hidden, inputs = 6, 8
    m = model(
        [
            node("Shape", ["x"], ["xs"]),
            node("Gather", ["xs", "zero"], ["batch"], axis=0),
            node("Concat", ["one", "batch", "h"], ["target"], axis=0),
            node("Expand", ["h0", "target"], ["h0b"]),
            node("LSTM", ["x", "W", "R", "B", "", "h0b", "h0b"], ["y"], hidden_size=hidden),
        ],
        [value("x", [5, "N", inputs])],
        [value("y", None)],
        [
            init("h0", [1, 1, hidden]),
            ints("zero", [1]),
            ints("one", [1]),
            ints("h", [hidden]),
            init("W", [1, 4 * hidden, inputs]),
            init("R", [1, 4 * hidden, hidden]),
            init("B", [1, 8 * hidden]),
        ],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "h0").role == "initial_state"
    assert report.totals.unclassified == 0
    assert report.totals.total == 4 * hidden * inputs + 4 * hidden * hidden + 8 * hidden


def test_affine_after_instance_norm_is_the_norm_scale_and_bias(tmp_path):
    """GroupNorm lowered by torch.onnx: InstanceNormalization over groups, reshape, * weight + bias."""
    groups, channels = 2, 8
    m = model(
        [
            node("Reshape", ["x", "grouped"], ["xg"]),
            node("InstanceNormalization", ["xg", "ones", "zeros"], ["n"]),
            node("Reshape", ["n", "back"], ["nb"]),
            node("Mul", ["nb", "weight"], ["s"]),
            node("Add", ["s", "bias"], ["y"]),
        ],
        [value("x", [1, channels, 4, 4])],
        [value("y", None)],
        [
            ints("grouped", [1, groups, -1]),
            init("ones", [groups]),
            init("zeros", [groups]),
            ints("back", [1, channels, 4, 4]),
            init("weight", [channels, 1, 1]),
            init("bias", [channels, 1, 1]),
        ],
    )
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "weight").role, tensor_row(report, "bias").role) == ("norm_scale", "norm_bias")
    assert report.totals.unclassified == 0


def test_matmul_bnb4_counts_logical_n_by_k(tmp_path):
    """MatMulBnb4 (bitsandbytes FP4/NF4) stores N x K 4-bit values two to a byte, absmax per block."""
    n, k, block = 8, 64, 32
    m = model(
        [
            node(
                "MatMulBnb4",
                ["x", "B", "absmax"],
                ["h"],
                domain="com.microsoft",
                K=k,
                N=n,
                block_size=block,
                quant_type=1,
            ),
            node("Add", ["h", "bias"], ["y"]),
        ],
        [value("x", [2, k])],
        [value("y", None)],
        [init("B", [n * k // 2], np.uint8), init("absmax", [n * k // block]), init("bias", [n])],
        extra_opsets={"com.microsoft": 1},
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "B").count == n * k
    assert tensor_row(report, "absmax").role == "quant_scale" and tensor_row(report, "bias").role == "bias"
    assert report.totals.total == n * k + n


def test_a_constant_added_to_attention_scores_is_no_bias(tmp_path):
    # dynamo folds the default attention mask (or T5's position bias) into a constant added to
    # MatMul(Q, K^T): a product of two run-time values, so the constant is no layer's bias
    m = model(
        [
            node("MatMul", ["x", "Wq"], ["q"]),
            node("MatMul", ["x", "Wk"], ["k"]),
            node("Add", ["k", "bk"], ["kb"]),
            node("Transpose", ["kb"], ["kt"], perm=[0, 2, 1]),
            node("MatMul", ["q", "kt"], ["scores"]),
            node("Add", ["scores", "mask"], ["masked"]),
            node("Softmax", ["masked"], ["y"], axis=-1),
        ],
        [value("x", ["N", 8, 16])],
        [value("y", None)],
        [init("Wq", [16, 16]), init("Wk", [16, 16]), init("bk", [16]), init("mask", [1, 8, 8])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "bk").role == "bias"
    mask = tensor_row(report, "mask")
    assert mask.role != "bias" and mask.bucket != "trainable"
    assert report.totals.trainable == 16 * 16 + 16 * 16 + 16


def test_an_input_read_at_constant_indices_is_no_embedding_fed_at_run_time(tmp_path):
    # torch.onnx on a GRUCell looped over time steps: x[t] is a Gather of the input at a constant index
    from builders import audit_model, init, ints, model, node, value

    m = model(
        [node("Gather", ["x", "t0"], ["x0"], axis=0), node("MatMul", ["x0", "W"], ["y"])],
        [value("x", [5, 2, 6])],
        [value("y", None)],
        [init("W", [6, 4]), ints("t0", 0)],
    )
    report = audit_model(tmp_path, m)
    assert [t.name for t in report.tensors if t.category == "parameter"] == ["W"]


def test_split_sizes_and_positions_of_a_sequence_are_shapes_not_biases(tmp_path):
    # torch.onnx dynamo (optimize=False) splits MultiheadAttention's in_proj_bias into a sequence
    from builders import audit_model, init, ints, model, node, value

    m = model(
        [
            node("SplitToSequence", ["B", "size"], ["parts"]),
            node("SequenceAt", ["parts", "first"], ["b0"]),
            node("Add", ["x", "b0"], ["y"]),
        ],
        [value("x", [2, 16])],
        [value("y", None)],
        [init("B", [48]), ints("size", 16), ints("first", 0)],
    )
    report = audit_model(tmp_path, m)
    assert report.totals.total == 48
    assert {t.name: t.category for t in report.tensors if t.name != "B"} == {"size": "shape", "first": "shape"}


def test_buffers_dynamo_names_in_its_node_metadata_are_not_parameters():
    """A registered buffer read by a MatMul and one read by a Sub (scripts/export_torch_zoo.py,
    buffer_projection): torch.onnx dynamo writes each node's FX call, whose `%b_proj` marks a buffer."""
    from onnxaudit import audit

    path = MODELS / "torchzoo" / "buffer_projection__dynamo.onnx"
    report = audit(path, convention="pytorch")
    assert report.totals.total == fixture_meta(path)["parameters"]
    assert {t.name: t.role for t in report.tensors if t.category == "state"} == {"proj": "buffer", "shift": "buffer"}


def test_scalar_parameter_kept_under_its_name_is_counted():
    """CLIP's logit_scale, a scalar nn.Parameter read through Exp: the TorchScript exporter stores it under
    its attribute's name, where its own constants are `onnx::...` or `/scope/Constant_output_0`
    (scripts/export_torch_zoo.py, scalar_parameter)."""
    from onnxaudit import audit

    path = MODELS / "torchzoo" / "scalar_parameter__legacy.onnx"
    report = audit(path, convention="pytorch")
    assert report.totals.trainable == fixture_meta(path)["parameters"] == 8 * 4 + 4 + 1
    assert tensor_row(report, "logit_scale").role == "scalar_parameter"


def test_scalar_literal_is_no_parameter_where_the_file_names_none(tmp_path):
    """A stored scalar read through Exp, named like an attribute, in a file no torch exporter wrote:
    nothing says it is a parameter, so it stays a literal."""
    m = model(
        [node("Exp", ["s"], ["e"]), node("Mul", ["x", "e"], ["y"], name="/Mul")],
        [value("x", [2, 4])],
        [value("y", [2, 4])],
        [init("s", [])],
    )
    assert tensor_row(audit_model(tmp_path, m, convention="pytorch"), "s").role == "literal"
    m.producer_name = "pytorch"  # the TorchScript exporter's `/scope/Op` names and a named scalar
    assert tensor_row(audit_model(tmp_path, m, convention="pytorch"), "s").role == "scalar_parameter"


@pytest.mark.parametrize("kind", ["legacy", "dynamo"])
def test_scalar_rescaling_a_lowered_norm_is_a_literal(kind):
    """T5 multiplies its final RMS norm's output by d_model ** -0.5 before the head: a literal, not the
    norm's scale (scripts/export_torch_zoo.py, rescaled_norm)."""
    from onnxaudit import audit

    path = MODELS / "torchzoo" / f"rescaled_norm__{kind}.onnx"
    report = audit(path, convention="pytorch")
    features, classes = 16, 4  # RescaledNorm: a weight of 16, then nn.Linear(16, 4)
    assert report.totals.trainable == fixture_meta(path)["parameters"] == features + features * classes + classes


def test_norm_scale_read_after_a_cast_back_is_the_norms(tmp_path):
    """LlamaRMSNorm computes in float32 and casts the normalized value back before `weight *`: the Cast
    sits between the norm and its scale (scripts/export_torch_zoo.py, llama_norm)."""
    from onnxaudit import audit

    path = MODELS / "torchzoo" / "llama_norm__legacy.onnx"
    report = audit(path, convention="pytorch")
    assert tensor_row(report, "weight").role == "norm_scale"
    assert (report.totals.trainable, report.totals.unclassified) == (fixture_meta(path)["parameters"], 0)


def test_constant_of_shape_in_a_data_slot_is_a_filler(tmp_path):
    """One value repeated to a shape and read as data (Llama's causal-mask `And` of a ConstantOfShape of
    true): a literal, never a weight of unknown role."""
    fill = helper.make_tensor("v", TensorProto.BOOL, [1], [True])
    m = model(
        [node("ConstantOfShape", ["dims"], ["ones"], name="/model/ConstantOfShape", value=fill),
         node("And", ["ones", "mask"], ["y"], name="/model/And")],
        [value("mask", [2, 3], TensorProto.BOOL)],
        [value("y", [2, 3], TensorProto.BOOL)],
        [ints("dims", [2, 3])],
    )  # fmt: skip
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "ones").role, report.totals.unclassified) == ("literal", 0)


@pytest.mark.parametrize(("filters", "role"), [(16, "literal"), (1, "bias")])
def test_one_value_added_after_a_conv_is_a_bias_only_for_one_filter(tmp_path, filters, role):
    """Keras hard-swish adds 3 to a conv's output (`x * relu6(x + 3) / 6`): one value after 16 filters is
    a literal; after a one-filter conv the same Add is its bias."""
    m = model(
        [node("Conv", ["x", "k"], ["c"], name="conv/Conv2D"), node("Add", ["c", "three"], ["y"], name="hswish/add")],
        [value("x", [1, 3, 8, 8])],
        [value("y", None)],
        [init("k", [filters, 3, 3, 3]), init("three", [1, 1, 1, 1])],
    )
    report = audit_model(tmp_path, m)
    assert tensor_row(report, "three").role == role
    assert report.totals.trainable == filters * 3 * 3 * 3 + (1 if role == "bias" else 0)


def test_one_value_added_to_a_weight_on_its_way_is_a_literal():
    """paddle2onnx writes a Conv1D's weight as Unsqueeze, `+ 0` (a 1-value helper.constant), Squeeze,
    Unsqueeze into the Conv (scripts/export_paddle.py, conv1d_bn, optimize_tool None): the weight is the
    layer's; the 0 is a literal, not a 1-value weight (nor an all-zero weight for check to warn about)."""
    from onnxaudit import audit

    path = MODELS / "paddle" / "conv1d_bn__op17_raw.onnx"
    report = audit(path)
    assert tensor_row(report, "helper.constant.0").role == "literal"
    assert tensor_row(report, "conv1d_0.w_0").role == "weight"
    assert report.totals.trainable == 8 * 4 * 3 + 8 + 2 * 8 == fixture_meta(path)["trainable"]


def test_a_bias_quantized_at_run_time_by_the_first_onnxruntime_quantizer_is_a_bias(tmp_path):
    """onnx.quantize 0.1.0 (2019; ddddocr's common_old.onnx) divides a conv's float bias by the product
    of the input and weight scales at run time, floors and casts it, and adds it to the ConvInteger's
    output: the float bias is the conv's (counted), not a constant of unknown role."""
    rows, cols = 16, 8
    m = model(
        [
            node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            node("MatMulInteger", ["xq", "W", "xz", "wz"], ["mi"]),
            node("Mul", ["xs", "ws"], ["s"]),
            node("Div", ["B", "s"], ["bt"], name="B_tmp_qaunt"),
            node("Floor", ["bt"], ["bf"]),
            node("Cast", ["bf"], ["bq"], to=TensorProto.INT32),
            node("Add", ["mi", "bq"], ["acc"]),
            node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
            node("Mul", ["accf", "s"], ["y"]),
        ],
        [value("x", ["N", rows])],
        [value("y", ["N", cols])],
        [init("W", [rows, cols], np.int8), init("wz", [1], np.int8), init("ws", [1]), init("B", [cols])],
        opset=13,
    )
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "B").role, tensor_row(report, "W").role) == ("bias", "weight")
    assert (report.totals.trainable, report.totals.unclassified) == (rows * cols + cols, 0)


@pytest.mark.parametrize(("case", "name"), [("positional", "pos"), ("layer_scale", "gamma")])
def test_what_dynamo_reads_as_a_parameter_is_one_whatever_op_reads_it(case, name):
    """A learned position table added to the tokens, a layer scale's gamma (scripts/export_torch_zoo.py):
    no slot says what they are, but dynamo's FX call reads them as %p_<name>: parameters, counted."""
    from onnxaudit import audit

    path = MODELS / "torchzoo" / f"{case}__dynamo.onnx"
    report = audit(path, convention="pytorch")
    assert tensor_row(report, name).role == "fx_parameter"
    assert (report.totals.trainable, report.totals.unclassified) == (fixture_meta(path)["parameters"], 0)


def test_a_bn_that_onnxoptimizer_folds_at_run_time_keeps_its_statistics():
    """onnxoptimizer's fuse_bn_into_conv (scripts/simplify.py) leaves W * gamma / Sqrt(var + eps) and
    (b - mean) * gamma / Sqrt(var + eps) + beta to run time: the variance under the Sqrt and the mean the
    Sub takes from the bias are the BN's statistics, eps a literal; the file still holds 4 x C."""
    from onnxaudit import audit

    path = MODELS / "simplified" / "seed_cnn__legacy_nofold__onnxoptimizer.onnx"
    report = audit(path)
    roles = sorted(t.role for t in report.tensors if t.dims == [32])
    assert roles == ["bias", "bias", "bn_mean", "bn_var", "weight"]  # beta, the conv's bias, mean, var, gamma
    truth = fixture_meta(path)["source_recorded"]
    assert (report.totals.trainable, report.totals.non_trainable) == (truth["trainable"], truth["non_trainable"])


def test_constant_of_shape_of_an_unknown_shape_leaves_no_limit(tmp_path):
    """A filler whose shape is not known statically (torchvision's anchor generator: ConstantOfShape of
    the Shape of another ConstantOfShape, added to the anchors) is no parameter whatever its size:
    nothing is left uncounted, so no Limit line (sweep12: 6 to 20 such lines per detection file)."""
    zero = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])
    m = model(
        [
            node("Constant", [], ["cs"], value=helper.make_tensor("cs", TensorProto.INT64, [2], [4, 3])),
            node("ConstantOfShape", ["cs"], ["F"], value=zero),
            node("Shape", ["F"], ["s"]),
            node("ConstantOfShape", ["s"], ["B"], value=zero),
            node("Add", ["x", "B"], ["y"]),
            node("MatMul", ["y", "W"], ["z"]),
        ],
        [value("x", [4, 3])],
        [value("z", None)],
        [init("W", [3, 5])],
    )
    report = audit_model(tmp_path, m)
    assert not [line for line in report.limits if "ConstantOfShape" in line], report.limits
    assert report.totals.total == 3 * 5


def test_loop_carried_initial_state_is_not_a_weight():
    """tf2onnx writes a masked Keras LSTM as a Loop; with the batch fixed at 1 its zero initial state is a
    stored (1, 32) tensor carried through the Loop and multiplied by the recurrent kernel at each step: a
    state the body rewrites, not a weight. The totals are Keras's own."""
    path = MODELS / "keras" / "rnn_masked_b1__tf2onnx_op17.onnx"
    keras = fixture_meta(path)
    report = audit(path)
    assert (report.totals.total, report.totals.trainable) == (keras["total"], keras["trainable"])
    lstm = next(la for la in keras["layers"] if la["name"] == "lstm")
    units = lstm["output_shape"][-1]
    state = next(t for t in report.tensors if any(c.startswith("Loop") for c in t.consumers) and t.dims == [1, units])
    assert (state.role, state.category, state.bucket) == ("initial_state", "state", None)


def test_loop_carries_weights_through_unchanged(tmp_path):
    """A weight a Loop carries and its body passes on unchanged (a TF while loop's captured kernel) keeps the
    role of the slot it is read in; the state the body rewrites is no parameter."""
    body = helper.make_graph(
        [node("MatMul", ["h_in", "w_in"], ["h_new"]), node("Identity", ["w_in"], ["w_out"]),
         node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [value("i", []), value("cond_in", [], TensorProto.BOOL), value("h_in", [1, 4]), value("w_in", [4, 4])],
        [value("cond_out", [], TensorProto.BOOL), value("h_new", [1, 4]), value("w_out", [4, 4])],
    )  # fmt: skip
    loop = helper.make_node("Loop", ["trip", "", "h0", "w"], ["h", "w_last"], body=body)
    m = model(
        [loop],
        [],
        [value("h", [1, 4])],
        [init("h0", [1, 4]), init("w", [4, 4]), ints("trip", [3])],
    )
    report = audit_model(tmp_path, m)
    assert (tensor_row(report, "w").role, tensor_row(report, "w").bucket) == ("weight", "trainable")
    assert (tensor_row(report, "h0").role, tensor_row(report, "h0").bucket) == ("initial_state", None)
    assert report.totals.total == 4 * 4
