"""Renderers: lay a Report out as a text table, JSON or Markdown. No counting happens here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from itertools import repeat
from json.encoder import encode_basestring_ascii
from operator import add, lshift
from typing import TYPE_CHECKING, Any, Literal, TextIO, get_args

from onnxaudit.cost.estimate import Amount
from onnxaudit.frameworks.figures import Alternative, Figure, FrameworkLayer
from onnxaudit.io.text import UNSAFE
from onnxaudit.render.layout import ELLIPSIS, WIDTH, fit_columns, shorten, wrap, wrap_all
from onnxaudit.report.build import UNWRITTEN, Report, Row, TensorRow

if TYPE_CHECKING:
    from onnxaudit.verify.verify import Verification

# Longest name or text printed whole (escapes count as one character each); longer ones keep their ends
LONGEST_SHOWN = 1024


def escape(name: object) -> str:
    """A name made safe to print: what io/text.UNSAFE names (controls, escapes, bidi overrides...) shown as
    \\xNN / \\uNNNN, invalid UTF-8 as \\xNN, and a leading '::' (CI workflow commands) broken up."""
    if type(name) is str and name.isascii() and name.isprintable():
        # nothing to show as an escape: most names, and a call per cell (254k at 200k nodes)
        return "\\" + name if name.lstrip().startswith("::") else name
    if isinstance(name, bytes):
        text = name.decode("utf-8", "backslashreplace")
    else:
        text = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if len(text) > LONGEST_SHOWN:  # a file's 18 MB op type is shown by its ends and its length
        cut = LONGEST_SHOWN // 2
        text = f"{text[:cut]}{ELLIPSIS}[{len(text):,} characters]{ELLIPSIS}{text[-cut // 2 :]}"

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    text = UNSAFE.sub(visible, text)
    if text.lstrip().startswith("::"):  # the Actions runner trims leading spaces before a command
        text = "\\" + text
    return text


def all_plain(names: list[str]) -> bool:
    """escape() leaves every one of `names` as it is: one test over them joined (printable ASCII, no `::`
    anywhere) instead of a call per name (254k cells at 200k nodes). False says only that some may change."""
    joined = " ".join(names)  # a space between names: no `::` made across two of them
    return joined.isascii() and joined.isprintable() and "::" not in joined


# Markdown's special characters, each given a backslash: one translate instead of a regex substitution.
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|~"})


def escape_markdown(name: object) -> str:
    return escape(name).translate(_MARKDOWN_ESCAPES)


def code_span(name: object) -> str:
    """A name as a Markdown code span: nothing inside one is markup, so no backslashes are added (they
    would show); a fence longer than any run of backticks in the name keeps it closed."""
    text = escape(name)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def human_bytes(n: int) -> str:
    """Keras's style: 147.00 KB, 256.00 B (powers of 1024)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TB"  # pragma: no cover


def shape_text(
    shape: Sequence[int | str | None] | None, unknown: str = "?", short: dict[str, str] | None = None
) -> str:
    """`(batch, 32, 64)`; with `short`, a symbolic dim longer than LONG_DIM characters is written by a
    short name it is given there (`s1`), which the table's legend spells out."""
    if shape is None:
        return unknown
    dims = [escape(d) if isinstance(d, str) else ("?" if d is None else str(d)) for d in shape]
    if short is not None:
        dims = [short.setdefault(d, f"s{len(short) + 1}") if len(d) > LONG_DIM else d for d in dims]
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


# a symbolic dim longer than this (inference's `floor(floor(height/2 - 1/2)/2) + 1`) is named in the table
# The summary's output formats (render_text or write_text, write_json, render_markdown, render/html.py's render_html)
SummaryFormat = Literal["text", "json", "markdown", "html"]
SUMMARY_FORMATS: tuple[SummaryFormat, ...] = get_args(SummaryFormat)

LONG_DIM = 24


def dims_legend(short: dict[str, str]) -> list[str]:
    """The long symbolic dims a table wrote by short names, one line each."""
    return [f"{name} = {dim}" for dim, name in short.items()]


