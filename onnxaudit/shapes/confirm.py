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

import os
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from onnxaudit.errors import AuditError
from onnxaudit.io.dims import dtype_name
from onnxaudit.io.onnxcore import ModelProto
from onnxaudit.model.load import load
from onnxaudit.model.sizes import RETRY_CANDIDATES, DimChoice
from onnxaudit.model.view import ModelView, ValueInfo
from onnxaudit.shapes.defaults import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT
from onnxaudit.shapes.feeds import FeedPlan, FeedProblem, plan_feeds
from onnxaudit.shapes.observe import DTYPE_BY_NAME, compare_shapes
from onnxaudit.shapes.options import (
    BASE_BYTES,
    InputCheck,
    Shape,
    ShapeCheck,
    ShapeOptions,
    ValueCheck,
    gib,
)
from onnxaudit.shapes.plan import (
    child_job,
    choose_method,
    estimate_memory,
    not_runnable,
    outputs_proto,
    produced_values,
    unobservable,
)
from onnxaudit.shapes.profile import Observed, events_from_child, observe, unsafe_names
from onnxaudit.shapes.sandbox import Child, ChildResult
from onnxaudit.shapes.structure import declared_shapes, infer_bound, read_structure, symbolic_params

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
            check, view, model, self.plan, declared, symbolic_params(model), names, self.options, child
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
    main_values = produced_values(view)
    check = ShapeCheck(
        status="not_run",
        message="",
        bindings={},
        inputs=[],
        values=[],
        findings=[],
        limits=unobservable(view),
        optimized=options.optimized,
        timeout=options.timeout,
        max_memory=options.max_memory,
        method="profile" if method == "auto" else method,
    )
    pending = PendingCheck(check, view, options, main_values, None, not_runnable(view), "not_runnable", children)
    if pending.reason:
        return pending
    try:
        plan = pending.plan = plan_feeds(view, options.dims, options.inputs)
    except FeedProblem as problem:
        pending.reason, pending.kind = str(problem), problem.kind
        return pending
    names = [name for name, _, _ in main_values]
    check.choices = list(plan.choices)
    check.bindings = _bindings(plan, check.choices)
    check.inputs = [InputCheck(f.name, dtype_name(f.dtype), list(f.shape), f.values) for f in plan.feeds]
    method = check.method = _final_method(check, view, plan, names, options, method)
    # the model is checked runnable: the child loads it while this process goes on, unless even
    # loading could not fit in the memory limit (the estimate refuses the run then)
    floor = BASE_BYTES + view.file_bytes * 5 // 4 + sum(f.nbytes for f in plan.feeds)
    if floor <= options.max_memory:
        if not children:
            children.append(options.start_child())
        extra = outputs_proto(view, names) if method == "outputs" else b""
        children[0].send_job(child_job(view, plan, options, method, names), extra)
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
        big = f" (largest value {largest[0]!r} {largest[2]}, {gib(largest[1])})" if largest else ""
        return _stopped(
            check, "refused",
            f"run refused: needs at least {gib(estimate)}, over --max-memory {gib(options.max_memory)}{big}",
        )  # fmt: skip
    if unknown:
        check.limits.append(
            f"the memory estimate leaves out {unknown} value(s) whose size onnx shape inference cannot know; "
            "the limit is still enforced during the run"
        )
    started = time.monotonic()
    result = child.run(options.timeout)
    if result.outcome == "run_error" and check.choices:
        result, plan, inferred = _retry(check, view, model, plan, names, options, result, started, inferred)
    observed = None
    if method == "profile" and result.outcome == "ok":
        observed = _profile_values(check, view, declared, inferred, kinds, result.payload)
    return _finish(check, view, plan, declared, result, file_params, observed)


