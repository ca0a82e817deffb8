"""Inputs for a shape run: bind every dynamic dim and pick each input's dtype and value range.

Dims come from `--dim NAME=VALUE` or `--dim INPUT:AXIS=VALUE`, from `--input NAME=FILE.npy` headers,
or are chosen from the graph (model/sizes.py says how, and why each). Values are generated in the
child from a seed, so nothing big crosses the process boundary, and are values the model accepts:
integer inputs that reach a Gather as indices stay inside the table's size along the gathered axis,
an integer scalar the graph compares with constants takes the first of them, masks are all true.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from onnxaudit.errors import UsageError
from onnxaudit.io.dims import byte_size, dtype_name, element_count
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.model.sizes import DimChoice, choose_sizes, free_dim, named
from onnxaudit.model.view import MAIN, ModelView, ValueInfo

if TYPE_CHECKING:
    import numpy as np

# Ops that hand an index tensor on unchanged in value (from their first input), so ids still reach
# the Gather in range; and elementwise ops exporters wrap ids in (tf2onnx's negative-index fix-up is
# Less/Mul/Add/Cast around the ids), followed from any input. A heuristic: a wrong guess makes the
# run fail with onnxruntime's own message, and --input gives real ids.
_PASS_THROUGH = frozenset({"Cast", "CastLike", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand"})
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Where", "Clip", "Max", "Min", "Mod", "Abs"})
_MAX_HOPS = 16
_COMPARE = frozenset({"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"})
INTEGER_ONNX = frozenset({TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
                          TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64})  # fmt: skip

# ONNX element type -> the numpy dtype the child generates (str: object arrays of text).
NUMPY_DTYPES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.DOUBLE: "float64",
    TensorProto.FLOAT16: "float16",
    TensorProto.BOOL: "bool",
    TensorProto.INT8: "int8",
    TensorProto.INT16: "int16",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.UINT8: "uint8",
    TensorProto.UINT16: "uint16",
    TensorProto.UINT32: "uint32",
    TensorProto.UINT64: "uint64",
    TensorProto.STRING: "str",
}


class FeedProblem(Exception):
    """The run cannot start with these inputs; `kind` is refused or not_runnable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Feed:
    name: str
    dtype: int
    shape: tuple[int, ...]
    source: str  # random | ids | file
    values: str  # what the values are, for the reader
    low: int = 0
    high: int = 2
    file: str | None = None

    @property
    def nbytes(self) -> int:
        count = element_count(self.shape, f"input {self.name!r}")
        return byte_size(self.dtype, count) or count * 8

    def job(self, seed: int, index: int) -> dict[str, object]:
        """The child's recipe for this input (see ortchild._feed)."""
        return {
            "name": self.name,
            "dtype": NUMPY_DTYPES[self.dtype],
            "shape": list(self.shape),
            "source": self.source,
            "low": self.low,
            "high": self.high,
            "file": self.file,
            "seed": [seed, index],
        }


@dataclass
class FeedPlan:
    feeds: list[Feed]
    bindings: dict[str, int]  # dim_param -> value, as bound on the inputs
    where: dict[str, str] = field(default_factory=dict)  # dim_param -> where it was first bound
    choices: list[DimChoice] = field(default_factory=list)  # sizes chosen for free dims, with reasons
    positions: dict[tuple[str, int], int] = field(default_factory=dict)  # --dim INPUT:AXIS=VALUE


