"""Fold small shape arithmetic before static shape inference.

Exports made without constant folding (torch.onnx with `do_constant_folding=False`) compute a Pad's
pads or a Reshape's target with Shape/Gather/Concat/Slice/ConstantOfShape/... chains over constants.
onnx shape inference cannot see through them, so every shape after the Pad comes out unknown. Here
those chains are evaluated with numpy on tiny integer arrays (never weights: anything over
MAX_ELEMENTS stays unfolded) and replaced by initializers, on the light copy used only for inference.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from math import prod
from typing import Any

import numpy as np

from onnxaudit.io.onnxcore import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto

MAX_ELEMENTS = 64

Evaluator = Callable[[NodeProto, list[np.ndarray]], np.ndarray]

# onnx.helper and onnx.numpy_helper import onnx whole and ml_dtypes (~0.8 s, most of a small model's run):
# the element types shape arithmetic uses are converted here as they do it, and any other goes to them.
_NP_DTYPES: dict[int, np.dtype[Any]] = {
    TensorProto.FLOAT: np.dtype(np.float32),
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.INT16: np.dtype(np.int16),
    TensorProto.INT32: np.dtype(np.int32),
    TensorProto.INT64: np.dtype(np.int64),
    TensorProto.BOOL: np.dtype(np.bool_),
    TensorProto.FLOAT16: np.dtype(np.float16),
    TensorProto.DOUBLE: np.dtype(np.float64),
    TensorProto.UINT32: np.dtype(np.uint32),
    TensorProto.UINT64: np.dtype(np.uint64),
}
_TENSOR_TYPES: dict[np.dtype[Any], int] = {dtype: code for code, dtype in _NP_DTYPES.items()}
# typed fields read as numpy_helper.to_array does: the storage field and dtype, then astype the element dtype
_TYPED_STORAGE: dict[int, tuple[str, np.dtype[Any]]] = {
    TensorProto.FLOAT: ("float_data", np.dtype(np.float32)),
    TensorProto.DOUBLE: ("double_data", np.dtype(np.float64)),
    TensorProto.UINT8: ("int32_data", np.dtype(np.int32)),
    TensorProto.INT8: ("int32_data", np.dtype(np.int32)),
    TensorProto.INT32: ("int32_data", np.dtype(np.int32)),
    TensorProto.INT64: ("int64_data", np.dtype(np.int64)),
    TensorProto.UINT32: ("uint64_data", np.dtype(np.uint64)),
    TensorProto.UINT64: ("uint64_data", np.dtype(np.uint64)),
}
_LITTLE = sys.byteorder == "little"

_SINGLE = {
    AttributeProto.FLOAT: "f",
    AttributeProto.INT: "i",
    AttributeProto.STRING: "s",
    AttributeProto.TENSOR: "t",
    AttributeProto.SPARSE_TENSOR: "sparse_tensor",
    AttributeProto.GRAPH: "g",
    AttributeProto.TYPE_PROTO: "tp",
}
_REPEATED = {
    AttributeProto.FLOATS: "floats",
    AttributeProto.INTS: "ints",
    AttributeProto.STRINGS: "strings",
    AttributeProto.TENSORS: "tensors",
    AttributeProto.SPARSE_TENSORS: "sparse_tensors",
    AttributeProto.GRAPHS: "graphs",
    AttributeProto.TYPE_PROTOS: "type_protos",
}


def attribute_value(attr: AttributeProto) -> Any:
    """onnx.helper.get_attribute_value, without importing onnx.helper."""
    if attr.ref_attr_name:
        raise ValueError(f"Cannot get value of reference attribute: {attr}")
    if attr.type in _SINGLE:
        return getattr(attr, _SINGLE[attr.type])
    if attr.type in _REPEATED:
        return list(getattr(attr, _REPEATED[attr.type]))
    if attr.type == AttributeProto.UNDEFINED:
        return None
    raise ValueError(f"Unsupported ONNX attribute: {attr}")


def np_dtype(tensor_type: int) -> np.dtype[Any]:
    """onnx.helper.tensor_dtype_to_np_dtype."""
    dtype = _NP_DTYPES.get(tensor_type)
    if dtype is not None:
        return dtype
    from onnx import helper  # a rare element type (bfloat16, float8, string...): onnx's own table

    return helper.tensor_dtype_to_np_dtype(tensor_type)


def to_array(tensor: TensorProto) -> np.ndarray:
    """onnx.numpy_helper.to_array on a tensor in the file (small: its data is never external here)."""
    code = tensor.data_type
    if (
        _LITTLE
        and code in _NP_DTYPES
        and not tensor.HasField("segment")
        and tensor.data_location != TensorProto.EXTERNAL
    ):
        if tensor.HasField("raw_data"):
            return np.frombuffer(tensor.raw_data, dtype=_NP_DTYPES[code]).reshape(tensor.dims)
        if code in _TYPED_STORAGE:
            field, storage = _TYPED_STORAGE[code]
            data = np.asarray(getattr(tensor, field), dtype=storage)
            return data.astype(_NP_DTYPES[code]).reshape(tensor.dims)
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def from_array(array: np.ndarray, name: str) -> TensorProto:
    """onnx.numpy_helper.from_array."""
    code = _TENSOR_TYPES.get(array.dtype)
    if not _LITTLE or code is None:
        from onnx import numpy_helper

        return numpy_helper.from_array(array, name)
    tensor = TensorProto()
    tensor.dims.extend(array.shape)
    if name:
        tensor.name = name
    tensor.raw_data = array.tobytes()
    tensor.data_type = code
    return tensor


def _attr(node: NodeProto, name: str, default: object = None) -> Any:
    """The attribute's value as onnx decodes it: an int, float, bytes, TensorProto or list, whatever the
    file says (Any, honestly). Each use converts it, and a value of the wrong kind raises there, which
    leaves the node unfolded (fold_shape_arithmetic)."""
    for a in node.attribute:
        if a.name == name:
            return attribute_value(a)
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
    fill = to_array(value).reshape(-1)[0] if value is not None else np.float32(0)
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
    "Cast": lambda n, a: a[0].astype(np_dtype(int(_attr(n, "to")))),
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
                values[init.name] = to_array(init)
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
        graph.initializer.append(from_array(np.asarray(values[name]), name))
    return len(folded)


def _evaluate(node: NodeProto, values: dict[str, np.ndarray], dims: dict[str, tuple[int, ...]]) -> np.ndarray | None:
    if node.op_type == "Constant":
        value = _attr(node, "value")
        if value is None:
            return None
        return to_array(value) if prod(value.dims) <= MAX_ELEMENTS else None
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
