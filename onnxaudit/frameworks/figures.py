"""The framework view's figures: exact counts or ranges that hold the truth, per layer and in total."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

EXACT, INFERRED, AMBIGUOUS = "exact", "inferred", "ambiguous"


RANK = {EXACT: 0, INFERRED: 1, AMBIGUOUS: 2}


@dataclass(frozen=True)
class Figure:
    """A count known exactly (lo == hi) or only as a range that contains the truth; hi None: no upper
    bound the file can show (a table the exporter folded to the slice it used). `likely`: the value a
    range rests on when it comes from defaults the file cannot show (Keras's center/scale on a merged
    BatchNormalization): shown first, the range covering the alternatives beside it."""

    lo: int
    hi: int | None
    likely: int | None = None

    @staticmethod
    def of(n: int) -> Figure:
        """The exact figure `n`: one shared (frozen) instance per count, as a model's layers repeat a few
        counts (zero statistics above all) tens of thousands of times."""
        figure = _EXACT_FIGURES.get(n)
        if figure is None:
            figure = Figure(n, n)
            if len(_EXACT_FIGURES) < _MAX_SHARED:
                _EXACT_FIGURES[n] = figure
        return figure

    @staticmethod
    def assumed(likely: int, changes: Iterable[int]) -> Figure:
        """The figure `likely`, with bounds covering every combination of the alternatives' `changes`."""
        changes = list(changes)
        lo, hi = likely + sum(c for c in changes if c < 0), likely + sum(c for c in changes if c > 0)
        return Figure(lo, hi, likely) if lo != hi else Figure.of(likely)

    @property
    def shown(self) -> int | None:
        """The one value this figure stands for: exact, or the likely one; None for a bare range."""
        return self.lo if self.lo == self.hi else self.likely

    def __add__(self, other: Figure) -> Figure:
        if other is ZERO and (self.likely is None or self.lo != self.hi):
            return self  # the sum is this figure itself, its likely value too: no new one per layer
        lo, hi = self.lo + other.lo, plus(self.hi, other.hi)
        likely = plus(self.shown, other.shown) if lo != hi else None
        return Figure(lo, hi, likely)

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    def contains(self, n: int) -> bool:
        return self.lo <= n and (self.hi is None or n <= self.hi)

    def text(self) -> str:
        lo, hi = self.lo, self.hi
        if hi is None:
            span = f"{lo:,}+"
        elif lo == hi:
            return f"{lo:,}"
        else:
            span = f"{lo:,}..{hi:,}"
        return span if self.likely is None else f"{self.likely:,} ({span})"


def plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


ZERO = Figure(0, 0)
_EXACT_FIGURES: dict[int, Figure] = {0: ZERO}
_MAX_SHARED = 4096


@dataclass(frozen=True)
class Alternative:
    """A default the file cannot show, taken the other way, and what that does to the layer's figures
    (Keras's center=True on a BatchNormalization merged into a conv: "bn has center=False", -C)."""

    text: str
    trainable: int
    non_trainable: int = 0
    # alternatives that exclude each other share a group: at most one of a group is taken (the variants
    # of one BN that TFLite may have folded, back into the op before it or forward into the Dense after it)
    group: str | None = None


@dataclass
class FrameworkLayer:
    name: str
    kind: str
    trainable: Figure
    non_trainable: Figure
    status: str
    evidence: list[str] = field(default_factory=list)
    tensors: list[str] = field(default_factory=list)
    # the defaults its figures assume, each taken the other way (its figures' bounds cover them all)
    alternatives: list[Alternative] = field(default_factory=list)

    @property
    def total(self) -> Figure:
        return self.trainable + self.non_trainable


@dataclass
class FrameworkView:
    origin: str  # keras | pytorch | unknown: who exported the file, from its producer and names
    layers: list[FrameworkLayer]
    rewrites: list[str]  # one line per rewrite recognized
    notes: list[str]
    fired: list[str] = field(default_factory=list)  # the id of each rule that rebuilt a layer, in order

    @property
    def trainable(self) -> Figure:
        return _sum_figures(map(_TRAINABLE, self.layers))

    @property
    def non_trainable(self) -> Figure:
        return _sum_figures(map(_NON_TRAINABLE, self.layers))

    @property
    def total(self) -> Figure:
        return self.trainable + self.non_trainable

    @property
    def status(self) -> str:
        return max({la.status for la in self.layers}, key=RANK.__getitem__, default=EXACT)


_TRAINABLE, _NON_TRAINABLE = attrgetter("trainable"), attrgetter("non_trainable")


_LO, _HI, _SHOWN = attrgetter("lo"), attrgetter("hi"), attrgetter("shown")


def _sum_figures(figures: Iterable[Figure]) -> Figure:
    """The sum of `figures` (ZERO for none), adding ints instead of making a Figure per step
    (attrgetters, not generators: 49k layers at 200k nodes)."""
    figures = list(figures)
    his = list(map(_HI, figures))
    lo, hi = sum(map(_LO, figures)), None if None in his else sum(his)
    if lo == hi:
        return Figure(lo, hi)
    shown = list(map(_SHOWN, figures))
    return Figure(lo, hi, None if None in shown else sum(shown))


@dataclass
class FrameworkReport:
    """The framework view as plain data for the Report (figures as lo/hi ranges)."""

    origin: str
    status: str
    total: Figure
    trainable: Figure
    non_trainable: Figure
    layers: list[FrameworkLayer]
    rewrites: list[str]
    notes: list[str]


def framework_report(fv: FrameworkView) -> FrameworkReport:
    trainable, non_trainable = fv.trainable, fv.non_trainable  # each a sum over every layer
    return FrameworkReport(
        fv.origin, fv.status, trainable + non_trainable, trainable, non_trainable, fv.layers, fv.rewrites, fv.notes
    )
