"""Renderers: lay a Report out as a text table, JSON or Markdown. No counting happens here."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import TYPE_CHECKING

from onnxaudit.report import Report, Row

if TYPE_CHECKING:
    from onnxaudit.verify import Verification

# C0/C1 controls, DEL, the Unicode line/paragraph separators, bidi overrides and marks, zero-width chars.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def escape(name: object) -> str:
    """A name made safe to print: control characters and escapes shown as \\xNN / \\uNNNN,
    invalid UTF-8 as \\xNN, and a leading '::' (CI workflow commands) broken up."""
    if isinstance(name, bytes):
        text = name.decode("utf-8", "backslashreplace")
    else:
        text = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    text = _UNSAFE.sub(visible, text)
    if text.lstrip().startswith("::"):  # the Actions runner trims leading spaces before a command
        text = "\\" + text
    return text


def escape_markdown(name: object) -> str:
    text = escape(name)
    return re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", text)


def human_bytes(n: int) -> str:
    """Keras's style: 147.00 KB, 256.00 B (powers of 1024)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TB"  # pragma: no cover


def shape_text(shape: list[int | str | None] | None, unknown: str = "?") -> str:
    if shape is None:
        return unknown
    dims = [escape(d) if isinstance(d, str) else ("?" if d is None else str(d)) for d in shape]
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


def _header_line(report: Report) -> str:
    opsets = ", ".join(f"{k} {v}" if k != "ai.onnx" else f"opset {v}" for k, v in report.opsets.items())
    return (
        f"Model: {escape(report.model)}   {opsets} · IR {report.ir_version} · "
        f"{len(report.tensors)} tensors · {report.node_count} nodes · shapes: {report.shapes_source}"
    )


def _row_cells(row: Row, report: Report, explain: bool) -> list[str]:
    ops = "+".join(escape(op) for op in row.ops)
    name = escape(row.name) + (f" ({ops})" if ops else "")
    cells = [
        name,
        shape_text(row.output_shape, "?" if report.group_by == "layer" else "-"),
        f"{row.params:,}",
        f"{row.trainable:,}",
        f"{row.non_trainable:,}",
    ]
    if explain:
        cells.append(escape(row.explain))
    return cells


def footer_lines(report: Report) -> list[str]:
    t = report.totals
    lines = [
        f"Total params: {t.total:,} ({human_bytes(t.total_bytes)})",
        f"{report.trainable_footer}: {t.trainable:,} ({human_bytes(t.trainable_bytes)})",
        f"{report.non_trainable_footer}: {t.non_trainable:,} ({human_bytes(t.non_trainable_bytes)})",
    ]
    if t.unclassified:
        ops = ", ".join(escape(op) for op in report.unclassified_consumers)
        lines.append(
            f"Unclassified params: {t.unclassified:,} ({human_bytes(t.unclassified_bytes)}) "
            f"- constants of unknown role, consumed by {ops}"
        )
    unclassified = [u for u in report.tensors if u.bucket == "unclassified"]
    for u in unclassified[:5]:
        dims = "x".join(map(str, u.dims)) if u.dims else "?"
        lines.append(
            f"  unclassified {escape(u.name)} ({dims}, {u.count or 0:,}) <- {escape(', '.join(u.consumers[:3]))}"
        )
    if len(unclassified) > 5:
        lines.append(f"  ... and {len(unclassified) - 5} more unclassified tensors (--by tensor lists them)")
    if len(t.by_dtype) > 0:
        parts = [f"{dtype} {v['params']:,} ({human_bytes(v['bytes'])})" for dtype, v in t.by_dtype.items()]
        lines.append("By dtype: " + ", ".join(parts))
    c = report.constants
    if c.tensors:
        parts = [f"{c.tensors[k]} {k} ({c.elements[k]:,} values, {human_bytes(c.bytes[k])})" for k in c.tensors]
        lines.append("Not parameters: " + ", ".join(parts))
    return lines


def _framework_shown(report: Report) -> bool:
    fw = report.framework
    return fw is not None and (bool(fw.rewrites) or fw.status != "exact")


def framework_lines(report: Report, explain: bool) -> list[str]:
    """The framework view: counts rebuilt through exporter rewrites, each with its status."""
    fw = report.framework
    if fw is None or not _framework_shown(report):
        return []
    origin = {"keras": "Keras", "pytorch": "PyTorch"}.get(fw.origin, "unknown")
    headers = ["Layer (kind)", "Param #", report.trainable_label, report.non_trainable_label, "Status"]
    body = [
        [
            f"{escape(la.name)} ({escape(la.kind)})",
            la.total.text(),
            la.trainable.text(),
            la.non_trainable.text(),
            la.status,
        ]
        for la in fw.layers
    ]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            [cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:4], widths[1:4], strict=True)), cells[4]]
        )

    out = [f"Framework view: {origin} export rebuilt through exporter rewrites ({fw.status})", line(headers)]
    for cells, la in zip(body, fw.layers, strict=True):
        out.append(line(cells))
        evidence = la.evidence if explain else la.evidence[:1] if la.status != "exact" else []
        out += [f"    {escape(e)}" for e in evidence]
    out.append(
        f"Rebuilt totals: Total params: {fw.total.text()} · {report.trainable_footer}: {fw.trainable.text()} · "
        f"{report.non_trainable_footer}: {fw.non_trainable.text()} ({fw.status})"
    )
    out += [f"Note: {escape(n)}" for n in fw.notes]
    return out


