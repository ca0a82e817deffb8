"""The library entry point: `audit(path) -> Report`, the same pipeline the CLI runs."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from onnxaudit.cost.bound import model_cost
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.count.layers import group_layers, roll_up
from onnxaudit.count.normaxis import channel_axis_findings
from onnxaudit.count.roles import classify
from onnxaudit.count.table import param_table
from onnxaudit.errors import UsageError, names_the_file
from onnxaudit.frameworks.figures import framework_report
from onnxaudit.frameworks.view import framework_view
from onnxaudit.io.remote import is_url
from onnxaudit.model.load import MAX_NODES, load
from onnxaudit.report.build import Report, annotate, build_report

if TYPE_CHECKING:
    from onnxaudit.diff.result import DiffReport
    from onnxaudit.diff.values import ValuesMode
    from onnxaudit.shapes.options import ShapeOptions

F = TypeVar("F", bound=Callable[..., Any])

# The options, typed: a type checker refuses a misspelt one; audit() still refuses it at run time.
Convention = Literal["keras", "pytorch"]  # count.conventions.CONVENTIONS, one entry each
Grouping = Literal["layer", "op", "role", "tensor"]  # what one row of the report stands for
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)


def gc_paused(func: F) -> F:
    """Pause the cyclic garbage collector for one call: the pipeline builds millions of objects
    that hold no cycles, and on a 200k-node graph its collections cost more than the work. The
    first collection after the pause still walks whatever the call returned: a caller that renders
    a big report and drops it (the CLI) pauses around both."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper  # type: ignore[return-value]


@gc_paused
@names_the_file
def audit(
    path: str | os.PathLike[str],
    convention: Convention = "keras",
    by: Grouping = "layer",
    depth: int | None = None,
    shapes: ShapeOptions | None = None,
    dims: dict[str, int] | None = None,
    choose_dims: bool = False,
    max_nodes: int = MAX_NODES,
    *,
    for_format: str | None = None,
    keep: list[object] | None = None,
) -> Report:
    """Count and classify every parameter of the model at `path`.

    With `shapes`, also run the model once in onnxruntime (a child process under time and memory
    limits): rows show the confirmed shapes and `report.shape_check` says what was found. `dims` binds
    free input dims (`{"batch": 1}`, or `{"x:0": 1}` by position) for the cost figures, which otherwise
    stay symbolic; `choose_dims` sizes the rest from the graph (model/sizes.py). A model of more than
    `max_nodes` nodes (see io/budget.MAX_NODES) is refused. `for_format` (the summary
    command's: the one output format the report is rendered to) leaves out what that format never shows:
    for any format verify's per-module evidence (`report.shared_reads`), for all but "json" also the rows of
    tensors that are not unclassified (text, Markdown and HTML print only their count, which
    `report.tensor_count()` keeps; `report.tensors` holds the unclassified rows alone); None (the default)
    keeps everything. `keep`: a list the call appends what it built on the way to (the view, the
    classification, the layers, the framework view), for a caller that ends the process without freeing
    them (the CLI: freeing them on return costs ~0.2 s CPU at 200k nodes); None (the default) frees them
    as the call returns.

    Raises AuditError (one-line message) when the file cannot be used.
    """
    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r} (choose from {', '.join(CONVENTIONS)})")
    if by not in GROUPINGS:
        raise UsageError(f"unknown grouping {by!r} (choose from {', '.join(GROUPINGS)})")
    if depth is not None and depth < 1:
        raise UsageError("--depth must be 1 or more")
    if shapes is not None and is_url(path):
        raise UsageError(
            f"{path}: running the model (--run-shapes) needs a local file; a URL's weights are never fetched"
        )
    view = load(path, max_nodes=max_nodes)
    roles = classify(view)
    table = param_table(roles)
    layers = group_layers(view, table)
    rebuilt = framework_view(view, table, layers)
    framework = framework_report(rebuilt)
    if keep is not None:
        keep += (view, roles, table, layers, rebuilt)
    del roles, rebuilt  # freed here, between the stages, unless kept
    if depth is not None:
        layers = roll_up(layers, depth)
    shown, check = view, None
    if shapes is not None:
        from onnxaudit.shapes.confirm import confirm, confirmed_view  # onnxruntime's side: only when asked

        check = confirm(view, shapes)
        shown = confirmed_view(view, check)
    costs = model_cost(view, shown, check, dims or {}, table, choose_dims)
    report = build_report(shown, table, layers, CONVENTIONS[convention], by, depth, framework, costs, for_format)
    report.notes += [finding.message for finding in channel_axis_findings(view, table)]
    if keep is not None:
        keep += (shown, costs)
    return annotate(report, check) if check is not None else report


@gc_paused
def compare(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    convention: Convention = "keras",
    values: ValuesMode = "sample",
    budget: int | None = None,
    max_nodes: int = MAX_NODES,
) -> DiffReport:
    """What changed from the model at `old` to the one at `new`: totals side by side (stored and
    framework view), layers aligned by name then structure, and whether aligned weights hold the same
    values (`values`: "sample" reads SAMPLES elements of each, "full" whole tensors within `budget`
    bytes per file, "none" nothing). Raises AuditError (one line naming the file) when either is unusable or
    over `max_nodes` (as `audit`).
    """
    from onnxaudit.diff import DEFAULT_BUDGET, MODES, diff_reports  # diff's modules: only when asked

    if values not in MODES:
        raise UsageError(f"unknown values mode {values!r} (choose from {', '.join(MODES)})")
    if budget is not None and budget < 0:
        raise UsageError("the values budget must be 0 or more bytes")
    first = audit(old, convention=convention, max_nodes=max_nodes)
    second = audit(new, convention=convention, max_nodes=max_nodes)
    budget = DEFAULT_BUDGET if budget is None else budget
    return diff_reports(first, second, values=values, budget=budget, max_nodes=max_nodes)
