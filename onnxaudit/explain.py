"""Arithmetic that explains a layer's count: `Conv 32x3x7x7 + 32 = 4,736`."""

from __future__ import annotations

from collections.abc import Sequence

from onnxaudit.count import ParamTensor

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
    return "x".join(str(d) for d in dims)


def formula(
    tensors: Sequence[ParamTensor], non_trainable: int, op_label: str, non_trainable_label: str = "non-trainable"
) -> str:
    """One line of arithmetic over the counted tensors of a layer ('' when it holds none)."""
    counted = [t for t in tensors if t.count is not None]
    if not counted:
        return ""
    total = sum(t.count or 0 for t in counted)
    vectors = [t for t in counted if t.role in _NORM_ORDER and t.dims is not None and len(t.dims) == 1]
    if len(vectors) == len(counted) and len(counted) > 1 and len({t.dims for t in vectors}) == 1:
        ordered = sorted(vectors, key=lambda t: _NORM_ORDER.index(t.role))
        trainable_part = [_SHORT[t.role] for t in ordered if t.category == "parameter"]
        stats_part = [_SHORT[t.role] for t in ordered if t.category != "parameter"]
        names = " | ".join(", ".join(part) for part in (trainable_part, stats_part) if part)
        text = f"{len(vectors)} x {vectors[0].dims[0]} = {total:,} ({names})"  # type: ignore[index]
    else:
        terms = [dims_text(t.dims) for t in counted]
        text = " + ".join(terms)
        if len(counted) > 1 or (counted[0].dims is not None and len(counted[0].dims) > 1):
            text += f" = {total:,}"
    if non_trainable:
        text += f" [{non_trainable:,} {non_trainable_label}]"
    return f"{op_label} {text}".strip()
