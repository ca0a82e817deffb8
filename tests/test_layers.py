"""Grouping nodes and tensors into layers from the names exporters leave."""

from __future__ import annotations

import re

from builders import MODELS, audit_model, init, layer_row, model, node, value

from onnxaudit.count.layers import path_from_module_scopes, path_from_node_name, path_from_tensor_name


def test_torch_scoped_node_names():
    assert path_from_node_name("/layer1/layer1.0/conv1/Conv") == ("layer1", "0", "conv1")
    assert path_from_node_name("/layer2/layer2.0/downsample/downsample.0/Conv") == ("layer2", "0", "downsample", "0")
    assert path_from_node_name("/features/features.1/conv/conv.0/conv.0.0/Conv") == (
        "features", "1", "conv", "0", "0",
    )  # fmt: skip
    assert path_from_node_name("/Flatten") is None
    assert path_from_node_name("Conv__19") is None


def test_state_dict_keys_and_dynamo_scopes():
    assert path_from_tensor_name("layer1.0.bn1.running_mean") == ("layer1", "0", "bn1")
    assert path_from_tensor_name("lstm.weight_ih_l0") == ("lstm",)
    assert path_from_tensor_name("onnx::Conv_42") is None
    assert path_from_tensor_name("model/conv0/kernel") is None
    scopes = ("", "layer1", "layer1.0", "layer1.0.conv1", "conv2d_1")
    assert path_from_module_scopes(scopes) == ("layer1", "0", "conv1")
    assert path_from_module_scopes(("_empty_nn_module_stack_from_metadata_hook", "sym_size_int_1")) is None


# a state_dict key as a pattern: word characters in dotted parts, the first an ASCII letter or `_`;
# path_from_tensor_name tells it without a regex
_KEY = re.compile(r"^[A-Za-z_][\w]*(?:\.[\w]+)+$")


def test_state_dict_key_test_is_the_pattern_of_a_key():
    heads = [
        "layer1.0.bn1", "_orig_mod.fc", "a", "a..b", ".a", "a.", "", "0.fc", "é.fc", "fé.x", "f\u0663.x", "a-b.c",
        "a b.c", "a\nb", "a.b\n", "a\n", "_", "__.0", "a\u0300.b", "Ab_9.ü", "\u00b2x", "x.\u00b2", "a;b", "fc\t",
    ]  # fmt: skip
    # the tensor's part: whether it names a tensor (a suffix torch, an RNN or paddle gives one; `$` allows a
    # last newline)
    lasts = {"weight": True, "running_var": True, "weight_ih_l0": True, "weight_ih_l0\n": True, "w_0": True}
    lasts |= {"b_12\n": True, "bias\n": False, "alpha": False}
    for head in heads:
        for last, names_tensor in lasts.items():
            name = f"{head}.{last}"
            expected = tuple(head.split(".")) if names_tensor and _KEY.match(name) else None
            assert path_from_tensor_name(name) == expected, name


def _keras3_dense(tmp_path, scopes: list[str]):
    """A chain of Dense layers named the way tf2onnx writes Keras 3 scopes."""
    nodes, inits, prev = [], [], "x"
    for i, scope in enumerate(scopes):
        nodes.append(node("MatMul", [prev, f"{scope}/W:0"], [f"h{i}"], name=f"functional_1/{scope}/MatMul"))
        inits.append(init(f"{scope}/W:0", [4, 4]))
        prev = f"h{i}"
    return audit_model(tmp_path, model(nodes, [value("x", ["N", 4])], [value(prev, ["N", 4])], inits))


def test_keras3_scope_suffix_is_stripped_once(tmp_path):
    report = _keras3_dense(tmp_path, ["dense_1", "dense_1_2", "batch_normalization_2_1"])
    assert [r.name for r in report.rows] == ["dense", "dense_1", "batch_normalization_2"]


def test_tf_keras_scopes_kept(tmp_path):
    nodes = [
        node("MatMul", ["x", "W"], ["h"], name="model/dense/MatMul"),
        node("Relu", ["h"], ["y"], name="model/re_lu/Relu"),
    ]
    report = audit_model(tmp_path, model(nodes, [value("x", ["N", 4])], [value("y", ["N", 4])], [init("W", [4, 4])]))
    assert [r.name for r in report.rows] == ["dense", "re_lu"]


