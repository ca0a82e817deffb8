"""Rules on the stored tensors and their roles: unused (OA203), replaceable by a caller (OA204), of unknown
role (OA206), stored as float64 (OA211)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.count.roles import Classified
from onnxaudit.io.dims import dtype_name
from onnxaudit.io.text import as_text, quoted


def _dims(entry: Classified) -> str:
    dims = entry.tensor.dims
    return "x".join(map(str, dims)) if dims else "scalar" if dims == () else "?"


def _kind(entry: Classified) -> str:
    return "Constant" if entry.tensor.origin == "constant" else "initializer"


def _unused(ctx: CheckContext) -> Iterator[Hit]:
    for entry in ctx.roles.tensors:
        tensor = entry.tensor
        if entry.role == "unused" and tensor.storage != "none":
            name = as_text(tensor.name)
            message = f"{_kind(entry)} {quoted(name)} ({_dims(entry)}) is consumed by no node"
            literal = tensor.dims is not None and math.prod(tensor.dims) <= 1  # a dead scalar wastes nothing
            yield Hit(message, "tensor", name, tensor.scope, "info" if literal else None)


def _overridable(ctx: CheckContext) -> Iterator[Hit]:
    old = ctx.view.ir_version < 4
    why = " (IR < 4 lists every initializer as an input)" if old else ""
    for entry in ctx.roles.tensors:
        if entry.tensor.also_graph_input:
            name = as_text(entry.tensor.name)
            message = f"initializer {quoted(name)} is also a graph input: a caller can replace it{why}"
            yield Hit(message, "tensor", name, entry.tensor.scope, "info" if old else None)


def _unclassified(ctx: CheckContext) -> Iterator[Hit]:
    for entry in ctx.roles.tensors:
        if entry.category == "unclassified":
            name = as_text(entry.tensor.name)
            users = sorted({f"{u.node.op_type} {as_text(u.node.label)}" for u in entry.uses})[:3]
            message = (
                f"{quoted(name)} ({_dims(entry)}) has no known role; consumed by {', '.join(users) or 'a graph output'}"
            )
            yield Hit(message, "tensor", name, entry.tensor.scope)


def _float64(ctx: CheckContext) -> Iterator[Hit]:
    for entry in ctx.roles.tensors:
        if entry.category in ("parameter", "statistic") and dtype_name(entry.tensor.dtype) == "float64":
            name = as_text(entry.tensor.name)
            message = f"{entry.role} {quoted(name)} ({_dims(entry)}) is stored as float64: twice the bytes of float32"
            yield Hit(message, "tensor", name, entry.tensor.scope)


UNUSED = Rule(
    "OA203",
    "unused-initializer",
    "warning",
    "view",
    summary="stored data no node consumes (info for a dead scalar Constant)",
    docs=(
        "An initializer or Constant that no node reads still takes its bytes in the file and in memory, and "
        "often means the graph lost a branch during export or an optimizer left it behind. Remove it (onnx's "
        "onnx.utils.extract_model, onnxsim or onnxslim do)."
    ),
    emit=_unused,
)
OVERRIDABLE = Rule(
    "OA204",
    "overridable-initializer",
    "warning",
    "view",
    summary="an initializer also listed as a graph input (info for IR < 4, where that is the rule)",
    docs=(
        "An initializer that is also a graph input is only a default: a caller may feed another value, and "
        "runtimes cannot constant-fold it. From IR 4 on, initializers need not be inputs; re-export with "
        "keep_initializers_as_inputs=False (torch.onnx) or drop them from graph.input."
    ),
    emit=_overridable,
)
UNCLASSIFIED = Rule(
    "OA206",
    "unclassified-tensor",
    "info",
    "view",
    summary="stored data of unknown role (counted as unclassified by `summary`)",
    docs=(
        "onnxaudit could not tell whether this tensor is a weight, a statistic or a constant from the ops that "
        "read it (often a contrib or custom op). It is counted under Unclassified, never as trainable; the "
        "message names the ops that consume it."
    ),
    emit=_unclassified,
)
FLOAT64 = Rule(
    "OA211",
    "float64-weights",
    "warning",
    "view",
    summary="parameters stored as float64",
    docs=(
        "Weights kept in float64 take twice the bytes of float32 and run on slower kernels (or none: many "
        "runtimes and accelerators lack float64 ops). Usually a NumPy default that leaked into the export; cast "
        "the model to float32 before exporting."
    ),
    emit=_float64,
)

RULES = (UNUSED, OVERRIDABLE, UNCLASSIFIED, FLOAT64)
