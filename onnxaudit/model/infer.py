"""Static shapes from onnx shape inference, run on a copy without weight bytes (after folding shape arithmetic)."""

from __future__ import annotations

from onnxaudit.io.dims import element_count
from onnxaudit.io.isolate import IsolatedFailure
from onnxaudit.io.onnxcore import (
    AttributeProto,
    GraphProto,
    ModelProto,
    TensorProto,
    infer_shapes,
)
from onnxaudit.io.text import as_text
from onnxaudit.model.read import SizeHook
from onnxaudit.model.view import LONG_DIM_NAME, ValueInfo, dtype_and_shape, shown_dim_name

# the ops constfold can evaluate (its _EVAL table, plus Shape); kept equal by tests/test_constfold.py
FOLDABLE_OPS = frozenset(
    "Identity Cast Gather Concat Slice Reshape Transpose Unsqueeze Squeeze ConstantOfShape Add Sub Mul Div "
    "Neg Equal Where Range Expand Shape".split()
)
FOLD_MAX_ELEMENTS = 64  # constfold.MAX_ELEMENTS


def has_foldable_chain(graph: GraphProto) -> bool:
    """Whether constfold would fold anything beyond Constant nodes (which inference reads as they
    are): a look over names only, so numpy is imported only for graphs that need it. A graph without a
    foldable op is answered from its op types alone, before its initializers are looked at (999,980 of them
    fit in 2 MB: 0.7 s)."""
    if FOLDABLE_OPS.isdisjoint({node.op_type for node in graph.node}):  # at most MAX_INFER_NODES nodes
        return False
    known: set[str] = set()  # small constant values
    dims: set[str] = set()  # values whose dims are known (what Shape needs)
    for init in graph.initializer:
        dims.add(init.name)
        if init.data_location != TensorProto.EXTERNAL and element_count(tuple(init.dims)) <= FOLD_MAX_ELEMENTS:
            known.add(init.name)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            continue
        out = node.output[0]
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == AttributeProto.TENSOR:
                    dims.add(out)
                    if element_count(tuple(attr.t.dims)) <= FOLD_MAX_ELEMENTS:
                        known.add(out)
        elif node.op_type == "Shape":
            if node.input and node.input[0] in dims:
                return True
        elif node.op_type in FOLDABLE_OPS and node.input and all(not i or i in known for i in node.input):
            return True
    return False


def infer_value_shapes(
    model: ModelProto,
    sizes: SizeHook | None = None,
    in_place: bool = False,
    notes: list[str] | None = None,
    data_prop: bool = False,
) -> dict[str, ValueInfo]:
    """Static shapes from onnx shape inference, run on a copy whose large weights are stripped
    (`in_place`: the model is already a light copy of the reader's own). A failure of inference
    is added to `notes`. `data_prop`: onnx's data propagation too (the cost stage, with input dims bound:
    a Reshape's target computed from Shape then has numbers)."""
    if in_place:
        light = model
    else:
        light = ModelProto()
        light.CopyFrom(model)
    for init in light.graph.initializer:
        known = sizes(init) if sizes is not None else None
        if (known[1] if known is not None else len(init.raw_data)) > 4096:
            init.ClearField("raw_data")
            init.data_location = TensorProto.EXTERNAL  # dims stay; inference never reads the bytes
            del init.external_data[:]
            init.external_data.add(key="location", value="__stripped__")
    if has_foldable_chain(light.graph):
        from onnxaudit.model.constfold import fold_shape_arithmetic  # numpy: imported only when needed

        try:
            fold_shape_arithmetic(light)
        except Exception:  # folding only sharpens inference; it never decides a count
            pass
    long_names = _alias_long_dim_names(light.graph)
    try:
        inferred = infer_shapes(light, data_prop=data_prop)
    except IsolatedFailure as exc:  # inference is a courtesy; counts never depend on it
        if notes is not None:
            notes.append(f"static shape inference failed: {exc}; output shapes not shown")
        inferred = light
    shapes: dict[str, ValueInfo] = {}
    graph = inferred.graph
    for value in list(graph.value_info) + list(graph.output) + list(graph.input):
        dtype, shape = dtype_and_shape(value.type)
        if shape is None:
            continue
        if long_names:
            shape = tuple(long_names.get(d, d) if isinstance(d, str) else d for d in shape)
        shapes[value.name] = ValueInfo(value.name, dtype, shape)
    return shapes


def _alias_long_dim_names(graph: GraphProto) -> dict[str, str]:
    """Give each dim name over LONG_DIM_NAME characters a short alias in the inference copy, and return alias ->
    the name as shown (view.shown_dim_name): inference writes a dim's name into every value it reaches, so one
    100,000-character name before 5,000 MatMuls (a 0.27 MB file) came back as 500 MB of shapes (#17)."""
    aliases: dict[str, str] = {}
    names: dict[str, str] = {}
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if not value.type.HasField("tensor_type"):
            continue
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and len(dim.dim_param) > LONG_DIM_NAME:
                name = dim.dim_param
                alias = aliases.get(name)
                if alias is None:
                    alias = aliases[name] = f"onnxaudit_long_dim_{len(aliases)}_{id(aliases)}"
                    names[alias] = shown_dim_name(as_text(name))
                dim.dim_param = alias
    return names
