"""Two Reports in, one DiffReport out: totals side by side, layers aligned, values compared."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from onnxaudit.diff.align import Entry, Pair, align, entries
from onnxaudit.diff.framework import framework_layers, overlap
from onnxaudit.diff.quant import quantization
from onnxaudit.diff.result import (
    CHANGED,
    DIFF_SCHEMA_VERSION,
    ONLY_NEW,
    ONLY_OLD,
    RENAMED,
    SAME,
    AmountDelta,
    Delta,
    DiffReport,
    FigureDelta,
    LayerDiff,
    Side,
    TensorDiff,
    TotalsDiff,
)
from onnxaudit.diff.values import DEFAULT_BUDGET, DIFFERENT, NOT_COMPARED, ValuesMode, ValueVerdict, compare_values
from onnxaudit.frameworks.figures import Figure
from onnxaudit.io.budget import MAX_NODES
from onnxaudit.io.datamap import MAIN
from onnxaudit.report.build import Report, TensorRow

_STORED = (
    "total", "trainable", "non_trainable", "unclassified",
    "total_bytes", "trainable_bytes", "non_trainable_bytes", "unclassified_bytes",
)  # fmt: skip
_LOGICAL = ("total", "trainable", "non_trainable")


def diff_reports(
    old: Report, new: Report, values: ValuesMode = "sample", budget: int = DEFAULT_BUDGET, max_nodes: int = MAX_NODES
) -> DiffReport:
    """What changed from `old` to `new` (Reports grouped by layer, of the same convention).
    Values are read from the files the Reports name, within bounded reads (values.py), each file's map walked
    at `max_nodes` (io/budget.py) as its Report was read."""
    pairs = align(entries(old), entries(new))
    tensor_pairs = [_tensor_pairs(p) for p in pairs]
    asked = [
        (a, b) for group in tensor_pairs for a, b in group if a is not None and b is not None and _comparable(a, b)
    ]
    keys = [((a.scope, a.name), (b.scope, b.name)) for a, b in asked]
    if old.remote is not None or new.remote is not None:  # a URL's weights are never fetched (io/remote.py)
        found = [ValueVerdict(NOT_COMPARED, "a model at a URL: its weights are not fetched") for _ in keys]
    else:
        # the main graph's initializers only (most files): no node of either file need be walked for them
        nodes = not all(t.origin == "initializer" and t.scope == MAIN for pair in asked for t in pair)
        found = compare_values(Path(old.model), Path(new.model), keys, values, budget, max_nodes, nodes)
    verdicts = {id(a): verdict for (a, _), verdict in zip(asked, found, strict=True)}
    layers = [_layer(p, group, verdicts) for p, group in zip(pairs, tensor_pairs, strict=True)]
    totals = _totals(old, new)
    notes = []
    for report, which in ((old, "OLD"), (new, "NEW")):
        if report.framework is None:
            notes.append(f"{which} has no framework view: its logical counts are the stored ones")
        left_out = {**report.cost.unknown_ops, **report.cost.not_counted_ops} if report.cost else {}
        if left_out:
            ops = ", ".join(f"{n} {op}" for op, n in sorted(left_out.items()))
            notes.append(f"{which}'s MACs leave out nodes whose work is not counted or not known: {ops}")
    logical_agree = all(f.agree for f in totals.framework.values())
    changed = any(d.delta for d in totals.stored.values()) or any(
        layer.status != SAME or layer.values == DIFFERENT for layer in layers
    )
    return DiffReport(
        DIFF_SCHEMA_VERSION, old.convention, old.trainable_label, old.non_trainable_label, _side(old), _side(new),
        totals, layers, values, budget if values == "full" else None, logical_agree, changed, notes,
        framework_layers(old.framework, new.framework),
    )  # fmt: skip


def _side(report: Report) -> Side:
    fw = report.framework
    return Side(
        report.model, report.file_bytes, report.producer, report.opsets,
        fw.origin if fw else "unknown", fw.status if fw else None,
    )  # fmt: skip


def _logical(report: Report, name: str) -> Figure:
    if report.framework is not None:
        figure: Figure = getattr(report.framework, name)
        return figure
    n = getattr(report.totals, name)
    return Figure(n, n)


def _totals(old: Report, new: Report) -> TotalsDiff:
    stored = {k: Delta.of(getattr(old.totals, k), getattr(new.totals, k)) for k in _STORED}
    by_dtype: dict[str, dict[str, Delta]] = {}
    for dtype in sorted(set(old.totals.by_dtype) | set(new.totals.by_dtype)):
        a, b = old.totals.by_dtype.get(dtype, {}), new.totals.by_dtype.get(dtype, {})
        by_dtype[dtype] = {k: Delta.of(a.get(k, 0), b.get(k, 0)) for k in ("params", "bytes")}
    framework = {}
    for name in _LOGICAL:
        x, y = _logical(old, name), _logical(new, name)
        framework[name] = FigureDelta(x, y, overlap(x, y))
    macs = AmountDelta.of(old.cost.macs if old.cost else None, new.cost.macs if new.cost else None)
    return TotalsDiff(stored, by_dtype, framework, macs)


Tensors = list[tuple[TensorRow | None, TensorRow | None]]


def _tensor_pairs(pair: Pair) -> Tensors:
    """A layer pair's tensors paired by role (the first weight with the first weight...), then the
    rest in order; a tensor with no partner stands alone."""
    olds = pair.old.tensors if pair.old else []
    news = pair.new.tensors if pair.new else []
    by_role: dict[str, list[TensorRow]] = defaultdict(list)
    for t in news:
        by_role[t.role].append(t)
    out: Tensors = []
    left_old = []
    for t in olds:
        if by_role.get(t.role):
            out.append((t, by_role[t.role].pop(0)))
        else:
            left_old.append(t)
    left_new = [t for t in news if any(t is u for u in by_role.get(t.role, ()))]
    for i in range(max(len(left_old), len(left_new))):
        out.append((left_old[i] if i < len(left_old) else None, left_new[i] if i < len(left_new) else None))
    return out


def _comparable(a: TensorRow, b: TensorRow) -> bool:
    return a.dtype == b.dtype and a.dims == b.dims and a.dims is not None


def _tensor(a: TensorRow | None, b: TensorRow | None, verdicts: dict[int, ValueVerdict]) -> TensorDiff:
    if a is not None and b is not None and not _comparable(a, b):
        verdict = ValueVerdict(NOT_COMPARED, "dtype or shape differ")
    elif a is None or b is None:
        verdict = ValueVerdict(NOT_COMPARED, f"only in {'NEW' if a is None else 'OLD'}")
    else:
        verdict = verdicts.get(id(a), ValueVerdict(NOT_COMPARED, "not read"))
    return TensorDiff(
        (a or b).role,  # type: ignore[union-attr]
        a.name if a else None, b.name if b else None,
        a.dtype if a else None, b.dtype if b else None,
        a.dims if a else None, b.dims if b else None,
        Delta.of(a.count if a else None, b.count if b else None),
        Delta.of(a.bytes if a else None, b.bytes if b else None),
        verdict.verdict, verdict.how,
    )  # fmt: skip


def _sums(entry: Entry | None) -> tuple[int | None, int | None, int | None, int | None]:
    """The row's params, trainable and non-trainable counts and its tensors' bytes, None for a side with no row."""
    if entry is None:
        return None, None, None, None
    row = entry.row
    stored = sum(t.bytes or 0 for t in entry.tensors) if entry.tensors else 0
    return int(row.params), int(row.trainable), int(row.non_trainable), stored


def _layer(pair: Pair, tensors: Tensors, verdicts: dict[int, ValueVerdict]) -> LayerDiff:
    a, b = pair.old, pair.new
    diffs = [_tensor(x, y, verdicts) for x, y in tensors]
    counts = [Delta.of(x, y) for x, y in zip(_sums(a), _sums(b), strict=True)]
    params = dict(zip(("params", "trainable", "non_trainable", "bytes"), counts, strict=True))
    changes: list[str] = []
    if a is None or b is None:
        status = ONLY_NEW if a is None else ONLY_OLD
    else:
        if counts[0].delta or counts[1].delta or counts[2].delta:
            changes.append("params")
        if {t.dtype for t in a.tensors} != {t.dtype for t in b.tensors}:
            changes.append("dtype")
        if a.dims != b.dims:
            changes.append("shape")
        if a.ops != b.ops:
            changes.append("op")
        status = CHANGED if changes else RENAMED if a.row.name != b.row.name else SAME
    return LayerDiff(
        status, pair.matched_by, a.row.name if a else None, b.row.name if b else None,
        list(a.row.ops) if a else [], list(b.row.ops) if b else [],
        params["params"], params["trainable"], params["non_trainable"], params["bytes"],
        AmountDelta.of(a.row.macs if a else None, b.row.macs if b else None, a is not None, b is not None), changes,
        quantization(a.tensors) if a and a.tensors else None, quantization(b.tensors) if b and b.tensors else None,
        _layer_values(diffs), diffs,
    )  # fmt: skip


def _layer_values(diffs: list[TensorDiff]) -> str:
    verdicts = {d.values for d in diffs}
    if not diffs:
        return "no weights"
    if DIFFERENT in verdicts:
        return DIFFERENT
    if verdicts == {NOT_COMPARED}:
        return NOT_COMPARED
    return "partly compared" if NOT_COMPARED in verdicts else next(iter(verdicts))
