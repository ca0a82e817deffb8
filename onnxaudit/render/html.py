"""`summary --format html`: one self-contained page (inline CSS, SVG and a few lines of script; nothing
fetched, a Content-Security-Policy that forbids it) with the totals, where the parameters sit, the
trainable / non-trainable split, the dtype split, the findings and the layer table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape as html_escape

from onnxaudit.render.summary import escape, footer_lines, framework_lines, human_bytes, opsets_text, shape_text
from onnxaudit.report.breakdown import Bar, by_dtype, by_module, largest_layers, macs_chart
from onnxaudit.report.build import Report

# One colour per bucket, the same in every chart and in the legend.
COLOURS = {
    "trainable": "#4e79a7",
    "non_trainable": "#f28e2b",
    "unclassified": "#9d9d9d",
    "macs": "#59a14f",
    "bytes": "#b07aa1",
}
_LABEL_WIDTH, _BAR_WIDTH, _VALUE_WIDTH, _BAR_HEIGHT, _GAP = 260, 420, 130, 18, 6

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#222;
  padding:0 16px}
h1{font-size:20px;margin:0 0 4px;word-break:break-all}h2{font-size:16px;margin:28px 0 8px}
.meta{color:#555}.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#555}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}td.shape{white-space:nowrap}
th{cursor:pointer;background:#f6f6f6;position:sticky;top:0}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px}
svg text{font:12px system-ui,sans-serif;fill:#222}ul.findings li{margin:2px 0}
pre{background:#f6f6f6;padding:8px;overflow:auto}
"""

# Sorting the table by a header click; an error anywhere is written on <body> for a reader (and the test) to see.
_SCRIPT = """
window.addEventListener("error", function (e) { document.body.setAttribute("data-error", String(e.message)); });
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var numeric = th.classList.contains("n"), down = th.getAttribute("data-down") !== "1";
    rows.sort(function (a, b) {
      var x = a.cells[column].getAttribute("data-v") || a.cells[column].textContent;
      var y = b.cells[column].getAttribute("data-v") || b.cells[column].textContent;
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return down ? -c : c;
    });
    th.setAttribute("data-down", down ? "1" : "0");
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
document.body.setAttribute("data-ready", "1");
"""


def text(value: object) -> str:
    """A name as the text renderer shows it (controls and bidi visible), then made HTML-safe."""
    return html_escape(escape(value))


def attr(value: object) -> str:
    return html_escape(escape(value), quote=True)


@dataclass(frozen=True)
class ChartBar:
    """One bar: segments drawn from zero in order (a negative value extends to the left), the figure
    written after it, a tooltip, and the figures as data-* attributes for a reader (and the tests)."""

    name: str
    segments: tuple[tuple[str, int], ...]  # (key in COLOURS, value)
    figure: str
    title: str
    data: tuple[tuple[str, object], ...]


def _extent(bars: list[ChartBar]) -> tuple[int, int]:
    """How far the bars reach left of zero and right of it."""
    left = max((-sum(v for _, v in b.segments if v < 0) for b in bars), default=0)
    right = max((sum(v for _, v in b.segments if v > 0) for b in bars), default=0)
    return left, right


def _segments(bar: ChartBar, zero: float, scale: float, y: int) -> tuple[list[str], float]:
    """The bar's rectangles, and where its right end is."""
    out, right, left = [], zero, zero
    for key, value in bar.segments:
        if not value:
            continue
        w = abs(value) * scale
        x = right if value > 0 else left - w
        out.append(
            f'<rect class="{key}" x="{x:.2f}" y="{y}" width="{max(w, 1):.2f}" height="{_BAR_HEIGHT}" '
            f'fill="{COLOURS[key]}"/>'
        )
        if value > 0:
            right += w
        else:
            left -= w
    return out, right


def svg_bars(chart_id: str, bars: list[ChartBar], empty: str = "No parameters.") -> str:
    """Horizontal bars on one scale; a zero line when some reach left of it."""
    if not bars:
        return f"<p>{html_escape(empty)}</p>"
    left, right = _extent(bars)
    scale = _BAR_WIDTH / ((left + right) or 1)
    zero = _LABEL_WIDTH + left * scale
    step = _BAR_HEIGHT + _GAP
    width, height = _LABEL_WIDTH + _BAR_WIDTH + _VALUE_WIDTH, len(bars) * step + _GAP
    out = [
        f'<svg id="{chart_id}" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    if left:
        out.append(f'<line x1="{zero:.2f}" x2="{zero:.2f}" y1="0" y2="{height}" stroke="#888"/>')
    for i, bar in enumerate(bars):
        y = _GAP + i * step
        label = escape(bar.name)
        shown = label if len(label) <= 38 else label[:37] + "…"
        data = "".join(f' data-{key}="{attr(value)}"' for key, value in bar.data)
        rects, end = _segments(bar, zero, scale, y)
        out += [
            f'<g class="bar" data-name="{attr(bar.name)}"{data}><title>{html_escape(label)}: {text(bar.title)}</title>',
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 13}" text-anchor="end">{html_escape(shown)}</text>',
            *rects,
            f'<text x="{max(end, zero) + 6:.2f}" y="{y + 13}">{html_escape(bar.figure)}</text></g>',
        ]
    out.append("</svg>")
    return "".join(out)


