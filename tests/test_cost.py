"""MACs, elementwise FLOPs and memory: every expected figure is arithmetic over the op's declared formula
(README, Cost), on graphs built here and on fixtures in models/; onnx-tool's known errors are cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import MODELS, audit_model, fixture_meta, init, layer_row, model, node, seed_cnn, value
from onnx import TensorProto, helper

from onnxaudit import audit
from onnxaudit.cli.main import main
from onnxaudit.cost.families import NOT_COUNTED, TABLE
from onnxaudit.cost.poly import Poly
from onnxaudit.model.ops import WEIGHT_OPS


def _cost(tmp_path: Path, m, **kwargs):
    report = audit_model(tmp_path, m, **kwargs)
    assert report.cost is not None
    return report


def _terms(amount) -> dict[str, int]:
    assert amount is not None
    return amount.terms


def test_poly_arithmetic_and_text():
    n, s = Poly.dim("N"), Poly.dim("S")
    p = n * s * s * 3 + Poly.const(5) + n * 2
    assert p.text() == "5 + 2 x N + 3 x N x S^2"
    assert p.bind({"N": 2, "S": 4}).value == 5 + 4 + 3 * 2 * 16
    assert p.value is None and p.free == ["N", "S"]
    assert (n * 3).dominates(n * 2) and not (n * 3).dominates(n * 2 + Poly.const(1))
    assert (Poly.dim("floor(h/2) + 1") * 2).text() == "2 x (floor(h/2) + 1)"


def test_seed_cnn_is_19_300_352_per_sample(tmp_path):
    """DESIGN's seed_cnn: Conv N·Cout·(Cin/g)·kh·kw·Hout·Wout plus the Dense, symbolic in N; BN, ReLU and
    pooling are FLOPs of their own, never in the MACs."""
    report = _cost(tmp_path, seed_cnn())
    conv, dense = 32 * 3 * 7 * 7 * 64 * 64, 32 * 32 * 32 * 1
    assert conv + dense == 19_300_352
    assert _terms(layer_row(report, "conv0").macs) == {"N": conv}
    assert layer_row(report, "conv0").cost_formula == "Conv N·32·3·7·7·64·64"
    assert _terms(layer_row(report, "fc").macs) == {"N": dense}
    assert report.cost.macs.text == "19,300,352 x N"
    bn, relu, pool, sigmoid = 2 * 32 * 64 * 64, 32 * 64 * 64, 2 * 2 * 32 * 32 * 32, 1
    assert _terms(layer_row(report, "bn0").flops) == {"N": bn}
    assert _terms(layer_row(report, "bn0").macs) == {}
    assert _terms(report.cost.flops) == {"N": bn + relu + pool + sigmoid}
    assert _terms(report.cost.input_bytes) == {"N": 3 * 64 * 64 * 4}
    assert _terms(layer_row(report, "conv0").output_bytes) == {"N": 32 * 64 * 64 * 4}
    # the largest live set, while BN runs: its input and output, and the graph input (held); the padded
    # input was freed after the conv read it
    assert report.cost.peak_exact and _terms(report.cost.peak_bytes) == {"N": 4 * (3 * 64 * 64 + 2 * 32 * 64 * 64)}
    bound = _cost(tmp_path, seed_cnn(), dims={"N": 4})
    assert bound.cost.macs.value == 4 * 19_300_352 and bound.cost.bindings == {"N": 4}


def test_conv_groups_strides_and_bias_not_counted(tmp_path):
    """Depthwise 3x3 over 18 channels, stride 2: N·18·1·3·3·4·4. The bias is an add, not a MAC: the
    same conv with a bias costs the same (onnx-tool counted it, ThanatosShinji/onnx-tool#60)."""
    for with_bias in (False, True):
        inputs = ["x", "W", "B"] if with_bias else ["x", "W"]
        m = model(
            [node("Conv", inputs, ["y"], name="dw", group=18, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
            [value("x", [2, 18, 8, 8])],
            [value("y", None)],
            [init("W", [18, 1, 3, 3]), init("B", [18])],
        )
        report = _cost(tmp_path, m)
        assert layer_row(report, "dw").macs.value == 2 * 18 * 1 * 3 * 3 * 4 * 4
        assert layer_row(report, "dw").flops.value == 0


def test_conv_transpose_is_counted_from_its_input(tmp_path):
    """onnx-tool#32: ConvTranspose counted from the output overcounts by the stride's square. Each of the
    N·Cin·Hin·Win input values meets (Cout/g)·kh·kw weights."""
    m = model(
        [node("ConvTranspose", ["x", "W"], ["y"], name="up", kernel_shape=[3, 3], strides=[2, 2])],
        [value("x", [1, 8, 5, 5])],
        [value("y", None)],
        [init("W", [8, 4, 3, 3])],
    )
    report = _cost(tmp_path, m)
    assert layer_row(report, "up").output_shape == [1, 4, 11, 11]
    from_input = 1 * 8 * 4 * 3 * 3 * 5 * 5
    from_output = 1 * 4 * 8 * 3 * 3 * 11 * 11  # what the bug printed
    assert layer_row(report, "up").macs.value == from_input != from_output


def test_gemm_linear_and_batched_matmul(tmp_path):
    """Linear as Gemm(transB): M·N·K; a batched MatMul over free dims: B·H·S·S·D, an S² term."""
    m = model(
        [
            node("Gemm", ["x", "W", "b"], ["h"], name="linear", transB=1),
            node("MatMul", ["q", "k"], ["s"], name="scores"),
        ],
        [value("x", ["N", 32]), value("q", ["B", 4, "S", 16]), value("k", ["B", 4, 16, "S"])],
        [value("h", None), value("s", None)],
        [init("W", [10, 32]), init("b", [10])],
    )
    report = _cost(tmp_path, m)
    assert _terms(layer_row(report, "linear").macs) == {"N": 10 * 32}
    assert _terms(layer_row(report, "scores").macs) == {"B*S*S": 4 * 16}
    assert report.cost.macs.text == "320 x N + 64 x B x S^2"


def test_hand_written_attention_counts_its_matmuls(tmp_path):
    """ptflops#77 / calflops#26: attention written as matmuls was missed. Q·Kᵀ and P·V are products:
    2·B·H·S·S·D MACs; the softmax is 3 FLOPs an element, apart."""
    b, h, s, d = 2, 4, 10, 8
    m = model(
        [
            node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 1, 3, 2]),
            node("MatMul", ["q", "kt"], ["scores"], name="qk"),
            node("Softmax", ["scores"], ["p"], name="softmax", axis=-1),
            node("MatMul", ["p", "v"], ["o"], name="pv"),
        ],
        [value("q", [b, h, s, d]), value("k", [b, h, s, d]), value("v", [b, h, s, d])],
        [value("o", None)],
    )
    report = _cost(tmp_path, m)
    assert report.cost.macs.value == 2 * b * h * s * s * d
    assert report.cost.flops.value == 3 * b * h * s * s


def _ms(nodes, inputs, outputs, inits=(), value_info=()):
    m = model(nodes, inputs, outputs, list(inits), extra_opsets={"com.microsoft": 1})
    m.graph.value_info.extend(value_info)
    return m


def test_onnxruntime_attention_ops(tmp_path):
    """com.microsoft Attention projects Q, K, V (B·S·Din·3D) then attends (B·S·L·(Dq+Dv)); MultiHeadAttention
    and GroupQueryAttention attend only; GroupQueryAttention's keys are present_key's L (past + new)."""
    b, s, din, d, past = 2, 7, 16, 24, 5
    attention = helper.make_node(
        "Attention", ["x", "Wqkv", "bqkv"], ["a"], name="attn", domain="com.microsoft", num_heads=3
    )
    mha = helper.make_node(
        "MultiHeadAttention", ["q", "k", "v"], ["m"], name="mha", domain="com.microsoft", num_heads=3
    )
    gqa = helper.make_node(
        "GroupQueryAttention",
        ["gq", "gk", "gv", "pk", "pv", "seqlens", "total"],
        ["g", "present_k", "present_v"],
        name="gqa",
        domain="com.microsoft",
        num_heads=4,
        kv_num_heads=2,
    )
    m = _ms(
        [attention, mha, gqa],
        [
            value("x", [b, s, din]),
            value("q", [b, s, d]),
            value("k", [b, 9, d]),
            value("v", [b, 9, d]),
            value("gq", [b, s, 32]),
            value("gk", [b, s, 16]),
            value("gv", [b, s, 16]),
            value("pk", [b, 2, past, 8]),
            value("pv", [b, 2, past, 8]),
            value("seqlens", [b], TensorProto.INT32),
            value("total", [], TensorProto.INT32),
        ],
        [value("a", [b, s, d]), value("m", [b, s, d]), value("g", [b, s, 32])],
        [init("Wqkv", [din, 3 * d]), init("bqkv", [3 * d])],
        [value("present_k", [b, 2, past + s, 8]), value("present_v", [b, 2, past + s, 8])],
    )
    report = _cost(tmp_path, m)
    assert layer_row(report, "attn").macs.value == b * s * din * 3 * d + b * s * s * (d + d)
    assert layer_row(report, "mha").macs.value == b * s * 9 * (d + d)
    assert layer_row(report, "gqa").macs.value == b * s * (past + s) * (32 + 32)


@pytest.mark.parametrize(
    ("op", "gates", "flops_per_unit"),
    [("LSTM", 4, 17), ("GRU", 3, 14), ("RNN", 1, 3)],
)
def test_recurrent_closed_forms(tmp_path, op, gates, flops_per_unit):
    """onnx-tool#64: D·T·B·gates·H·(I+H) over T steps, both directions; layout=1 reads (B, T, I)."""
    t, b, i, h, dirs = 12, 3, 10, 20, 2
    for lay in (0, 1):
        x = [b, t, i] if lay else [t, b, i]
        m = model(
            [node(op, ["x", "W", "R", "B"], ["y"], name="rnn", hidden_size=h, direction="bidirectional", layout=lay)],
            [value("x", x)],
            [value("y", None)],
            [init("W", [dirs, gates * h, i]), init("R", [dirs, gates * h, h]), init("B", [dirs, 2 * gates * h])],
        )
        row = layer_row(_cost(tmp_path, m), "rnn")
        assert row.macs.value == dirs * t * b * gates * h * (i + h)
        assert row.flops.value == dirs * t * b * flops_per_unit * h


def test_quantized_forms_count_as_their_float_ops(tmp_path):
    """QLinearConv and ConvInteger as Conv, MatMulInteger as MatMul, MatMulNBits from its K and N."""
    u8 = TensorProto.UINT8
    nodes = [
        node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["qc"], name="qconv", kernel_shape=[3, 3]),
        node("ConvInteger", ["x", "w"], ["ci"], name="iconv", kernel_shape=[3, 3]),
        node("MatMulInteger", ["a", "bq"], ["mi"], name="imm"),
        helper.make_node(
            "MatMulNBits",
            ["f", "packed", "scales"],
            ["nb"],
            name="nbits",
            domain="com.microsoft",
            K=64,
            N=32,
            bits=4,
            block_size=32,
        ),  # fmt: skip
    ]
    inits = [
        init("xs", []), init("ws", []), init("ys", []),
        *(helper.make_tensor(name, u8, [], [0]) for name in ("xz", "wz", "yz")),
        helper.make_tensor("w", u8, [8, 4, 3, 3], [1] * 288), helper.make_tensor("bq", u8, [16, 6], [1] * 96),
        helper.make_tensor("packed", u8, [32, 2, 16], [1] * 1024), init("scales", [64]),
    ]  # fmt: skip
    m = _ms(
        nodes,
        [value("x", [1, 4, 10, 10], u8), value("a", [5, 16], u8), value("f", [2, 5, 64])],
        [value("qc", None, u8), value("ci", None, TensorProto.INT32), value("mi", None, TensorProto.INT32)],
        inits,
        [value("nb", [2, 5, 32])],
    )
    m.graph.output.append(value("nb", [2, 5, 32]))
    report = _cost(tmp_path, m)
    conv = 1 * 8 * 4 * 3 * 3 * 8 * 8
    assert layer_row(report, "qconv").macs.value == conv
    assert layer_row(report, "iconv").macs.value == conv
    assert layer_row(report, "imm").macs.value == 5 * 6 * 16
    assert layer_row(report, "nbits").macs.value == 2 * 5 * 32 * 64


