"""After the run: each observed shape compared with the declared one and with strict inference,
symbolic dims bound once across the model, and the shape shown for each value."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from onnxaudit.io.dims import dtype_name
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.model.sizes import named
from onnxaudit.model.view import ModelView, ValueInfo
from onnxaudit.shapes.feeds import FeedPlan
from onnxaudit.shapes.options import Shape, ShapeCheck, fmt_shape
from onnxaudit.shapes.profile import Observed

_ORT_TYPES = {TensorProto.DataType.Name(v).lower(): v for v in TensorProto.DataType.values()}
DTYPE_BY_NAME = {dtype_name(v): v for v in TensorProto.DataType.values()}


_dtype_text = functools.lru_cache(maxsize=256)(dtype_name)


@functools.lru_cache(maxsize=256)
def _ort_dtype(text: str) -> int:
    """'tensor(float)' -> TensorProto.FLOAT (0 when unknown)."""
    inner = text[len("tensor(") : -1] if text.startswith("tensor(") and text.endswith(")") else text
    return _ORT_TYPES.get(inner, 0)


class _Binder:
    """One binding per dim_param across the model: 'batch' cannot be 1 here and 3 there."""

    def __init__(self, plan: FeedPlan) -> None:
        self.values = dict(plan.bindings)
        self.given = frozenset(plan.bindings)  # bound on the inputs: the only names a shown shape keeps
        self.where = dict(plan.where)
        self.conflicts: set[str] = set()

    def check(self, param: str, actual: int, value: str) -> str:
        if param not in self.values:
            self.values[param], self.where[param] = actual, f"{value!r}"
            return ""
        if self.values[param] != actual:
            self.conflicts.add(param)
            return f"dim {param!r} is {actual} here but {self.values[param]} in {self.where[param]}"
        return ""


def _shape_problems(label: str, expected: Shape, actual: list[int], binder: _Binder | None, value: str) -> list[str]:
    if len(expected) != len(actual):
        return [f"{_said(label, expected, actual)} (rank {len(expected)} vs {len(actual)})"]
    if expected == actual:  # nearly every value: no text built, no symbolic dim to bind
        return []
    problems = []
    for axis, (want, have) in enumerate(zip(expected, actual, strict=True)):
        if isinstance(want, int) and want >= 0 and want != have:  # -1: an exporter's "any"
            problems.append(f"{_said(label, expected, actual)} (axis {axis}: {want} vs {have})")
        elif named(want) and binder is not None and (why := binder.check(str(want), have, value)):
            problems.append(f"{_said(label, expected, actual)} ({why})")
    return problems


def _said(label: str, expected: Shape, actual: list[int]) -> str:
    return f"{label} {fmt_shape(expected)}, onnxruntime produced {fmt_shape(actual)}"


def _shown(
    actual: list[int], sources: Sequence[Sequence[int | str | None] | None], binder: _Binder, file_params: set[str]
) -> Shape:
    named = [s for s in sources if s is not None and len(s) == len(actual) and any(isinstance(d, str) for d in s)]
    if not named:  # only a symbolic dim can name an axis
        return list(actual)
    shown: Shape = []
    for axis, have in enumerate(actual):
        name: str | None = None
        for src in named:
            dim = src[axis]
            # a name bound on the inputs (batch); a derived one (floor(width/2 - 1/2) + 1) shows its value
            if isinstance(dim, str) and dim in binder.given and dim in file_params and dim not in binder.conflicts:
                if binder.values.get(dim) == have:
                    name = dim
                    break
        shown.append(name if name is not None else have)
    return shown


def compare_shapes(
    check: ShapeCheck,
    view: ModelView,
    plan: FeedPlan,
    declared: dict[str, ValueInfo],
    observed: dict[str, Observed],
    file_params: set[str],
) -> None:
    binder = _Binder(plan)
    non_tensor: list[str] = []
    for value in check.values:
        seen = observed.get(value.name)
        if seen is None:
            value.status = "not observed"
            continue
        if "shape" not in seen:
            value.status = "not observed"
            non_tensor.append(f"{value.name!r} ({seen.get('kind', '?')})")
            continue
        actual = [int(d) for d in seen["shape"]]
        dtype = _ort_dtype(str(seen.get("type", "")))
        value.actual, value.dtype = actual, _dtype_text(dtype) if dtype else str(seen.get("type"))
        problems: list[str] = []
        decl = declared.get(value.name)
        if decl is not None:
            if decl.dtype and dtype and decl.dtype != dtype:
                problems.append(f"declared {dtype_name(decl.dtype)}, onnxruntime produced {dtype_name(dtype)}")
            if decl.shape is not None:
                problems += _shape_problems("declared", list(decl.shape), actual, binder, value.name)
        if value.inferred is not None:
            inferred_ints: Shape = [d if isinstance(d, int) else None for d in value.inferred]
            problems += _shape_problems("onnx shape inference gives", inferred_ints, actual, None, value.name)
        static = view.value_shapes.get(value.name)
        sources = [decl.shape if decl else None, static.shape if static else None]
        value.shown = _shown(actual, sources, binder, file_params)
        value.problems = problems
        value.status = "mismatch" if problems else "confirmed"
        if problems:
            check.findings += [f"{value.name!r}: {p}" for p in problems]
    if non_tensor:
        check.limits.append(
            f"not observed, not tensors: {', '.join(non_tensor[:5])}" + (" ..." if len(non_tensor) > 5 else "")
        )
    check.status = "mismatch" if check.findings else "confirmed"
