"""Counts that may hold free dims: a sum of integer terms, each a coefficient times a product of named dims.

`19,300,352 x batch` is {("batch",): 19300352}; attention over a free sequence length gives `seq^2` terms.
Python ints only: a product of dims never wraps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

Monomial = tuple[str, ...]  # sorted dim names, repeated for powers; () is the constant term


@dataclass(frozen=True)
class Poly:
    terms: tuple[tuple[Monomial, int], ...] = ()  # sorted by monomial, no zero coefficients

    @staticmethod
    def of(mapping: Mapping[Monomial, int]) -> Poly:
        return Poly(tuple(sorted((m, c) for m, c in mapping.items() if c)))

    @staticmethod
    def const(value: int) -> Poly:
        return Poly((((), value),) if value else ())

    @staticmethod
    def dim(d: int | str) -> Poly:
        return Poly.const(d) if isinstance(d, int) else Poly((((d,), 1),))

    @staticmethod
    def product(dims: Iterable[int | str | Poly]) -> Poly:
        return _product(tuple(dims))

    def __add__(self, other: Poly) -> Poly:
        if not other.terms:
            return self
        if not self.terms:
            return other
        if len(self.terms) == 1 and len(other.terms) == 1 and self.terms[0][0] == other.terms[0][0]:
            total = self.terms[0][1] + other.terms[0][1]  # one monomial on both sides: most sums of sizes
            return Poly(((self.terms[0][0], total),)) if total else Poly()
        out = dict(self.terms)
        for m, c in other.terms:
            out[m] = out.get(m, 0) + c
        return Poly.of(out)

    def __mul__(self, other: Poly | int) -> Poly:
        if isinstance(other, int):
            return Poly(tuple((m, c * other) for m, c in self.terms)) if other else Poly()
        out: dict[Monomial, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = tuple(sorted(m1 + m2))
                out[m] = out.get(m, 0) + c1 * c2
        return Poly.of(out)

    def __floordiv__(self, other: int) -> Poly:
        """Each coefficient divided, rounding up (a byte count of packed 4-bit values)."""
        return Poly.of({m: -(-c // other) for m, c in self.terms})

    @property
    def value(self) -> int | None:
        """The number, when no dim is free."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    @property
    def free(self) -> list[str]:
        return sorted({d for m, _ in self.terms for d in m})

    def bind(self, dims: Mapping[str, int]) -> Poly:
        if not dims:
            return self
        out: dict[Monomial, int] = {}
        for m, c in self.terms:
            left = tuple(d for d in m if d not in dims)
            for d in m:
                if d in dims:
                    c *= dims[d]
            out[left] = out.get(left, 0) + c
        return Poly.of(out)

    def dominates(self, other: Poly) -> bool:
        """At least `other` for every value of the free dims (all at least 1): term by term."""
        if len(self.terms) == 1 and len(other.terms) == 1 and self.terms[0][0] == other.terms[0][0]:
            return self.terms[0][1] >= other.terms[0][1]
        mine = dict(self.terms)
        return all(mine.get(m, 0) >= c for m, c in other.terms)

    def text(self, number: object = None) -> str:
        """`19,300,352 x batch`; terms joined by ` + `; `number` formats a coefficient (default `1,234`)."""
        if not self.terms:
            return "0"
        fmt = number if callable(number) else (lambda c: f"{c:,}")
        ordered = sorted(self.terms, key=lambda t: (len(t[0]), t[0]))
        return " + ".join(_term(fmt(c), c, m, number is None) for m, c in ordered)

    def key(self) -> dict[str, int]:
        """The terms for JSON: `batch*seq` -> coefficient, `` for the constant."""
        return {"*".join(m): c for m, c in self.terms}


@lru_cache(maxsize=4096)
def _product(dims: tuple[int | str | Poly, ...]) -> Poly:
    """A product of dims, once per distinct tuple: a model repeats a few shapes many times."""
    coefficient, names, polys = 1, [], []
    for d in dims:
        if isinstance(d, int):
            coefficient *= d
        elif isinstance(d, str):
            names.append(d)
        else:
            polys.append(d)
    result = Poly((((tuple(sorted(names))), coefficient),)) if coefficient else Poly()
    for p in polys:
        result = result * p
    return result


def _term(coefficient: str, c: int, m: Monomial, plain: bool) -> str:
    """`19,300,352 x batch`; a plain count of 1 x seq is just `seq`."""
    names = _powers(m)
    if plain and c == 1 and names:
        return " x ".join(names)
    return " x ".join([coefficient, *names])


def _powers(m: Monomial) -> list[str]:
    names: list[str] = []
    for d in dict.fromkeys(m):
        n = m.count(d)
        name = d if d.replace("_", "").isalnum() else f"({d})"  # `floor(h/2) + 1` inside a product
        names.append(name if n == 1 else f"{name}^{n}")
    return names
