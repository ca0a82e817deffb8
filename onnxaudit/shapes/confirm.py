"""Runtime shape confirmation: run the main graph once in onnxruntime and prove every shape.

One CPU session runs the model in a limited child process (sandbox.py: forked where that is safe,
started while the model is still being read), and every main-graph value's actual shape is observed in
one of two ways (`method`):
- profile: onnxruntime's profiler records the type and shape of every tensor each node read and
  wrote, while the run frees values as usual (shapes_profile.py maps the events back);
- outputs: every value becomes a graph output (appended to the file's own bytes as a second serialized
  ModelProto, which protobuf merges into the first, so weights are never copied through Python
  objects), so every value stays alive until the run ends.
Without a method, the values' sizes choose (choose_method): outputs while keeping them all is cheap
(a graph of many small values, where the profile's ~100 us a node dominates), profile otherwise.
Each observed shape is compared with the shape declared in the file and with onnx's strict shape
inference. Symbolic dims must bind consistently across the whole model. What cannot be run or
observed is stated as a limit.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from onnxaudit.errors import AuditError, UsageError
from onnxaudit.io import onnxcore
from onnxaudit.io.dims import INTEGER_DTYPES, byte_size, dtype_name, element_count
from onnxaudit.io.onnxcore import AttributeProto, ModelProto, TensorProto, TypeProto
from onnxaudit.model.load import ModelView, ValueInfo, _read_wire, _shape_of, load
from onnxaudit.shapes.feeds import Feed, FeedPlan, FeedProblem, plan_feeds
from onnxaudit.shapes.profile import event_names, events_from_child, observe, unsafe_names
from onnxaudit.shapes.sandbox import Child, ChildResult, limits

if TYPE_CHECKING:
    from onnx import ValueInfoProto


DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_MEMORY = 4 * 2**30
# Domains onnxruntime's CPU build implements; anything else needs a custom-op library.
RUNTIME_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
# Address space of an idle interpreter with numpy and onnxruntime loaded (about 330 MiB measured), rounded up.
BASE_BYTES = 512 * 2**20
METHODS = ("profile", "outputs")
# onnxruntime's profiler holds each executed node's event in memory until the run ends (1.8-3 KB
# measured, thread statistics included: counted at 1.5 KB, a lower bound) and writes about 850 bytes of
# JSON for it at the end (the file may take 4 KB a node before its write fails and it is read as cut).
PROFILE_EVENT_BYTES = 1536
PROFILE_FILE_BYTES_PER_NODE = 4096
# Without --method, keeping every value alive (outputs) is chosen while the values are small: a profile
# costs ~100 us per node (profiler, its JSON, reading it back), keeping values costs faulting in fresh
# pages (~1.6 ms per MB measured with deep_cnn); so outputs up to 64 KiB of values per node, at least
# 4 MiB, at most 64 MiB (and an eighth of --max-memory).
AUTO_BYTES_PER_NODE = 64 * 2**10
AUTO_MIN_BYTES = 4 * 2**20
AUTO_MAX_BYTES = 64 * 2**20

Shape = list[int | str | None]


@dataclass
class ShapeOptions:
    """How to run: dim bindings, real input files, limits, and whether onnxruntime may optimize."""

    dims: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    max_memory: int = DEFAULT_MAX_MEMORY
    optimized: bool = False
    seed: int = 0
    method: str | None = None  # profile | outputs; None: chosen by the model's sizes (see choose_method)
    # a child started (with these limits) before the model was read, so its imports overlap the reading
    prestarted: Child | None = field(default=None, repr=False, compare=False)

    def start_child(self) -> Child:
        """A child process with this run's limits, started now (its owner closes it)."""
        return Child(limits(self.max_memory, self.timeout))

    @property
    def run_method(self) -> str:
        """profile, outputs, or auto (chosen once the model is read). A profile names the nodes
        onnxruntime ran, and an optimized graph's nodes are no longer the file's, so `optimized`
        needs the outputs method."""
        method = self.method or ("outputs" if self.optimized else "auto")
        if method not in (*METHODS, "auto"):
            raise UsageError(f"unknown shape method {method!r} (expected profile or outputs)")
        if method == "profile" and self.optimized:
            raise UsageError(
                "--optimized needs --method outputs: an optimized graph's nodes are not the file's, "
                "so its profile cannot be read back onto the file's values"
            )
        return method


