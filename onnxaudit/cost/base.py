"""What an op family's cost function reads (the dims of a node's values) and returns (MACs, FLOPs, formula)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from onnxaudit.cost.poly import Poly
from onnxaudit.model.view import MAIN, ModelView, Node, ValueInfo

Dims = tuple[int | str, ...]
ZERO = Poly()


@dataclass(frozen=True)
class OpCost:
    """One node's work: multiply-accumulates, and separately elementwise FLOPs, with the arithmetic shown."""

    macs: Poly
    flops: Poly
    formula: str  # `batch·32·3·7·7·64·64`: the factors of the family's declared formula


# A family's cost of one node, or None when a dim it needs is not known statically.
CostFn = Callable[[Node, "Shapes"], "OpCost | None"]


class Shapes:
    """Dims of the main graph's values: inferred (or observed) shapes, then stored tensors' own dims.
    A dim nobody knows makes the whole shape unknown: a cost is never built on a guess. Known are
    numbers, the graph inputs' named dims (`batch`) and expressions of them only (`floor(h/2) + 1`);
    a name inference made up (tf2onnx's Reshape output `unk__0`) is a dim nobody knows."""

    def __init__(self, view: ModelView, value_shapes: Mapping[str, ValueInfo]) -> None:
        self.view = view
        self.value_shapes = value_shapes
        self.free = input_dims(view)

    def dims(self, node: Node, slot: int, output: bool = False) -> Dims | None:
        names = node.outputs if output else node.inputs
        if slot >= len(names) or not names[slot]:
            return None
        name = names[slot]
        info = self.value_shapes.get(name)
        if info is not None and info.shape is not None:
            shape = info.shape
        else:
            tensor = self.view.lookup(node.scope if node.scope in self.view.graphs else MAIN, name)
            if tensor is None or tensor.dims is None:
                return None
            shape = tensor.dims
        return shape if known(shape, self.free) else None  # type: ignore[return-value]

    def out(self, node: Node, slot: int = 0) -> Dims | None:
        return self.dims(node, slot, output=True)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:]*")


def input_dims(view: ModelView) -> frozenset[str]:
    """The named dims of the main graph's inputs, as the file declares them (a bound one is still a name
    here: the figures bind it at the end)."""
    return frozenset(d for value in view.main.inputs for d in value.shape or () if isinstance(d, str))


def known(shape: tuple[int | str | None, ...], free: frozenset[str]) -> bool:
    """Every dim a number, an input's named dim, or an expression of those only."""
    for d in shape:
        if d is None or (isinstance(d, int) and d < 0):
            return False
        if isinstance(d, str) and d not in free:
            words = _NAME.findall(d)
            if not words or d == words[0] or not all(w in free or w in _FUNCTIONS for w in words):
                return False
    return True


_FUNCTIONS = frozenset({"floor", "ceil", "min", "max", "Min", "Max", "Mod", "mod"})


def attr_int(node: Node, name: str, default: int) -> int:
    value = node.attrs.get(name, default)
    return value if isinstance(value, int) else default


def factors(dims: list[int | str | Poly]) -> str:
    """`batch·32·3·7·7`: the numbers multiplied, as the README's formula names them."""
    return "·".join(_factor(d) for d in dims)


def _factor(d: int | str | Poly) -> str:
    if not isinstance(d, Poly):
        return str(d)
    text = d.text().replace(",", "")
    return f"({text})" if len(d.terms) > 1 else text


def macs(dims: list[int | str | Poly], flops: Poly = ZERO) -> OpCost:
    return OpCost(Poly.product(dims), flops, factors(dims))


def elements(dims: Dims) -> Poly:
    return Poly.product(dims)
