"""Before the run: what can run and what can be seen, the memory it needs, how values are observed
(choose_method), and the job the child is handed."""

from __future__ import annotations

from pathlib import Path

from onnxaudit.io.dims import INTEGER_DTYPES, byte_size, dtype_name, element_count
from onnxaudit.io.onnxcore import ModelProto, TensorProto
from onnxaudit.model.view import ModelView, ValueInfo
from onnxaudit.shapes.feeds import Feed, FeedPlan
from onnxaudit.shapes.options import (
    AUTO_BYTES_PER_NODE,
    AUTO_MAX_BYTES,
    AUTO_MIN_BYTES,
    BASE_BYTES,
    PROFILE_EVENT_BYTES,
    PROFILE_FILE_BYTES_PER_NODE,
    RUNTIME_DOMAINS,
    ShapeOptions,
    fmt_shape,
)
from onnxaudit.shapes.profile import event_names


def produced_values(view: ModelView) -> list[tuple[str, str, str]]:
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


def not_runnable(view: ModelView) -> str:
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


def unobservable(view: ModelView) -> list[str]:
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


def gib(n: int) -> str:
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
    # (dtype, shape) -> bytes; a model repeats a few of them
    sizes: dict[tuple[int, tuple[int | str | None, ...]], int] = {}
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
            largest = (name, size, f"{fmt_shape(info.shape)} {dtype_name(info.dtype)}")
    if method == "outputs":
        return total + values, unknown, largest
    nodes = sum(len(g.nodes) for g in view.graphs.values())  # Loop iterations cannot be known here
    total += max(largest[1] if largest else 0, at_end) + nodes * PROFILE_EVENT_BYTES
    return total, unknown, largest


def outputs_proto(view: ModelView, names: list[str]) -> bytes:
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
    # (dtype, shape) -> bytes; a model repeats a few of them
    sizes: dict[tuple[int, tuple[int | str | None, ...] | None], int | None] = {}
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


def child_job(
    view: ModelView, plan: FeedPlan, options: ShapeOptions, method: str, names: list[str]
) -> dict[str, object]:
    """Everything the child needs, known before shape inference: it starts loading at once."""
    wanted = set(names)
    job: dict[str, object] = {
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
