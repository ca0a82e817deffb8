"""Shared builders of small ONNX graphs for the tests (one place, not copied between tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

_RNG = np.random.default_rng(1234)

# the real exporters' fixtures (scripts/ made them), each with a .json of what its framework recorded
MODELS = Path(__file__).resolve().parent.parent / "models"


def fixture_meta(path: Path) -> dict:
    """What the framework itself recorded beside a fixture (its .json): the truth a test compares with."""
    return json.loads(path.with_suffix(".json").read_text())


def init(name: str, dims: Sequence[int], dtype: type = np.float32) -> onnx.TensorProto:
    """An initializer with non-trivial random values (exporters drop zeros; we keep them honest)."""
    if np.issubdtype(dtype, np.integer):
        values = _RNG.integers(-8, 8, size=tuple(dims)).astype(dtype)
    else:
        values = (_RNG.random(tuple(dims)) + 0.5).astype(dtype)
    return numpy_helper.from_array(values, name)


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def value(name: str, shape: Sequence[int | str | None] | None, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 17,
    ir_version: int = 8,
    extra_opsets: dict[str, int] | None = None,
    functions: Sequence[onnx.FunctionProto] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    m.ir_version = ir_version
    return m


def save(m: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(m.SerializeToString())
    return path


def seed_cnn(axis_typo: bool = False) -> onnx.ModelProto:
    """The DESIGN.md seed_cnn made of ONNX ops: Pad, Conv, BN, Relu, MaxPool, Flatten, Gemm.

    With axis_typo, BN normalizes the 64 rows (Keras axis=-3 on NHWC) instead of the channels:
    built as Transpose -> BN over 64 -> Transpose back.
    """
    c = 64 if axis_typo else 32
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["p"], name="zero_padding2d"),
        helper.make_node("Conv", ["p", "conv0.W", "conv0.B"], ["c"], name="conv0", kernel_shape=[7, 7]),
    ]
    if axis_typo:
        nodes += [
            helper.make_node("Transpose", ["c"], ["ct"], name="bn0_in", perm=[0, 2, 1, 3]),
            helper.make_node("BatchNormalization", ["ct", "g", "b", "m", "v"], ["bt"], name="bn0"),
            helper.make_node("Transpose", ["bt"], ["bn"], name="bn0_out", perm=[0, 2, 1, 3]),
        ]
    else:
        nodes.append(helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], name="bn0"))
    nodes += [
        helper.make_node("Relu", ["bn"], ["r"], name="re_lu"),
        helper.make_node("MaxPool", ["r"], ["mp"], name="max_pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["mp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.W", "fc.B"], ["y0"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["y0"], ["y"], name="sigmoid"),
    ]
    inits = [
        ints("pads", [0, 0, 3, 3, 0, 0, 3, 3]),
        init("conv0.W", [32, 3, 7, 7]),
        init("conv0.B", [32]),
        init("g", [c]),
        init("b", [c]),
        init("m", [c]),
        init("v", [c]),
        init("fc.W", [1, 32 * 32 * 32]),
        init("fc.B", [1]),
    ]
    return model(nodes, [value("input", ["N", 3, 64, 64])], [value("y", ["N", 1])], inits)


def audit_model(tmp_path: Path, m: onnx.ModelProto, name: str = "m.onnx", **kwargs):
    """Save `m` under tmp_path and audit it through the public API."""
    from onnxaudit import audit

    return audit(save(m, tmp_path / name), **kwargs)


def tensor_row(report, name: str):
    """The report's row for tensor `name` (fails the test if absent)."""
    matches = [t for t in report.tensors if t.name == name]
    assert len(matches) == 1, f"{name!r}: {len(matches)} rows in {[t.name for t in report.tensors]}"
    return matches[0]


def layer_row(report, name: str):
    matches = [r for r in report.rows if r.name == name]
    assert len(matches) == 1, f"{name!r}: {len(matches)} rows in {[r.name for r in report.rows]}"
    return matches[0]


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None, **attrs) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=name or outputs[0], **attrs)


# ---------------------------------------------------------------- graphs for runtime shape confirmation


def dense_relu(out_shape: Sequence[int | str | None] = ("N", 3)) -> onnx.ModelProto:
    """x (N, 4) -> MatMul W (4, 3) -> h -> Relu -> y, with y declared as `out_shape` and h declared
    (N, 3) in value_info; a wrong `out_shape` is a declaration onnxruntime will not confirm."""
    nodes = [node("MatMul", ["x", "W"], ["h"], name="dense"), node("Relu", ["h"], ["y"], name="relu")]
    m = model(nodes, [value("x", ["N", 4])], [value("y", out_shape)], [init("W", [4, 3])])
    m.graph.value_info.append(value("h", ["N", 3]))
    return m


