"""Memory the model's values take: inputs, every activation, and the peak of those alive at once.

The peak walks the nodes in the file's order (ONNX requires a topological one): a node's outputs are
allocated when it runs, and a value is freed after its last reader; graph inputs and outputs are held.
With free dims the peak is the live sum that is largest whatever they are (term by term); when no one
sum is (a few bytes of shape values early, more per sample later), the term-by-term largest of them all,
an upper bound, said so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from onnxaudit.cost.base import input_dims, known
from onnxaudit.cost.poly import Poly
from onnxaudit.io.dims import DTYPE_BITS
from onnxaudit.model.view import ModelView, ValueInfo

_STORED = frozenset({"initializer", "sparse_initializer", "constant"})


@dataclass
class Memory:
    input_bytes: Poly
    forward_bytes: Poly
    peak: Poly
    peak_exact: bool  # False: `peak` is an upper bound (no one live sum is the largest for every value of the dims)
    unknown_values: int


def value_bytes(info: ValueInfo, free: frozenset[str]) -> Poly | None:
    """The value's size in bytes (packed types rounded up), or None when a dim or its dtype is unknown."""
    return _bytes(info.shape, info.dtype, free) if info.shape is not None else None


@lru_cache(maxsize=4096)
def _bytes(shape: tuple[int | str | None, ...], dtype: int, free: frozenset[str]) -> Poly | None:
    """value_bytes once per distinct shape and dtype (a decoder repeats a few hundred times)."""
    bits = DTYPE_BITS.get(dtype)
    if bits is None or not known(shape, free):
        return None
    return (Poly.product(shape) * bits) // 8  # type: ignore[arg-type]


def activation_memory(view: ModelView, shapes: Mapping[str, ValueInfo]) -> Memory:
    main = view.main
    stored = {name for name, t in main.tensors.items() if t.origin in _STORED}
    sizes: dict[str, Poly] = {}
    unknown = 0
    free = input_dims(view)

    def size(name: str) -> Poly | None:
        info = shapes.get(name)
        return value_bytes(info, free) if info is not None else None

    inputs = Poly()
    for value in main.inputs:
        if value.name in stored:
            continue
        found = size(value.name)
        if found is None:
            unknown += 1
            continue
        sizes[value.name] = found
        inputs = inputs + found
    last: dict[str, int] = {}
    for pos, node in enumerate(main.nodes):
        for name in node.inputs:
            last[name] = pos
    held = set(main.outputs) | {v.name for v in main.inputs}
    forward, live = Poly(), inputs
    peak, exact = live, True
    for pos, node in enumerate(main.nodes):
        if node.op_type == "Constant":
            continue
        for out in node.outputs:
            if not out or out in sizes or out in stored:
                continue
            found = size(out)
            if found is None:
                unknown += 1
                continue
            sizes[out] = found
            forward, live = forward + found, live + found
        peak, exact = _larger(peak, exact, live)
        for name in (*node.inputs, *node.outputs):
            if name in sizes and name not in held and last.get(name, -1) <= pos:
                live = live + sizes.pop(name) * -1
    return Memory(inputs, forward, peak, exact, unknown)


def _larger(peak: Poly, exact: bool, live: Poly) -> tuple[Poly, bool]:
    """The peak so far after one more live sum. Exact while one live sum dominates every other (term by
    term); otherwise the term-by-term largest of them, an upper bound, until a later sum dominates it."""
    if peak.dominates(live):
        return peak, exact
    if live.dominates(peak):
        return live, True
    terms = dict(peak.terms)
    for m, c in live.terms:
        terms[m] = max(terms.get(m, 0), c)
    return Poly.of(terms), False