def opsets_text(report: Report) -> str:
    """`opset 17, com.microsoft 1`: the opsets the graph's nodes use, domains escaped."""
    used = report.opsets_used()
    return ", ".join(f"{escape(k)} {v}" if k != "ai.onnx" else f"opset {v}" for k, v in used.items())


def _header_lines(report: Report, width: int | None) -> list[str]:
    """`Model: PATH   opset 17 · IR 8 · ...`, on two lines when one would not fit."""
    model = f"Model: {escape(report.model)}"
    about = (
        f"{opsets_text(report)} · IR {report.ir_version} · {report.tensor_count()} tensors · "
        f"{report.node_count} nodes · shapes: {report.shapes_source}"
    )
    if width is None or len(model) + 3 + len(about) <= width:
        return [f"{model}   {about}"]
    return [*wrap(model, width), *wrap("  " + about, width)]


def _name_cells(rows: list[Row]) -> list[str]:
    """`name (Op+Op)` per row (the name alone without ops), each name escaped: not one by one where no name
    or op needs it (70k rows at 200k nodes), which one all_plain over the cells says."""
    ops = ["+".join(r.ops) for r in rows]
    cells = [f"{r.name} ({op})" if op else r.name for r, op in zip(rows, ops, strict=True)]
    if all_plain(cells):  # ` (` and `)` around the ops make no `::` and change no name or op
        return cells
    names = list(map(escape, [r.name for r in rows]))
    if not all_plain(ops):
        ops = ["+".join(map(escape, r.ops)) for r in rows]
    return [f"{name} ({op})" if op else name for name, op in zip(names, ops, strict=True)]


def _comma_texts(values: list[int]) -> list[str]:
    """`1,024` for each count, made once per distinct count (70k rows hold a few dozen at 200k nodes)."""
    known = {value: f"{value:,}" for value in set(values)}
    return list(map(known.__getitem__, values))


def _figure_texts(figures: list[Figure]) -> list[str]:
    """Figure.text() of each, made once per figure object (Figure.of shares one per exact count); the
    distinct objects found by a dict built in C (48.6k framework layers at 200k nodes)."""
    keys = list(map(id, figures))
    texts = {key: figure.text() for key, figure in dict(zip(keys, figures, strict=True)).items()}
    return list(map(texts.__getitem__, keys))


def _total_texts(trainable: list[Figure], non_trainable: list[Figure]) -> list[str]:
    """The text of each layer's total (FrameworkLayer.total: their sum), made once per pair of figure
    objects instead of a sum per layer (48.6k at 200k nodes, a few dozen pairs)."""
    # a pair's key is one int (the ids side by side, an id being under 64 bits), made in C: no tuple a layer
    pairs = list(map(add, map(lshift, map(id, trainable), repeat(64)), map(id, non_trainable)))
    figures = dict(zip(pairs, zip(trainable, non_trainable, strict=True), strict=True))
    texts = {pair: (t + n).text() for pair, (t, n) in figures.items()}
    return list(map(texts.__getitem__, pairs))


def _table_columns(
    rows: list[Row], unknown_shape: str, explain: bool, short: dict[str, str], cost: bool
) -> list[list[str]]:
    """The table's cells a column at a time: name, shape, the three counts, (output size, MACs), (explanation).
    The shapes and sizes are made row by row, as `short` names their long dims in the order they are met."""
    shapes: list[str] = []
    columns = [_name_cells(rows), shapes]
    columns.append(_comma_texts([r.params for r in rows]))
    columns.append(_comma_texts([r.trainable for r in rows]))
    columns.append(_comma_texts([r.non_trainable for r in rows]))
    if cost:
        sizes: list[str] = []
        macs: list[str] = []
        for r in rows:
            shapes.append(shape_text(r.output_shape, unknown_shape, short))
            sizes.append(bytes_text(r.output_bytes, short))
            macs.append(amount_text(r.macs, short))
        columns += [sizes, macs]
    else:
        shapes += [unknown_shape if r.output_shape is None else shape_text(r.output_shape, "", short) for r in rows]
    if explain:
        columns.append([escape(row_explanation(r)) for r in rows])
    return columns


