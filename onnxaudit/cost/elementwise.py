"""Elementwise work: FLOPs per output element, a figure of its own, never added to the MACs.

The cost per element is a stated convention, not a measurement: 1 for an arithmetic op, a comparison or
an activation (a transcendental counts as one, whatever the hardware spends on it); BatchNormalization 2
(inference: its statistics fold into one scale and one shift); LayerNormalization, GroupNormalization
and InstanceNormalization 8 (mean 1, variance 3, normalize 2, scale and shift 2); RMS norms 4 (square,
mean, multiply by the reciprocal root, scale); Softmax and LogSoftmax 3 (exp, sum, divide).
"""

from __future__ import annotations

from onnxaudit.cost.base import CostFn, OpCost, Shapes, elements
from onnxaudit.cost.poly import Poly
from onnxaudit.model.view import Node

ONE = (
    "Add Sub Mul Div Pow Max Min Mod Neg Abs Reciprocal Sqrt Exp Log Erf Sin Cos Tan Tanh Sigmoid Relu "
    "LeakyRelu PRelu Elu Selu Celu ThresholdedRelu HardSigmoid HardSwish Softplus Softsign Gelu FastGelu "
    "BiasGelu QuickGelu Mish Swish Clip Floor Ceil Round Sign Equal Less Greater LessOrEqual GreaterOrEqual "
    "Where Not And Or Xor BitShift Sum Mean"
).split()
PER_ELEMENT: dict[str, int] = {op: 1 for op in ONE}
PER_ELEMENT.update(
    {
        "BatchNormalization": 2,
        "LayerNormalization": 8,
        "GroupNormalization": 8,
        "InstanceNormalization": 8,
        "SkipLayerNormalization": 9,  # the residual add first
        "RMSNormalization": 4,
        "SimplifiedLayerNormalization": 4,
        "SkipSimplifiedLayerNormalization": 5,
        "Softmax": 3,
        "LogSoftmax": 3,
    }
)


def per_element(node: Node, shapes: Shapes) -> OpCost | None:
    out = shapes.out(node)
    if out is None:
        return None
    each = PER_ELEMENT[node.op_type]
    return OpCost(Poly(), elements(out) * each, f"{each} x " + "·".join(map(str, out)) if out else f"{each} x 1")


COSTS: dict[str, CostFn] = {op: per_element for op in PER_ELEMENT}