def test_every_weight_op_has_a_formula():
    """A weight-bearing product without a declared formula would be counted 0 and look cheap."""
    assert WEIGHT_OPS <= TABLE.keys(), sorted(WEIGHT_OPS - TABLE.keys())
    assert not (NOT_COUNTED - {"Einsum"}) & TABLE.keys()


def test_einsum_two_operands_and_unknown_dims_are_named(tmp_path):
    """Einsum bij,bjk->bik is a batched product: b·i·j·k. A MatMul reading a value of no known shape is
    named among the ops whose dims are unknown, and its row shows no figure rather than 0."""
    m = model(
        [
            node("Einsum", ["a", "b"], ["c"], name="bmm", equation="bij,bjk->bik"),
            node("MatMul", ["c", "d"], ["e"], name="free"),
        ],
        [value("a", [2, 3, 4]), value("b", [2, 4, 5]), value("d", None)],
        [value("e", None)],
    )
    report = _cost(tmp_path, m)
    assert layer_row(report, "bmm").macs.value == 2 * 3 * 4 * 5
    assert layer_row(report, "free").macs is None  # a dim nobody knows: not counted as 0
    assert report.cost.unknown_ops == {"MatMul": 1}
    assert report.cost.macs.value == 2 * 3 * 4 * 5