def _fmt(dims: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def _npy_header(name: str, path: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype from a .npy header; the data stays on disk until the child loads it."""
    import numpy as np  # only with --input: the shapes path otherwise runs without numpy in this process

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"--input {name}={path}: cannot open ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"--input {name}={path}: not a regular file")
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, OSError, SyntaxError) as exc:
            raise UsageError(f"--input {name}={path}: not a .npy file ({str(exc).splitlines()[0]})") from None
    if dtype.hasobject:
        raise UsageError(f"--input {name}={path}: holds Python objects; only plain arrays are accepted")
    element_count(shape, f"--input {name}")
    return tuple(int(d) for d in shape), dtype


def _axis_size(view: ModelView, data: str, axis: object) -> int | None:
    tensor = view.lookup(MAIN, data)
    dims: tuple[int | str | None, ...] | None = tensor.dims if tensor is not None else None
    if dims is None and data in view.value_shapes:
        dims = view.value_shapes[data].shape
    if not dims or not isinstance(axis, int):
        return None
    axis = axis + len(dims) if axis < 0 else axis
    size = dims[axis] if 0 <= axis < len(dims) else None
    return size if isinstance(size, int) and size > 0 else None


def index_bound(view: ModelView, name: str) -> tuple[int, str] | None:
    """The smallest table size (and that Gather's label) among Gathers `name` reaches as indices."""
    consumers = defaultdict(list)
    for node in view.main.nodes:
        for value in node.inputs:
            consumers[value].append(node)
    best: tuple[int, str] | None = None
    stack, seen = [(name, 0)], set()
    while stack:
        value, hops = stack.pop()
        if value in seen or hops > _MAX_HOPS:
            continue
        seen.add(value)
        for node in consumers[value]:
            if node.domain not in ("", "ai.onnx") or not node.outputs or not node.outputs[0]:
                continue
            if node.op_type == "Gather" and node.inputs[1:2] == (value,):
                size = _axis_size(view, node.inputs[0], node.attrs.get("axis", 0))
                if size is not None and (best is None or size < best[0]):
                    best = (size, node.label)
            elif (node.op_type in _PASS_THROUGH and node.inputs[:1] == (value,)) or node.op_type in _ELEMENTWISE:
                stack.append((node.outputs[0], hops + 1))
    return best


def _values_text(dtype: int, bound: tuple[int, str] | None) -> tuple[str, str, int]:
    """(source, description, high) for generated values of `dtype`."""
    if bound is not None:
        return "ids", f"ids in [0, {bound[0]}) for Gather {bound[1]!r}", bound[0]
    if dtype == TensorProto.BOOL:
        return "random", "all true", 2
    if dtype == TensorProto.STRING:
        return "random", "the string 'a'", 2
    if dtype in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
        return "random", "uniform in [0, 1)", 2
    return "random", "integers in [0, 2)", 2


def plan_feeds(view: ModelView, dims: dict[str, int], files: dict[str, str]) -> FeedPlan:
    """Every graph input the run must feed, with concrete shapes: dims bound by `dims` (NAME or
    INPUT:AXIS), by `files`, else chosen from the graph (model/sizes.py). Raises UsageError for a wrong
    command line and FeedProblem when the model's inputs cannot be built."""
    declared = {v.name: v for v in view.main.inputs}
    for name in files:
        if name not in declared:
            known = ", ".join(repr(n) for n in declared) or "none"
            raise UsageError(f"--input {name}: the model has no input named {name!r} (inputs: {known})")
    # initializers listed as inputs (IR < 4) keep their stored values unless a file replaces them
    needed = [v for v in view.main.inputs if v.name not in view.main.tensors or v.name in files]
    named_dims, positions = _split_dims(needed, dims)
    bindings = dict(named_dims)
    where = {name: "--dim" for name in named_dims}
    feeds: dict[str, Feed] = {}
    for info in needed:
        if problem := _input_problem(info, info.name in files):
            raise FeedProblem("not_runnable", problem)
        if info.name in files:
            feeds[info.name] = _file_feed(info, files[info.name], bindings, where, positions)
    generated = [info for info in needed if info.name not in files]
    choices = choose_sizes(view, bindings, positions, generated)
    chosen = {(c.input, c.axis): c for c in choices}
    by_name = {c.name: c.value for c in choices if c.name is not None}
    for choice in choices:
        if choice.name is not None:
            bindings[choice.name], where[choice.name] = choice.value, f"input {choice.input!r} (chosen)"
    for info in generated:
        shape: list[int] = []
        for axis, dim in enumerate(info.shape or ()):
            dim_name = named(dim)
            if not free_dim(dim):
                shape.append(int(dim))  # type: ignore[arg-type]
            elif (info.name, axis) in positions:
                shape.append(positions[info.name, axis])
            elif dim_name is not None and dim_name in bindings:
                shape.append(bindings[dim_name])
            elif (info.name, axis) in chosen:
                shape.append(chosen[info.name, axis].value)
            else:
                shape.append(by_name.get(dim_name or "", 1))
        feeds[info.name] = _generated_feed(view, info, tuple(shape))
    return FeedPlan([feeds[v.name] for v in needed], bindings, where, choices, positions)


def _split_dims(needed: list[ValueInfo], dims: dict[str, int]) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
    """--dim keys: a dim's name, or INPUT:AXIS (an unnamed, '?' or -1 dim, or any axis by position)."""
    params = {d for v in needed for d in (v.shape or ()) if isinstance(d, str) and (named(d) is not None or d == "?")}
    shapes = {v.name: v.shape for v in needed}
    named_dims: dict[str, int] = {}
    positions: dict[tuple[str, int], int] = {}
    for key, value in dims.items():
        if key in params:
            named_dims[key] = value
            continue
        input_name, sep, axis_text = key.rpartition(":")
        shape = shapes.get(input_name) if sep else None
        if shape is not None and re.fullmatch(r"-?\d+", axis_text):
            axis = int(axis_text) + (len(shape) if axis_text.startswith("-") else 0)
            if not 0 <= axis < len(shape):
                raise UsageError(f"--dim {key}: input {input_name!r} has rank {len(shape)}, no axis {axis_text}")
            if not free_dim(shape[axis]):
                raise UsageError(f"--dim {key}: axis {axis} of input {input_name!r} is fixed at {shape[axis]}")
            positions[input_name, axis] = value
            continue
        known = ", ".join(repr(p) for p in sorted(p for p in params if p != "?")) or "none"
        unnamed = [f"{v.name}:{a}" for v in needed for a, d in enumerate(v.shape or ()) if free_dim(d) and not named(d)]
        also = f"; unnamed dims by position: {', '.join(unnamed[:6])}" if unnamed else ""
        raise UsageError(f"--dim {key}: no model input has a dim named {key!r} (named dims: {known}{also})")
    return named_dims, positions


def _generated_feed(view: ModelView, info: ValueInfo, shape: tuple[int, ...]) -> Feed:
    """Seeded values the model accepts: ids in range for a Gather, a constant the graph compares an
    integer scalar with, true masks."""
    if info.dtype in INTEGER_ONNX and len(shape) <= 1 and math.prod(shape) == 1:
        enum = compared_constants(view, info.name)
        if enum is not None:
            value, where = enum
            text = f"{value}, a value {where}"
            return Feed(info.name, info.dtype, shape, "constant", text, low=value, high=value + 1)
    bound = index_bound(view, info.name) if info.dtype != TensorProto.BOOL else None
    source, text, high = _values_text(info.dtype, bound)
    return Feed(info.name, info.dtype, shape, source, text, high=high)


def compared_constants(view: ModelView, name: str) -> tuple[int, str] | None:
    """The first constant an integer input is compared with (Equal, Less, Greater... against a small
    constant), following casts and reshapes: (value, where) or None. A sample-rate input checked
    against 8000 and 16000 must be one of them."""
    readers = view.main.readers
    stack, seen = [(name, 0)], set()
    while stack:
        value, hops = stack.pop(0)
        if value in seen or hops > _MAX_HOPS:
            continue
        seen.add(value)
        for node in readers.get(value, ()):
            if node.op_type in _COMPARE:
                constants = []
                for other in node.inputs:
                    tensor = view.lookup(MAIN, other) if other != value else None
                    if tensor is not None and tensor.values is not None and len(tensor.values) >= 1:
                        constants += list(tensor.values)
                if constants:
                    shown = ", ".join(str(c) for c in constants[:4])
                    return int(constants[0]), f"{node.op_type} {node.label!r} compares it with ({shown})"
            elif node.op_type in _PASS_THROUGH and node.inputs[:1] == (value,) and node.outputs:
                stack.append((node.outputs[0], hops + 1))
    return None


def _input_problem(info: ValueInfo, from_file: bool) -> str:
    if info.dtype == 0:
        return f"not runnable: input {info.name!r} is not a tensor (sequence, optional or map); cannot build it"
    if info.dtype not in NUMPY_DTYPES:
        return f"not runnable: input {info.name!r} has dtype {dtype_name(info.dtype)}, which onnxaudit cannot build"
    if info.shape is None and not from_file:
        return f"not runnable: input {info.name!r} declares no shape; give its data with --input {info.name}=FILE.npy"
    return ""


def _file_feed(
    info: ValueInfo, path: str, bindings: dict[str, int], where: dict[str, str], positions: dict[tuple[str, int], int]
) -> Feed:
    import numpy as np  # numpy is loaded by _npy_header already

    shape, dtype = _npy_header(info.name, path)
    wanted = NUMPY_DTYPES[info.dtype]
    if wanted == "str" or dtype.newbyteorder("=") != np.dtype(wanted):
        raise UsageError(f"--input {info.name}={path}: holds {dtype}, the model wants {dtype_name(info.dtype)}")
    if info.shape is not None:
        if len(shape) != len(info.shape):
            raise UsageError(
                f"--input {info.name}={path}: shape {_fmt(shape)} has rank {len(shape)}, "
                f"the model declares {_fmt(info.shape)}"
            )
        for axis, (have, want) in enumerate(zip(shape, info.shape, strict=True)):
            if (info.name, axis) in positions and positions[info.name, axis] != have:
                raise UsageError(
                    f"--input {info.name}={path}: axis {axis} is {have} in the file "
                    f"but --dim {info.name}:{axis}={positions[info.name, axis]}"
                )
            if isinstance(want, int) and want >= 0 and have != want:
                raise UsageError(
                    f"--input {info.name}={path}: shape {_fmt(shape)} differs from the declared "
                    f"{_fmt(info.shape)} at axis {axis}"
                )
            if named(want) is not None:
                assert isinstance(want, str)
                if want in bindings and bindings[want] != have:
                    raise UsageError(
                        f"--input {info.name}={path}: dim {want!r} is {have} in the file "
                        f"but {bindings[want]} in {where[want]}"
                    )
                bindings.setdefault(want, have)
                where.setdefault(want, f"--input {info.name}")
    return Feed(info.name, info.dtype, shape, "file", f"from {path}", file=os.path.abspath(path))
