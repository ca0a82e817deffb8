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
    bound the file can show (a table the exporter folded to the slice it used)."""

    lo: int
    hi: int | None

    @staticmethod
    def of(n: int) -> Figure:
        return Figure(n, n) if n else ZERO  # most layers hold no statistics: one shared (frozen) zero

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.lo + other.lo, plus(self.hi, other.hi))

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    def contains(self, n: int) -> bool:
        return self.lo <= n and (self.hi is None or n <= self.hi)

    def text(self) -> str:
        lo, hi = self.lo, self.hi
        if hi is None:
            return f"{lo:,}+"
        return f"{lo:,}" if lo == hi else f"{lo:,}..{hi:,}"


def plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


ZERO = Figure(0, 0)


@dataclass
class FrameworkLayer:
    name: str
    kind: str
    trainable: Figure
    non_trainable: Figure
    status: str
    evidence: list[str] = field(default_factory=list)
    tensors: list[str] = field(default_factory=list)

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


_LO, _HI = attrgetter("lo"), attrgetter("hi")


def _sum_figures(figures: Iterable[Figure]) -> Figure:
    """The sum of `figures` (ZERO for none), adding ints instead of making a Figure per step
    (attrgetters, not generators: 49k layers at 200k nodes)."""
    figures = list(figures)
    his = list(map(_HI, figures))
    return Figure(sum(map(_LO, figures)), None if None in his else sum(his))


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
