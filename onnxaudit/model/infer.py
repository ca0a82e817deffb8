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
from onnxaudit.model.read import SizeHook
from onnxaudit.model.view import ValueInfo, dtype_and_shape

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
        if shape is not None:
            shapes[value.name] = ValueInfo(value.name, dtype, shape)
    return shapes
