"""The DiffReport as text, JSON or Markdown. Lays out what diff computed; computes nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TextIO

from onnxaudit.diff.result import (
    ONLY_NEW,
    ONLY_OLD,
    SAME,
    AmountDelta,
    Delta,
    DiffReport,
    FigureDelta,
    LayerDiff,
    Side,
    TensorDiff,
)
from onnxaudit.frameworks.figures import Figure
from onnxaudit.render.layout import WIDTH, table, wrap, wrap_all
from onnxaudit.render.summary import (
    PRETTY_JSON_ITEMS,
    _dumps,
    _fields,
    _int_or_null,
    _ints,
    _list_pieces,
    _object_pieces,
    _string,
    _strings,
    escape,
    escape_markdown,
    human_bytes,
)

Escape = Callable[[object], str]
_HEADERS = ["Status", "OLD layer (ops)", "NEW layer (ops)", "Params", "Bytes", "Changes", "Storage", "Values"]


def _signed(n: int | None, bytes_: bool = False) -> str:
    if n is None:
        return ""
    if bytes_:
        return ("+" if n > 0 else "-" if n < 0 else "") + human_bytes(abs(n))
    return f"{n:+,}" if n else "0"


def _count(n: int | None, bytes_: bool = False) -> str:
    if n is None:
        return "-"
    return human_bytes(n) if bytes_ else f"{n:,}"


def _change(d: Delta, bytes_: bool = False) -> str:
    """`4,736` when unchanged, `1.69 KB -> 432.00 B (-1.27 KB)` when not."""
    if d.old == d.new:
        return _count(d.old, bytes_)
    if d.old is None or d.new is None:
        return f"{_count(d.old, bytes_)} -> {_count(d.new, bytes_)}"
    return f"{_count(d.old, bytes_)} -> {_count(d.new, bytes_)} ({_signed(d.delta, bytes_)})"


def _figure(f: Figure | None) -> str:
    return "-" if f is None else f.text()


def _storage(layer: LayerDiff) -> str:
    if layer.old_quantization == layer.new_quantization:
        return layer.old_quantization or ""
    old = layer.old_quantization or ("float" if layer.old else "-")
    new = layer.new_quantization or ("float" if layer.new else "-")
    return f"{old} -> {new}"


def _named(name: str | None, ops: list[str], esc: Escape) -> str:
    return "-" if name is None else f"{esc(name)} ({esc('+'.join(ops))})"


def layer_cells(layer: LayerDiff, esc: Escape) -> list[str]:
    return [
        layer.status,
        _named(layer.old, layer.old_ops, esc),
        _named(layer.new, layer.new_ops, esc),
        _change(layer.params),
        "" if not (layer.bytes.old or layer.bytes.new) else _change(layer.bytes, bytes_=True),
        ", ".join(layer.changes),
        _storage(layer),
        "" if layer.values == "no weights" or layer.status in (ONLY_OLD, ONLY_NEW) else layer.values,
    ]


def _stored_rows(report: DiffReport) -> list[list[str]]:
    s = report.totals.stored
    rows = [
        ["Total params", s["total"], s["total_bytes"]],
        [f"{report.trainable_label} params", s["trainable"], s["trainable_bytes"]],
        [f"{report.non_trainable_label} params", s["non_trainable"], s["non_trainable_bytes"]],
    ]
    if s["unclassified"].old or s["unclassified"].new:
        rows.append(["Unclassified params", s["unclassified"], s["unclassified_bytes"]])
    for dtype, d in report.totals.by_dtype.items():
        rows.append([f"  {dtype}", d["params"], d["bytes"]])
    out = []
    for label, count, nbytes in rows:
        assert isinstance(label, str) and isinstance(count, Delta) and isinstance(nbytes, Delta)
        out.append(
            [label, _count(count.old), _count(count.new), _signed(count.delta),
             f"{human_bytes(nbytes.old or 0)} -> {human_bytes(nbytes.new or 0)}"]
        )  # fmt: skip
    return out


def _macs_row(report: DiffReport) -> list[list[str]]:
    m = report.totals.macs
    if m.old is None and m.new is None:
        return []
    verdict = "same" if m.same else "differ"
    # symbolic MACs hold the file's dim names: escaped here, for every format
    old, new = escape(m.old) if m.old else "-", escape(m.new) if m.new else "-"
    return [["MACs", old, new, _signed(m.delta) if m.delta is not None else "", verdict]]


def count_labels(report: DiffReport) -> dict[str, str]:
    """The three counts by their names in the report's convention."""
    return {
        "total": "Total params",
        "trainable": f"{report.trainable_label} params",
        "non_trainable": f"{report.non_trainable_label} params",
    }


