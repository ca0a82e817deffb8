"""Pooling and reductions, as elementwise FLOPs (comparisons or adds): a windowed pool reads its kernel
once per output element (k1·k2·… FLOPs each); a global pool or a reduction reads every input element once.
"""

from __future__ import annotations

from math import prod

from onnxaudit.cost.base import CostFn, OpCost, Shapes, elements
from onnxaudit.cost.poly import Poly
from onnxaudit.model.view import Node


def windowed(node: Node, shapes: Shapes) -> OpCost | None:
    out, kernel = shapes.out(node), node.attrs.get("kernel_shape")
    if out is None or not isinstance(kernel, tuple) or not all(isinstance(k, int) for k in kernel):
        return None
    each = prod(kernel)
    return OpCost(Poly(), elements(out) * each, f"{'·'.join(map(str, kernel))} x " + "·".join(map(str, out)))


def whole_input(node: Node, shapes: Shapes) -> OpCost | None:
    inp = shapes.dims(node, 0)
    if inp is None:
        return None
    return OpCost(Poly(), elements(inp), "1 x " + "·".join(map(str, inp)))


WINDOWED = ("MaxPool", "AveragePool", "LpPool")
WHOLE = (
    "GlobalAveragePool GlobalMaxPool GlobalLpPool ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd "
    "ReduceL1 ReduceL2 ReduceSumSquare ReduceLogSum ReduceLogSumExp ArgMax ArgMin"
).split()
COSTS: dict[str, CostFn] = {**dict.fromkeys(WINDOWED, windowed), **dict.fromkeys(WHOLE, whole_input)}