def test_peak_activation_memory_frees_after_the_last_reader(tmp_path):
    """x -> a -> b -> y, each 4x4 float (64 B), and a skip reading x at the end: the graph input stays
    live; a is freed once b is made, so the peak is x + a + b (or x + b + y), never all four."""
    m = model(
        [
            node("Relu", ["x"], ["a"], name="r1"),
            node("Relu", ["a"], ["b"], name="r2"),
            node("Add", ["b", "x"], ["y"], name="add"),
        ],
        [value("x", [4, 4])],
        [value("y", [4, 4])],
    )
    report = _cost(tmp_path, m)
    size = 4 * 4 * 4
    assert report.cost.peak_bytes.value == 3 * size
    assert report.cost.forward_bytes.value == 3 * size
    assert report.cost.input_bytes.value == size
    assert report.cost.total_bytes.value == 4 * size + report.cost.params_bytes


def test_torch_seed_cnn_fixture_matches_the_design(tmp_path):
    """The PyTorch export of DESIGN's seed_cnn: `19,300,352 x batch`, the batch its dynamic axis."""
    path = MODELS / "torch" / "seed_cnn__dynamo.onnx"
    assert fixture_meta(path)["dynamic_axes"] == {"x": {"0": "batch"}}
    report = audit(path)
    assert report.cost.macs.text == "19,300,352 x batch"
    assert audit(path, dims={"batch": 2}).cost.macs.value == 2 * 19_300_352