def _logical_rows(report: DiffReport) -> list[list[str]]:
    out = []
    for key, label in count_labels(report).items():
        f: FigureDelta = report.totals.framework[key]
        exact = f.old is not None and f.new is not None and f.old.exact and f.new.exact
        delta = _signed(f.new.lo - f.old.lo) if f.old is not None and f.new is not None and exact else ""
        verdict = "agree" if f.agree else "DIFFER"
        if f.agree and not exact:
            verdict = "agree (ranges overlap)"
        out.append([label, _figure(f.old), _figure(f.new), delta, verdict])
    return out


def _framework_rows(report: DiffReport) -> tuple[str, list[list[str]]]:
    """A line counting the framework-view layers that agree, and a row for each that does not."""
    layers = report.framework_layers
    agree = sum(la.agree for la in layers)
    rows = [
        [
            "-" if la.old is None else f"{escape(la.old)} ({escape(la.old_kind)})",
            "-" if la.new is None else f"{escape(la.new)} ({escape(la.new_kind)})",
            _figure(la.total.old),
            _figure(la.total.new),
            f"{_figure(la.trainable.old)} / {_figure(la.non_trainable.old)}",
            f"{_figure(la.trainable.new)} / {_figure(la.non_trainable.new)}",
            f"{la.old_status or '-'} / {la.new_status or '-'}",
        ]  # fmt: skip
        for la in layers
        if not la.agree
    ]
    return f"Framework view by layer: {agree} of {len(layers)} rows agree", rows


_FRAMEWORK_HEADERS = ["OLD layer (kind)", "NEW layer (kind)", "OLD", "NEW", "OLD split", "NEW split", "Status"]


def _summary_line(report: DiffReport) -> str:
    counts = Counter(layer.status for layer in report.layers)
    parts = [f"{counts[s]} {s}" for s in ("same", "renamed", "changed", "only in OLD", "only in NEW") if counts[s]]
    values = Counter(layer.values for layer in report.layers)
    return f"Layers: {', '.join(parts) or 'none'}; weights with values different: {values['different']}"


def _verdict(report: DiffReport) -> str:
    if not report.logical_agree:
        return "Logical counts DIFFER (exit 1)."
    if report.changed:
        return "Logical counts agree; the files differ otherwise (exit 0, 1 with --strict)."
    return "Logical counts agree; nothing else changed (exit 0)."


def _values_line(report: DiffReport) -> str:
    if report.values_mode == "none":
        return "Values: not compared (--values none)."
    if report.values_mode == "full":
        budget = human_bytes(report.values_budget or 0)
        return f"Values: whole tensors compared up to {budget} per file, then 64 sampled positions each."
    return "Values: 64 sampled positions per tensor (tensors up to 4.00 KB whole); --values full reads them all."


def _side_line(which: str, side: Side, esc: Escape) -> str:
    origin = f"{side.origin} export" if side.origin != "unknown" else "exporter unknown"
    return f"{which}: {esc(side.model)}  ({origin}, {human_bytes(side.file_bytes)})"


_QDQ_STEPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})


def _quantize_step(layer: LayerDiff) -> bool:
    """A row a quantizer added or removed that holds nothing but a (de)quantize step."""
    ops = layer.new_ops if layer.status == ONLY_NEW else layer.old_ops if layer.status == ONLY_OLD else []
    return bool(ops) and _QDQ_STEPS.issuperset(ops) and not (layer.params.old or layer.params.new)


# A table of more rows than this leaves out the layers in which nothing changed, and says how many: at the node
# limit (250,000 layers of a file against itself) the rows took most of the time and memory of a diff, and told
# nothing. JSON lists every layer.
MOST_ROWS = 1000


