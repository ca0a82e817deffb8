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