def infinite_loop() -> onnx.ModelProto:
    """A Loop with no trip count whose condition stays true: it never ends."""
    body = helper.make_graph(
        [node("Identity", ["cond_in"], ["cond_out"]), node("Identity", ["v_in"], ["v_out"])],
        "body",
        [value("i", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL), value("v_in", ["N", 2])],
        [value("cond_out", [], TensorProto.BOOL), value("v_out", ["N", 2])],
    )
    nodes = [node("Loop", ["", "keep_going", "x"], ["y"], name="forever", body=body)]
    keep_going = numpy_helper.from_array(np.array(True), "keep_going")
    return model(nodes, [value("x", ["N", 2])], [value("y", ["N", 2])], [keep_going])


def constant_of_shape(dims: Sequence[int] = (4, 2**30), from_input: bool = False) -> onnx.ModelProto:
    """ConstantOfShape filling float32 `dims` (default 16 GiB). With `from_input`, the shape arrives
    as graph input `shape`, so nothing before the run can know the size."""
    nodes = [node("ConstantOfShape", ["shape"], ["big"], name="fill"), node("Relu", ["big"], ["y"], name="relu")]
    if from_input:
        return model(nodes, [value("shape", [len(dims)], TensorProto.INT64)], [value("y", [None] * len(dims))])
    return model(nodes, [value("x", ["N", 1])], [value("y", [None] * len(dims))], [ints("shape", dims)])


def embedding(vocab: int = 50, width: int = 8, seq: int | str = 6, wrap_negative: bool = False) -> onnx.ModelProto:
    """int64 token ids (batch, seq) -> Gather from a (vocab, width) table -> MatMul to 3 classes.
    With `wrap_negative`, ids pass tf2onnx's negative-index fix-up first: Where(ids < 0, ids + vocab, ids)."""
    nodes = [node("Cast", ["ids"], ["ids64"], name="cast", to=TensorProto.INT64)]
    inits = [init("embed.weight", [vocab, width]), init("head.weight", [width, 3])]
    if wrap_negative:
        nodes += [
            node("Less", ["ids64", "zero"], ["negative"], name="is_negative"),
            node("Add", ["ids64", "vocab"], ["wrapped"], name="wrap"),
            node("Where", ["negative", "wrapped", "ids64"], ["index"], name="select"),
        ]
        inits += [ints("zero", [0]), ints("vocab", [vocab])]
    nodes += [
        node("Gather", ["embed.weight", "index" if wrap_negative else "ids64"], ["emb"], name="embed"),
        node("MatMul", ["emb", "head.weight"], ["y"], name="head"),
    ]
    return model(nodes, [value("ids", ["batch", seq], TensorProto.INT64)], [value("y", ["batch", seq, 3])], inits)


def custom_domain_op() -> onnx.ModelProto:
    """Conv (3x3x3x4 + 4) followed by an op of a domain onnxruntime has no kernel for."""
    nodes = [
        node("Conv", ["x", "conv.W", "conv.B"], ["c"], name="conv", kernel_shape=[3, 3]),
        helper.make_node("Mystery", ["c"], ["y"], name="mystery", domain="example.custom"),
    ]
    inits = [init("conv.W", [4, 3, 3, 3]), init("conv.B", [4])]
    return model(
        nodes, [value("x", ["N", 3, 8, 8])], [value("y", ["N", 4, 6, 6])], inits, extra_opsets={"example.custom": 1}
    )


def batch_collapse() -> onnx.ModelProto:
    """x (N, 4) -> ReduceSum over axis 0 (keepdims) -> y, declared (N, 4): true only when N is 1."""
    nodes = [node("ReduceSum", ["x", "axes"], ["y"], name="sum_batch", keepdims=1)]
    return model(nodes, [value("x", ["N", 4])], [value("y", ["N", 4])], [ints("axes", [0])])


def unnamed_nodes(a_shape: Sequence[int | str] = ("N", 4)) -> onnx.ModelProto:
    """Unnamed nodes, whose events in onnxruntime's profile are named `<OpType>_<index>` (Constant nodes
    not counted), with look-alikes of other shapes: Relu -> a (N, 4) (declared `a_shape`), ReduceSum ->
    s (), If over s > Constant 0 whose branches start with an unnamed Relu over s (event Relu_0 too,
    shape ()) -> b (N, 4); a Relu *named* Relu_5 over s -> c (), the unnamed Relu at index 5 over b
    (event Relu_5 too) -> d (N, 4), Add -> y."""

    def branch(name: str, op: str) -> onnx.GraphProto:
        body = [helper.make_node("Relu", ["s"], [f"{name}1"]), helper.make_node(op, ["a", f"{name}1"], [f"{name}_out"])]
        return helper.make_graph(body, name, [], [value(f"{name}_out", None)])

    zero = numpy_helper.from_array(np.array(0, dtype=np.float32))
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Constant", [], ["zero"], value=zero),
        helper.make_node("ReduceSum", ["a"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["b"], then_branch=branch("then", "Add"), else_branch=branch("else", "Sub")),
        helper.make_node("Relu", ["s"], ["c"], name="Relu_5"),
        helper.make_node("Relu", ["b"], ["d"]),
        helper.make_node("Add", ["d", "c"], ["y"]),
    ]
    m = model(nodes, [value("x", ["N", 4])], [value("y", ["N", 4])])
    m.graph.value_info.extend([value("a", a_shape), value("c", []), value("d", ["N", 4])])
    return m


