"""Weights stored twice: identical contents, or a 2-D tensor stored again transposed (tied weights after
export). Tensors whose byte length and value statistics agree are hashed (a second read, rarely needed:
real weights differ in min/max); equal digests are copies. Then transposed pairs among the distinct
contents are compared exactly, within a byte budget.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from onnxaudit.check.values import Target, ValueScan
from onnxaudit.io.dims import byte_size
from onnxaudit.io.weights import Stats, digest, transposed_equal

MIN_DUPLICATE = 16  # smaller tensors repeat by chance (a 1-element bias, a fresh BN's ones)
BUDGET_SLACK = 64 << 20  # bytes of transposed comparison allowed beyond one read of every target


@dataclass(frozen=True)
class Copy:
    original: Target
    copy: Target
    transposed: bool


@dataclass(frozen=True)
class Copies:
    found: list[Copy]
    not_compared: int  # transposed candidate pairs left when the comparison budget was spent


def find_copies(values: ValueScan) -> Copies:
    """Every copy once, cached on `values` (OA105 reports them, OA308 the pairs not compared)."""
    if values.copies is None:
        found = _identical(values.targets, values.stats)
        copied = {c.copy.key for c in found}
        distinct = [t for t in values.targets if t.key not in copied]
        budget = sum(t.extent.length for t in values.targets) + BUDGET_SLACK
        transposed, not_compared = _transposed(distinct, values.stats, budget)
        values.copies = Copies(found + transposed, not_compared)
    return values.copies


def _identical(targets: list[Target], stats: dict[tuple[str, str], Stats]) -> list[Copy]:
    alike: dict[tuple[object, ...], list[Target]] = defaultdict(list)
    for t in targets:
        s = stats[t.key]
        if t.count >= MIN_DUPLICATE and not s.uniform:
            similar = (t.tensor.dtype, t.extent.length, *_summary(s))
            alike[similar].append(t)
    by_digest: dict[tuple[int, str], list[Target]] = defaultdict(list)
    for group in alike.values():
        if len(group) > 1:
            for t in group:
                by_digest[(t.tensor.dtype, digest(t.extent))].append(t)
    return [Copy(group[0], other, False) for group in by_digest.values() for other in group[1:]]


def _transposed(targets: list[Target], stats: dict[tuple[str, str], Stats], budget: int) -> tuple[list[Copy], int]:
    """Pairs (r x c, c x r) with equal value statistics, compared exactly; each tensor is matched at most
    once, and full comparisons stop after `budget` bytes (a model built to make them slow says so)."""
    found: list[Copy] = []
    by_shape: dict[tuple[int, int, int], list[Target]] = defaultdict(list)
    for t in targets:
        dims = t.tensor.dims or ()
        if len(dims) == 2 and dims[0] > 1 and dims[1] > 1 and t.count >= MIN_DUPLICATE:
            by_shape[(t.tensor.dtype, dims[0], dims[1])].append(t)
    matched: set[tuple[str, str]] = set()
    skipped = 0
    for (dtype, rows, cols), group in sorted(by_shape.items(), key=lambda item: item[0]):
        item = byte_size(dtype, 1)
        if item is None or byte_size(dtype, 8) != 8 * item:
            continue  # packed sub-byte types: elements are not whole bytes
        for a in group:
            for b in by_shape.get((dtype, cols, rows), []):
                if b.order <= a.order or b.key in matched or a.key in matched:
                    continue
                sa, sb = stats[a.key], stats[b.key]
                if sa.uniform or _summary(sa) != _summary(sb):
                    continue
                if budget < a.extent.length:
                    skipped += 1
                    continue
                budget -= a.extent.length
                if transposed_equal(a.extent, (rows, cols), b.extent, item):
                    matched.add(b.key)
                    found.append(Copy(a, b, True))
    return found, skipped


def _summary(s: Stats) -> tuple[object, ...]:
    """Statistics a transposed copy shares exactly with its original (a cheap filter before comparing)."""
    if not s.decoded:
        return (s.count,)
    return (s.count, s.nan, s.inf, s.negative, s.minimum, s.maximum)
