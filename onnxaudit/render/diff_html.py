"""`diff --format html`: one self-contained page (the summary page's pieces: inline CSS, SVG, a few lines
of script, a policy that forbids fetching) with the two files' counts side by side, where the parameters,
bytes and MACs changed by layer (and module), trainable / non-trainable of each file, the dtype split,
the findings and the changed layers."""

from __future__ import annotations

from html import escape as html_escape

from onnxaudit.diff.charts import Change, MacsChanges, layer_changes, macs_changes, module_changes
from onnxaudit.diff.result import SAME, DiffReport, Side
from onnxaudit.render.diff import (
    _framework_rows,
    _logical_rows,
    _macs_row,
    _shown_layers,
    _signed,
    _values_line,
    _verdict,
    count_labels,
    layer_cells,
)
from onnxaudit.render.html import (
    ChartBar,
    attr,
    bucket_bar,
    cards,
    findings,
    html_table,
    legend,
    macs_bar,
    page,
    params_bar,
    per_unit,
    svg_bars,
    text,
)
from onnxaudit.render.summary import escape, human_bytes
from onnxaudit.report.breakdown import Bar

_BUCKETS = ("trainable", "non_trainable", "unclassified")
_LAYER_HEADERS = ["Status", "OLD layer (ops)", "NEW layer (ops)", "Params", "Bytes", "Changes", "Storage", "Values"]


def _side(which: str, side: Side) -> str:
    origin = f"{side.origin} export" if side.origin != "unknown" else "exporter unknown"
    return f"<b>{which}</b> {text(side.model)} ({html_escape(origin)}, {human_bytes(side.file_bytes)})"


def _cards(report: DiffReport) -> str:
    s = report.totals.stored
    items = []
    for key, label in count_labels(report).items():
        d, b = s[key], s[f"{key}_bytes"]
        items.append(
            (
                label,
                f"{d.old or 0:,} → {d.new or 0:,}",
                f"{_signed(d.delta) or '0'} · {_signed(b.delta, True) or '0 B'}",
            )
        )
    m = report.totals.macs
    if m.old is not None or m.new is not None:
        items.append(("MACs", "same" if m.same else "differ", f"{escape(m.old or '-')} → {escape(m.new or '-')}"))
    return cards(items)


def _stored_table(report: DiffReport) -> str:
    s = report.totals.stored
    keys = {**count_labels(report), "unclassified": "Unclassified params"}
    rows, data = [], []
    for key, label in keys.items():
        d, b = s[key], s[f"{key}_bytes"]
        rows.append([label, f"{d.old or 0:,}", f"{d.new or 0:,}", _signed(d.delta), human_bytes(b.old or 0),
                     human_bytes(b.new or 0)])  # fmt: skip
        data.append((("key", key), ("old", d.old), ("new", d.new), ("delta", d.delta)))
    headers = ["Stored", "OLD", "NEW", "Delta", "OLD bytes", "NEW bytes"]
    return html_table("stored", headers, rows, frozenset({1, 2, 3, 4, 5}), data)


def _logical_table(report: DiffReport) -> str:
    rows = _logical_rows(report) + _macs_row(report)
    headers = ["Framework view (logical)", "OLD", "NEW", "Delta", "Verdict"]
    return html_table("logical", headers, rows, frozenset({1, 2, 3}))


def _dtype_table(report: DiffReport) -> str:
    rows, data = [], []
    for dtype, d in report.totals.by_dtype.items():
        p, b = d["params"], d["bytes"]
        rows.append([dtype, f"{p.old or 0:,}", f"{p.new or 0:,}", _signed(p.delta), human_bytes(b.old or 0),
                     human_bytes(b.new or 0)])  # fmt: skip
        data.append((("dtype", dtype), ("old-params", p.old or 0), ("new-params", p.new or 0),
                     ("old-bytes", b.old or 0), ("new-bytes", b.new or 0)))  # fmt: skip
    headers = ["dtype", "OLD params", "NEW params", "Delta", "OLD bytes", "NEW bytes"]
    return html_table("dtypes", headers, rows, frozenset({1, 2, 3, 4, 5}), data)


def _params_change(c: Change) -> ChartBar:
    return bucket_bar(c.name, c.params, (c.trainable, c.non_trainable, c.unclassified), c.layers, "+")


def _bytes_change(c: Change) -> ChartBar:
    figure = _signed(c.bytes, True)
    return ChartBar(c.name, (("bytes", c.bytes),), figure, figure, (("bytes", c.bytes), ("layers", c.layers)))


