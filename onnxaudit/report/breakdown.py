"""Where the parameters sit: a Report's rows summed per top-level module and its largest layers, for charts.

Plain data beside the Report (a renderer lays it out; it does not sum).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from onnxaudit.report.build import Report, Row

# a layer's module path: `features.0.conv`, `/encoder/layer.0/attention`, `functional_1/conv0`
_PATH_PARTS = re.compile(r"[./]+")


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a name and its parameters split by bucket (the three sum to `params`)."""

    name: str
    params: int
    trainable: int
    non_trainable: int
    unclassified: int
    layers: int  # how many rows the bar stands for


def _bar(name: str, rows: list[Row]) -> Bar:
    return Bar(
        name,
        sum(r.params for r in rows),
        sum(r.trainable for r in rows),
        sum(r.non_trainable for r in rows),
        sum(r.unclassified for r in rows),
        len(rows),
    )


def module_of(name: str) -> str:
    """The first part of a layer's path; a name without one is its own module."""
    parts = [p for p in _PATH_PARTS.split(name) if p]
    return parts[0] if parts else name


def largest_layers(report: Report, top: int = 20) -> list[Bar]:
    """The `top` rows holding the most parameters (ties in table order), then one bar for the rest."""
    holding = [r for r in report.rows if r.params]
    chosen = sorted(range(len(holding)), key=lambda i: (-holding[i].params, i))[:top]
    bars = [_bar(holding[i].name, [holding[i]]) for i in chosen]
    kept = set(chosen)
    rest = [r for i, r in enumerate(holding) if i not in kept]
    if rest:
        bars.append(_bar(f"{len(rest)} other layers", rest))
    return bars


def by_module(report: Report) -> list[Bar]:
    """Rows summed per top-level module, largest first (only when grouped by layer)."""
    if report.group_by != "layer":
        return []
    groups: dict[str, list[Row]] = {}
    for row in report.rows:
        if row.params:
            groups.setdefault(module_of(row.name), []).append(row)
    bars = [_bar(name, rows) for name, rows in groups.items()]
    return sorted(bars, key=lambda b: -b.params)


def by_dtype(report: Report) -> list[tuple[str, int, int]]:
    """(dtype, params, bytes) from the totals, in the Report's order."""
    return [(dtype, v["params"], v["bytes"]) for dtype, v in report.totals.by_dtype.items()]


@dataclass(frozen=True)
class MacsChart:
    """Where the MACs sit: each layer's figure in one unit, so bars compare.

    `unit` is the free-dims product every figure multiplies (`batch`), or "" when the figures are numbers.
    When rows multiply different products (`batch` and `batch*seq`) no one unit holds them: `bars` is
    empty and `units` names them. `unknown` rows have dims not known statically and are not charted."""

    unit: str
    bars: list[Bar]  # `params` holds the MACs (coefficient of `unit`); the buckets are 0
    unknown: int
    units: list[str]


def macs_chart(report: Report, top: int = 20) -> MacsChart:
    """The `top` rows doing the most multiply-accumulates (ties in table order), then one bar for the rest."""
    if report.cost is None or report.group_by != "layer":  # no shapes known, or rows that are not layers
        return MacsChart("", [], 0, [])
    counted = [r for r in report.rows if r.macs is not None]
    unknown = len(report.rows) - len(counted)
    units = sorted({key for r in counted if r.macs is not None for key in r.macs.terms})
    if len(units) > 1:
        return MacsChart("", [], unknown, units)
    unit = units[0] if units else ""
    figures = [(r.name, r.macs.terms.get(unit, 0)) for r in counted if r.macs is not None]
    doing = [(name, n) for name, n in figures if n]
    chosen = sorted(range(len(doing)), key=lambda i: (-doing[i][1], i))[:top]
    bars = [Bar(doing[i][0], doing[i][1], 0, 0, 0, 1) for i in chosen]
    kept = set(chosen)
    rest = [n for i, (_, n) in enumerate(doing) if i not in kept]
    if rest:
        bars.append(Bar(f"{len(rest)} other layers", sum(rest), 0, 0, 0, len(rest)))
    return MacsChart(unit, bars, unknown, units)
