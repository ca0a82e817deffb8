"""The model's structure for a shape run: read again without weight bytes, the shapes the file
declares, and onnx's strict shape inference with every input dim bound."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from onnxaudit.errors import AuditError
from onnxaudit.io import onnxcore
from onnxaudit.io.onnxcore import AttributeProto, ModelProto, TensorProto, TypeProto
from onnxaudit.io.text import as_text
from onnxaudit.model.read import read_without_weights
from onnxaudit.model.view import ModelView, ValueInfo, dtype_and_shape
from onnxaudit.shapes.feeds import Feed

if TYPE_CHECKING:
    from onnx import ValueInfoProto


def read_structure(view: ModelView) -> ModelProto:
    """The model's structure (graphs, value_info, small constants) without its weight bytes, read
    again by the wire reader (weights are never copied) so the counting path keeps its own model."""
    model, size, sizes, *_ = read_without_weights(Path(view.path))
    if size != view.file_bytes:
        raise AuditError(f"{view.path}: the file changed while onnxaudit was reading it")
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.type == AttributeProto.TENSOR]
    for tensor in tensors:
        known = sizes(tensor)
        if known is not None and known[1] > 0:  # stripped: dims stay, inference must not read the data
            tensor.data_location = TensorProto.EXTERNAL
            del tensor.external_data[:]
            tensor.external_data.add(key="location", value="__stripped__")
    return model


def declared_shapes(model: ModelProto) -> dict[str, ValueInfo]:
    """Shapes the file itself states for main-graph values (outputs and value_info)."""
    shapes: dict[str, ValueInfo] = {}
    for value in list(model.graph.value_info) + list(model.graph.output):
        dtype, shape = dtype_and_shape(value.type)
        if dtype or shape is not None:
            shapes[value.name] = ValueInfo(value.name, dtype, shape)
    return shapes


def symbolic_params(model: ModelProto) -> set[str]:
    graph = model.graph
    return {
        as_text(d.dim_param)
        for v in list(graph.input) + list(graph.output) + list(graph.value_info)
        for d in v.type.tensor_type.shape.dim
        if d.dim_param
    }


def _kinds(values: list[ValueInfoProto], kinds: dict[str, str]) -> None:
    for value in values:
        kind = value.type.WhichOneof("value")
        if kind and kind != "tensor_type":
            kinds[value.name] = kind.removesuffix("_type")  # sequence, map, optional, sparse_tensor


def _infer_shapes(model: ModelProto, check_type: bool, strict_mode: bool) -> ModelProto:
    """onnx.shape_inference.infer_shapes(..., data_prop=True) through onnx's C++ extension in a forked
    child (onnxcore): the Python wrapper would run onnx/__init__, and a native crash on a hostile
    structure must not end the audit."""
    return onnxcore.infer_shapes(model, check_type=check_type, strict_mode=strict_mode, data_prop=True)


def infer_bound(model: ModelProto, feeds: list[Feed]) -> tuple[dict[str, ValueInfo], dict[str, str], str]:
    """onnx's strict shape inference with every input's dims bound, on the model's structure only
    (declared value_info and output shapes removed, so inference cannot just echo the file). Also
    returns the values the file or inference types as non-tensors (sequence, map, ...)."""
    kinds: dict[str, str] = {}
    _kinds(list(model.graph.value_info) + list(model.graph.output), kinds)
    bound = {f.name: f.shape for f in feeds}
    for value in model.graph.input:
        if value.name in bound and value.type.HasField("tensor_type"):
            shape = value.type.tensor_type.shape
            shape.ClearField("dim")
            for d in bound[value.name]:
                shape.dim.add().dim_value = d
    del model.graph.value_info[:]
    for value in model.graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")
    note = ""
    try:
        inferred = _infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # onnx raises InferenceError, ValidationError, RuntimeError...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        note = f"onnx strict shape inference failed ({first}); compared with non-strict inference instead"
        try:
            inferred = _infer_shapes(model, check_type=False, strict_mode=False)
        except Exception:
            return {}, kinds, "onnx shape inference failed; shapes compared with the declared ones only"
    return _inferred_shapes(inferred, kinds), kinds, note


def _inferred_shapes(inferred: ModelProto, kinds: dict[str, str]) -> dict[str, ValueInfo]:
    """Tensor shapes of the inferred values, and their non-tensor kinds into `kinds`. Models repeat
    a few types many times, and reading a type's dims through protobuf costs ~5 us a value: each
    distinct type (its serialized bytes, one C call) is decoded once."""
    shapes: dict[str, ValueInfo] = {}
    decoded: dict[bytes, tuple[str, int, tuple[int | str | None, ...] | None]] = {}
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        type_proto = value.type
        key = type_proto.SerializeToString()
        known = decoded.get(key)
        if known is None:
            known = decoded[key] = _decode_type(type_proto)
        kind, dtype, dims = known
        if kind != "tensor_type":
            if kind:
                kinds[value.name] = kind.removesuffix("_type")  # sequence, map, optional, sparse_tensor
        elif dims is not None:
            shapes[value.name] = ValueInfo(value.name, dtype, dims)
    return shapes


def _decode_type(type_proto: TypeProto) -> tuple[str, int, tuple[int | str | None, ...] | None]:
    """(oneof kind, element type, dims or None) of one TypeProto."""
    kind = type_proto.WhichOneof("value") or ""
    if kind != "tensor_type":
        return kind, 0, None
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return kind, tensor.elem_type, None
    dims: list[int | str | None] = []
    for d in tensor.shape.dim:
        which = d.WhichOneof("value")
        dims.append(d.dim_value if which == "dim_value" else as_text(d.dim_param) if which == "dim_param" else None)
    return kind, tensor.elem_type, tuple(dims)
