"""Fold small shape arithmetic before static shape inference.

Exports made without constant folding (torch.onnx with `do_constant_folding=False`) compute a Pad's
pads or a Reshape's target with Shape/Gather/Concat/Slice/ConstantOfShape/... chains over constants.
onnx shape inference cannot see through them, so every shape after the Pad comes out unknown. Here
those chains are evaluated with numpy on tiny integer arrays (never weights: anything over
MAX_ELEMENTS stays unfolded) and replaced by initializers, on the light copy used only for inference.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from math import prod
from typing import Any

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

MAX_ELEMENTS = 64

Evaluator = Callable[[NodeProto, list[np.ndarray]], np.ndarray]


def _attr(node: NodeProto, name: str, default: object = None) -> Any:
    """The attribute's value as onnx decodes it: an int, float, bytes, TensorProto or list, whatever the
    file says (Any, honestly). Each use converts it, and a value of the wrong kind raises there, which
    leaves the node unfolded (fold_shape_arithmetic)."""
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _slice(node: NodeProto, args: list[np.ndarray]) -> np.ndarray:
    data, starts, ends = args[0], args[1], args[2]
    axes = args[3] if len(args) > 3 and args[3].size else np.arange(len(starts))
    steps = args[4] if len(args) > 4 and args[4].size else np.ones(len(starts), dtype=np.int64)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=False):
        index[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


def _small_shape(dims: np.ndarray) -> list[int]:
    """A target shape whose product is checked with Python ints before anything is allocated."""
    shape = [int(d) for d in np.asarray(dims).reshape(-1)]
    total = 1
    for d in shape:
        total *= max(d, 0)
    if any(d < 0 for d in shape) or total > MAX_ELEMENTS:
        raise ValueError("not a small tensor")
    return shape


def _constant_of_shape(node: NodeProto, args: list[np.ndarray]) -> np.ndarray:
    value = _attr(node, "value")
    fill = numpy_helper.to_array(value).reshape(-1)[0] if value is not None else np.float32(0)
    return np.full(_small_shape(args[0]), fill)


def _range(node: NodeProto, args: list[np.ndarray]) -> np.ndarray:
    start, limit, delta = (a.reshape(-1)[0] for a in args[:3])
    if delta == 0 or abs((limit - start) / delta) > MAX_ELEMENTS:
        raise ValueError("not a small range")
    return np.arange(start, limit, delta)


def _reshape(node: NodeProto, args: list[np.ndarray]) -> np.ndarray:
    shape = [int(d) for d in args[1]]
    shape = [args[0].shape[i] if d == 0 and not _attr(node, "allowzero", 0) else d for i, d in enumerate(shape)]
    return args[0].reshape(shape)


def _unsqueeze(node: NodeProto, args: list[np.ndarray]) -> np.ndarray:
    axes = args[1] if len(args) > 1 else _attr(node, "axes", [])
    out = args[0]
    for axis in sorted(int(a) if int(a) >= 0 else int(a) + out.ndim + len(axes) for a in axes):
        out = np.expand_dims(out, axis)
    return out


def _squeeze(node: NodeProto, args: list[np.ndarray]) -> np.ndarray:
    axes = args[1] if len(args) > 1 else _attr(node, "axes", None)
    return np.squeeze(args[0], axis=tuple(int(a) for a in axes) if axes is not None and len(axes) else None)


_EVAL: dict[str, Evaluator] = {
    "Identity": lambda n, a: a[0],
    "Cast": lambda n, a: a[0].astype(helper.tensor_dtype_to_np_dtype(int(_attr(n, "to")))),
    "Gather": lambda n, a: np.take(a[0], a[1].astype(np.int64), axis=int(_attr(n, "axis", 0))),
    "Concat": lambda n, a: np.concatenate(a, axis=int(_attr(n, "axis", 0))),
    "Slice": _slice,
    "Reshape": _reshape,
    "Transpose": lambda n, a: np.transpose(a[0], _attr(n, "perm")),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "ConstantOfShape": _constant_of_shape,
    "Add": lambda n, a: a[0] + a[1],
    "Sub": lambda n, a: a[0] - a[1],
    "Mul": lambda n, a: a[0] * a[1],
    "Div": lambda n, a: a[0] // a[1] if a[0].dtype.kind in "iu" else a[0] / a[1],
    "Neg": lambda n, a: -a[0],
    "Equal": lambda n, a: np.equal(a[0], a[1]),
    "Where": lambda n, a: np.where(a[0], a[1], a[2]),
    "Range": _range,
    "Expand": lambda n, a: a[0] * np.ones(_small_shape(a[1]), dtype=a[0].dtype),
}


def _seed(graph: GraphProto) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    values: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[int, ...]] = {}
    for init in graph.initializer:
        dims[init.name] = tuple(init.dims)
        if init.data_location != TensorProto.EXTERNAL and prod(init.dims) <= MAX_ELEMENTS:  # Python ints: no wrap
            try:
                values[init.name] = numpy_helper.to_array(init)
            except Exception:  # malformed small tensor: leave it to inference
                continue
    return values, dims


def fold_shape_arithmetic(model: ModelProto) -> int:
    """Replace foldable small-integer chains in the main graph by initializers, in place.
    Returns how many nodes were folded. Only for the copy that shape inference reads."""
    # a file's arithmetic may divide by zero or overflow: numpy's warnings would reach the user's stderr
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _fold(model)


def _fold(model: ModelProto) -> int:
    graph = model.graph
    values, dims = _seed(graph)
    folded: list[int] = []
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            continue
        if node.op_type == "Constant" and (value := _attr(node, "value")) is not None:
            dims[node.output[0]] = tuple(value.dims)
        try:
            result = _evaluate(node, values, dims)
        except Exception:  # an op we cannot fold here: inference sees it as it is
            result = None
        if result is not None and result.size <= MAX_ELEMENTS:
            values[node.output[0]] = result
            dims[node.output[0]] = result.shape
            folded.append(index)
    if not folded:
        return 0
    outputs = [o for i in folded for o in graph.node[i].output]
    for index in reversed(folded):
        del graph.node[index]
    for name in outputs:  # all of them: subgraphs may read them from the outer scope
        graph.initializer.append(numpy_helper.from_array(np.asarray(values[name]), name))
    return len(folded)


def _evaluate(node: NodeProto, values: dict[str, np.ndarray], dims: dict[str, tuple[int, ...]]) -> np.ndarray | None:
    if node.op_type == "Constant":
        value = _attr(node, "value")
        if value is None:
            return None
        return numpy_helper.to_array(value) if prod(value.dims) <= MAX_ELEMENTS else None
    if node.op_type == "Shape" and node.input and node.input[0] in dims:
        shape = np.asarray(dims[node.input[0]], dtype=np.int64)
        start, end = _attr(node, "start", 0), _attr(node, "end", None)
        return shape[int(start) : (int(end) if end is not None else None)]
    evaluator = _EVAL.get(node.op_type)
    if evaluator is None or not node.input or len(node.input) > MAX_ELEMENTS:  # a Concat of more: never small
        return None
    if not all(not i or i in values for i in node.input):
        return None
    args = [values[i] for i in node.input if i]
    return np.asarray(evaluator(node, args))