def mixed_inputs() -> onnx.ModelProto:
    """float16, bool and int32 inputs: Where(mask, float(x), float(counts))."""
    nodes = [
        node("Cast", ["x"], ["xf"], name="x_float", to=TensorProto.FLOAT),
        node("Cast", ["counts"], ["cf"], name="counts_float", to=TensorProto.FLOAT),
        node("Where", ["mask", "xf", "cf"], ["y"], name="pick"),
    ]
    inputs = [
        value("x", ["batch", 2], TensorProto.FLOAT16),
        value("mask", ["batch", 2], TensorProto.BOOL),
        value("counts", ["batch", 2], TensorProto.INT32),
    ]
    return model(nodes, inputs, [value("y", ["batch", 2])])


# ---------------------------------------------------------------- check rules and hostile files


def array(name: str, values: np.ndarray | Sequence[float]) -> onnx.TensorProto:
    """An initializer holding exactly `values` (for rules that look at values)."""
    return numpy_helper.from_array(np.asarray(values), name)


def linear(
    weight: onnx.TensorProto, extra: Sequence[onnx.TensorProto] = (), ir_version: int = 8, opset: int = 17
) -> onnx.ModelProto:
    """x (N, rows) -> MatMul(weight) -> y; `extra` initializers ride along (unused unless named)."""
    rows = weight.dims[0] if len(weight.dims) == 2 else "K"
    return model(
        [node("MatMul", ["x", weight.name], ["y"], name="fc")],
        [value("x", ["N", rows])],
        [value("y", None)],
        [weight, *extra],
        opset=opset,
        ir_version=ir_version,
    )


def batchnorm(
    gamma: Sequence[float],
    beta: Sequence[float],
    mean: Sequence[float],
    var: Sequence[float],
    channels: int | None = None,
    inputs: Sequence[str] = ("x", "g", "b", "m", "v"),
    **attrs: object,
) -> onnx.ModelProto:
    """x (N, C, 4, 4) -> BatchNormalization(gamma, beta, mean, var) -> y."""
    c = channels if channels is not None else len(gamma)
    vectors = [array(n, np.asarray(v, np.float32)) for n, v in zip("gbmv", (gamma, beta, mean, var), strict=True)]
    return model(
        [node("BatchNormalization", list(inputs), ["y"], name="bn0", **attrs)],
        [value("x", ["N", c, 4, 4])],
        [value("y", None)],
        vectors,
    )


def external(
    name: str,
    dims: Sequence[int],
    location: str,
    offset: str | int | None = 0,
    length: str | int | None = "dims",
    dtype: int = TensorProto.FLOAT,
) -> onnx.TensorProto:
    """A tensor whose bytes are said to live in `location`; entries are written exactly as given
    (length "dims": the byte size the dims need; None: entry left out)."""
    t = onnx.TensorProto(name=name, data_type=dtype, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    if length == "dims":
        length = int(np.prod(dims, dtype=object)) * np.dtype(helper.tensor_dtype_to_np_dtype(dtype)).itemsize
    for key, val in (("location", location), ("offset", offset), ("length", length)):
        if val is not None:
            t.external_data.add(key=key, value=str(val))
    return t


def _tag(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + varint(len(payload)) + payload


def save_with_hole(m: onnx.ModelProto, weight: str, dims: Sequence[int], path: Path) -> Path:
    """Save `m` plus a float32 initializer `weight` whose raw_data is a hole: a model file of any size
    (over 2 GiB too) that takes no disk space. The hole is the file's last bytes."""
    nbytes = 4 * int(np.prod(dims, dtype=object))
    head = onnx.TensorProto(name=weight, data_type=TensorProto.FLOAT, dims=list(dims)).SerializeToString()
    head += _tag(9, 2) + varint(nbytes)  # raw_data: its bytes follow, as a hole
    tensor_len = len(head) + nbytes
    graph = m.graph.SerializeToString()
    init_prefix = _tag(5, 2) + varint(tensor_len)
    rest = onnx.ModelProto()
    rest.CopyFrom(m)
    rest.ClearField("graph")
    graph_len = len(graph) + len(init_prefix) + tensor_len
    data = rest.SerializeToString() + _tag(7, 2) + varint(graph_len) + graph + init_prefix + head
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(len(data) + nbytes)
    return path


def deep_nesting(levels: int) -> bytes:
    """A model whose If nodes nest `levels` subgraphs deep, encoded by hand (protobuf itself refuses
    to build messages this deep)."""
    graph = b""
    for level in range(levels):
        attr = _field(1, b"then_branch") + _tag(20, 0) + varint(onnx.AttributeProto.GRAPH) + _field(6, graph)
        if_node = _field(1, b"cond") + _field(2, f"out{level}".encode()) + _field(4, b"If") + _field(5, attr)
        graph = _field(1, if_node)
    opset = _field(8, _tag(2, 0) + varint(17))
    return _tag(1, 0) + varint(8) + opset + _field(7, graph)


def reshape_to(target: Sequence[int]) -> onnx.ModelProto:
    """x (N, 2) -> Reshape to the constant `target`: fails at run time when the sizes differ."""
    nodes = [node("Reshape", ["x", "target"], ["y"], name="reshape")]
    return model(nodes, [value("x", ["N", 2])], [value("y", [None] * len(target))], [ints("target", target)])


def with_training_info(m: onnx.ModelProto, updated: Sequence[str]) -> onnx.ModelProto:
    """`m` with a TrainingInfoProto whose algorithm writes a new value for each of `updated` (an
    Identity stands in for the optimizer step) and binds it back: the spec's trainable marker."""
    steps = [node("Identity", [name], [f"{name}__next"]) for name in updated]
    algorithm = helper.make_graph(steps, "step", [], [value(f"{name}__next", None) for name in updated])
    bindings = [(name, f"{name}__next") for name in updated]
    m.training_info.append(helper.make_training_info(algorithm, bindings, None, None))
    return m


def conv_bn_scaled() -> onnx.ModelProto:
    """Conv(2 filters, 3x3 over 3 channels, bias) -> BatchNormalization(2) -> Mul by a stored 2-vector."""
    return model(
        [
            node("Conv", ["x", "W", "B"], ["c"], name="conv"),
            node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], name="bn"),
            node("Mul", ["n", "temperature"], ["y"], name="scale"),
        ],
        [value("x", ["N", 3, 8, 8])],
        [value("y", None)],
        [init("W", [2, 3, 3, 3]), init("B", [2])]
        + [init(name, [2]) for name in ("gamma", "beta", "mean", "var")]
        + [init("temperature", [2, 1, 1])],
    )


