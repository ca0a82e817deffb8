"""Rules on each scanned tensor's values: NaN/Inf (OA101), all zeros (OA104), and what could not be
scanned (OA308)."""

from __future__ import annotations

from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.copies import find_copies
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.io.text import as_text, quoted

ZERO_ROLES = frozenset({"weight", "embedding", "rnn_W", "rnn_R", "bn_gamma", "norm_scale"})
SHOWN_SKIPPED = 5


def _nan_inf(ctx: CheckContext) -> Iterator[Hit]:
    values = ctx.values
    for target in values.targets:
        stats = values.stats[target.key]
        if stats.nan or stats.inf:
            name = as_text(target.tensor.name)
            parts = [f"{n:,} {label}" for n, label in ((stats.nan, "NaN"), (stats.inf, "Inf")) if n]
            message = f"{target.role} {quoted(name)} holds {' and '.join(parts)} among {stats.count:,} values"
            yield Hit(message, "tensor", name, target.tensor.scope)


def _all_zero(ctx: CheckContext) -> Iterator[Hit]:
    values = ctx.values
    for target in values.targets:
        stats = values.stats[target.key]
        if target.role in ZERO_ROLES and stats.all_zero:
            name = as_text(target.tensor.name)
            message = f"{target.role} {quoted(name)} is all zeros ({stats.count:,} values): the layer outputs nothing"
            yield Hit(message, "tensor", name, target.tensor.scope)


def _not_scanned(ctx: CheckContext) -> Iterator[Hit]:
    skipped = ctx.values.skipped
    if skipped:
        shown = ", ".join(f"{quoted(name)} ({why})" for name, why in skipped[:SHOWN_SKIPPED])
        more = f" and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
        yield Hit(f"{len(skipped)} parameter tensors not scanned for values: {shown}{more}", "model")
    if "OA105" in ctx.selected:  # only a search for copies that ran can have left pairs unread
        pairs = find_copies(ctx.values).not_compared
        if pairs:
            yield Hit(f"{pairs} candidate pairs not compared for transposed copies (comparison budget spent)", "model")


NAN_INF = Rule(
    "OA101",
    "nan-inf-weights",
    "error",
    "values",
    summary="a parameter or BN statistic holds NaN or Inf",
    docs=(
        "A NaN or Inf stored in a weight or a BatchNormalization statistic spreads to every output it touches: "
        "the model returns NaN for all inputs, or for the inputs that reach that channel. It usually comes from "
        "a training run that diverged or a broken conversion. Re-export from a healthy checkpoint."
    ),
    emit=_nan_inf,
)
ALL_ZERO = Rule(
    "OA104",
    "all-zero-weights",
    "warning",
    "values",
    summary="a weight, embedding, RNN W/R, BN gamma or norm scale is all zeros",
    docs=(
        "A weight or scale that is zero everywhere makes its layer output a constant (or nothing): typically an "
        "untrained layer, a checkpoint that failed to load, or pruning gone too far. Biases and BN shifts may "
        "legitimately be zero and are not checked."
    ),
    emit=_all_zero,
)
NOT_SCANNED = Rule(
    "OA308",
    "not-scanned",
    "info",
    "values",
    summary="parameter values that could not be scanned (sparse, float16 in int32_data, ...)",
    docs=(
        "The value rules (OA1xx) could not read these tensors: sparse storage, a dtype kept in a typed field the "
        "scanner does not decode, or bytes that could not be located. Nothing is known about their values; the "
        "message names them. Also says when the comparison budget for transposed copies (OA105) ran out."
    ),
    emit=_not_scanned,
)

RULES = (NAN_INF, ALL_ZERO, NOT_SCANNED)