def row_explanation(row: Row) -> str:
    """The params' arithmetic, then the MACs' (each op's factors, in the README's order)."""
    if not row.cost_formula or row.macs is None or not row.macs.terms:
        return row.explain if row.macs is not None or not row.cost_formula else f"{row.explain}  MACs: ?"
    macs = f"MACs {row.cost_formula} = {row.macs.text}"
    return f"{row.explain}  {macs}" if row.explain else macs


def amount_text(amount: Amount | None, short: dict[str, str] | None = None) -> str:
    """`19,300,352 x batch`; `?` where a dim is not known statically."""
    return "?" if amount is None else _terms_text(amount, lambda c: f"{c:,}", short)


def bytes_text(amount: Amount | None, short: dict[str, str] | None = None) -> str:
    """`48.00 KB x batch`: each term's coefficient in Keras's units."""
    return "?" if amount is None else _terms_text(amount, human_bytes, short)


def _terms_text(amount: Amount, number: Callable[[int], str], short: dict[str, str] | None) -> str:
    """The terms of an amount, lowest degree first; a long symbolic dim by its short name (shape_text's)."""
    if not amount.terms:
        return number(0)
    parts = []
    for key, c in sorted(amount.terms.items(), key=lambda item: (item[0].count("*") + bool(item[0]), item[0])):
        dims: dict[str, int] = {}
        for d in key.split("*") if key else ():
            dims[d] = dims.get(d, 0) + 1
        names = [_dim_name(d, short) + (f"^{n}" if n > 1 else "") for d, n in dims.items()]
        parts.append(
            " x ".join([number(c), *names]) if c != 1 or not names or number is human_bytes else " x ".join(names)
        )
    return " + ".join(parts)


def _dim_name(dim: str, short: dict[str, str] | None) -> str:
    text = escape(dim)
    if short is not None and len(text) > LONG_DIM:
        return short.setdefault(text, f"s{len(short) + 1}")
    return f"({text})" if not text.replace("_", "").isalnum() else text


def _column_widths(headers: list[str], columns: list[list[str]]) -> list[int]:
    """Each column as wide as its widest cell or header."""
    return [max(len(h), max(map(len, column), default=0)) for h, column in zip(headers, columns, strict=True)]


def _shortened(cells: list[str], width: int) -> list[str]:
    """Each cell cut to `width` with an ellipsis (layout.shorten)."""
    return [c if len(c) <= width else shorten(c, width) for c in cells]


def _template(aligns: str, widths: list[int]) -> str:
    """A %-format string laying a tuple of cells out two spaces apart, each padded to its width: `<`
    left-aligned, `>` right-aligned, `-` as is (one `%` per line instead of a ljust/rjust call per cell; `%`
    pads as str.format does, in half its time: 70k table lines at 200k nodes)."""
    return "  ".join(
        "%s" if a == "-" else f"%{'-' if a == '<' else ''}{w}s" for a, w in zip(aligns, widths, strict=True)
    )


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
            f"  unclassified {escape(u.name)}: {dims} = {u.count or 0:,} values <- {escape(', '.join(u.consumers[:3]))}"
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
    return lines + cost_lines(report)


def cost_lines(report: Report) -> list[str]:
    """torchinfo's footer: mult-adds and sizes, then what the figures leave out."""
    cost = report.cost
    if cost is None:
        return []
    bound = ", ".join(f"{escape(k)}={v}" for k, v in cost.bindings.items())
    unknown = sum(cost.unknown_ops.values())
    without = f" without the {unknown:,} ops below whose dims are not known statically" if unknown else ""
    lines = [
        f"Total mult-adds (MACs): {amount_text(cost.macs)}" + (f" (at {bound})" if bound else "") + without,
        f"Elementwise FLOPs (not in the MACs): {amount_text(cost.flops)}",
        f"Input size: {bytes_text(cost.input_bytes)}",
        f"Forward pass size (all activations): {bytes_text(cost.forward_bytes)}",
        f"Params size: {human_bytes(cost.params_bytes)}",
        f"Estimated total size: {bytes_text(cost.total_bytes)}",
        f"Peak activation memory (estimate): {'' if cost.peak_exact else 'at most '}{bytes_text(cost.peak_bytes)}",
    ]
    if cost.unknown_ops:
        ops = ", ".join(f"{escape(op)} x{n}" for op, n in cost.unknown_ops.items())
        lines.append(f"  not in the totals, dims not known statically: {ops}")
    if cost.not_counted_ops:
        ops = ", ".join(f"{escape(op)} x{n}" for op, n in cost.not_counted_ops.items())
        lines.append(f"  work not counted (no declared formula): {ops}")
    if cost.unknown_values:
        lines.append(f"  {cost.unknown_values:,} values of unknown size are not in the memory figures")
    return lines


