"""Inputs for a shape run: bind every dynamic dim and pick each input's dtype and value range.

Dims come from `--dim NAME=VALUE`, from `--input NAME=FILE.npy` headers, or default to 1 for a
batch-like dim; anything else is refused with the dims named. Values are generated in the child from
a seed, so nothing big crosses the process boundary. Integer inputs that reach a Gather as indices
stay inside the table's size along the gathered axis.
"""

from __future__ import annotations

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
from onnxaudit.model.load import MAIN, ModelView, ValueInfo

if TYPE_CHECKING:
    import numpy as np

BATCH_NAMES = frozenset({"n", "b", "bs", "batch", "batch_size", "batchsize", "nbatch", "num_batch", "batch_dim"})
_GENERATED = re.compile(r"^unk__\d+$")  # tf2onnx's and onnx's names for unknown dims
# Ops that hand an index tensor on unchanged in value (from their first input), so ids still reach
# the Gather in range; and elementwise ops exporters wrap ids in (tf2onnx's negative-index fix-up is
# Less/Mul/Add/Cast around the ids), followed from any input. A heuristic: a wrong guess makes the
# run fail with onnxruntime's own message, and --input gives real ids.
_PASS_THROUGH = frozenset({"Cast", "CastLike", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Expand"})
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Where", "Clip", "Max", "Min", "Mod", "Abs"})
_MAX_HOPS = 16

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


def batch_like(name: str) -> bool:
    lowered = name.lower()
    return lowered in BATCH_NAMES or "batch" in lowered or bool(_GENERATED.match(name))


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
        return "random", "random booleans", 2
    if dtype == TensorProto.STRING:
        return "random", "the string 'a'", 2
    if dtype in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
        return "random", "uniform in [0, 1)", 2
    return "random", "integers in [0, 2)", 2


def plan_feeds(view: ModelView, dims: dict[str, int], files: dict[str, str]) -> FeedPlan:
    """Every graph input the run must feed, with concrete shapes. Raises UsageError for a wrong
    command line and FeedProblem when the model's inputs cannot be built."""
    declared = {v.name: v for v in view.main.inputs}
    for name in files:
        if name not in declared:
            known = ", ".join(repr(n) for n in declared) or "none"
            raise UsageError(f"--input {name}: the model has no input named {name!r} (inputs: {known})")
    # initializers listed as inputs (IR < 4) keep their stored values unless a file replaces them
    needed = [v for v in view.main.inputs if v.name not in view.main.tensors or v.name in files]
    params = {d for v in needed for d in (v.shape or ()) if isinstance(d, str)}
    for name in dims:
        if name not in params:
            known = ", ".join(repr(p) for p in sorted(params)) or "none"
            raise UsageError(f"--dim {name}: no model input has a dim named {name!r} (named dims: {known})")
    bindings = dict(dims)
    where = {name: "--dim" for name in dims}
    feeds: list[Feed] = []
    unguessable: list[str] = []
    for info in needed:
        if problem := _input_problem(info, info.name in files):
            raise FeedProblem("not_runnable", problem)
        if info.name in files:
            feeds.append(_file_feed(info, files[info.name], bindings, where))
            continue
        shape: list[int] = []
        for axis, dim in enumerate(info.shape or ()):
            if isinstance(dim, int):
                shape.append(dim)
            elif isinstance(dim, str) and dim in bindings:
                shape.append(bindings[dim])
            elif (isinstance(dim, str) and batch_like(dim)) or axis == 0:
                shape.append(1)
                if isinstance(dim, str):
                    bindings[dim], where[dim] = 1, f"input {info.name!r}"
            else:
                label = repr(dim) if isinstance(dim, str) else "(unnamed)"
                unguessable.append(f"{label} (input {info.name!r} axis {axis})")
                shape.append(0)
        bound = index_bound(view, info.name) if info.dtype != TensorProto.BOOL else None
        source, text, high = _values_text(info.dtype, bound)
        feeds.append(Feed(info.name, info.dtype, tuple(shape), source, text, high=high))
    if unguessable:
        raise FeedProblem(
            "refused",
            f"run refused: cannot guess dims {', '.join(unguessable)}; bind them with --dim NAME=VALUE "
            "or give the data with --input NAME=FILE.npy",
        )
    return FeedPlan(feeds, bindings, where)


def _input_problem(info: ValueInfo, from_file: bool) -> str:
    if info.dtype == 0:
        return f"not runnable: input {info.name!r} is not a tensor (sequence, optional or map); cannot build it"
    if info.dtype not in NUMPY_DTYPES:
        return f"not runnable: input {info.name!r} has dtype {dtype_name(info.dtype)}, which onnxaudit cannot build"
    if info.shape is None and not from_file:
        return f"not runnable: input {info.name!r} declares no shape; give its data with --input {info.name}=FILE.npy"
    return ""


def _file_feed(info: ValueInfo, path: str, bindings: dict[str, int], where: dict[str, str]) -> Feed:
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
            if isinstance(want, int) and have != want:
                raise UsageError(
                    f"--input {info.name}={path}: shape {_fmt(shape)} differs from the declared "
                    f"{_fmt(info.shape)} at axis {axis}"
                )
            if isinstance(want, str):
                if want in bindings and bindings[want] != have:
                    raise UsageError(
                        f"--input {info.name}={path}: dim {want!r} is {have} in the file "
                        f"but {bindings[want]} in {where[want]}"
                    )
                bindings.setdefault(want, have)
                where.setdefault(want, f"--input {info.name}")
    return Feed(info.name, info.dtype, shape, "file", f"from {path}", file=os.path.abspath(path))
