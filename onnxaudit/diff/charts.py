"""Where two files differ, for charts: each layer's change in parameters (by bucket), bytes and MACs,
largest first, and the parameter change per top-level module.

Plain data beside the DiffReport (a renderer lays it out; it does not subtract)."""

from __future__ import annotations

from dataclasses import dataclass

from onnxaudit.diff.result import DiffReport, LayerDiff
from onnxaudit.report.breakdown import module_of


@dataclass(frozen=True)
class Change:
    """NEW minus OLD for one layer, a module or the rest (a layer one file lacks counts 0 there)."""

    name: str
    params: int
    trainable: int
    non_trainable: int
    unclassified: int
    bytes: int
    layers: int  # how many layer rows it stands for


@dataclass(frozen=True)
class MacsChanges:
    """Each layer's MACs change in one unit: `unit` the free-dims product every figure multiplies (`batch`)
    or "" for numbers. Layers changing by different products (`batch`, `batch*seq`): no bars, `units`
    names them. `unknown` layers have a file whose MACs are not known statically: not charted."""

    unit: str
    bars: list[tuple[str, int, int]]  # (name, NEW - OLD MACs per unit, layers)
    unknown: int
    units: list[str]


def _name(layer: LayerDiff) -> str:
    return layer.new if layer.new is not None else layer.old or ""


def _gain(old: int | None, new: int | None) -> int:
    return (new or 0) - (old or 0)


def _change(name: str, layers: list[LayerDiff]) -> Change:
    params = sum(_gain(la.params.old, la.params.new) for la in layers)
    trainable = sum(_gain(la.trainable.old, la.trainable.new) for la in layers)
    non_trainable = sum(_gain(la.non_trainable.old, la.non_trainable.new) for la in layers)
    return Change(
        name,
        params,
        trainable,
        non_trainable,
        params - trainable - non_trainable,  # a row's params are its three buckets
        sum(_gain(la.bytes.old, la.bytes.new) for la in layers),
        len(layers),
    )


def _largest(changes: list[Change], layers: list[list[LayerDiff]], key: str, top: int) -> list[Change]:
    """The `top` changes largest in `key` either way (ties in table order), then one for the rest."""
    moving = [i for i, c in enumerate(changes) if getattr(c, key)]
    chosen = sorted(moving, key=lambda i: (-abs(getattr(changes[i], key)), i))[:top]
    kept = set(chosen)
    out = [changes[i] for i in chosen]
    rest = [la for i in moving if i not in kept for la in layers[i]]
    if rest:
        out.append(_change(f"{len(rest)} other layers", rest))
    return out


def layer_changes(report: DiffReport, key: str = "params", top: int = 20) -> list[Change]:
    """Layers whose `key` (params or bytes) changed, the largest changes first."""
    groups = [[layer] for layer in report.layers]
    return _largest([_change(_name(la), [la]) for la in report.layers], groups, key, top)


def module_changes(report: DiffReport) -> list[Change]:
    """The parameter change per top-level module, largest first (modules that did not change left out)."""
    groups: dict[str, list[LayerDiff]] = {}
    for layer in report.layers:
        groups.setdefault(module_of(_name(layer)), []).append(layer)
    changes = [_change(name, layers) for name, layers in groups.items()]
    return sorted((c for c in changes if c.params), key=lambda c: -abs(c.params))


def macs_changes(report: DiffReport, top: int = 20) -> MacsChanges:
    known = [la for la in report.layers if la.macs.delta_terms is not None]
    units = sorted({k for la in known if la.macs.delta_terms for k in la.macs.delta_terms})
    unknown = len(report.layers) - len(known)
    if len(units) > 1:
        return MacsChanges("", [], unknown, units)
    unit = units[0] if units else ""
    moving = [(_name(la), (la.macs.delta_terms or {}).get(unit, 0)) for la in known]
    moving = [(name, n) for name, n in moving if n]
    chosen = sorted(range(len(moving)), key=lambda i: (-abs(moving[i][1]), i))[:top]
    kept = set(chosen)
    bars = [(moving[i][0], moving[i][1], 1) for i in chosen]
    rest = [n for i, (_, n) in enumerate(moving) if i not in kept]
    if rest:
        bars.append((f"{len(rest)} other layers", sum(rest), len(rest)))
    return MacsChanges(unit, bars, unknown, units)