def _unchanged(layer: LayerDiff) -> bool:
    return layer.status == SAME and layer.values in (SAME, "no weights")


def _shown_layers(report: DiffReport) -> tuple[list[LayerDiff], list[str]]:
    """The table's rows, and a line for the (de)quantize steps folded out of it, and one for the unchanged layers
    left out of a table over MOST_ROWS (JSON lists them all)."""
    steps = Counter(layer.status for layer in report.layers if _quantize_step(layer))
    lines = [f"{n} quantize/dequantize step rows {status} (not shown)" for status, n in sorted(steps.items())]
    shown = [layer for layer in report.layers if not _quantize_step(layer)]
    if len(shown) > MOST_ROWS:
        kept = [layer for layer in shown if not _unchanged(layer)]
        lines.append(
            f"{len(shown) - len(kept):,} unchanged layers not shown (over {MOST_ROWS:,} rows; --format json lists every"
            " layer)"
        )
        shown = kept
    return shown, lines


def render_diff_text(report: DiffReport, width: int | None = WIDTH) -> str:
    """The diff in `width` columns at most (names shortened with an ellipsis; a layer's bytes, changes,
    storage and values under its row when the table would not fit), or every line whole (`width=None`)."""
    lines = wrap_all([_side_line("OLD", report.old, escape), _side_line("NEW", report.new, escape)], width)
    lines += ["", *table(["Stored", "OLD", "NEW", "Delta", "Bytes"], _stored_rows(report), {1, 2, 3}, width)]
    lines.append("")
    lines += table(["Framework view (logical)", "OLD", "NEW", "Delta", ""], _logical_rows(report), {1, 2, 3}, width)
    if _macs_row(report):
        cost = table(["Cost", "OLD", "NEW", "Delta", ""], _macs_row(report), {1, 2, 3}, width, movable=(1, 2))
        lines += ["", *cost]
    heading, rows = _framework_rows(report)
    lines += ["", heading + (":" if rows else "")]
    if rows:
        lines += table(_FRAMEWORK_HEADERS, rows, {2, 3}, width, {0: 16, 1: 16}, movable=(4, 5, 6))
    lines += ["", *wrap(_summary_line(report), width)]
    shown, folded = _shown_layers(report)
    cells = [layer_cells(layer, escape) for layer in shown]
    lines += table(_HEADERS, cells, {3}, width, {1: 16, 2: 16}, movable=(4, 5, 6, 7)) + folded
    lines += ["", *wrap(_values_line(report), width)]
    lines += wrap_all([f"Note: {escape(n)}" for n in report.notes], width)
    lines.append(_verdict(report))
    return "\n".join(lines) + "\n"


def render_diff_json(report: DiffReport) -> str:
    """The DiffReport as JSON: every dataclass field, keys sorted; indented unless the diff is big (as the
    summary's JSON: over PRETTY_JSON_ITEMS layers + tensors, compact)."""
    return "".join(diff_json_pieces(report))


def write_diff_json(report: DiffReport, stream: TextIO) -> None:
    """render_diff_json's text written piece by piece: the JSON of a diff at the node limit (250,000 layers,
    ~100 MB) is never held whole in memory."""
    for piece in diff_json_pieces(report):
        stream.write(piece)


def diff_json_pieces(report: DiffReport) -> Iterator[str]:
    """render_diff_json's text in pieces. A big diff's layers are written by the hand-made encoders below, compact
    (json.dumps with indent runs json's pure-Python encoder: 12.7 s for 250,000 layers); the rest, and every
    small diff, goes through json.dumps."""
    if len(report.layers) + sum(len(layer.tensors) for layer in report.layers) <= PRETTY_JSON_ITEMS:
        yield json.dumps(report, default=_fields, indent=2, sort_keys=True) + "\n"
        return
    yield from _object_pieces(_fields(report), {"layers": lambda layers: _list_pieces(layers, _layer_json)})
    yield "\n"


