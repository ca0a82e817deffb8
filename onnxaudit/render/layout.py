"""Fitting text output to a terminal: tables shortened with an ellipsis, prose wrapped with a hanging
indent. `width=None` (`--wide`) leaves every line whole."""

from __future__ import annotations

import textwrap

WIDTH = 100  # columns of text output by default
ELLIPSIS = "…"


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def wrap(line: str, width: int | None, indent: int = 4) -> list[str]:
    """One line of prose as lines of at most `width` columns; continuations indented `indent` more than
    the line itself. A word longer than a line (a tensor name) is cut across lines, never lost."""
    if width is None or len(line) <= width:
        return [line]
    lead = len(line) - len(line.lstrip(" "))
    parts = textwrap.wrap(
        line,
        width=width,
        subsequent_indent=" " * (lead + indent),
        break_on_hyphens=False,
        replace_whitespace=False,
    )
    # a break may put a name's `::` first on a line: CI runners read that as a workflow command
    return [part.replace("::", "\\::", 1) if part.lstrip().startswith("::") else part for part in parts]


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