def bucket_bar(name: str, params: int, split: tuple[int, int, int], layers: int, sign: str = "") -> ChartBar:
    """A bar of parameters split (trainable, non-trainable, unclassified); `sign` "+" writes changes."""
    trainable, non_trainable, unclassified = split
    return ChartBar(
        name,
        (("trainable", trainable), ("non_trainable", non_trainable), ("unclassified", unclassified)),
        f"{params:{sign},}",
        f"{params:{sign},} params ({trainable:{sign},} trainable, {non_trainable:{sign},} non-trainable, "
        f"{unclassified:{sign},} unclassified)",
        (
            ("params", params),
            ("trainable", trainable),
            ("non-trainable", non_trainable),
            ("unclassified", unclassified),
            ("layers", layers),
        ),
    )


def params_bar(bar: Bar) -> ChartBar:
    return bucket_bar(bar.name, bar.params, (bar.trainable, bar.non_trainable, bar.unclassified), bar.layers)


def _bar_chart(chart_id: str, bars: list[Bar]) -> str:
    return svg_bars(chart_id, [params_bar(b) for b in bars])


LEGEND = {
    "trainable": "trainable",
    "non_trainable": "non-trainable",
    "unclassified": "unclassified",
    "macs": "multiply-accumulates",
    "bytes": "bytes",
}


def legend(keys: tuple[str, ...] = ("trainable", "non_trainable", "unclassified")) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span><i style="background:{COLOURS[k]}"></i>{LEGEND[k]}</span>' for k in keys)
        + "</p>"
    )


def per_unit(unit: str) -> str:
    """How a MACs figure reads: `19,267,584` or `19,267,584 x batch`."""
    return f" x {escape(unit)}" if unit else ""


def macs_bar(name: str, macs: int, unit: str, layers: int) -> ChartBar:
    return ChartBar(
        name,
        (("macs", macs),),
        f"{macs:,}{per_unit(unit)}",
        f"{macs:,}{per_unit(unit)} MACs",
        (("macs", macs), ("unit", unit), ("layers", layers)),
    )


def _macs_section(report: Report) -> list[str]:
    chart = macs_chart(report)
    if report.cost is None:
        return ["<p>MACs not counted: no shapes are known (--dim or --run-shapes gives them).</p>"]
    if len(chart.units) > 1:
        units = ", ".join(escape(u) for u in chart.units)
        return [
            f"<p>MACs not charted: layers multiply different free dims ({html_escape(units)}); "
            "bind them with --dim or --choose-dims to chart them.</p>"
        ]
    parts = [
        f'<p id="macs-unit" data-unit="{attr(chart.unit)}">Each figure is MACs'
        + (f" per unit of {text(chart.unit)} (a free dim)" if chart.unit else "")
        + ".</p>",
        svg_bars("macs-chart", [macs_bar(b.name, b.params, chart.unit, b.layers) for b in chart.bars], "No MACs."),
    ]
    if chart.unknown:
        layers = "1 layer whose dims are" if chart.unknown == 1 else f"{chart.unknown:,} layers whose dims are"
        parts.append(f"<p>{layers} not known statically: not charted.</p>")
    return parts


def _split_chart(report: Report) -> str:
    t = report.totals
    return _bar_chart("split", [Bar("all parameters", t.total, t.trainable, t.non_trainable, t.unclassified, 0)])


def _dtype_table(report: Report) -> str:
    rows = "".join(
        f'<tr class="dtype" data-dtype="{attr(d)}" data-params="{n}" data-bytes="{b}">'
        f'<td>{text(d)}</td><td class="n">{n:,}</td><td class="n">{human_bytes(b)}</td></tr>'
        for d, n, b in by_dtype(report)
    )
    head = '<thead><tr><th>dtype</th><th class="n">params</th><th class="n">bytes</th></tr></thead>'
    return f'<table id="dtypes">{head}<tbody>{rows}</tbody></table>'


def _cards(report: Report) -> str:
    t = report.totals
    items = [
        ("Total params", t.total, t.total_bytes),
        (report.trainable_footer, t.trainable, t.trainable_bytes),
        (report.non_trainable_footer, t.non_trainable, t.non_trainable_bytes),
    ]
    if t.unclassified:
        items.append(("Unclassified params", t.unclassified, t.unclassified_bytes))
    return cards([(label, f"{n:,}", human_bytes(b)) for label, n, b in items])