# The encoders below write their dataclass's fields in sorted order, as json.dumps(sort_keys=True) does
# (tests/test_diff.py holds them to json.dumps, so a new field cannot be missed).
def _delta_json(d: Delta) -> str:
    return f'{{"delta": {_int_or_null(d.delta)}, "new": {_int_or_null(d.new)}, "old": {_int_or_null(d.old)}}}'


def _text_or_null(text: str | None) -> str:
    return "null" if text is None else _string(text)


def _amount_delta_json(a: AmountDelta) -> str:
    terms = "null" if a.delta_terms is None else _dumps(a.delta_terms)
    return (
        f'{{"delta": {_int_or_null(a.delta)}, "delta_terms": {terms}, "new": {_text_or_null(a.new)}, '
        f'"old": {_text_or_null(a.old)}, "same": {"true" if a.same else "false"}}}'
    )


def _tensor_diff_json(t: TensorDiff) -> str:
    return (
        f'{{"bytes": {_delta_json(t.bytes)}, "new": {_text_or_null(t.new)}, "new_dims": {_ints(t.new_dims)}, '
        f'"new_dtype": {_text_or_null(t.new_dtype)}, "old": {_text_or_null(t.old)}, '
        f'"old_dims": {_ints(t.old_dims)}, "old_dtype": {_text_or_null(t.old_dtype)}, '
        f'"params": {_delta_json(t.params)}, "role": {_string(t.role)}, "values": {_string(t.values)}, '
        f'"values_how": {_string(t.values_how)}}}'
    )


def _layer_json(la: LayerDiff) -> str:
    tensors = ", ".join(map(_tensor_diff_json, la.tensors))
    return (
        f'{{"bytes": {_delta_json(la.bytes)}, "changes": {_strings(la.changes)}, '
        f'"macs": {_amount_delta_json(la.macs)}, "matched_by": {_text_or_null(la.matched_by)}, '
        f'"new": {_text_or_null(la.new)}, "new_ops": {_strings(la.new_ops)}, '
        f'"new_quantization": {_text_or_null(la.new_quantization)}, "non_trainable": {_delta_json(la.non_trainable)}, '
        f'"old": {_text_or_null(la.old)}, "old_ops": {_strings(la.old_ops)}, '
        f'"old_quantization": {_text_or_null(la.old_quantization)}, "params": {_delta_json(la.params)}, '
        f'"status": {_string(la.status)}, "tensors": [{tensors}], "trainable": {_delta_json(la.trainable)}, '
        f'"values": {_string(la.values)}}}'
    )


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_diff_markdown(report: DiffReport) -> str:
    esc = escape_markdown
    lines = [f"- {_side_line('OLD', report.old, esc)}", f"- {_side_line('NEW', report.new, esc)}", ""]
    lines += [_md_row(["Stored", "OLD", "NEW", "Delta", "Bytes"]), "|---|---:|---:|---:|---|"]
    lines += [_md_row([esc(c) for c in r]) for r in _stored_rows(report)]
    lines += ["", _md_row(["Framework view (logical)", "OLD", "NEW", "Delta", "Verdict"]), "|---|---:|---:|---:|---|"]
    lines += [_md_row(r) for r in _logical_rows(report)]
    lines += [_md_row([escape_markdown(c) for c in r]) for r in _macs_row(report)]
    heading, rows = _framework_rows(report)
    lines += ["", heading]
    if rows:
        lines += ["", _md_row(_FRAMEWORK_HEADERS), "|" + "---|" * len(_FRAMEWORK_HEADERS)]
        lines += [_md_row([escape_markdown(c) for c in r]) for r in rows]
    lines += ["", _summary_line(report), "", _md_row(_HEADERS), "|" + "---|" * len(_HEADERS)]
    shown, folded = _shown_layers(report)
    lines += [_md_row([esc(c) if i > 2 else c for i, c in enumerate(layer_cells(la, esc))]) for la in shown]
    lines += [f"\n{line}" for line in folded]
    lines += ["", f"- {_values_line(report)}"]
    lines += [f"- Note: {esc(n)}" for n in report.notes]
    lines += [f"- {_verdict(report)}"]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[DiffReport], str]] = {
    "text": render_diff_text,
    "json": render_diff_json,
    "markdown": render_diff_markdown,
}
