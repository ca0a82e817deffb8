"""The shapes a cost is computed on: static inference as read, inference again with free input dims bound
(`--dim`), or what onnxruntime observed (`--run-shapes`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onnxaudit.cost.estimate import Costs, estimate
from onnxaudit.count.table import COUNTED_CATEGORIES, ParamTable
from onnxaudit.errors import UsageError
from onnxaudit.io.onnxcore import TensorProto, infer_shapes
from onnxaudit.model.read import read_without_weights
from onnxaudit.model.view import ModelView, ValueInfo, dtype_and_shape

if TYPE_CHECKING:
    from onnxaudit.shapes.confirm import ShapeCheck


def model_cost(
    view: ModelView, shown: ModelView, check: ShapeCheck | None, dims: Mapping[str, int], table: ParamTable
) -> Costs | None:
    """Costs on the best shapes at hand, or None when no shape is known at all (inference skipped)."""
    free = {d for value in view.main.inputs for d in value.shape or () if isinstance(d, str)}
    for name in dims:
        if name not in free and (check is None or name not in check.bindings):
            raise UsageError(f"--dim {name}: no model input has a dim named {name!r}")
    if not view.value_shapes:
        return None
    params = sum(t.nbytes or 0 for t in table.tensors if t.category in COUNTED_CATEGORIES)
    if check is not None and check.status in ("confirmed", "mismatch"):
        return estimate(shown, params, shown.value_shapes, {**check.bindings, **dims})
    if dims:
        shapes = bound_shapes(view, dims)
        if shapes is not None:
            return estimate(view, params, {**view.value_shapes, **shapes}, dims)
    return estimate(view, params, view.value_shapes, dims)


def bound_shapes(view: ModelView, dims: Mapping[str, int]) -> dict[str, ValueInfo] | None:
    """onnx shape inference again, every graph input's dim named in `dims` set to its value, on the
    structure alone (weights stripped, declared shapes dropped so they cannot echo the free dims): a
    Reshape's output then has numbers where static inference gave it fresh names (unk__0). None when
    inference fails; the caller then binds the names it can."""
    model, _, sizes, _ = read_without_weights(Path(view.path))
    for init in model.graph.initializer:
        known = sizes(init)
        if known is not None and known[1] > 0:
            init.data_location = TensorProto.EXTERNAL  # dims stay; inference never reads the bytes
            del init.external_data[:]
            init.external_data.add(key="location", value="__stripped__")
    for value in model.graph.input:
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in dims:
                d.dim_value = dims[d.dim_param]
    del model.graph.value_info[:]
    for value in model.graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")
    try:
        inferred: Any = infer_shapes(model, data_prop=True)  # onnxcore's classes are not typed
    except Exception:  # inference is a courtesy here too: the names given are still bound
        return None
    shapes: dict[str, ValueInfo] = {}
    for value in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        dtype, shape = dtype_and_shape(value.type)
        if shape is not None:
            shapes[value.name] = ValueInfo(value.name, dtype, shape)
    return shapes