def test_keras_seed_cnn_bound_dims_reach_through_reshape(capsys):
    """tf2onnx's Reshape gives the flattened batch a fresh name (unk__0): binding the input's dim runs
    inference again, so the Dense's rows are known and the total is concrete."""
    path = MODELS / "keras" / "seed_cnn__tf2onnx_op17.onnx"
    report = audit(path, dims={"unk__44": 1})
    assert report.cost.macs.value == 32 * 3 * 7 * 7 * 64 * 64 + 32 * 32 * 32
    assert main(["summary", str(path), "--dim", "unk__44=1"]) == 0
    assert "Total mult-adds (MACs): 19,300,352 (at unk__44=1)" in capsys.readouterr().out


def test_lstm_fixture_closed_form():
    """torch's nn.LSTM(8, 16) over 10 steps (the fixture's recorded input), one direction."""
    path = MODELS / "torch" / "lstm__dynamo.onnx"
    steps, inputs = fixture_meta(path)["input_shapes"]["x"][1:]
    lstm = next(r for r in audit(path).rows if "LSTM" in r.ops)
    assert lstm.macs.terms == {"batch": 1 * steps * 4 * 16 * (inputs + 16)}


def test_json_carries_formula_and_value(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(seed_cnn().SerializeToString())
    assert main(["summary", str(path), "--format", "json", "--dim", "N=1"]) == 0
    data = json.loads(capsys.readouterr().out)
    conv = next(r for r in data["rows"] if r["name"] == "conv0")
    assert conv["cost_formula"] == "Conv 1·32·3·7·7·64·64"  # inferred again with N bound
    assert conv["macs"] == {"terms": {"": 19_267_584}, "text": "19,267,584", "value": 19_267_584}
    assert data["cost"]["macs"]["value"] == 19_300_352 and data["cost"]["bindings"] == {"N": 1}


def test_check_limits_on_macs_and_activation_memory(tmp_path):
    """--max-macs and --max-activation-memory: over at N = 1 is over at any N (an error); within at N = 1
    but free is a warning asking for --dim; bound, a plain comparison."""
    from onnxaudit.check.runner import check

    path = tmp_path / "m.onnx"
    path.write_bytes(seed_cnn().SerializeToString())
    per_sample, peak = 19_300_352, 4 * (3 * 64 * 64 + 2 * 32 * 64 * 64)
    over = check(path, select="OA309", max_macs=per_sample - 1).findings
    assert [(f.rule, f.severity) for f in over] == [("OA309", "error")]
    free = check(path, select="OA309", max_macs=per_sample).findings
    assert [(f.rule, f.severity) for f in free] == [("OA309", "warning")] and "--dim" in free[0].message
    assert check(path, select="OA309", max_macs=2 * per_sample, dims={"N": 2}).findings == []
    assert [f.severity for f in check(path, select="OA309", max_macs=2 * per_sample - 1, dims={"N": 2}).findings] == [
        "error"
    ]
    assert check(path, select="OA310", max_activation_memory=peak, dims={"N": 1}).findings == []
    assert [f.rule for f in check(path, select="OA310", max_activation_memory=peak - 1, dims={"N": 1}).findings] == [
        "OA310"
    ]
    assert main(["check", str(path), "--select", "OA309", "--max-macs", "19,300,351"]) == 1


def test_readme_documents_every_costed_op():
    """The README's MACs table names every op a MACs family costs (elementwise ops go by category there)."""
    from onnxaudit.cost import attention, conv, matmul, quantized, rnn

    readme = (MODELS.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### What it costs", 1)[1].split("\n### ", 1)[0]
    ops = [op for family in (conv, matmul, quantized, attention, rnn) for op in family.COSTS]
    missing = [op for op in ops if op not in section]
    assert not missing, missing


def test_chosen_sizes_make_the_figures_numbers(capsys):
    """--choose-dims: the size chooser (model/sizes.py) gives tf2onnx's batch dim 1, inference runs again
    with it, and the Dense behind the Reshape is counted too; the choice is printed with its reason."""
    path = MODELS / "keras" / "seed_cnn__tf2onnx_op17.onnx"
    report = audit(path, choose_dims=True)
    assert report.cost.macs.value == 19_300_352 and report.cost.bindings == {"unk__44": 1}
    assert any(n.startswith("size chosen for a free dim: unk__44=1 (") for n in report.cost.notes)
    assert main(["summary", str(path), "--choose-dims", "--dim", "unk__44=3"]) == 0  # --dim wins
    assert "Total mult-adds (MACs): 57,901,056 (at unk__44=3)" in capsys.readouterr().out
    assert 3 * 19_300_352 == 57_901_056


def test_a_dim_bound_by_position(tmp_path):
    """An unnamed input dim is bound as INPUT:AXIS, as the shape run takes it."""
    m = seed_cnn()
    m.graph.input[0].type.tensor_type.shape.dim[0].Clear()  # no name, no value
    report = _cost(tmp_path, m, dims={"input:0": 2})
    assert report.cost.macs.value == 2 * 19_300_352


def _torch_flop_fixtures() -> list[Path]:
    return sorted(p for p in (MODELS / "torch").glob("*.onnx") if "flop_counter" in fixture_meta(p))


def test_torch_fixtures_recorded_a_flop_count():
    """scripts/torch_flops.py wrote torch's own count beside every torch fixture of export_torch.py."""
    assert len(_torch_flop_fixtures()) >= 20


@pytest.mark.parametrize("path", _torch_flop_fixtures(), ids=lambda p: p.stem)
def test_macs_match_torch_flop_counter(path):
    """What torch.utils.flop_counter counted (FLOPs / 2) for the same module at the same input shape: the
    total over convolutions, Linear, matmuls and the GRU (torch runs it as addmm/mm: D·T·B·3H·(I+H) is
    checked there), and each module whose row keeps its name. torch has no formula for aten::lstm (0
    there): LSTM rows are left out of the total compared."""
    from onnxaudit.cost import attention, conv, matmul, quantized, rnn

    recorded = fixture_meta(path)["flop_counter"]
    report = audit(path, dims={"batch": recorded["input_shape"][0]})
    products = {op for family in (conv, matmul, quantized, attention, rnn) for op in family.COSTS}
    # dynamo without optimization computes an RNN's W and R (Concat, Unsqueeze): their dims are made-up
    # names, so the layer is named as unknown rather than counted on a guess
    computed = {"gru__dynamo_noopt": {"GRU"}, "lstm__dynamo_noopt": {"LSTM"}}.get(path.stem, set())
    assert products & report.cost.unknown_ops.keys() == computed, report.cost.unknown_ops
    if "GRU" in computed:
        return  # torch's GRU count has nothing to compare with
    recurrent = sum(r.macs.value or 0 for r in report.rows if r.macs is not None and "LSTM" in r.ops)
    assert report.cost.macs.value - recurrent == recorded["macs"]
    # row by row: a leaf module (no module under it counted) against the row of its name holding a product
    modules = recorded["macs_by_module"]
    root = next(iter(modules)).split(".")[0]
    leaves = {m: v for m, v in modules.items() if m != root and not any(k.startswith(m + ".") for k in modules)}
    rows = {r.name: r for r in report.rows if products & set(r.ops) and "LSTM" not in r.ops}
    compared = {m.removeprefix(root + "."): v for m, v in leaves.items() if m.removeprefix(root + ".") in rows}
    assert {name: rows[name].macs.value for name in compared} == compared