def _framework_shown(report: Report) -> bool:
    fw = report.framework
    return fw is not None and (bool(fw.rewrites) or fw.status != "exact")


def framework_lines(report: Report, explain: bool, width: int | None = None) -> list[str]:
    """The framework view: counts rebuilt through exporter rewrites, each with its status."""
    fw = report.framework
    if fw is None or not _framework_shown(report):
        return []
    origin = {"keras": "Keras", "pytorch": "PyTorch", "paddle": "PaddlePaddle"}.get(fw.origin, "unknown")
    headers = ["Layer (kind)", "Param #", report.trainable_label, report.non_trainable_label, "Status"]
    layers = fw.layers
    names = [f"{la.name} ({la.kind})" for la in layers]
    if not all_plain(names):  # ` (` and `)` make no `::` and change no name or kind: else escape each
        names = [f"{escape(la.name)} ({escape(la.kind)})" for la in layers]
    trainable, non_trainable = [la.trainable for la in layers], [la.non_trainable for la in layers]
    columns = [
        names,
        _total_texts(trainable, non_trainable),
        _figure_texts(trainable),
        _figure_texts(non_trainable),
        [la.status for la in layers],
    ]
    widths = fit_columns(_column_widths(headers, columns), width, {0: 24})
    if width is not None:
        columns[0] = _shortened(names, widths[0])
    line = _template("<>>>-", widths).__mod__
    out = [
        *wrap(f"Framework view: {origin} export rebuilt through exporter rewrites ({fw.status})", width),
        line(tuple(headers)),
    ]
    lines = list(map(line, zip(*columns, strict=True)))
    # the layers with lines under their own: an exact layer's evidence is shown only with --explain
    under = (
        range(len(layers)) if explain else [i for i, la in enumerate(layers) if la.status != "exact" or la.alternatives]
    )
    start = 0
    for i in under:
        out += lines[start : i + 1]
        start = i + 1
        la = layers[i]
        if explain or la.status != "exact":
            for evidence in la.evidence if explain else la.evidence[:1]:
                out += wrap(f"    {escape(evidence)}", width)
        if la.alternatives:
            taken = "; ".join(a.text for a in la.alternatives)
            defaults = la.trainable.likely is not None or la.non_trainable.likely is not None  # else choices
            said = "the defaults taken the other way" if defaults else "what the file cannot tell"
            out += wrap(f"    bounds cover {said}: {escape(taken)}", width)
    out += lines[start:]
    out += wrap(
        f"Rebuilt totals: Total params: {fw.total.text()} · {report.trainable_footer}: {fw.trainable.text()} · "
        f"{report.non_trainable_footer}: {fw.non_trainable.text()} ({fw.status})",
        width,
    )
    out += wrap_all([f"Note: {escape(n)}" for n in fw.notes], width)
    return out


def render_text(report: Report, explain: bool = False, width: int | None = WIDTH) -> str:
    """The summary table; `width` columns at most (long names shortened with an ellipsis, prose wrapped, an
    explanation that does not fit moved under its row), or every line whole with `width=None`."""
    return "\n".join(_text_lines(report, explain, width)) + "\n"


# Lines per piece of text write_text writes: pieces of well under a megabyte.
_TEXT_PIECE_LINES = 2_000


def write_text(report: Report, stream: TextIO, explain: bool = False, width: int | None = WIDTH) -> None:
    """render_text's text written piece by piece: a big report's text (13 MB at 200k nodes, twice that as one
    string once an ellipsis or a '·' is in it) is never held whole, nor encoded in one go."""
    lines = _text_lines(report, explain, width)
    for start in range(0, len(lines), _TEXT_PIECE_LINES):
        stream.write("\n".join(lines[start : start + _TEXT_PIECE_LINES]) + "\n")