def test_anonymous_nodes_get_one_row_each_and_depth_rolls_up(tmp_path):
    nodes = [
        node("Conv", ["x", "block.0.conv.weight"], ["a"], name="/block/block.0/conv/Conv"),
        node("Conv", ["a", "block.1.conv.weight"], ["b"], name="/block/block.1/conv/Conv"),
        node("Relu", ["b"], ["y"], name="relu_anon"),
    ]
    inits = [init("block.0.conv.weight", [4, 4, 1, 1]), init("block.1.conv.weight", [4, 4, 1, 1])]
    m = model(nodes, [value("x", [1, 4, 2, 2])], [value("y", [1, 4, 2, 2])], inits)
    report = audit_model(tmp_path, m)
    assert [r.name for r in report.rows] == ["block.0.conv", "block.1.conv", "relu_anon"]
    rolled = audit_model(tmp_path, m, depth=1)
    assert layer_row(rolled, "block").params == 2 * 4 * 4


def test_anonymous_bidirectional_rnn_takes_its_layer_from_its_initial_state():
    """tf_keras: `GRU__211` reads `model/bilstm/concat:0` (the previous layer) but its zero state comes
    from `model/bigru/...`: each Bidirectional keeps its own row."""
    import json
    from pathlib import Path

    from onnxaudit import audit

    path = Path(__file__).resolve().parent.parent / "models" / "keras" / "rnn_zoo__tfkeras_op13.onnx"
    meta = json.loads(path.with_suffix(".json").read_text())
    rows = {la.name: la for la in audit(path).framework.layers}
    for name, op in (("bilstm", "LSTM"), ("bigru", "GRU")):
        want = next(la for la in meta["layers"] if la["name"] == name)
        assert op in rows[name].kind.split("+") and rows[name].total.lo == want["params"]


def test_op_types_leave_constants_out_unless_alone():
    from onnxaudit.count.layers import Layer
    from onnxaudit.model.view import Node

    def nodes(*ops: str) -> list[Node]:
        return [Node(i, f"n{i}", op, "", (), (f"v{i}",), {}, "") for i, op in enumerate(ops)]

    assert Layer(("a",), "a", nodes("Conv")).op_types == ["Conv"]
    assert Layer(("a",), "a", nodes("Constant")).op_types == ["Constant"]
    assert Layer(("a",), "a", nodes("Constant", "Constant")).op_types == ["Constant"]
    assert Layer(("a",), "a", nodes("Constant", "MatMul", "Add", "MatMul")).op_types == ["MatMul", "Add"]
    assert Layer(("a",), "a", []).op_types == []


def test_torch_names_inside_the_only_if_group_its_branches_by_module(tmp_path):
    """Optimum's merged decoder is one If whose branches hold torch.onnx's nodes (`/fc/Gemm`): rows by
    module path inside the branches, as for the unmerged decoder, not one row per op."""
    from onnx import TensorProto, helper

    def branch(name: str) -> object:
        return helper.make_graph(
            [node("Gemm", ["x", "fc.weight", "fc.bias"], [f"h_{name}"], name="/fc/Gemm"),
             node("Relu", [f"h_{name}"], [name], name="/act/Relu")],
            name, [], [value(name, None)],
        )  # fmt: skip

    m = model(
        [node("If", ["c"], ["r"], name="optimum::if", then_branch=branch("t"), else_branch=branch("e"))],
        [value("x", [1, 4]), value("c", [], TensorProto.BOOL)],
        [value("r", None)],
        [init("fc.weight", [3, 4]), init("fc.bias", [3])],
    )
    report = audit_model(tmp_path, m)
    assert layer_row(report, "fc").params == 3 * 4 + 3
    assert layer_row(report, "optimum::if").params == 0


def test_paddle_layers_take_their_parameters_names():
    """paddle2onnx names nodes `Conv.0`, moves a conv's bias into an Add under a name of its own
    (`p2o.pd_op.reshape.0.0`) and puts an Identity after it (scripts/export_paddle.py): the row is the
    layer its weight names, `conv2d_0`, with its bias, as paddle.summary shows it."""
    from builders import MODELS

    from onnxaudit import audit

    report = audit(MODELS / "paddle" / "conv_bn__op17.onnx")
    assert [(row.name, row.params) for row in report.rows] == [
        ("conv2d_0", 8 * 3 * 3 * 3 + 8), ("batch_norm2d_0", 4 * 8), ("Relu.0", 0)
    ]  # fmt: skip