# ---------------------------------------------------------------- graphs for the robustness round


def dynamic_matmul_integer(scale_on_product: bool = False, rows: int = 16, cols: int = 8) -> onnx.ModelProto:
    """onnxruntime's per-channel dynamic quantization of MatMul + bias: DynamicQuantizeLinear(x), then
    Mul(x_scale, w_scale) rescales Cast(MatMulInteger) and Add adds the float bias. With
    `scale_on_product`, the per-channel vector multiplies the product itself (as a folded BN would)."""
    rescale = [node("Mul", ["mf", "xs"], ["a"]), node("Mul", ["a", "ws"], ["c"])]
    if not scale_on_product:
        rescale = [node("Mul", ["xs", "ws"], ["s"]), node("Mul", ["mf", "s"], ["c"])]
    return model(
        [
            node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            node("MatMulInteger", ["xq", "W", "xz", "wz"], ["mi"]),
            node("Cast", ["mi"], ["mf"], to=TensorProto.FLOAT),
            *rescale,
            node("Add", ["c", "B"], ["y"]),
        ],
        [value("x", ["N", rows])],
        [value("y", ["N", cols])],
        [init("W", [rows, cols], np.int8), init("wz", [cols], np.int8), init("ws", [cols]), init("B", [cols])],
        opset=13,
    )


def if_with_unequal_branches(
    then_dims: Sequence[int] = (4, 4), else_dims: Sequence[int] = (4, 8), outer: bool = False, copy: bool = False
) -> onnx.ModelProto:
    """If whose branches keep MatMul weights of different sizes in Constant nodes; with `outer`, the
    weights are main-graph initializers each branch reads (torch.onnx dynamo's torch.cond); with `copy`,
    the else branch holds the then branch's weight again (Silero VAD v4's decoder, folded per branch)."""
    weights = {"then": init("then_W", then_dims), "else": init("else_W", else_dims)}
    if copy:
        weights["else"] = numpy_helper.from_array(numpy_helper.to_array(weights["then"]), "else_W")

    def branch(name: str) -> onnx.GraphProto:
        nodes = [] if outer else [helper.make_node("Constant", [], [f"{name}_W"], value=weights[name])]
        nodes.append(node("MatMul", ["x", f"{name}_W"], [name]))
        return helper.make_graph(nodes, name, [], [value(name, None)])

    return model(
        [node("If", ["c"], ["r"], then_branch=branch("then"), else_branch=branch("else"))],
        [value("x", [1, 4]), value("c", [], TensorProto.BOOL)],
        [value("r", None)],
        list(weights.values()) if outer else [],
    )


def embed_layer_norm_then_dense(hidden: int = 8, positions: int = 8, vocab: int = 20) -> onnx.ModelProto:
    """EmbedLayerNormalization (word, position tables) then MatMul by an anonymous hidden x hidden
    weight: square like the position table, but no copy of it."""
    return model(
        [
            node("EmbedLayerNormalization", ["ids", "", "we", "pe", "", "g", "b"], ["e", "mi"], domain="com.microsoft"),
            node("MatMul", ["e", "onnx::MatMul_9"], ["y"]),
        ],
        [value("ids", ["N", 4], TensorProto.INT32)],
        [value("y", None)],
        [
            init("we", [vocab, hidden]),
            init("pe", [positions, hidden]),
            init("g", [hidden]),
            init("b", [hidden]),
            init("onnx::MatMul_9", [hidden, hidden]),
        ],
        extra_opsets={"com.microsoft": 1},
    )


