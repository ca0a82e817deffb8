"""Limits the user sets on the command line (or in `CheckOptions`): a rule per limit, quiet while unset."""

from __future__ import annotations

from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.registry import Hit, Rule


def _too_many_params(ctx: CheckContext) -> Iterator[Hit]:
    limit = ctx.options.max_params
    if limit is not None and ctx.params is not None and ctx.params > limit:
        yield Hit(f"{ctx.params:,} parameters, more than --max-params {limit:,}", "model")


TOO_MANY_PARAMS = Rule(
    "OA307",
    "too-many-params",
    "error",
    "view",
    summary="more parameters than `--max-params`",
    docs=(
        "The model holds more parameters (trainable + non-trainable + unclassified, as `summary` totals them) "
        "than the limit given with --max-params: a budget for the deployment target."
    ),
    emit=_too_many_params,
)

RULES = (TOO_MANY_PARAMS,)
