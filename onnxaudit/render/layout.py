"""Fitting text output to a terminal: tables shortened with an ellipsis, prose wrapped with a hanging
indent. `width=None` (`--wide`) leaves every line whole."""

from __future__ import annotations

import textwrap

WIDTH = 100  # columns of text output by default
ELLIPSIS = "…"
LONG_LINE = 4096  # a line holding a word this long is cut at the width rather than wrapped by words


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def shorten_middle(text: str, width: int) -> str:
    """`text` cut to `width` characters by an ellipsis in the middle: a layer path keeps its start and
    its last part (`encoder.lay…output.dense (MatMul)`)."""
    if len(text) <= width:
        return text
    if width < 3:
        return shorten(text, width)
    head = (width - 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def wrap(line: str, width: int | None, indent: int = 4) -> list[str]:
    """One line of prose as lines of at most `width` columns; continuations indented `indent` more than
    the line itself. A word longer than a line (a tensor name) is cut across lines, never lost."""
    if width is None or len(line) <= width:
        return [line]
    lead = len(line) - len(line.lstrip(" "))
    if _single_spaced(line, lead, width - lead - indent):
        parts = _greedy(line, width, " " * (lead + indent))
    elif len(line) > LONG_LINE and max(map(len, line.split())) > LONG_LINE:
        # textwrap cuts a long word one line at a time, copying the rest each time: quadratic (a 2 MB name
        # took 46 s); such a line is cut every `width` columns instead
        step = max(width - lead - indent, 1)
        parts = [line[:width], *(" " * (lead + indent) + line[i : i + step] for i in range(width, len(line), step))]
    else:
        parts = textwrap.wrap(
            line,
            width=width,
            subsequent_indent=" " * (lead + indent),
            break_on_hyphens=False,
            replace_whitespace=False,
        )
    # a break may put a name's `::` first on a line: CI runners read that as a workflow command
    if "::" not in line:  # no part can start with one (most lines: no look at each part)
        return parts
    return [part.replace("::", "\\::", 1) if part.lstrip().startswith("::") else part for part in parts]


def _single_spaced(line: str, lead: int, room: int) -> bool:
    """Prose textwrap would cut only at its single spaces: no tab, newline or other control character, no
    run of spaces after the indent, none at the end, and every word fits a continuation line (`room`)."""
    body = line[lead:]
    return line.isprintable() and "  " not in body and not body.endswith(" ") and max(map(len, body.split(" "))) <= room


def _greedy(line: str, width: int, indent: str) -> list[str]:
    """textwrap.wrap's lines for a `_single_spaced` line (what it gives there, checked against it in the
    tests), found by rfind instead of its chunk loop: each line the longest run of whole words that fits,
    continuations after `indent`. ~5x faster (11k wrapped evidence lines at 200k nodes)."""
    parts: list[str] = []
    rest, room = line, width
    while len(rest) > room:
        cut = rest.rfind(" ", 0, room + 1)
        parts.append(indent + rest[:cut] if parts else rest[:cut])
        rest, room = rest[cut + 1 :], width - len(indent)
    parts.append(indent + rest if parts else rest)
    return parts


def wrap_all(lines: list[str], width: int | None, indent: int = 4) -> list[str]:
    return [part for line in lines for part in wrap(line, width, indent)]


def fit_columns(widths: list[int], width: int | None, shrinkable: dict[int, int]) -> list[int]:
    """Column widths (cells two spaces apart) narrowed to fit `width`: the columns in `shrinkable`
    (index -> narrowest allowed), in that order, give up what is needed; the rest stay whole."""
    if width is None:
        return widths
    fitted = list(widths)
    excess = sum(fitted) + 2 * (len(fitted) - 1) - width
    for index, narrowest in shrinkable.items():
        if excess <= 0:
            break
        give = min(excess, max(fitted[index] - narrowest, 0))
        fitted[index] -= give
        excess -= give
    return fitted


def _span(widths: list[int]) -> int:
    return sum(widths) + 2 * (len(widths) - 1)


def share_widths(widths: list[int], width: int, shrinkable: dict[int, int]) -> list[int]:
    """`widths` narrowed to fit `width`, one column at a time from the widest shrinkable one, so two
    name columns end up as wide as each other rather than one cut to the bone."""
    fitted = list(widths)
    excess = _span(fitted) - width
    while excess > 0:
        room = [(fitted[i], i) for i, low in shrinkable.items() if fitted[i] > low]
        if not room:
            break
        _, widest = max(room)
        fitted[widest] -= 1
        excess -= 1
    return fitted


def table(
    headers: list[str],
    rows: list[list[str]],
    right: set[int],
    width: int | None = None,
    shrinkable: dict[int, int] | None = None,
    movable: tuple[int, ...] = (),
) -> list[str]:
    """Rows two spaces apart, the `right` columns right-aligned. Wider than `width`: the `movable` columns
    leave the table when narrowing the others down to their least (`shrinkable`: index -> narrowest)
    would not be enough, and go under each row as `Header: value`; then the `shrinkable` columns are
    narrowed, their cells shortened with an ellipsis in the middle. `width=None` keeps every cell whole."""
    shrink = shrinkable or {}
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    keep = list(range(len(headers)))
    if width is not None and movable and _span(share_widths(widths, width, shrink)) > width:
        keep = [i for i in keep if i not in movable]
    moved = [i for i in range(len(headers)) if i not in keep]
    fitted = [widths[i] for i in keep]
    if width is not None:
        fitted = share_widths(fitted, width, {keep.index(i): low for i, low in shrink.items() if i in keep})
    lines = []
    for n, r in enumerate([headers, *rows]):
        cells = [shorten_middle(r[i], w) if width is not None else r[i] for i, w in zip(keep, fitted, strict=True)]
        aligned = (c.rjust(w) if i in right else c.ljust(w) for i, c, w in zip(keep, cells, fitted, strict=True))
        lines.append("  ".join(aligned).rstrip())
        below = "; ".join(f"{headers[i]}: {r[i]}" for i in moved if r[i])
        if n and below:
            lines += wrap("    " + below, width)
    return lines