def strided_convs(height: int | str = "height", width: int | str = "width", batch: str = "batch") -> onnx.ModelProto:
    """x (batch, 3, height, width) -> Conv 3x3 stride 2, no padding -> Conv 3x3 stride 2: the strides' product is
    4 and the second window needs 3 rows after the first, so the smallest height and width are 8 (4 leaves 1)."""
    nodes = [
        node("Conv", ["x", "w1"], ["h1"], name="conv1", kernel_shape=[3, 3], strides=[2, 2]),
        node("Conv", ["h1", "w2"], ["y"], name="conv2", kernel_shape=[3, 3], strides=[2, 2]),
    ]
    # the file names the output's spatial dims itself: a run must show their values, not these names
    out = value("y", [batch, 4, "floor(height/2 - 1/2) + 1", "out_w"])
    weights = [init("w1", [4, 3, 3, 3]), init("w2", [4, 4, 3, 3])]
    return model(nodes, [value("x", [batch, 3, height, width])], [out], weights)


def scalar_switch(rate: int = 16000) -> onnx.ModelProto:
    """An int64 scalar `sr` compared with a constant: If(sr == rate) passes x on, else reshapes x to (7, 7),
    which fails at run time for x (1, 4). Only the compared value runs."""
    then = helper.make_graph([node("Identity", ["x"], ["then_y"])], "then", [], [value("then_y", None)])
    other = helper.make_graph(
        [node("Reshape", ["x", "seven"], ["else_y"])], "else", [], [value("else_y", None)], [ints("seven", [7, 7])]
    )
    nodes = [
        node("Equal", ["sr", "rate"], ["is_rate"], name="is_rate"),
        node("If", ["is_rate"], ["y"], name="switch", then_branch=then, else_branch=other),
    ]
    inputs = [value("x", [1, 4]), value("sr", [], TensorProto.INT64)]
    return model(nodes, inputs, [value("y", None)], [ints("rate", [rate])])


def zero_d_scale() -> onnx.ModelProto:
    """x (2, 3) times a 0-d float input `s`: y (2, 3)."""
    nodes = [node("Mul", ["x", "s"], ["y"], name="scale")]
    return model(nodes, [value("x", [2, 3]), value("s", [])], [value("y", [2, 3])])


def reshape_by_16(seq: int | str = "seq") -> onnx.ModelProto:
    """x (batch, seq) reshaped to (1, 16, -1): a length that is not a multiple of 16 fails at run time."""
    nodes = [node("Reshape", ["x", "target"], ["y"], name="blocks")]
    return model(nodes, [value("x", ["batch", seq])], [value("y", None)], [ints("target", [1, 16, -1])])


def unnamed_dims(dims: Sequence[int | str | None] = (-1, None, 4)) -> onnx.ModelProto:
    """x with unnamed or -1 dims -> Relu -> y with the same dims."""
    return model([node("Relu", ["x"], ["y"], name="relu")], [value("x", dims)], [value("y", dims)])


def bn_reading_its_parameters_as_statistics(channels: int = 6) -> onnx.ModelProto:
    """An untrained BN as a simplifier (onnxsim, onnxslim) leaves it: running mean (zeros) and variance
    (ones) equal beta and gamma, each stored once, and the node reads (gamma, beta, beta, gamma)."""
    bn = node("BatchNormalization", ["x", "bn.weight", "bn.bias", "bn.bias", "bn.weight"], ["y"], name="/bn/BN")
    m = model(
        [bn],
        [value("x", ["N", channels, 4, 4])],
        [value("y", None)],
        [array("bn.weight", np.ones(channels, np.float32)), array("bn.bias", np.zeros(channels, np.float32))],
    )
    m.producer_name = "pytorch"
    return m


def positional_embedding(positions: int = 5, vocab: int = 20, seq: str = "seq") -> onnx.ModelProto:
    """Token ids (batch, seq) -> token embedding + a learned positional table (positions, 8) indexed by
    arange(seq): a sequence longer than `positions` fails at run time (Gather index out of range)."""
    scalar = [helper.make_tensor(n, TensorProto.INT64, [], [v]) for n, v in (("zero", 0), ("one", 1))]
    nodes = [
        node("Gather", ["tok.weight", "ids"], ["emb"], name="tok"),
        node("Shape", ["ids"], ["shape"], name="shape"),
        node("Gather", ["shape", "one"], ["length"], name="length"),
        node("Range", ["zero", "length", "one"], ["steps"], name="arange"),
        node("Gather", ["pos.weight", "steps"], ["pe"], name="pos"),
        node("Add", ["emb", "pe"], ["y"], name="add"),
    ]
    weights = [init("tok.weight", [vocab, 8]), init("pos.weight", [positions, 8]), *scalar]
    inputs = [value("ids", ["batch", seq], TensorProto.INT64)]
    return model(nodes, inputs, [value("y", ["batch", seq, 8])], weights)


# ---------------------------------------------------------------- bombs (issue #17): big graphs in small files