@dataclass
class InputCheck:
    name: str
    dtype: str
    shape: list[int]
    values: str


@dataclass
class ValueCheck:
    """One main-graph value: what the file declares, what onnx infers, what onnxruntime produced."""

    name: str
    node: str
    op: str
    declared: Shape | None
    inferred: Shape | None
    actual: list[int] | None
    dtype: str | None
    shown: Shape | None  # actual dims, with the declared symbolic name where it binds consistently
    status: str  # confirmed | mismatch | not observed | not run
    problems: list[str] = field(default_factory=list)


@dataclass
class ShapeCheck:
    status: str  # confirmed | mismatch | refused | killed | not_runnable | failed
    message: str  # one line saying why, when nothing was confirmed
    bindings: dict[str, int]
    inputs: list[InputCheck]
    values: list[ValueCheck]
    findings: list[str]
    limits: list[str]
    optimized: bool
    timeout: float
    max_memory: int
    estimate_bytes: int | None = None
    onnxruntime: str = ""
    method: str = "outputs"  # how actual shapes were observed: profile | outputs

    @property
    def exit_code(self) -> int:
        return {"confirmed": 0, "mismatch": 1}.get(self.status, 2)

    def source_text(self) -> str:
        bound = ", ".join(f"{k}={v}" for k, v in self.bindings.items())
        where = f" ({bound})" if bound else ""
        if self.status == "confirmed":
            return f"confirmed by onnxruntime{where}"
        if self.status == "mismatch":
            n = len(self.findings)
            return f"run in onnxruntime{where}: {n} mismatch{'es' if n != 1 else ''}, actual shapes shown"
        return f"onnx shape inference (static; not confirmed: {self.status.replace('_', ' ')})"


# ---------------------------------------------------------------- loading


def read_structure(view: ModelView) -> ModelProto:
    """The model's structure (graphs, value_info, small constants) without its weight bytes, read
    again by the wire reader (weights are never copied) so the counting path keeps its own model."""
    model, size, sizes, _ = _read_wire(Path(view.path))
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
        dtype, shape = _shape_of(value.type)
        if dtype or shape is not None:
            shapes[value.name] = ValueInfo(value.name, dtype, shape)
    return shapes


