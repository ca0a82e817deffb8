"""Limits the user sets on the command line (or in `CheckOptions`): a rule per limit, quiet while unset."""

from __future__ import annotations

from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.cost.estimate import Amount


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


def _over(what: str, flag: str, limit: int, figure: Amount, exact: bool, unit: str) -> Iterator[Hit]:
    """A limit on a cost figure (`exact` False: the figure is an upper bound). Free dims are at least 1,
    so an exact figure with each at 1 is a lower bound: over the limit there, the model is over it at
    any size; otherwise it cannot tell without the dims, and warns."""
    if figure.value is not None and exact:
        if figure.value > limit:
            yield Hit(f"{what} {figure.value:,}{unit}, more than {flag} {limit:,}", "model")
    elif exact and sum(figure.terms.values()) > limit:
        yield Hit(f"{what} {figure.text}{unit}: more than {flag} {limit:,} at any size of the free dims", "model")
    elif figure.value is None or figure.value > limit:
        said = figure.text + unit if exact else f"at most {figure.text}{unit}"
        yield Hit(
            f"{what} {said}: cannot be held to {flag} {limit:,} without the free dims (give them with --dim)",
            "model",
            severity="warning",
        )


def _too_many_macs(ctx: CheckContext) -> Iterator[Hit]:
    limit = ctx.options.max_macs
    if limit is None:
        return
    cost = ctx.cost
    if cost is None:
        yield Hit("no shapes are known statically: MACs cannot be held to --max-macs", "model", severity="warning")
        return
    unknown = sum(cost.unknown_ops.values())
    # with ops of unknown dims the total is a lower bound: over the limit it is over; under, it cannot tell
    yield from _over("MACs", "--max-macs", limit, cost.macs, True, "")
    if unknown and (cost.macs.value is None or cost.macs.value <= limit):
        yield Hit(
            f"MACs of {unknown:,} ops are unknown (dims not known statically): the total may exceed --max-macs",
            "model",
            severity="warning",
        )


def _too_much_activation_memory(ctx: CheckContext) -> Iterator[Hit]:
    limit = ctx.options.max_activation_memory
    if limit is None:
        return
    cost = ctx.cost
    if cost is None:
        yield Hit(
            "no shapes are known statically: activation memory cannot be held to --max-activation-memory",
            "model",
            severity="warning",
        )
        return
    yield from _over(
        "peak activation memory", "--max-activation-memory", limit, cost.peak_bytes, cost.peak_exact, " bytes"
    )


TOO_MANY_MACS = Rule(
    "OA309",
    "too-many-macs",
    "error",
    "view",
    summary="more multiply-accumulates than `--max-macs`",
    docs=(
        "One inference costs more multiply-accumulates (README, What it costs) than the limit given with "
        "--max-macs: a compute budget for the deployment target. With free input dims the figure is checked "
        "at each dim's smallest size (1); when that is within the limit the rule warns that it needs --dim."
    ),
    emit=_too_many_macs,
)
TOO_MUCH_ACTIVATION_MEMORY = Rule(
    "OA310",
    "too-much-activation-memory",
    "error",
    "view",
    summary="peak activation memory (an estimate) above `--max-activation-memory`",
    docs=(
        "The estimated peak of activations alive at once (file order, each freed after its last reader; "
        "README, What it costs) exceeds the limit given with --max-activation-memory. An estimate, not a "
        "measurement: weights are not included and an allocator may reuse or pad buffers."
    ),
    emit=_too_much_activation_memory,
)

RULES = (TOO_MANY_PARAMS, TOO_MANY_MACS, TOO_MUCH_ACTIVATION_MEMORY)