def empty_nodes(n: int) -> bytes:
    """linear() with n empty NodeProtos appended to its graph: 2 bytes each (1M of them fit in 2 MB)."""
    m = linear(init("W", [4, 4]))
    graph = m.graph.SerializeToString() + b"\x0a\x00" * n
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def concat_inputs(n: int) -> bytes:
    """One Concat of n inputs, all the same 64-element constant (3 bytes an input), beside a MatMul."""
    c = helper.make_tensor("c", TensorProto.INT64, [64], list(range(64)))
    nodes = [
        helper.make_node("Concat", ["c"] * n, ["cat"], name="cat", axis=0),
        node("Reshape", ["x", "cat"], ["r"], name="r"),
        node("MatMul", ["x", "W"], ["y"], name="fc"),
    ]
    return model(nodes, [value("x", ["N", 4])], [value("y", None)], [init("W", [4, 4]), c]).SerializeToString()


def nested_if(depth: int) -> onnx.ModelProto:
    """An If whose two branches are Ifs, `depth` levels: 2**depth - 1 subgraphs, an Identity at each leaf."""

    def branch(level: int) -> onnx.GraphProto:
        inner = helper.make_node("Identity", ["x"], ["o"])
        if level > 1:
            inner = helper.make_node("If", ["c"], ["o"], then_branch=branch(level - 1), else_branch=branch(level - 1))
        return helper.make_graph([inner], f"l{level}", [], [value("o", None)])

    top = helper.make_node("If", ["c"], ["o"], then_branch=branch(depth - 1), else_branch=branch(depth - 1))
    return model([top], [value("x", [4]), value("c", [], TensorProto.BOOL)], [value("o", None)])


def small_branches(ifs: int, per_branch: int) -> bytes:
    """linear() with `ifs` If nodes whose then_branch holds `per_branch` empty nodes: at 2,000 a branch each If is
    under 4 KiB, small enough to be copied whole by a walk that only looks inside large messages."""
    branch = helper.make_graph([], "b", [], [])
    branch.node.extend([onnx.NodeProto()] * per_branch)
    if_node = helper.make_node("If", ["c"], ["o"], then_branch=branch, else_branch=helper.make_graph([], "e", [], []))
    m = linear(init("W", [4, 4]))
    graph = m.graph.SerializeToString() + _field(1, if_node.SerializeToString()) * ifs
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def small_functions(functions: int, per_function: int) -> bytes:
    """linear() with `functions` local functions of `per_function` empty nodes each (2 bytes a node)."""
    m = linear(init("W", [4, 4]))
    for k in range(functions):
        func = helper.make_function("f", f"g{k}", [], [], [], [helper.make_opsetid("", 17)])
        func.node.extend([onnx.NodeProto()] * per_function)
        m.functions.append(func)
    return m.SerializeToString()


def training_nodes(n: int) -> bytes:
    """linear() with a TrainingInfoProto whose algorithm graph holds n empty nodes (nothing reads them)."""
    m = linear(init("W", [4, 4]))
    algorithm = helper.make_graph([], "step", [], []).SerializeToString() + b"\x0a\x00" * n
    return m.SerializeToString() + _field(20, _field(2, algorithm))


def unreadable_folder(parent: Path, m: onnx.ModelProto) -> str:
    """A folder below `parent` that cannot be listed, even by root: its path is longer than PATH_MAX
    (built one level at a time through descriptors), so scandir fails with ENAMETOOLONG. Unprivileged,
    a folder without permissions too."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(20):  # 20 x 250 characters
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        save(m, Path(f"/proc/self/fd/{fd}/hidden.onnx"))
    finally:
        os.close(fd)
    if os.geteuid() != 0:
        (parent / "locked").mkdir()
        save(m, parent / "locked" / "m.onnx")
        (parent / "locked").chmod(0)
    return "d" * 250


def empty_graph_fields(field: int, n: int) -> bytes:
    """linear() with n empty messages appended to its graph's field `field` (5 initializer, 11 input, 12 output,
    13 value_info, 15 sparse_initializer): 2 bytes each."""
    m = linear(init("W", [4, 4]))
    graph = m.graph.SerializeToString() + _field(field, b"") * n
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def empty_model_fields(field: int, n: int) -> bytes:
    """linear() with n empty messages in the model's field `field` (8 opset_import, 14 metadata_props)."""
    return linear(init("W", [4, 4])).SerializeToString() + _field(field, b"") * n


