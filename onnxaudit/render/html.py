"""`summary --format html`: one self-contained page (inline CSS, SVG and a few lines of script; nothing
fetched, a Content-Security-Policy that forbids it) with the totals, where the parameters sit, the
trainable / non-trainable split, the dtype split, the findings and the layer table."""

from __future__ import annotations

from html import escape as html_escape

from onnxaudit.render.summary import escape, footer_lines, framework_lines, human_bytes, opsets_text, shape_text
from onnxaudit.report.breakdown import Bar, by_dtype, by_module, largest_layers
from onnxaudit.report.build import Report

# One colour per bucket, the same in every chart and in the legend.
COLOURS = {"trainable": "#4e79a7", "non_trainable": "#f28e2b", "unclassified": "#9d9d9d"}
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


def _text(value: object) -> str:
    """A name as the text renderer shows it (controls and bidi visible), then made HTML-safe."""
    return html_escape(escape(value))


def _attr(value: object) -> str:
    return html_escape(escape(value), quote=True)


def _bar_chart(chart_id: str, bars: list[Bar]) -> str:
    """Horizontal bars, each split trainable / non-trainable / unclassified, with the figures as data-*."""
    if not bars:
        return "<p>No parameters.</p>"
    top = max(b.params for b in bars) or 1
    step = _BAR_HEIGHT + _GAP
    width = _LABEL_WIDTH + _BAR_WIDTH + _VALUE_WIDTH
    out = [
        f'<svg id="{chart_id}" class="chart" role="img" width="{width}" height="{len(bars) * step + _GAP}" '
        f'viewBox="0 0 {width} {len(bars) * step + _GAP}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, bar in enumerate(bars):
        y = _GAP + i * step
        label = escape(bar.name)
        shown = label if len(label) <= 38 else label[:37] + "…"
        out.append(
            f'<g class="bar" data-name="{_attr(bar.name)}" data-params="{bar.params}" '
            f'data-trainable="{bar.trainable}" data-non-trainable="{bar.non_trainable}" '
            f'data-unclassified="{bar.unclassified}" data-layers="{bar.layers}">'
            f"<title>{html_escape(label)}: {bar.params:,} params ({bar.trainable:,} trainable, "
            f"{bar.non_trainable:,} non-trainable, {bar.unclassified:,} unclassified)</title>"
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + 13}" text-anchor="end">{html_escape(shown)}</text>'
        )
        x = float(_LABEL_WIDTH)
        for bucket, value in (
            ("trainable", bar.trainable),
            ("non_trainable", bar.non_trainable),
            ("unclassified", bar.unclassified),
        ):
            w = _BAR_WIDTH * value / top
            if value:
                out.append(
                    f'<rect class="{bucket}" x="{x:.2f}" y="{y}" width="{max(w, 1):.2f}" '
                    f'height="{_BAR_HEIGHT}" fill="{COLOURS[bucket]}"/>'
                )
            x += w
        out.append(f'<text x="{x + 6:.2f}" y="{y + 13}">{bar.params:,}</text></g>')
    out.append("</svg>")
    return "".join(out)


def _legend() -> str:
    names = {"trainable": "trainable", "non_trainable": "non-trainable", "unclassified": "unclassified"}
    return (
        '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{names[b]}</span>' for b, c in COLOURS.items())
        + "</p>"
    )


def _split_chart(report: Report) -> str:
    t = report.totals
    return _bar_chart("split", [Bar("all parameters", t.total, t.trainable, t.non_trainable, t.unclassified, 0)])


def _dtype_table(report: Report) -> str:
    rows = "".join(
        f'<tr class="dtype" data-dtype="{_attr(d)}" data-params="{n}" data-bytes="{b}">'
        f'<td>{_text(d)}</td><td class="n">{n:,}</td><td class="n">{human_bytes(b)}</td></tr>'
        for d, n, b in by_dtype(report)
    )
    head = '<thead><tr><th>dtype</th><th class="n">params</th><th class="n">bytes</th></tr></thead>'
    return f'<table id="dtypes">{head}<tbody>{rows}</tbody></table>'


def _cards(report: Report) -> str:
    t = report.totals
    cards = [
        ("Total params", t.total, t.total_bytes),
        (report.trainable_footer, t.trainable, t.trainable_bytes),
        (report.non_trainable_footer, t.non_trainable, t.non_trainable_bytes),
    ]
    if t.unclassified:
        cards.append(("Unclassified params", t.unclassified, t.unclassified_bytes))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><span>{html_escape(label)}</span><b>{n:,}</b><span>{human_bytes(b)}</span></div>'
            for label, n, b in cards
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
            f"<td>{_text(row.name)}</td>",
            f"<td>{_text('+'.join(row.ops))}</td>",
            f'<td class="shape">{_text(shape_text(row.output_shape))}</td>',
            *(f'<td class="n" data-v="{v}">{v:,}</td>' for v in figures),
            f"<td>{_text(row.explain)}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="layers" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _findings(report: Report) -> str:
    items = [("Limit", text) for text in report.limits] + [("Note", text) for text in report.notes]
    if report.framework is not None:
        items += [("Framework view", text) for text in report.framework.notes]
    if not items:
        return "<p>None.</p>"
    return (
        '<ul class="findings">'
        + "".join(f'<li class="finding"><b>{kind}:</b> {_text(text)}</li>' for kind, text in items)
        + "</ul>"
    )


def render_html(report: Report, explain: bool = False) -> str:
    framework = framework_lines(report, explain)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # nothing may be fetched: the page is read offline, from CI artifacts or mail
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>onnxaudit: {_text(report.model)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_text(report.model)}</h1>",
        f'<p class="meta">{html_escape(opsets_text(report))} · IR {report.ir_version} · '
        f"{len(report.tensors)} tensors · "
        f"{report.node_count} nodes · shapes: {_text(report.shapes_source)} · "
        f"convention: {_text(report.convention)}</p>",
        _cards(report),
        "<h2>Where the parameters sit</h2>",
        _legend(),
        "<h3>Largest layers</h3>",
        _bar_chart("layers-chart", largest_layers(report)),
    ]
    modules = by_module(report)
    if 1 < len(modules) < sum(1 for row in report.rows if row.params):  # a chart of its own only when it groups
        parts += ["<h3>By top-level module</h3>", _bar_chart("modules-chart", modules)]
    parts += [
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
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts) + "\n"