def render_text(report: Report, explain: bool = False) -> str:
    headers = ["Layer (type)", "Output Shape", "Param #", report.trainable_label, report.non_trainable_label]
    if report.group_by == "tensor":
        headers[0], headers[1] = "Tensor (consumer op)", "Dims"
    elif report.group_by in ("op", "role"):
        headers[0] = "Op type" if report.group_by == "op" else "Role"
    if explain:
        headers.append("Explanation")
    body = [_row_cells(row, report, explain) for row in report.rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    widths[0] = min(widths[0], 60)

    def line(cells: list[str]) -> str:
        out = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
        out += [c.rjust(w) for c, w in zip(cells[2:5], widths[2:5], strict=True)]
        if explain:
            out.append(cells[5])
        return "  ".join(out).rstrip()

    rule = "=" * min(len(line(headers)) + 4, 140)
    parts = [_header_line(report), rule, line(headers), rule]
    parts += [line(cells) for cells in body]
    parts += [rule, *footer_lines(report), rule]
    if _framework_shown(report):
        parts += [*framework_lines(report, explain), rule]
    for limit in report.limits:
        parts.append(f"Limit: {escape(limit)}")
    for note in report.notes:
        parts.append(f"Note: {escape(note)}")
    return "\n".join(parts) + "\n"


# Above this many rows + tensors nobody reads the JSON by eye, and indent=2 (json's pure-Python
# encoder) after asdict's deep copy costs ~10 s on a 200k-node graph: write it compact instead.
PRETTY_JSON_ITEMS = 10_000


def render_json(report: Report) -> str:
    # the same data as report.to_dict(), read straight off the dataclasses (asdict deep-copies)
    indent = 2 if len(report.rows) + len(report.tensors) <= PRETTY_JSON_ITEMS else None
    return json.dumps(report, default=lambda obj: obj.__dict__, indent=indent, sort_keys=True) + "\n"


def render_markdown(report: Report, explain: bool = False) -> str:
    headers = ["Layer", "Op", "Output shape", "Params", report.trainable_label, report.non_trainable_label]
    if explain:
        headers.append("Explanation")
    lines = [
        f"**Model** `{escape_markdown(report.model)}` · IR {report.ir_version} · "
        + ", ".join(f"{escape_markdown(k)} {v}" for k, v in report.opsets.items()),
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if 3 <= i < 6 else "---" for i in range(len(headers))) + "|",
    ]
    for row in report.rows:
        cells = [
            escape_markdown(row.name),
            escape_markdown("+".join(row.ops)),
            escape_markdown(shape_text(row.output_shape)),
            f"{row.params:,}",
            f"{row.trainable:,}",
            f"{row.non_trainable:,}",
        ]
        if explain:
            cells.append(escape_markdown(row.explain))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {escape_markdown(text)}" for text in footer_lines(report)]
    if _framework_shown(report):
        lines += ["", "```", *framework_lines(report, explain), "```", ""]
    lines += [f"- Limit: {escape_markdown(text)}" for text in report.limits]
    lines += [f"- Note: {escape_markdown(text)}" for text in report.notes]
    return "\n".join(lines) + "\n"


def render_verification(result: Verification) -> str:
    """verify's text output: one line per figure, per-layer differences, then the explanation."""
    verdict = "consistent" if result.consistent else "MISMATCH"
    lines = [f"Verify {escape(result.model)} against {escape(result.source)}: {verdict}"]
    for f in result.figures:
        lines.append(f"  {f.figure:<14} expected {f.expected:>12,}   file {f.found.text():>14}   {f.verdict}")
    differing = [la for la in result.layers if la.verdict == "mismatch"]
    matched = [la for la in result.layers if la.verdict != "mismatch"]
    if result.layers:
        lines.append(f"Layers: {len(matched)} consistent, {len(differing)} differ")
    for la in differing:
        kind = f" ({escape(la.kind)})" if la.kind else ""
        lines.append(f"  {escape(la.name)}{kind}: {escape(la.explain)}")
    for la in result.layers:
        if la.verdict == "within range" and la.found is not None:
            why = f" - {escape(la.explain)}" if la.explain else ""
            lines.append(f"  {escape(la.name)}: {la.expected or 0:,} within {la.found.text()}{why}")
    lines += [f"  {escape(text)}" for text in result.explanation]
    lines += [f"Note: {escape(n)}" for n in result.notes]
    return "\n".join(lines) + "\n"


def render_verification_json(result: Verification) -> str:
    return json.dumps(asdict(result), indent=2, sort_keys=True) + "\n"