def empty_node_fields(field: int, n: int) -> bytes:
    """linear() whose MatMul has n empty entries appended to its field `field` (2 output, 5 attribute,
    9 metadata_props)."""
    m = linear(init("W", [4, 4]))
    fc = m.graph.node[0].SerializeToString() + _field(field, b"") * n
    m.graph.ClearField("node")
    graph = m.graph.SerializeToString() + _field(1, fc)
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def many_dims(n: int) -> bytes:
    """linear() whose input x declares n more empty dims (2 bytes each) after its own two."""
    m = linear(init("W", [4, 4]))
    x = m.graph.input[0]
    shape = x.type.tensor_type.shape.SerializeToString() + _field(1, b"") * n
    x.type.tensor_type.ClearField("shape")
    tensor_type = x.type.tensor_type.SerializeToString() + _field(2, shape)
    x.type.ClearField("tensor_type")
    x_bytes = x.SerializeToString() + _field(2, _field(1, tensor_type))
    m.graph.ClearField("input")
    graph = m.graph.SerializeToString() + _field(11, x_bytes)
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def long_text(where: str, n: int) -> bytes:
    """linear() with an n-character text (printable, with an escape and a right-to-left override in every 64) as
    `where`: node_name, op_type, domain (the node's), opset_domain, producer, dim_param, metadata."""
    text = ("a" * 62 + "\x1b\u202e") * (n // 64)
    m = linear(init("W", [4, 4]))
    fc = m.graph.node[0]
    if where == "opset_domain":
        m.opset_import.add(domain=text, version=1)
    elif where == "dim_param":
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = text
    elif where == "metadata":
        m.metadata_props.add(key="k", value=text)
    elif where == "producer":
        m.producer_name = text
    else:
        setattr(fc, {"node_name": "name", "op_type": "op_type", "domain": "domain"}[where], text)
    return m.SerializeToString()


def small_node_entries(field: int, nodes: int, per_node: int) -> bytes:
    """linear() with `nodes` Relu nodes under 4 KiB, each with `per_node` empty entries in its field `field`
    (2 output, 5 attribute, 9 metadata_props): entries a walk of large messages only would not see."""
    m = linear(init("W", [4, 4]))
    small = _field(4, b"Relu") + _field(field, b"") * per_node
    graph = m.graph.SerializeToString() + _field(1, small) * nodes
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def small_value_infos(infos: int, dims: int) -> bytes:
    """linear() with `infos` value infos under 4 KiB, each a shape of `dims` empty dims."""
    m = linear(init("W", [4, 4]))
    info = _field(1, b"v") + _field(2, _field(1, _field(2, _field(1, b"") * dims)))
    graph = m.graph.SerializeToString() + _field(13, info) * infos
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def small_tensor_entries(tensors: int, entries: int) -> bytes:
    """linear() with `tensors` initializers under 4 KiB, each with `entries` empty external_data entries."""
    m = linear(init("W", [4, 4]))
    tensor = _field(8, b"t") + _field(13, b"") * entries
    graph = m.graph.SerializeToString() + _field(5, tensor) * tensors
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def _in_graph(extra: bytes, nodes: bytes = b"") -> bytes:
    """linear() with `extra` (graph fields, as written) appended to its graph, and `nodes` to its model's fields."""
    m = linear(init("W", [4, 4]))
    graph = m.graph.SerializeToString() + extra
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph) + nodes


# Where hidden_entries puts a message's entries: its bytes for `per` empty entries
HIDDEN: dict[str, Callable[[int], bytes]] = {
    # a value info's metadata; the dims of a sequence of tensors' shape
    "value_info_metadata": lambda per: _field(13, _field(1, b"v") + _field(4, b"") * per),
    "sequence_dims": lambda per: _field(
        13, _field(1, b"v") + _field(2, _field(4, _field(1, _field(1, _field(2, _field(1, b"") * per)))))
    ),
    # an initializer's external-data entries, strings, dims (one a tag, or packed); a sparse initializer's dims
    "tensor_external": lambda per: _field(5, _field(8, b"t") + _field(13, b"") * per),
    "tensor_strings": lambda per: _field(5, _field(8, b"t") + b"\x10\x08" + _field(6, b"") * per),
    "tensor_dims": lambda per: _field(5, _field(8, b"t") + b"\x08\x00" * per + b"\x10\x01"),
    "tensor_packed_dims": lambda per: _field(5, _field(8, b"t") + _field(1, b"\x00" * per) + b"\x10\x01"),
    "sparse_dims": lambda per: _field(15, b"\x18\x00" * per),
    # a quantization annotation's entries
    "annotation_entries": lambda per: _field(14, _field(1, b"W") + _field(2, b"") * per),
    # a Relu's tensor attribute (t) with external-data entries; a node's device configuration's sharding specs
    "attribute_tensor_external": lambda per: _field(
        1,
        _field(4, b"Relu")
        + _field(5, _field(1, b"a") + _field(5, _field(8, b"t") + _field(13, b"") * per) + b"\xa0\x01\x04"),
    ),
    "node_sharding": lambda per: _field(1, _field(4, b"Relu") + _field(10, _field(1, b"c") + _field(2, b"") * per)),
}


def hidden_entries(where: str, messages: int, per: int) -> bytes:
    """linear() with `messages` messages holding `per` empty entries each (2 bytes an entry, dims packed 1 byte) in
    a place `where` (HIDDEN) a walk copying small messages whole would not count: 4,900 of 2,000 fit in 20 MB."""
    if where == "device_devices":  # the model's device configurations' device names
        return _in_graph(b"", _field(26, _field(1, b"d") + _field(3, b"") * per) * messages)
    return _in_graph(HIDDEN[where](per) * messages)


HIDDEN_PLACES = (*HIDDEN, "device_devices")