def _text_lines(report: Report, explain: bool, width: int | None) -> list[str]:
    """render_text's lines."""
    headers = ["Layer (type)", "Output Shape", "Param #", report.trainable_label, report.non_trainable_label]
    if report.group_by == "tensor":
        headers[0], headers[1] = "Tensor (consumer op)", "Dims"
    elif report.group_by in ("op", "role"):
        headers[0] = "Op type" if report.group_by == "op" else "Role"
    cost = report.cost is not None and report.group_by == "layer"
    if cost:
        headers += ["Output size", "MACs"]
    unknown_shape = "?" if report.group_by == "layer" else "-"
    short: dict[str, str] = {}
    columns = _table_columns(report.rows, unknown_shape, explain, short, cost)
    if explain:
        headers.append("Explanation")
    widths = _column_widths(headers, columns)
    widths[0] = min(widths[0], 60)
    below: list[str] = []  # explanations shown under their rows: the table would not fit with them
    if explain and width is not None and sum(widths) + 2 * (len(widths) - 1) > width:
        headers.pop()
        below = columns.pop()
        widths.pop()
    aligns = "<<>>>>>-" if cost else "<<>>>-"
    sizes_dropped = cost and width is not None and sum(widths) + 2 * (len(widths) - 1) > width
    if sizes_dropped:  # per-row output sizes give way first: the footer keeps their sum, --wide and JSON each one
        at = headers.index("Output size")
        del headers[at], widths[at], columns[at]
        aligns = aligns[:at] + aligns[at + 1 :]
    if width is not None:
        # names, then shapes, then a long symbolic MACs formula give way (each whole with --wide and in JSON)
        macs = headers.index("MACs") if "MACs" in headers else None
        widths = fit_columns(widths, width, {0: 24, 1: 14, **({macs: 16} if macs is not None else {})})
        for i in (0, 1) if macs is None else (0, 1, macs):
            columns[i] = _shortened(columns[i], widths[i])
    template = _template(aligns[: len(headers)], widths)

    def line(cells: list[str]) -> str:
        return (template % tuple(cells)).rstrip()

    rule = "=" * min(len(line(headers)) + 4, 140 if width is None else width)
    parts = [*_header_lines(report, width), rule, line(headers), rule]
    lines = list(map(str.rstrip, map(template.__mod__, zip(*columns, strict=True))))
    if below:
        for text, explained in zip(lines, below, strict=True):
            parts.append(text)
            if explained:
                parts += wrap("    " + explained, width)
    else:
        parts += lines
    if short:
        parts += [rule, "Symbolic dims:", *wrap_all([f"  {text}" for text in dims_legend(short)], width)]
    parts += [rule, *wrap_all(footer_lines(report), width), rule]
    if _framework_shown(report):
        parts += [*framework_lines(report, explain, width), rule]
    parts += wrap_all([f"Limit: {escape(limit)}" for limit in report.limits], width)
    parts += wrap_all([f"Note: {escape(note)}" for note in report.notes + _cost_notes(report)], width)
    if sizes_dropped:
        parts += wrap(
            f"Note: each row's output size is shown with --wide (the table would not fit {width} columns)", width
        )
    return parts


def _cost_notes(report: Report) -> list[str]:
    return list(report.cost.notes) if report.cost is not None else []


# Above this many rows + tensors nobody reads the JSON by eye, and indent=2 (json's pure-Python
# encoder) after asdict's deep copy costs ~10 s on a 200k-node graph: write it compact instead.
PRETTY_JSON_ITEMS = 10_000
# Rows, tensors or framework layers per piece of compact JSON: pieces of well under a megabyte.
_JSON_PIECE_ITEMS = 2_000


def render_json(report: Report) -> str:
    """The report as JSON: every dataclass field, keys sorted; indented unless the report is big."""
    return "".join(json_pieces(report))


def write_json(report: Report, stream: TextIO) -> None:
    """render_json's text written piece by piece: a big report's JSON (55 MB at 200k nodes) is never
    held whole in memory."""
    for piece in json_pieces(report):
        stream.write(piece)