def _macs_section(chart: MacsChanges) -> list[str]:
    if len(chart.units) > 1:
        units = ", ".join(escape(u) for u in chart.units)
        return [f"<p>MACs changes not charted: layers change by different free dims ({html_escape(units)}).</p>"]
    bars = [macs_bar(name, n, chart.unit, layers) for name, n, layers in chart.bars]
    bars = [
        ChartBar(b.name, b.segments, f"{n:+,}{per_unit(chart.unit)}", b.title, b.data)
        for b, (_, n, _) in zip(bars, chart.bars, strict=True)
    ]
    parts = [
        f'<p id="macs-unit" data-unit="{attr(chart.unit)}">Each figure is NEW minus OLD MACs'
        + (f" per unit of {text(chart.unit)} (a free dim)" if chart.unit else "")
        + ".</p>",
        svg_bars("macs-changes", bars, "No layer's MACs changed."),
    ]
    if chart.unknown:
        parts.append(f"<p>{chart.unknown:,} layer rows whose MACs a file does not know statically: not charted.</p>")
    return parts


def _split_chart(report: DiffReport) -> str:
    s = report.totals.stored

    def side(which: str) -> Bar:
        v = {k: getattr(s[k], which) or 0 for k in ("total", *_BUCKETS)}
        return Bar(which.upper(), v["total"], v["trainable"], v["non_trainable"], v["unclassified"], 0)

    return svg_bars("split", [params_bar(side("old")), params_bar(side("new"))])


def _findings(report: DiffReport) -> str:
    heading, _ = _framework_rows(report)
    items = [
        ("Verdict", _verdict(report)),
        ("Values", _values_line(report).removeprefix("Values: ")),
        ("Framework view by layer", heading.removeprefix("Framework view by layer: ")),
    ]
    return findings(items + [("Note", n) for n in report.notes])


def _layers(report: DiffReport) -> list[str]:
    shown, folded = _shown_layers(report)
    changed = [la for la in shown if la.status != SAME]
    rows = [layer_cells(la, escape) for la in changed]
    data = [(("status", la.status), ("params-delta", (la.params.new or 0) - (la.params.old or 0))) for la in changed]
    unchanged = len(shown) - len(changed)
    notes = [f"{unchanged:,} layers the same in both files (not listed; JSON lists every row)", *folded]
    return [
        html_table("layers", _LAYER_HEADERS, rows, frozenset({3}), data) if rows else "<p>No layer changed.</p>",
        *(f"<p>{text(n)}</p>" for n in notes if unchanged or n in folded),
    ]


def _framework_table(report: DiffReport) -> list[str]:
    _, rows = _framework_rows(report)
    if not rows:
        return []
    headers = ["OLD layer (kind)", "NEW layer (kind)", "OLD", "NEW", "OLD split", "NEW split", "Status"]
    return [
        "<h2>Framework view: layers that do not agree</h2>",
        html_table("framework", headers, rows, frozenset({2, 3})),
    ]


def render_diff_html(report: DiffReport) -> str:
    modules = module_changes(report)
    changed = layer_changes(report)
    parts = [
        f"<h1>{text(report.old.model)} → {text(report.new.model)}</h1>",
        f'<p class="meta">{_side("OLD", report.old)}<br>{_side("NEW", report.new)}<br>'
        f"convention: {text(report.convention)}</p>",
        _cards(report),
        "<h2>Counts side by side</h2>",
        _stored_table(report),
        "<h3>Framework view and cost</h3>",
        _logical_table(report),
        "<h2>Where the parameters changed</h2>",
        "<p>NEW minus OLD by layer, the largest changes first; to the right is more.</p>",
        legend(),
        svg_bars("params-changes", [_params_change(c) for c in changed], "No layer's parameter count changed."),
    ]
    if 1 < len(modules) < sum(c.layers for c in changed):  # a chart of its own only when it groups
        parts += ["<h3>By top-level module</h3>", svg_bars("modules-changes", [_params_change(c) for c in modules])]
    parts += [
        "<h2>Where the bytes changed</h2>",
        svg_bars(
            "bytes-changes", [_bytes_change(c) for c in layer_changes(report, "bytes")], "No layer's bytes changed."
        ),
        "<h2>Where the MACs changed</h2>",
        *_macs_section(macs_changes(report)),
        "<h2>Trainable and non-trainable</h2>",
        _split_chart(report),
        "<h2>By dtype</h2>",
        _dtype_table(report),
        "<h2>Findings</h2>",
        _findings(report),
        *_framework_table(report),
        "<h2>Changed layers</h2>",
        *_layers(report),
    ]
    return page(f"{text(report.old.model)} → {text(report.new.model)}", parts)