def cards(items: list[tuple[str, str, str]]) -> str:
    """(label, figure, below it) as a row of cards."""
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><span>{html_escape(label)}</span><b>{html_escape(figure)}</b>'
            f"<span>{html_escape(below)}</span></div>"
            for label, figure, below in items
        )
        + "</div>"
    )


def _layer_table(report: Report) -> str:
    show_unclassified = report.totals.unclassified > 0
    heads = ["Layer", "Type", "Output shape", "Param #", report.trainable_label, report.non_trainable_label]
    if show_unclassified:
        heads.append("Unclassified")
    heads.append("Explanation")
    numeric = {3, 4, 5, 6} if show_unclassified else {3, 4, 5}
    head = "".join(
        f'<th class="n">{html_escape(h)}</th>' if i in numeric else f"<th>{html_escape(h)}</th>"
        for i, h in enumerate(heads)
    )
    body = []
    for row in report.rows:
        figures = [row.params, row.trainable, row.non_trainable] + ([row.unclassified] if show_unclassified else [])
        cells = [
            f"<td>{text(row.name)}</td>",
            f"<td>{text('+'.join(row.ops))}</td>",
            f'<td class="shape">{text(shape_text(row.output_shape))}</td>',
            *(f'<td class="n" data-v="{v}">{v:,}</td>' for v in figures),
            f"<td>{text(row.explain)}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="layers" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _findings(report: Report) -> str:
    items = [("Limit", line) for line in report.limits] + [("Note", line) for line in report.notes]
    if report.framework is not None:
        items += [("Framework view", line) for line in report.framework.notes]
    return findings(items)


def findings(items: list[tuple[str, str]]) -> str:
    """(kind, text) as a list; `None.` when there is nothing."""
    if not items:
        return "<p>None.</p>"
    return (
        '<ul class="findings">'
        + "".join(f'<li class="finding"><b>{html_escape(kind)}:</b> {text(line)}</li>' for kind, line in items)
        + "</ul>"
    )


def html_table(
    table_id: str,
    headers: list[str],
    rows: list[list[str]],
    numeric: frozenset[int] = frozenset(),
    data: Sequence[tuple[tuple[str, object], ...]] | None = None,
) -> str:
    """A sortable table of text cells (escaped here); `data` gives each row data-* attributes."""
    head = "".join(
        f'<th class="n">{html_escape(h)}</th>' if i in numeric else f"<th>{html_escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for n, cells in enumerate(rows):
        attrs = "".join(f' data-{key}="{attr(value)}"' for key, value in (data[n] if data else ()))
        tds = "".join(
            f'<td class="n">{text(c)}</td>' if i in numeric else f"<td>{text(c)}</td>" for i, c in enumerate(cells)
        )
        body.append(f"<tr{attrs}>{tds}</tr>")
    return (
        f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def page(title: str, body: list[str]) -> str:
    """A whole self-contained document: `title` (already HTML-safe) and the body's parts."""
    return (
        "\n".join(
            [
                "<!doctype html>",
                '<html lang="en"><head><meta charset="utf-8">',
                # nothing may be fetched: the page is read offline, from CI artifacts or mail
                '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
                f"<title>onnxaudit: {title}</title><style>{_CSS}</style></head><body>",
                *body,
                f"<script>{_SCRIPT}</script></body></html>",
            ]
        )
        + "\n"
    )


def render_html(report: Report, explain: bool = False) -> str:
    framework = framework_lines(report, explain)
    parts = [
        f"<h1>{text(report.model)}</h1>",
        f'<p class="meta">{html_escape(opsets_text(report))} · IR {report.ir_version} · '
        f"{report.tensor_count()} tensors · "
        f"{report.node_count} nodes · shapes: {text(report.shapes_source)} · "
        f"convention: {text(report.convention)}</p>",
        _cards(report),
        "<h2>Where the parameters sit</h2>",
        legend(),
        "<h3>Largest layers</h3>",
        _bar_chart("layers-chart", largest_layers(report)),
    ]
    modules = by_module(report)
    if 1 < len(modules) < sum(1 for row in report.rows if row.params):  # a chart of its own only when it groups
        parts += ["<h3>By top-level module</h3>", _bar_chart("modules-chart", modules)]
    parts += [
        "<h2>Where the MACs are</h2>",
        *_macs_section(report),
        "<h2>Trainable and non-trainable</h2>",
        _split_chart(report),
        "<h2>By dtype</h2>",
        _dtype_table(report),
        "<h2>Findings</h2>",
        _findings(report),
    ]
    if framework:
        parts += ["<h2>Framework view</h2>", "<pre>" + html_escape("\n".join(framework)) + "</pre>"]
    parts += [
        "<h2>Layers</h2>",
        _layer_table(report),
        "<h2>Totals</h2>",
        "<pre>" + html_escape("\n".join(footer_lines(report))) + "</pre>",
    ]
    return page(text(report.model), parts)