def test_unscoped_norms_written_out_as_ops_join_their_module():
    """An export named as torch < 1.13 named it (`ReduceMean_2`, no module scopes; scripts/export_torch_zoo.py
    renames an opset-14 export so): the ops computing a LayerNorm's and a RMSNorm's statistics take the row
    of the module whose `weight` they feed, as torchinfo shows one LayerNorm, and the Transposes of the
    Linear weights join their Linear; the residual Add before the RMSNorm keeps a row of its own."""
    from builders import MODELS, fixture_meta

    from onnxaudit import audit

    path = MODELS / "torchzoo" / "unscoped_norms__legacy_op14_unscoped.onnx"
    report = audit(path, convention="pytorch")
    rows = [(row.name, row.params) for row in report.rows]
    assert rows == [
        ("fc1", 8 * 16 + 16), ("Relu_3", 0), ("ln", 16 + 16), ("fc2", 16 * 16 + 16), ("Add_18", 0),
        ("rms", 16), ("head", 16 * 4 + 4),
    ]  # fmt: skip
    assert sum(params for _, params in rows) == fixture_meta(path)["parameters"]
    assert {"ReduceMean", "Sqrt", "Div"} <= set(layer_row(report, "ln").all_ops)
    assert {"Pow", "ReduceMean", "Sqrt", "Cast"} <= set(layer_row(report, "rms").all_ops)
    kinds = {layer.name: layer.kind for layer in report.framework.layers}
    assert (kinds["ln"], kinds["rms"]) == ("LayerNormalization", "RMSNormalization")


def test_depth_rolls_runs_of_anonymous_zero_parameter_ops_into_one_row():
    """torch.onnx (legacy) writes a bidirectional LSTM without h0 as 300 top-level anonymous ops around two
    LSTM nodes: at --depth 1 a row per op buried the layers (108 rows). Runs of parameter-free anonymous ops
    are one row each, named by their first and last op; the LSTMs keep their rows, the totals are unchanged."""
    from onnxaudit import audit

    path = MODELS / "torchzoo" / "bilstm_no_h0__legacy.onnx"
    flat, rolled = audit(path), audit(path, depth=1)
    assert rolled.totals == flat.totals
    lstms = [r for r in rolled.rows if r.ops == ["LSTM"]]
    assert len(lstms) == 2 and sum(r.params for r in lstms) == flat.totals.total
    runs = [r for r in rolled.rows if r not in lstms]
    assert len(rolled.rows) == 5 and all(r.params == 0 and " .. " in r.name and "ops)" in r.name for r in runs)
    assert sum(len(r.all_ops) > 1 for r in runs) == len(runs)


def test_a_reshape_to_a_computed_target_shows_its_output_unknown_not_the_targets_shape():
    """torch.onnx at opset 13 with free batch and time: Linear(16, 10) on x.reshape(b * t, -1), reshaped
    back with y.reshape(b, t, -1). onnx's inference cannot size a Reshape to a target computed from
    Shape; the row showed the target's own shape, `(3,)` from its Concat and `()` from the Mul of b and t."""
    from onnxaudit import audit

    report = audit(MODELS / "torchzoo" / "reshape_chain__legacy_op13_dynamic.onnx")
    flatten, back = layer_row(report, "/Reshape"), layer_row(report, "/Reshape_1")
    assert (flatten.output_shape, back.output_shape) == (None, None)
    assert (flatten.ops, back.ops) == (["Reshape"], ["Reshape"])  # not the Mul that computed b * t
    assert layer_row(report, "fc").output_shape[-1] == 10
    for row in audit(MODELS / "torchzoo" / "reshape_chain__legacy_op13_dynamic.onnx", depth=1).rows:
        assert row.output_shape is None or len(row.output_shape) >= 2, row


def test_keras_flatten_through_tf2onnx_op13_is_not_its_targets_shape():
    """tf2onnx at opset 13 writes Flatten as a Reshape to a target computed from Shape: the row's output
    is that Reshape's (unknown to inference), not the (2,) of the target."""
    from onnxaudit import audit

    report = audit(MODELS / "keras" / "seed_cnn__tf2onnx_op13.onnx")
    assert layer_row(report, "flatten").output_shape is None
    assert layer_row(report, "fc").output_shape[-1] == 1


