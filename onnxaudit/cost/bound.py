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
from onnxaudit.model.sizes import choose_sizes
from onnxaudit.model.view import ModelView, ValueInfo, dtype_and_shape

if TYPE_CHECKING:
    from onnxaudit.shapes.confirm import ShapeCheck


def model_cost(
    view: ModelView,
    shown: ModelView,
    check: ShapeCheck | None,
    dims: Mapping[str, int],
    table: ParamTable,
    choose: bool = False,
) -> Costs | None:
    """Costs on the best shapes at hand, or None when no shape is known at all (inference skipped).
    `dims` binds input dims by name or as INPUT:AXIS; `choose` gives every dim they leave free the size
    model/sizes.py chooses from the graph (said in a note, with its reason)."""
    named, positions = _split(view, dims, check)
    if not view.value_shapes:
        return None
    params = sum(t.nbytes or 0 for t in table.tensors if t.category in COUNTED_CATEGORIES)
    if check is not None and check.status in ("confirmed", "mismatch"):
        return estimate(shown, params, shown.value_shapes, {**check.bindings, **dims})
    notes = []
    if choose:
        for choice in choose_sizes(view, named, positions):
            if choice.name is not None:
                named[choice.name] = choice.value
            else:
                positions[choice.input, choice.axis] = choice.value
            notes.append(f"size chosen for a free dim: {choice.label}={choice.value} ({choice.reason})")
    bindings = {**named, **{f"{i}:{a}": v for (i, a), v in positions.items()}}
    costs = None
    if named or positions:
        shapes = bound_shapes(view, named, positions)
        if shapes is not None:
            costs = estimate(view, params, {**view.value_shapes, **shapes}, bindings)
    if costs is None:
        costs = estimate(view, params, view.value_shapes, bindings)
    costs.report.notes[:0] = notes
    return costs


def _split(
    view: ModelView, dims: Mapping[str, int], check: ShapeCheck | None
) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
    """--dim keys: an input dim's name, or INPUT:AXIS (an unnamed, '?' or -1 dim, or any free axis)."""
    inputs = {v.name: v.shape or () for v in view.main.inputs if v.name not in view.main.tensors}
    free = {d for shape in inputs.values() for d in shape if isinstance(d, str)}
    named: dict[str, int] = {}
    positions: dict[tuple[str, int], int] = {}
    for key, value in dims.items():
        if key in free or (check is not None and key in check.bindings):
            named[key] = value
            continue
        name, sep, axis_text = key.rpartition(":")
        shape = inputs.get(name) if sep else None
        if shape is None or not axis_text.isdigit() or int(axis_text) >= len(shape):
            raise UsageError(f"--dim {key}: no model input has a dim named {key!r}")
        positions[name, int(axis_text)] = value
    return named, positions


def bound_shapes(
    view: ModelView, dims: Mapping[str, int], positions: Mapping[tuple[str, int], int] | None = None
) -> dict[str, ValueInfo] | None:
    """onnx shape inference again, every graph input's dim named in `dims` (or at a place in `positions`)
    set to its value, on the
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
    places = positions or {}
    for value in model.graph.input:
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            if (value.name, axis) in places:
                d.dim_value = places[value.name, axis]
            elif d.HasField("dim_param") and d.dim_param in dims:
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
