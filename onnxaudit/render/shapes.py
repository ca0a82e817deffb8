"""Lay out a shape confirmation (Report.shape_check) as text: inputs, one row per value, findings,
limits, then the parameter counts. No comparing happens here."""

from __future__ import annotations

from collections.abc import Sequence

from onnxaudit.render.layout import WIDTH, fit_columns, shorten_middle, wrap_all
from onnxaudit.render.summary import dims_legend, escape, footer_lines, opsets_text, shape_text
from onnxaudit.report.build import Report
from onnxaudit.shapes.options import ShapeCheck


def _mib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _run_line(check: ShapeCheck) -> str:
    if check.status in ("refused", "not_runnable") and not check.onnxruntime:
        return "Run: not started"
    runtime = f"onnxruntime {check.onnxruntime}" if check.onnxruntime else "onnxruntime"
    optimized = "graph optimizations enabled" if check.optimized else "graph optimizations disabled"
    method = "shapes from its profile" if check.method == "profile" else "every value an output"
    estimate = f" (estimate {_mib(check.estimate_bytes)})" if check.estimate_bytes is not None else ""
    return (
        f"Run: {runtime} CPU in a child process, {optimized}, {method}; "
        f"limits {check.timeout:g} s and {_mib(check.max_memory)}{estimate}"
    )


# Too wide a table gives way in this order (column -> narrowest): the value's name down to 40 columns, the
# declared and inferred shapes, the name down to 28, the actual shape (the one that was seen) last.
_GIVE_WAY = ({0: 40}, {1: 12, 2: 14}, {0: 28}, {3: 18}, {0: 24})


def render_shapes_text(report: Report, width: int | None = WIDTH) -> str:
    """The shape check in `width` columns at most (value names and shapes shortened with an ellipsis in the
    middle, prose wrapped), or every line whole (`width=None`)."""
    check = report.shape_check
    if check is None:  # pragma: no cover - the shapes command always runs a check
        return ""
    head = [
        f"Model: {escape(report.model)}   {opsets_text(report)} · IR {report.ir_version} · "
        f"shapes: {report.shapes_source}",
        _run_line(check),
    ]
    head += [f"Input {escape(i.name)}: {i.dtype} {shape_text(i.shape)}, {escape(i.values)}" for i in check.inputs]
    head += [f"Chose: {escape(c.label)} = {c.value}: {escape(c.reason)}" for c in check.choices]
    head += [f"Tried: {escape(line)}" for line in check.tries]
    parts = wrap_all(head, width)
    headers = ["Value (op)", "Declared", "Inferred", "Actual", "Status"]
    # a model repeats a few shapes and ops many times: each text is made once
    shapes: dict[tuple[int | str | None, ...] | None, str] = {}
    ops: dict[str, str] = {}
    short: dict[str, str] = {}  # long symbolic dims written by a short name, spelled out below the table

    def shape(dims: Sequence[int | str | None] | None) -> str:
        key = tuple(dims) if dims is not None else None
        if key not in shapes:
            shapes[key] = shape_text(dims, "-", short)
        return shapes[key]

    def op(name: str) -> str:
        if name not in ops:
            ops[name] = escape(name)
        return ops[name]

    ran = any(v.actual is not None for v in check.values)
    body = [
        [
            f"{escape(v.name)} ({op(v.op)})",
            shape(v.declared),
            shape(v.inferred),
            f"{shape(v.shown)} {v.dtype}" if v.shown is not None else "-",
            v.status,
        ]
        for v in check.values
        if ran  # a run that did not happen lists no value: its one line says why
    ]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    if width is not None:
        for stage in _GIVE_WAY:
            widths = fit_columns(widths, width, stage)
        body = [
            [c if len(c) <= w else shorten_middle(c, w) for c, w in zip(cells, widths, strict=True)] for cells in body
        ]

    layout = "  ".join(f"%-{w}s" for w in widths)  # one formatting call a row

    def line(cells: list[str]) -> str:
        return (layout % tuple(cells)).rstrip()

    rule = "=" * min(len(line(headers)) + 4, 140 if width is None else width)
    confirmed = sum(1 for v in check.values if v.status == "confirmed")
    if ran:
        parts += [rule, line(headers), rule, *(line(cells) for cells in body), rule]
        if short:  # as summary writes them
            parts += [rule, "Symbolic dims:", *wrap_all([f"  {text}" for text in dims_legend(short)], width)]
        parts.append(f"Values confirmed: {confirmed} of {len(check.values)}")
    else:
        parts += [rule, f"Values confirmed: 0 of {len(check.values)} (not run)"]
    prose = [f"Mismatch: {escape(finding)}" for finding in check.findings]
    if check.message:
        prose.append(f"Not confirmed: {escape(check.message)}")
    # the report's limits: the counting's own, then the check's (its "not confirmed" line is above)
    prose += [f"Limit: {escape(limit)}" for limit in report.limits if not limit.startswith("shapes not confirmed: ")]
    parts += [*wrap_all(prose, width), rule, *wrap_all(footer_lines(report), width), rule]
    return "\n".join(parts) + "\n"
