"""The shapes a cost is computed on: static inference as read, inference again with free input dims bound
(`--dim`), or what onnxruntime observed (`--run-shapes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from onnxaudit.cost.estimate import Costs, estimate
from onnxaudit.count.table import COUNTED_CATEGORIES, ParamTable
from onnxaudit.errors import UsageError
from onnxaudit.model.infer import infer_value_shapes
from onnxaudit.model.read import read_without_weights
from onnxaudit.model.view import ModelView, ValueInfo

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
        from onnxaudit.model.sizes import choose_sizes  # --choose-dims only: it imports fractions and decimal

        for choice in choose_sizes(view, named, positions):
            if choice.name is not None:
                named[choice.name] = choice.value
            else:
                positions[choice.input, choice.axis] = choice.value
            notes.append(f"size chosen for a free dim: {choice.label}={choice.value} ({choice.reason})")
    bindings = {**named, **{f"{i}:{a}": v for (i, a), v in positions.items()}}
    shapes = bound_shapes(view, named, positions) if named or positions else view.value_shapes
    costs = estimate(view, params, shapes, bindings)
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
) -> dict[str, ValueInfo]:
    """Static inference again (load's: weights stripped, shape arithmetic folded), every graph input's dim
    named in `dims` (or at a place in `positions`) set to its value, declared shapes dropped so they cannot
    echo the free dims: a Reshape's output then has numbers where inference gave it a fresh name (unk__0).
    Each value keeps the shape it had unless the new one is all numbers (a failed inference changes nothing)."""
    model, _, sizes, *_ = read_without_weights(view.path)  # a URL is fetched again: its structure only
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
    inferred = infer_value_shapes(model, sizes, in_place=True, data_prop=True)
    shapes = dict(view.value_shapes)
    for name, info in inferred.items():
        if name not in shapes or (info.shape is not None and all(isinstance(d, int) for d in info.shape)):
            shapes[name] = info
    return shapes