def test_a_child_named_like_its_parent_is_a_module_of_its_own():
    """`/model/model/fc/Gemm` (NestedSameName: model.model.fc, as Hugging Face's model.model.layers)."""
    assert path_from_node_name("/model/model/fc/Gemm") == ("model", "model", "fc")
    from onnxaudit import audit

    report = audit(MODELS / "torchmodules" / "zoo_nested_same_name__legacy_fold.onnx", convention="pytorch")
    assert layer_row(report, "model.model.fc").params == 8 * 8 + 8
    assert layer_row(report, "model.head").params == 8 * 4 + 4


def test_a_row_takes_the_module_its_state_dict_keys_name():
    """HeadCalledThrough calls `self.head.norm(x)` and `self.head.fc(x)` without calling `head`: TorchScript
    scopes them `/norm`, `/fc`; their parameters' keys say head.norm and head.fc (fc's weight folded,
    anonymous: its bias names the module)."""
    from onnxaudit import audit

    report = audit(MODELS / "torchmodules" / "zoo_head_called_through__legacy_fold.onnx", convention="pytorch")
    assert layer_row(report, "head.norm").params == 2 * 8
    assert layer_row(report, "head.fc").params == 8 * 4 + 4
    assert not [r.name for r in report.rows if r.name in ("norm", "fc")]


def test_a_scope_over_the_whole_model_is_opened_to_the_layers_inside():
    """jax2tf's scopes around a Flax module (Magika: `jax2tf_get_logits_/pjit_get_logits_/MagikaV2/...`),
    here a tf.Module under tf.name_scope through tf2onnx (scripts/export_tf_scoped.py): grouping by the
    first scope below the shared root made one row of 549 parameters; the module's layers are one and two
    scopes deeper."""
    from builders import fixture_meta

    from onnxaudit import audit

    path = MODELS / "tf" / "scoped_net__tf2onnx_op15.onnx"
    report = audit(path)
    expected = {
        "Dense_0": 17 * 8 + 8,
        "LayerNorm_0": 2 * 8,
        "Conv_0": 3 * 8 * 12 + 12,
        "LayerNorm_1": 2 * 12,
        "Dense_1": 12 * 5 + 5,
    }
    assert {name: layer_row(report, name).params for name in expected} == expected
    assert sum(expected.values()) == report.totals.total == fixture_meta(path)["trainable"]
    assert report.framework.trainable.contains(fixture_meta(path)["trainable"])
    assert not any(r.name in ("pjit_get_logits", "ScopedNet") for r in report.rows)
    # `Max` inside the module and the softmax's `Max` beside it are two rows, not one
    assert [r.ops for r in report.rows if r.name.endswith("/Max")] == [["GlobalMaxPool"], ["ReduceMax"]]


def test_caffe2_device_scope_over_every_tensor_gives_a_row_per_op():
    """onnx-caffe2 names every tensor `gpu_0/...` and no node: the 5 convs and 3 Gemms of ZFNet-512 were
    one row `gpu_0`; with no deeper scope to group by, each is a row of its own."""
    from onnxaudit.count.layers import group_layers
    from onnxaudit.count.roles import classify
    from onnxaudit.count.table import param_table
    from onnxaudit.model.load import load

    view = load(MODELS / "caffe2" / "zfnet512__onnx_light.onnx")
    layers = group_layers(view, param_table(classify(view)))
    products = [[n.op_type for n in layer.nodes if n.op_type in ("Conv", "Gemm")] for layer in layers]
    assert sorted(op for ops in products for op in ops) == ["Conv"] * 5 + ["Gemm"] * 3
    assert all(len(ops) <= 1 for ops in products)
    assert not any(layer.name == "gpu_0" for layer in layers)


def test_rows_at_one_place_go_by_name():
    """Rows of no node share the last place: their names order them, after the rows of nodes."""
    from onnxaudit.count.layers import Layer, _in_row_order, _Rows
    from onnxaudit.model.view import Node

    first = Node(0, "/a/Conv", "Conv", "", ("x",), ("y",), {}, "main")
    rows = _Rows([first])
    rows.layers[("a",)] = Layer(("a",), "a", [first])  # made by its first node, as _torch_rows makes them
    rows.firsts.append(first.index)
    for path in [("c",), ("b",)]:  # made for tensors, in this order
        rows.layer_for(path, None)
    assert [layer.name for layer in _in_row_order(rows, set())] == ["a", "b", "c"]