def _attribute(name: bytes, kind: int, payload: bytes) -> bytes:
    """An AttributeProto's bytes: its name, type (field 20) and `payload` (its value fields, as written)."""
    return _field(1, name) + _tag(20, 0) + varint(kind) + payload


def _int64_tensor(per: int) -> bytes:
    """A TensorProto named t of `per` INT64 zeros in int64_data, packed (1 byte a number), dims (per,)."""
    return _field(8, b"t") + _tag(1, 0) + varint(per) + _tag(2, 0) + varint(TensorProto.INT64) + _field(7, bytes(per))


def _node(op: bytes, extra: bytes, inputs: Sequence[bytes] = (b"x",), output: bytes = b"r") -> bytes:
    """A graph's node field: a NodeProto of `inputs`, one output and op type `op`, then `extra` (its fields)."""
    return _field(1, b"".join(_field(1, i) for i in inputs) + _field(2, output) + _field(4, op) + extra)


# Where hidden_numbers puts a message's numbers: its bytes for `per` zeros, 1 byte each (packed) or 2 (one a tag). Each
# node reads linear()'s x and writes a value, so shape inference copies the numbers too (18M of a Relu's ints: 880
# MiB, 735 MiB in a node without either)
NUMBERS: dict[str, Callable[[int], bytes]] = {
    # a Relu's ints attribute, packed or one a tag; a Constant's value_ints
    "attribute_ints": lambda per: _node(
        b"Relu", _field(5, _attribute(b"a", AttributeProto.INTS, _field(8, bytes(per))))
    ),
    "attribute_unpacked_ints": lambda per: _node(
        b"Relu", _field(5, _attribute(b"a", AttributeProto.INTS, (_tag(8, 0) + b"\x00") * per))
    ),
    "constant_ints": lambda per: _node(
        b"Constant", _field(5, _attribute(b"value_ints", AttributeProto.INTS, _field(8, bytes(per)))), (), b"k"
    ),
    # int64_data of an initializer and of a Relu's tensor attribute
    "tensor_int64": lambda per: _field(5, _int64_tensor(per)),
    "attribute_tensor_int64": lambda per: _node(
        b"Relu", _field(5, _attribute(b"a", AttributeProto.TENSOR, _field(5, _int64_tensor(per))))
    ),
    # a node's device configuration's sharding spec's devices
    "node_sharding_devices": lambda per: _node(
        b"Relu", _field(10, _field(1, b"c") + _field(2, _field(1, b"x") + _field(2, bytes(per))))
    ),
}


def hidden_numbers(where: str, messages: int, per: int) -> bytes:
    """linear() with `messages` messages holding `per` zeros each in a repeated varint field (NUMBERS), which
    protobuf decodes from 1 byte into 8 and grows its array for: 18M of an attribute's ints in 18 MB cost 880 MiB.
    4,900 of 3,900 packed fit in 20 MB, each message under 4 KiB."""
    return _in_graph(NUMBERS[where](per) * messages)


def attribute_floats(per: int, messages: int = 1) -> bytes:
    """linear() with `messages` Relu nodes whose floats attribute holds `per` zeros, packed (4 bytes each, decoded
    into 4)."""
    return _in_graph(
        _node(b"Relu", _field(5, _attribute(b"a", AttributeProto.FLOATS, _field(7, bytes(4 * per))))) * messages
    )


def named_initializers(n: int) -> bytes:
    """linear() with n float scalar initializers named t0000000, t0000001, ... (15 bytes each: 999,980 in 15 MB); each
    is a tensor the view builds and a row, unlike empty_graph_fields' nameless ones, which collapse into one."""
    m = linear(init("W", [4, 4]))
    graph = m.graph.SerializeToString() + b"".join(
        _field(5, _field(8, b"t%07d" % i) + _field(2, b"\x01")) for i in range(n)
    )
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def named_values(field: int, n: int) -> bytes:
    """linear() with n float values named v0000000, ... in its graph's field `field` (11 input, 12 output,
    13 value_info), each typed (18 bytes each: 999,980 in 18 MB): each a value shape inference types and the view
    keeps."""
    m = linear(init("W", [4, 4]))
    typed = _field(2, _field(1, b"\x08\x01"))  # TypeProto.tensor_type.elem_type = FLOAT
    graph = m.graph.SerializeToString() + b"".join(_field(field, _field(1, b"v%07d" % i) + typed) for i in range(n))
    m.ClearField("graph")
    return m.SerializeToString() + _field(7, graph)


def shared_dim_name(length: int, layers: int) -> bytes:
    """`layers` MatMuls chained from an input whose first dim is named by `length` characters: shape inference writes
    the name into every value's shape, a copy a value (100,000 characters x 5,000 layers, a 0.27 MB file: summary
    2.4 GiB, not bounded yet)."""
    nodes = [node("MatMul", ["x" if i == 0 else f"h{i - 1}", "W"], [f"h{i}"], name=f"fc{i}") for i in range(layers)]
    outputs = [value(f"h{layers - 1}", None)]
    return model(nodes, [value("x", ["D" * length, 4])], outputs, [init("W", [4, 4])]).SerializeToString()