def _retry(
    check: ShapeCheck,
    view: ModelView,
    model: ModelProto,
    plan: FeedPlan,
    names: list[str],
    options: ShapeOptions,
    result: ChildResult,
    started: float,
    inferred: dict[str, ValueInfo],
) -> tuple[ChildResult, FeedPlan, dict[str, ValueInfo]]:
    """onnxruntime rejected the chosen sizes: try each choice's next sizes, all within --timeout, and
    note every try. The plan that ran last is returned, with its inference."""
    choices = check.choices
    for k in range(1, RETRY_CANDIDATES + 1):
        dims = dict(options.dims)
        for choice in choices:
            if len(choice.retry) >= k:
                dims[choice.label] = choice.retry[k - 1]
        left = options.timeout - (time.monotonic() - started)
        if dims == options.dims or left < 1:
            break
        try:
            again = plan_feeds(view, dims, options.inputs)
        except (FeedProblem, AuditError):
            break
        check.tries.append(f"{_sizes_text(choices, plan)}: {_last_status(result.message or '')}")
        plan = again
        inferred = infer_bound(model, plan.feeds)[0]
        with options.start_child() as child:
            extra = outputs_proto(view, names) if check.method == "outputs" else b""
            child.send_job(child_job(view, plan, options, check.method, names), extra)
            result = child.run(left)
        if result.outcome != "run_error":
            break
    if check.tries:
        check.tries.append(f"{_sizes_text(check.choices, plan)}: {'ran' if result.outcome == 'ok' else result.outcome}")
        shapes = {f.name: f.shape for f in plan.feeds}
        tries = f" (after onnxruntime rejected {len(check.tries) - 1} other size(s))"
        check.choices = [
            replace(c, value=shapes[c.input][c.axis], reason=c.reason + (tries if c.retry else ""))
            for c in choices
            if c.input in shapes
        ]
        check.bindings = _bindings(plan, check.choices)
        check.inputs = [InputCheck(f.name, dtype_name(f.dtype), list(f.shape), f.values) for f in plan.feeds]
        for value in check.values:
            value.inferred = _list(inferred.get(value.name))
    return result, plan, inferred


def _last_status(message: str) -> str:
    """onnxruntime's innermost complaint: nested nodes (an If's branch) repeat 'Status Message:'."""
    text = _ort_message(message, False)
    return text.rsplit("Status Message: ", 1)[-1][:300]


def _sizes_text(choices: list[DimChoice], plan: FeedPlan) -> str:
    shapes = {f.name: f.shape for f in plan.feeds}
    return ", ".join(f"{c.label}={shapes[c.input][c.axis]}" for c in choices if c.input in shapes)


def _bindings(plan: FeedPlan, choices: list[DimChoice]) -> dict[str, int]:
    """Every bound dim by name, and the unnamed ones chosen or given by position (INPUT:AXIS)."""
    bindings = dict(plan.bindings)
    bindings.update((f"{i}:{a}", v) for (i, a), v in plan.positions.items())
    bindings.update((c.label, c.value) for c in choices if c.name is None)
    return bindings


def _profile_values(
    check: ShapeCheck,
    view: ModelView,
    declared: dict[str, ValueInfo],
    inferred: dict[str, ValueInfo],
    kinds: dict[str, str],
    payload: dict[str, Any],
) -> dict[str, Observed]:
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
        return f"onnxruntime could not allocate {gib(int(size.group(1)))}{where}"
    return text[:600]


def _finish(
    check: ShapeCheck,
    view: ModelView,
    plan: FeedPlan,
    declared: dict[str, ValueInfo],
    result: ChildResult,
    file_params: set[str],
    observed: dict[str, Observed] | None = None,
) -> ShapeCheck:
    if result.outcome != "ok":
        status, template = _OUTCOMES.get(result.outcome, _OUTCOMES["error"])
        detail = _ort_message(result.message or result.outcome, result.outcome == "memory")
        message = template.format(msg=detail, mem=gib(check.max_memory))
        if result.outcome == "run_error":
            message = f"run failed: onnxruntime raised: {_last_status(result.message or '')}; {_flag_hint(check)}"
        if result.outcome == "timeout":
            message = f"run killed: no result after {check.timeout:g} s (--timeout {check.timeout:g})"
        elif result.outcome == "memory" and check.method == "profile" and _loops(view):
            message += " (onnxruntime's profiler keeps an event per executed node, Loop iterations included; "
            message += "--method outputs keeps none)"
        return _stopped(check, status, message)
    check.onnxruntime = str(result.payload.get("onnxruntime", ""))
    if not result.payload.get("memory_limited", True):
        check.limits.append("this platform has no RLIMIT_AS: --max-memory was checked up front only")
    compare_shapes(
        check, view, plan, declared, result.payload.get("values", {}) if observed is None else observed, file_params
    )
    return check


def _flag_hint(check: ShapeCheck) -> str:
    """Which flag to add after a failed run: the dims chosen here by name, else --input."""
    guessed = [c for c in check.choices if c.kind != "batch"]
    if guessed:
        given = ", ".join(f"{c.label}={c.value}" for c in guessed[:4])
        flag = guessed[0].label
        return f"sizes were chosen ({given}): give real ones with --dim {flag}=N, or data with --input NAME=FILE.npy"
    return "generated inputs may not suit this model: give real data with --input NAME=FILE.npy"


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
            dtype = DTYPE_BY_NAME.get(value.dtype or "", 0) or (shapes[value.name].dtype if value.name in shapes else 0)
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
