"""Arithmetic that explains a layer's count: `Conv 32x3x7x7 + 32 = 4,736`."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from onnxaudit.count.table import ParamTensor

# Roles that are the per-channel vectors of one normalization layer, in the order people write them.
_NORM_ORDER = ("bn_gamma", "bn_beta", "bn_mean", "bn_var", "norm_scale", "norm_bias")
_SHORT = {
    "bn_gamma": "gamma",
    "bn_beta": "beta",
    "bn_mean": "mean",
    "bn_var": "var",
    "norm_scale": "scale",
    "norm_bias": "bias",
}


def dims_text(dims: Sequence[int] | None) -> str:
    if dims is None:
        return "?"
    if len(dims) == 0:
        return "1"
    return "x".join(map(str, dims))


def formula(
    tensors: Sequence[ParamTensor], non_trainable: int, op_label: str, non_trainable_label: str = "non-trainable"
) -> str:
    """One line of arithmetic over the counted tensors of a layer ('' when it holds none)."""
    terms = tuple([(t.dims, t.count, t.role, t.category) for t in tensors if t.count is not None])
    if not terms:
        return ""
    return _formula_text(terms, non_trainable, op_label, non_trainable_label)


# What formula() reads of one counted tensor: dims, count, role, category.
_Term = tuple[tuple[int, ...] | None, int, str, str]


@functools.lru_cache(maxsize=4096)
def _formula_text(terms: tuple[_Term, ...], non_trainable: int, op_label: str, non_trainable_label: str) -> str:
    """formula() per distinct signature: a model repeats a few (48k rows, ~20 texts at 200k nodes)."""
    total = sum(count for _, count, _, _ in terms)
    width = _norm_width(terms) if len(terms) > 1 else None  # one tensor (most rows) is never such a set
    if width is not None:
        ordered = sorted(terms, key=lambda term: _NORM_ORDER.index(term[2]))
        trainable_part = [_SHORT[role] for _, _, role, category in ordered if category == "parameter"]
        stats_part = [_SHORT[role] for _, _, role, category in ordered if category != "parameter"]
        names = " | ".join(", ".join(part) for part in (trainable_part, stats_part) if part)
        text = f"{len(terms)} x {width} = {total:,} ({names})"
    else:
        text = " + ".join([dims_text(dims) for dims, _, _, _ in terms])
        first_dims = terms[0][0]
        if len(terms) > 1 or (first_dims is not None and len(first_dims) > 1):
            text += f" = {total:,}"
    if non_trainable:
        text += f" [{non_trainable:,} {non_trainable_label}]"
    return f"{op_label} {text}".strip()


def _norm_width(terms: tuple[_Term, ...]) -> int | None:
    """The length all of them share when they are per-channel vectors of one normalization layer, else None."""
    widths = {
        dims[0] if dims is not None and len(dims) == 1 and role in _NORM_ORDER else None for dims, _, role, _ in terms
    }
    width = widths.pop()
    return width if not widths else None