def _file_params(model: ModelProto) -> set[str]:
    graph = model.graph
    return {
        d.dim_param
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
    decoded: dict[bytes, tuple[str, int, tuple | None]] = {}
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


def _decode_type(type_proto: TypeProto) -> tuple[str, int, tuple | None]:
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
        dims.append(d.dim_value if which == "dim_value" else d.dim_param if which == "dim_param" else None)
    return kind, tensor.elem_type, tuple(dims)


# ---------------------------------------------------------------- what can run, what can be seen


def _main_values(view: ModelView) -> list[tuple[str, str, str]]:
    """(value, node label, op) for every value a main-graph node produces, in graph order."""
    inputs = {v.name for v in view.main.inputs}
    seen: set[str] = set()
    values = []
    for node in view.main.nodes:
        for out in node.outputs:
            if out and out not in seen and out not in inputs:
                seen.add(out)
                values.append((out, node.label, node.op_type))
    return values


def _not_runnable(view: ModelView) -> str:
    external = [t.name for g in view.graphs.values() for t in g.tensors.values() if t.storage == "external"]
    if external:
        return (
            f"not runnable: {len(external)} tensor(s) keep their data in external files (first {external[0]!r}); "
            "onnxaudit never lets onnxruntime open files it has not checked"
        )
    foreign: dict[str, str] = {}
    for node in view.all_nodes():
        if node.domain not in RUNTIME_DOMAINS and (node.domain, node.op_type) not in view.functions:
            foreign.setdefault(f"{node.domain}:{node.op_type}", node.label)
    if foreign:
        ops = ", ".join(f"custom-domain op {op!r} (node {label!r})" for op, label in list(foreign.items())[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return f"not runnable: {ops}{more} has no onnxruntime CPU kernel"
    return ""


def _unobservable(view: ModelView) -> list[str]:
    limits = []
    bodies = [g for g in view.graphs.values() if g.kind == "subgraph"]
    if bodies:
        count = sum(1 for g in bodies for n in g.nodes for o in n.outputs if o)
        owners = sorted({f"{n.op_type} {n.label!r}" for n in view.main.nodes if n.subgraphs})
        limits.append(
            f"{count} values inside If/Loop/Scan bodies are not observed (only main-graph values are): "
            f"{', '.join(owners[:5])}{' ...' if len(owners) > 5 else ''}"
        )
    calls = [n for n in view.main.nodes if (n.domain, n.op_type) in view.functions]
    if calls:
        names = sorted({f"{n.domain}:{n.op_type}" for n in calls})
        limits.append(
            f"values inside model-local functions are not observed ({len(calls)} calls of {', '.join(names[:5])})"
        )
    return limits


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def estimate_memory(
    view: ModelView, feeds: list[Feed], inferred: dict[str, ValueInfo], names: list[str], method: str = "outputs"
) -> tuple[int, int, tuple[str, int, str] | None]:
    """(bytes, non-integer values of unknown size, largest value): a lower bound of the address space
    the child needs (its arena rounds up); RLIMIT_AS enforces the rest.

    outputs: every value is an output, so onnxruntime can free none of them before the run ends: all
    of them count. profile: onnxruntime frees values as it goes, so only what must exist at once
    counts (the largest value, or all graph outputs together), plus the profiler's events."""
    total = BASE_BYTES + view.file_bytes * 5 // 4  # onnxruntime parses the file once, plus its graph
    total += sum(f.nbytes for f in feeds)
    unknown = 0
    largest: tuple[str, int, str] | None = None
    copies = 2 if any(f.dtype == TensorProto.STRING for f in feeds) else 1  # string runs copy outputs
    outputs = set(view.main.outputs)
    values = at_end = 0
    sizes: dict[tuple, int] = {}  # (dtype, shape) -> bytes; a model repeats a few of them
    for name in names:
        info = inferred.get(name)
        if info is None or info.shape is None or not all(isinstance(d, int) for d in info.shape):
            # integer values of unknown size are nearly always shape arithmetic: a few bytes
            unknown += info is None or info.dtype not in INTEGER_DTYPES
            continue
        size = sizes.get((info.dtype, info.shape), -1)
        if size < 0:
            count = element_count(info.shape, f"value {name!r}")  # absurd dims raise: refused
            size = sizes[info.dtype, info.shape] = byte_size(info.dtype, count) or count * 8
        values += copies * size
        at_end += copies * size if name in outputs else 0
        if largest is None or size > largest[1]:
            largest = (name, size, f"{_fmt(info.shape)} {dtype_name(info.dtype)}")
    if method == "outputs":
        return total + values, unknown, largest
    nodes = sum(len(g.nodes) for g in view.graphs.values())  # Loop iterations cannot be known here
    total += max(largest[1] if largest else 0, at_end) + nodes * PROFILE_EVENT_BYTES
    return total, unknown, largest


# ---------------------------------------------------------------- comparing


def _fmt(shape: Shape | list[int] | tuple | None) -> str:
    if shape is None:
        return "?"
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


_ORT_TYPES = {TensorProto.DataType.Name(v).lower(): v for v in TensorProto.DataType.values()}
_BY_NAME = {dtype_name(v): v for v in TensorProto.DataType.values()}


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
        if isinstance(want, int) and want != have:
            problems.append(f"{_said(label, expected, actual)} (axis {axis}: {want} vs {have})")
        elif isinstance(want, str) and binder is not None and (why := binder.check(want, have, value)):
            problems.append(f"{_said(label, expected, actual)} ({why})")
    return problems


def _said(label: str, expected: Shape, actual: list[int]) -> str:
    return f"{label} {_fmt(expected)}, onnxruntime produced {_fmt(actual)}"


def _shown(actual: list[int], sources: list[Shape | None], binder: _Binder, file_params: set[str]) -> Shape:
    named = [s for s in sources if s is not None and len(s) == len(actual) and any(isinstance(d, str) for d in s)]
    if not named:  # only a symbolic dim can name an axis
        return list(actual)
    shown: Shape = []
    for axis, have in enumerate(actual):
        name: str | None = None
        for src in named:
            dim = src[axis]
            if isinstance(dim, str) and dim in file_params and dim not in binder.conflicts:
                if binder.values.get(dim) == have:
                    name = dim
                    break
        shown.append(name if name is not None else have)
    return shown


def _compare(
    check: ShapeCheck,
    view: ModelView,
    plan: FeedPlan,
    declared: dict[str, ValueInfo],
    observed: dict[str, dict],
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


# ---------------------------------------------------------------- the run


_OUTCOMES = {
    "timeout": ("killed", "run killed: {msg}"),
    "memory": ("killed", "run stopped at the memory limit (--max-memory {mem}): {msg}"),
    "crashed": ("killed", "run killed: {msg}"),
    "load_error": ("not_runnable", "not runnable: onnxruntime cannot load the model: {msg}"),
    "run_error": (
        "failed",
        "run failed: onnxruntime raised: {msg} (generated inputs may not suit this model: "
        "--dim and --input give real sizes and data)",
    ),
    "input_error": ("failed", "run failed: cannot build the inputs: {msg}"),
    "error": ("failed", "run failed: {msg}"),
}


def _outputs_proto(view: ModelView, names: list[str]) -> bytes:
    """A ModelProto holding only extra graph outputs, to append to the file's bytes."""
    already = set(view.main.outputs)
    extra = ModelProto()
    for name in names:
        if name not in already:
            extra.graph.output.add().name = name  # no type: onnxruntime infers it
    return extra.SerializeToString()


def choose_method(view: ModelView, plan: FeedPlan, names: list[str], max_memory: int) -> str:
    """outputs while keeping every value alive until the end is cheap (the values' bytes, from the
    static shapes with the input dims bound, under the AUTO_* bounds), else profile. A value of
    unknown size that is not integer shape arithmetic could be large: profile."""
    nodes = len(view.main.nodes)
    budget = min(max(AUTO_MIN_BYTES, nodes * AUTO_BYTES_PER_NODE), AUTO_MAX_BYTES, max_memory // 8)
    bindings = plan.bindings
    shapes = view.value_shapes
    sizes: dict[tuple, int | None] = {}  # (dtype, shape) -> bytes; a model repeats a few of them
    total = 0
    for name in names:
        info = shapes.get(name)
        if info is None:
            return "profile"
        key = (info.dtype, info.shape)
        if key not in sizes:
            sizes[key] = _bound_bytes(info, bindings)
        size = sizes[key]
        if size is None:
            if info.dtype not in INTEGER_DTYPES:
                return "profile"
            continue
        total += size
        if total > budget:
            return "profile"
    return "outputs"


def _bound_bytes(info: ValueInfo, bindings: dict[str, int]) -> int | None:
    """Bytes of a value with its symbolic dims bound; None when a dim stays unknown."""
    if info.shape is None:
        return None
    count = 1
    for d in info.shape:
        d = bindings.get(d) if isinstance(d, str) else d
        if not isinstance(d, int) or d < 0:
            return None
        count *= d
    return byte_size(info.dtype, count) or count * 8


def _job(view: ModelView, plan: FeedPlan, options: ShapeOptions, method: str, names: list[str]) -> dict:
    """Everything the child needs, known before shape inference: it starts loading at once."""
    wanted = set(names)
    job = {
        "model": str(Path(view.path).resolve()),
        "size": view.file_bytes,
        "method": method,
        "outputs": names if method == "outputs" else [o for o in view.main.outputs if o in wanted],
        "inputs": [f.job(options.seed, k) for k, f in enumerate(plan.feeds)],
        "optimized": options.optimized,
    }
    if method == "profile":
        job["profile_nodes"] = sorted({name: node.op_type for node, name, _ in event_names(view)}.items())
        job["max_profile_bytes"] = 64 * 2**20 + PROFILE_FILE_BYTES_PER_NODE * sum(
            len(g.nodes) for g in view.graphs.values()
        )
    return job


def confirm(view: ModelView, options: ShapeOptions) -> ShapeCheck:
    """Run the model once under limits and compare every observed shape. Raises AuditError only for
    a wrong command line or a file that changed; everything else is a status on the ShapeCheck."""
    with begin(view, options) as pending:
        return pending.finish()


@dataclass
class PendingCheck:
    """A confirmation begun (`begin`): the model is checked runnable and the child is loading it.
    `finish` does the rest; use it as a context manager so the child never outlives the caller."""

    check: ShapeCheck
    view: ModelView
    options: ShapeOptions
    main_values: list[tuple[str, str, str]]
    plan: FeedPlan | None
    reason: str
    kind: str
    children: list[Child]

    def __enter__(self) -> PendingCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for child in self.children:
            child.close()  # single use; a prestarted child's owner finds nothing left to do

    def finish(self) -> ShapeCheck:
        """Shape inference, the memory estimate (refusing a run that cannot fit), the run, the comparison."""
        try:
            return self._finish()
        finally:
            self.close()

    def _finish(self) -> ShapeCheck:
        check, view, reason, kind = self.check, self.view, self.reason, self.kind
        try:
            model: ModelProto | None = read_structure(view)
        except AuditError as exc:  # e.g. over protobuf's 2 GiB: onnxruntime could not load it either
            model, reason, kind = None, f"not runnable: {exc}", "not_runnable"
        declared = declared_shapes(model) if model is not None else {}
        check.values = [_not_run(name, label, op, declared, view) for name, label, op in self.main_values]
        if reason or model is None or self.plan is None:
            return _stopped(check, kind, reason)
        names = [name for name, _, _ in self.main_values]
        child = self.children[0] if self.children and self.children[0].used else None
        return _prepare_and_run(
            check, view, model, self.plan, declared, _file_params(model), names, self.options, child
        )


def begin(view: ModelView, options: ShapeOptions) -> PendingCheck:
    """Start a confirmation as soon as the model is read: check it is runnable, plan the inputs,
    choose the method and hand the child its job, so onnxruntime loads the model while the caller
    goes on (counting, grouping) and `finish` infers shapes."""
    prestarted = options.prestarted
    children = [prestarted] if prestarted is not None and not prestarted.used else []
    try:
        return _begin(view, options, children)
    except BaseException:
        for child in children:
            child.close()
        raise


def _begin(view: ModelView, options: ShapeOptions, children: list[Child]) -> PendingCheck:
    method = options.run_method
    main_values = _main_values(view)
    check = ShapeCheck(
        status="not_run",
        message="",
        bindings={},
        inputs=[],
        values=[],
        findings=[],
        limits=_unobservable(view),
        optimized=options.optimized,
        timeout=options.timeout,
        max_memory=options.max_memory,
        method="profile" if method == "auto" else method,
    )
    pending = PendingCheck(check, view, options, main_values, None, _not_runnable(view), "not_runnable", children)
    if pending.reason:
        return pending
    try:
        plan = pending.plan = plan_feeds(view, options.dims, options.inputs)
    except FeedProblem as problem:
        pending.reason, pending.kind = str(problem), problem.kind
        return pending
    names = [name for name, _, _ in main_values]
    check.bindings = dict(plan.bindings)
    check.inputs = [InputCheck(f.name, dtype_name(f.dtype), list(f.shape), f.values) for f in plan.feeds]
    method = check.method = _final_method(check, view, plan, names, options, method)
    # the model is checked runnable: the child loads it while this process goes on, unless even
    # loading could not fit in the memory limit (the estimate refuses the run then)
    floor = BASE_BYTES + view.file_bytes * 5 // 4 + sum(f.nbytes for f in plan.feeds)
    if floor <= options.max_memory:
        if not children:
            children.append(options.start_child())
        extra = _outputs_proto(view, names) if method == "outputs" else b""
        children[0].send_job(_job(view, plan, options, method, names), extra)
    return pending


def _final_method(
    check: ShapeCheck, view: ModelView, plan: FeedPlan, names: list[str], options: ShapeOptions, method: str
) -> str:
    """The method this run uses: `method` (auto chosen by sizes), unless a profile cannot be trusted."""
    if method == "auto":
        method = choose_method(view, plan, names, options.max_memory)
    if method == "profile" and (odd := unsafe_names(view)):  # only a profile needs escaped names
        check.limits.append(
            f"node names with quotes, backslashes, control characters or invalid UTF-8 ({odd[0]!r}): some "
            "onnxruntime versions write them unescaped into their profile, so every value was an output instead"
        )
        return "outputs"
    return method


def _prepare_and_run(
    check: ShapeCheck,
    view: ModelView,
    model: ModelProto,
    plan: FeedPlan,
    declared: dict[str, ValueInfo],
    file_params: set[str],
    names: list[str],
    options: ShapeOptions,
    child: Child | None,
) -> ShapeCheck:
    """Shape inference and the memory estimate (refusing a run that cannot fit), then the run."""
    inferred, kinds, note = infer_bound(model, plan.feeds)
    if note:
        check.limits.append(note)
    for value in check.values:
        value.inferred = _list(inferred.get(value.name))
    method = check.method
    try:
        estimate, unknown, largest = estimate_memory(view, plan.feeds, inferred, names, method)
    except AuditError as exc:
        return _stopped(check, "refused", f"run refused: {exc}")
    check.estimate_bytes = estimate
    if estimate > options.max_memory or child is None:
        big = f" (largest value {largest[0]!r} {largest[2]}, {_gib(largest[1])})" if largest else ""
        return _stopped(
            check, "refused",
            f"run refused: needs at least {_gib(estimate)}, over --max-memory {_gib(options.max_memory)}{big}",
        )  # fmt: skip
    if unknown:
        check.limits.append(
            f"the memory estimate leaves out {unknown} value(s) whose size onnx shape inference cannot know; "
            "the limit is still enforced during the run"
        )
    result = child.run(options.timeout)
    observed = None
    if method == "profile" and result.outcome == "ok":
        observed = _profile_values(check, view, declared, inferred, kinds, result.payload)
    return _finish(check, view, plan, declared, result, file_params, observed)


def _profile_values(
    check: ShapeCheck,
    view: ModelView,
    declared: dict[str, ValueInfo],
    inferred: dict[str, ValueInfo],
    kinds: dict[str, str],
    payload: dict,
) -> dict[str, dict]:
    """The child's profile events and graph outputs as observations of every main-graph value."""
    profile = payload.get("profile") or {}
    dtypes: dict[str, int] = {}
    # what the value is by ONNX's rules (strict inference) wins over what the file declares: a
    # declaration is what is being checked
    for shapes in (view.value_shapes, declared, inferred):
        dtypes.update((name, info.dtype) for name, info in shapes.items() if info.dtype)
    seen = observe(
        view,
        [value.name for value in check.values],
        events_from_child(profile.get("events") or []),
        payload.get("values") or {},
        kinds,
        dtypes,
        precision_casts=int(profile.get("precision_casts", 0)),
        crowded=set(profile.get("crowded") or ()),
        complete=bool(profile.get("complete", True)),
    )
    check.limits.extend(seen.limits)
    return seen.values


_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
# "/onnxruntime_src/.../bfc_arena.cc:360 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool) "
_ORT_SOURCE = re.compile(r"\S+\.(?:cc|cpp|h):\d+ (?:[\w:<>*&~ ]+\([^()]*\)(?: const)? )?")
_ORT_LOAD = re.compile(r"^Load model from .* failed:\s*")  # names the job folder's copy, not the user's file
_ORT_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")
_ORT_SIZE = re.compile(r"buffer of size (\d+)")


def _ort_message(text: str, memory: bool) -> str:
    """onnxruntime's one-line error without its prefix and C++ source locations."""
    text = _ORT_LOAD.sub("", _ORT_SOURCE.sub("", _ORT_PREFIX.sub("", text.strip())))
    node = _ORT_NODE.search(text)
    size = _ORT_SIZE.search(text)
    if memory and size:
        where = f" in {node.group(1)} node {node.group(2)!r}" if node else ""
        return f"onnxruntime could not allocate {_gib(int(size.group(1)))}{where}"
    return text[:600]


def _finish(
    check: ShapeCheck,
    view: ModelView,
    plan: FeedPlan,
    declared: dict[str, ValueInfo],
    result: ChildResult,
    file_params: set[str],
    observed: dict[str, dict] | None = None,
) -> ShapeCheck:
    if result.outcome != "ok":
        status, template = _OUTCOMES.get(result.outcome, _OUTCOMES["error"])
        detail = _ort_message(result.message or result.outcome, result.outcome == "memory")
        message = template.format(msg=detail, mem=_gib(check.max_memory))
        if result.outcome == "timeout":
            message = f"run killed: no result after {check.timeout:g} s (--timeout {check.timeout:g})"
        elif result.outcome == "memory" and check.method == "profile" and _loops(view):
            message += " (onnxruntime's profiler keeps an event per executed node, Loop iterations included; "
            message += "--method outputs keeps none)"
        return _stopped(check, status, message)
    check.onnxruntime = str(result.payload.get("onnxruntime", ""))
    if not result.payload.get("memory_limited", True):
        check.limits.append("this platform has no RLIMIT_AS: --max-memory was checked up front only")
    _compare(
        check, view, plan, declared, result.payload.get("values", {}) if observed is None else observed, file_params
    )
    return check


def _loops(view: ModelView) -> bool:
    return any(n.op_type in ("Loop", "Scan") for n in view.all_nodes())


def _stopped(check: ShapeCheck, status: str, message: str) -> ShapeCheck:
    check.status, check.message = status, message
    return check


def _not_run(name: str, label: str, op: str, declared: dict[str, ValueInfo], view: ModelView) -> ValueCheck:
    """A value before the run: declared and static shapes known, nothing observed yet."""
    static = _list(view.value_shapes.get(name))
    return ValueCheck(name, label, op, _list(declared.get(name)), static, None, None, None, "not run")


def _list(info: ValueInfo | None) -> Shape | None:
    return list(info.shape) if info is not None and info.shape is not None else None


def confirm_path(path: str | os.PathLike[str], options: ShapeOptions | None = None) -> tuple[ModelView, ShapeCheck]:
    """Open `path` once and confirm its shapes. Raises AuditError for unusable input."""
    view = load(path)
    return view, confirm(view, options or ShapeOptions())


# ---------------------------------------------------------------- into the Report


def confirmed_view(view: ModelView, check: ShapeCheck) -> ModelView:
    """The view with every observed value's shape replaced by what onnxruntime produced."""
    shapes = dict(view.value_shapes)
    for value in check.values:
        if value.shown is not None:
            dtype = _BY_NAME.get(value.dtype or "", 0) or (shapes[value.name].dtype if value.name in shapes else 0)
            shapes[value.name] = ValueInfo(value.name, dtype, tuple(value.shown))
    return replace(view, value_shapes=shapes)


__all__ = [
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_TIMEOUT",
    "PendingCheck",
    "ShapeCheck",
    "ShapeOptions",
    "ValueCheck",
    "begin",
    "confirm",
    "confirm_path",
    "confirmed_view",
    "read_structure",
]