def json_pieces(report: Report) -> Iterator[str]:
    """render_json's text in pieces. A big report's rows, tensors and framework layers are written by
    the hand-made encoders below (json.dumps with sort_keys spends ~4 us per object on them: 1 s at
    200k nodes); everything else, and every small report, goes through json.dumps."""
    if len(report.rows) + len(report.tensors) <= PRETTY_JSON_ITEMS:
        yield json.dumps(report, default=_fields, indent=2, sort_keys=True) + "\n"
        return
    yield from _object_pieces(
        _fields(report),
        {
            "rows": lambda rows: _list_pieces(rows, _row_json),
            "tensors": lambda tensors: _list_pieces(tensors, _tensor_row_json),
            "framework": lambda fw: _object_pieces(
                _fields(fw), {"layers": lambda layers: _list_pieces(layers, _framework_layer_json)}
            ),
        },
    )
    yield "\n"


def _fields(obj: object) -> dict[str, Any]:
    """A dataclass's fields for json.dumps (the same data as asdict, without its deep copy); a report's
    `remote` only when it read a URL, as Report.to_dict."""
    if isinstance(obj, Report):  # report/build.UNWRITTEN's fields: never written
        return {k: v for k, v in obj.__dict__.items() if k not in UNWRITTEN and (k != "remote" or v is not None)}
    return obj.__dict__


def _dumps(value: object) -> str:
    return json.dumps(value, default=_fields, sort_keys=True)


def _object_pieces(fields: dict[str, Any], own: dict[str, Callable[[Any], Iterator[str]]]) -> Iterator[str]:
    """`fields` as json.dumps(sort_keys=True) writes it, the values named in `own` (when not None)
    written by their own function."""
    separator = "{"
    for key in sorted(fields):
        value = fields[key]
        yield f"{separator}{_string(key)}: "
        if key in own and value is not None:
            yield from own[key](value)
        else:
            yield _dumps(value)
        separator = ", "
    yield "}" if fields else "{}"


def _list_pieces(items: list[Any], encode: Callable[[Any], str]) -> Iterator[str]:
    yield "["
    for start in range(0, len(items), _JSON_PIECE_ITEMS):
        yield (", " if start else "") + ", ".join(map(encode, items[start : start + _JSON_PIECE_ITEMS]))
    yield "]"


# json's own string encoder (C): what json.dumps writes for a str, escapes included (ensure_ascii).
_string = encode_basestring_ascii


def _strings(values: list[str]) -> str:
    if len(values) == 1:  # most lists of ops, tensors and evidence: no map and join
        return f"[{_string(values[0])}]"
    return f"[{', '.join(map(_string, values))}]"


def _ints(values: list[int] | None) -> str:
    return "null" if values is None else f"[{', '.join(map(str, values))}]"


def _int_or_null(value: int | None) -> str:
    return "null" if value is None else str(value)


def _shape_json(dims: list[int | str | None] | None) -> str:
    """A shape: ints, symbolic dims (str) and unknown dims (None)."""
    if dims is None:
        return "null"
    cells = [_string(d) if isinstance(d, str) else _int_or_null(d) for d in dims]
    return "[" + ", ".join(cells) + "]"


def _figure(f: Figure) -> str:
    # _int_or_null inline: 97k figures at 200k nodes
    hi, likely = f.hi, f.likely
    return f'{{"hi": {"null" if hi is None else hi}, "likely": {"null" if likely is None else likely}, "lo": {f.lo}}}'


def _alternatives_json(alternatives: list[Alternative]) -> str:
    cells = [
        f'{{"group": {"null" if a.group is None else _string(a.group)}, "non_trainable": {a.non_trainable}, '
        f'"text": {_string(a.text)}, "trainable": {a.trainable}}}'
        for a in alternatives
    ]
    return "[" + ", ".join(cells) + "]"


