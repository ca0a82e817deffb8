"""Which defaults the file cannot show an expectation implies: the framework view's alternatives searched.

A figure resting on assumed defaults (Keras's center/scale on a BatchNormalization merged into a conv)
is its likely value with bounds; the expectation is consistent when some set of those defaults, taken
the other way, gives exactly the expected figures ("consistent if bn_nocenter has center=False"). A range
made of choices alone (each tensor a parameter or not, a module's own copy or not) is searched the same way,
from its lower bound. Layers without alternatives keep their own range (a bare range holds any value inside it).
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxaudit.frameworks.figures import ZERO, Alternative, Figure, FrameworkLayer

MAX_STATES = 100_000  # distinct (trainable, non-trainable) changes kept; past that the bounds alone decide
MAX_WORK = 2_000_000  # states extended over the whole search (~1 s); past that too


@dataclass
class Solution:
    """The alternatives an expectation implies ([] : the defaults hold), and whether another set fits too."""

    taken: list[Alternative]
    unique: bool

    def text(self) -> str:
        said = " and ".join(a.text for a in self.taken)
        return said + ("" if self.unique else " (or another combination of the assumed defaults)")


@dataclass
class _Split:
    """The framework view cut in two: layers whose figures are a likely value plus alternatives, the rest."""

    alternatives: list[Alternative]
    likely_t: int
    likely_n: int
    rest_t: Figure
    rest_n: Figure


def _split(layers: list[FrameworkLayer]) -> _Split:
    alternatives: list[Alternative] = []
    likely_t = likely_n = 0
    rest_t = rest_n = ZERO
    for la in layers:
        base = base_figures(la) if la.alternatives else None
        if base is not None:
            alternatives += la.alternatives
            likely_t += base[0]
            likely_n += base[1]
        else:
            rest_t += la.trainable
            rest_n += la.non_trainable
    return _Split(alternatives, likely_t, likely_n, rest_t, rest_n)


def base_figures(la: FrameworkLayer) -> tuple[int, int] | None:
    """The (trainable, non-trainable) a layer's alternatives change: its likely figures (the defaults
    assumed), or the lower bounds of a range made of choices alone (each alternative adds to it: this
    tensor is a parameter); None for a bare range."""
    shown_t, shown_n = la.trainable.shown, la.non_trainable.shown
    if shown_t is not None and shown_n is not None:
        return shown_t, shown_n
    t, n = la.trainable, la.non_trainable
    choices = all(a.trainable >= 0 and a.non_trainable >= 0 for a in la.alternatives)
    if t.likely is None and n.likely is None and choices:
        return t.lo, n.lo
    return None


def _choices(alternatives: list[Alternative]) -> list[list[int]]:
    """The alternatives as independent choices, each a list of indices of which at most one is taken:
    a group's members together, every other alternative alone."""
    groups: dict[str, list[int]] = {}
    choices: list[list[int]] = []
    for i, alt in enumerate(alternatives):
        if alt.group is None:
            choices.append([i])
        elif alt.group in groups:
            groups[alt.group].append(i)
        else:
            groups[alt.group] = [i]
            choices.append(groups[alt.group])
    return choices


def _reachable(alternatives: list[Alternative]) -> dict[tuple[int, int], tuple[tuple[int, ...], bool]] | None:
    """Every (trainable, non-trainable) change some subset of `alternatives` makes (at most one of each
    group): one subset for each (the first found) and whether more than one gives it. None: too many to keep."""
    states: dict[tuple[int, int], tuple[tuple[int, ...], bool]] = {(0, 0): ((), True)}
    work = 0
    for choice in _choices(alternatives):
        work += len(states) * len(choice)
        if work > MAX_WORK:  # thousands of choices of many sizes (a large model's folded convs)
            return None
        before = list(states.items())
        for i in choice:
            alt = alternatives[i]
            for (t, n), (used, unique) in before:
                key = (t + alt.trainable, n + alt.non_trainable)
                if key in states:
                    states[key] = (states[key][0], False)
                else:
                    states[key] = (tuple(sorted((*used, i))), unique)
        if len(states) > MAX_STATES:
            return None
    return states


def solve(layers: list[FrameworkLayer], expected: dict[str, int]) -> Solution | None:
    """The set of alternatives that gives every expected figure (total / trainable / non_trainable),
    fewest first; None when no set does. Without alternatives: the figures' ranges decide."""
    split = _split(layers)
    states = _reachable(split.alternatives)
    if states is None:  # too many to search: bounds only
        states = {(0, 0): ((), False)}
        split.rest_t = Figure.assumed(0, [a.trainable for a in split.alternatives]) + split.rest_t
        split.rest_n = Figure.assumed(0, [a.non_trainable for a in split.alternatives]) + split.rest_n
    rest_total = split.rest_t + split.rest_n
    best: tuple[tuple[int, ...], bool] | None = None
    for (dt, dn), found in states.items():
        t, n = split.likely_t + dt, split.likely_n + dn
        if "trainable" in expected and not split.rest_t.contains(expected["trainable"] - t):
            continue
        if "non_trainable" in expected and not split.rest_n.contains(expected["non_trainable"] - n):
            continue
        if "total" in expected and not rest_total.contains(expected["total"] - t - n):
            continue
        if best is None or len(found[0]) < len(best[0]):
            best = (found[0], found[1] and best is None)
        else:
            best = (best[0], False)
    if best is None:
        return None
    return Solution([split.alternatives[i] for i in best[0]], best[1])


def layer_solution(layer: FrameworkLayer, expected: int) -> Solution | None:
    """The layer's own alternatives that give its expected total; None when none do."""
    return solve([layer], {"total": expected})
