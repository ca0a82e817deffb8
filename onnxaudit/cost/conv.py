"""Convolutions: Conv = N·Cout·(Cin/g)·kh·kw·Hout·Wout (bias not counted); ConvTranspose from its input.

The weight's dims give Cout, Cin/g and the kernel (a Conv weight is (Cout, Cin/g, k...)); the output's
dims give N and the output positions. A ConvTranspose scatters each input position through the kernel:
N·Cin·(Cout/g)·k...·Hin·Win (onnx-tool counted it from the output, ThanatosShinji/onnx-tool#32).
The bias is an add per output value, not a multiply-accumulate (onnx-tool#60 counted it): left out.
"""

from __future__ import annotations

from onnxaudit.cost.base import CostFn, OpCost, Shapes, macs
from onnxaudit.model.view import Node


def conv_macs(node: Node, shapes: Shapes, x: int = 0, w: int = 1) -> OpCost | None:
    weight, out = shapes.dims(node, w), shapes.out(node)
    if weight is None or out is None or len(weight) < 2 or len(out) != len(weight):
        return None
    cout, cin_per_group, *kernel = weight
    n, _, *positions = out
    return macs([n, cout, cin_per_group, *kernel, *positions])


def conv_transpose_macs(node: Node, shapes: Shapes, x: int = 0, w: int = 1) -> OpCost | None:
    weight, inp = shapes.dims(node, w), shapes.dims(node, x)
    if weight is None or inp is None or len(weight) < 2 or len(inp) != len(weight):
        return None
    _, cout_per_group, *kernel = weight
    n, cin, *positions = inp
    return macs([n, cin, cout_per_group, *kernel, *positions])


COSTS: dict[str, CostFn] = {
    "Conv": conv_macs,
    "FusedConv": conv_macs,  # onnxruntime's Conv + activation: the activation is not counted either
    "ConvTranspose": conv_transpose_macs,
}
