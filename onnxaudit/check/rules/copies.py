"""OA105: the same weights stored twice, byte for byte or transposed (tied weights after export)."""

from __future__ import annotations

from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.copies import find_copies
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.io.dims import dtype_name
from onnxaudit.io.text import as_text, quoted


def _copies(ctx: CheckContext) -> Iterator[Hit]:
    for found in find_copies(ctx.values).found:
        a, b = found.original.tensor, found.copy.tensor
        if found.transposed:
            rows, cols = a.dims or (0, 0)
            message = (
                f"{quoted(b.name)} ({cols}x{rows}) is {quoted(a.name)} ({rows}x{cols}) "
                "transposed: the same weights stored twice"
            )
        else:
            message = (
                f"{quoted(b.name)} holds the same {found.copy.count:,} "
                f"{dtype_name(b.dtype)} values as {quoted(a.name)} (stored twice)"
            )
        yield Hit(message, "tensor", as_text(b.name), b.scope)


DUPLICATE_WEIGHTS = Rule(
    "OA105",
    "duplicate-weights",
    "warning",
    "values",
    summary="the same contents stored twice: identical bytes, or a transposed copy (tied weights)",
    docs=(
        "Two initializers hold the same values, or one is the other transposed. Exporters often store tied "
        "weights (an embedding reused as the output projection) twice, which doubles their size on disk and in "
        "memory. Deduplicate them (one initializer feeding both nodes, with a Transpose where needed)."
    ),
    emit=_copies,
)

RULES = (DUPLICATE_WEIGHTS,)