# The three encoders below write their dataclass's fields in sorted order, as json.dumps(sort_keys=True)
# does (tests/test_render.py holds them to json.dumps on every fixture, so a new field cannot be missed).
def _row_json(r: Row) -> str:
    # a null amount or shape written inline, without its encoder's call (70k rows at 200k nodes)
    flops, macs, size, shape = r.flops, r.macs, r.output_bytes, r.output_shape
    return (
        f'{{"all_ops": {_strings(r.all_ops)}, "cost_formula": {_string(r.cost_formula)}, '
        f'"explain": {_string(r.explain)}, "flops": {"null" if flops is None else _dumps(flops)}, '
        f'"macs": {"null" if macs is None else _dumps(macs)}, '
        f'"name": {_string(r.name)}, "non_trainable": {r.non_trainable}, "ops": {_strings(r.ops)}, '
        f'"output_bytes": {"null" if size is None else _dumps(size)}, '
        f'"output_shape": {"null" if shape is None else _shape_json(shape)}, "params": {r.params}, '
        f'"tensors": {_strings(r.tensors)}, "trainable": {r.trainable}, '
        f'"unclassified": {r.unclassified}}}'
    )


def _tensor_row_json(t: TensorRow) -> str:
    return (
        f'{{"bucket": {"null" if t.bucket is None else _string(t.bucket)}, '
        f'"bytes": {"null" if t.bytes is None else t.bytes}, '
        f'"category": {_string(t.category)}, "consumers": {_strings(t.consumers)}, '
        f'"count": {"null" if t.count is None else t.count}, "dims": {_ints(t.dims)}, "dtype": {_string(t.dtype)}, '
        f'"layer": {_string(t.layer)}, "name": {_string(t.name)}, "notes": {_strings(t.notes)}, '
        f'"origin": {_string(t.origin)}, "role": {_string(t.role)}, "scope": {_string(t.scope)}, '
        f'"storage": {_string(t.storage)}}}'
    )


def _framework_layer_json(la: FrameworkLayer) -> str:
    return (
        f'{{"alternatives": {_alternatives_json(la.alternatives) if la.alternatives else "[]"}, '
        f'"evidence": {_strings(la.evidence)}, "kind": {_string(la.kind)}, "name": {_string(la.name)}, '
        f'"non_trainable": {_figure(la.non_trainable)}, "status": {_string(la.status)}, '
        f'"tensors": {_strings(la.tensors)}, "trainable": {_figure(la.trainable)}}}'
    )


def render_markdown(report: Report, explain: bool = False) -> str:
    headers = ["Layer", "Op", "Output shape", "Params", report.trainable_label, report.non_trainable_label]
    cost = report.cost is not None and report.group_by == "layer"
    if cost:
        headers += ["Output size", "MACs"]
    if explain:
        headers.append("Explanation")
    right = range(3, 8 if cost else 6)
    lines = [
        f"**Model** {code_span(report.model)} · IR {report.ir_version} · "
        + ", ".join(f"{escape_markdown(k)} {v}" for k, v in report.opsets_used().items()),
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
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
        if cost:
            cells += [escape_markdown(bytes_text(row.output_bytes)), escape_markdown(amount_text(row.macs))]
        if explain:
            cells.append(escape_markdown(row_explanation(row)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {escape_markdown(text)}" for text in footer_lines(report)]
    if _framework_shown(report):
        lines += ["", "```", *framework_lines(report, explain), "```", ""]
    lines += [f"- Limit: {escape_markdown(text)}" for text in report.limits]
    lines += [f"- Note: {escape_markdown(text)}" for text in report.notes + _cost_notes(report)]
    return "\n".join(lines) + "\n"


def render_verification(result: Verification, width: int | None = WIDTH) -> str:
    """verify's text output: one line per figure, per-layer differences, then the explanation; lines
    wrapped to `width` columns (`None`: whole)."""
    verdict = "consistent" if result.consistent else "MISMATCH"
    if result.consistent and result.assuming:
        verdict += f" if {result.assuming}"
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
        elif la.verdict == "match" and la.explain and la.found is not None:  # compared as a group: say how
            lines.append(f"  {escape(la.name)}: {la.expected or 0:,} = {la.found.text()} - {escape(la.explain)}")
    lines += [f"  {escape(text)}" for text in result.explanation]
    lines += [f"Note: {escape(n)}" for n in result.notes]
    return "\n".join(wrap_all(lines, width)) + "\n"


def render_verification_json(result: Verification) -> str:
    return json.dumps(asdict(result), indent=2, sort_keys=True) + "\n"
