"""Products: MatMul (batched) = batch·M·N·K over its broadcast output; Gemm = M·N·K (C's add not counted).

K is read from A's last dim (a 1-D A is a vector of K); the output's dims give the batch, M and N.
MatMulNBits and MatMulBnb4 (onnxruntime's 4-bit weights) are their float MatMul: A's rows · N · K from the
node's attributes. Einsum with two operands: the product of every index's size.
"""

from __future__ import annotations

from onnxaudit.cost.base import CostFn, OpCost, Shapes, attr_int, macs
from onnxaudit.model.view import Node


def matmul_macs(node: Node, shapes: Shapes, a: int = 0, trans_a: bool = False, b: int | None = 1) -> OpCost | None:
    left, out = shapes.dims(node, a), shapes.out(node)
    if left is None or out is None or not left:
        return None
    k = left[-2] if trans_a and len(left) > 1 else left[-1]
    right = shapes.dims(node, b) if b is not None else None
    if isinstance(k, str) and right is not None and len(right) > 1 and isinstance(right[-2], int):
        k = right[-2]  # a stored weight's rows say what a reshaped input's free dim cannot
    return macs([*out, k])


def gemm_macs(node: Node, shapes: Shapes, a: int = 0) -> OpCost | None:
    left, out = shapes.dims(node, a), shapes.out(node)
    if left is None or out is None or len(left) != 2 or len(out) != 2:
        return None
    k = left[0] if attr_int(node, "transA", 0) else left[1]
    return macs([out[0], out[1], k])


def fused_matmul_macs(node: Node, shapes: Shapes) -> OpCost | None:
    b = None if attr_int(node, "transB", 0) else 1  # B's rows are K only when it is not transposed
    return matmul_macs(node, shapes, trans_a=bool(attr_int(node, "transA", 0)), b=b)


def matmul_nbits_macs(node: Node, shapes: Shapes) -> OpCost | None:
    left = shapes.dims(node, 0)
    k, n = attr_int(node, "K", 0), attr_int(node, "N", 0)
    if left is None or not left or k < 1 or n < 1:
        return None
    return macs([*left[:-1], n, k])


def einsum_macs(node: Node, shapes: Shapes) -> OpCost | None:
    """Two operands: the product of every index's size (each output value sums over the contracted
    ones), times the broadcast `...` dims of the output. One operand or three: no products of two."""
    equation = node.attrs.get("equation")
    if not isinstance(equation, str) or "->" not in equation or len(node.inputs) != 2:
        return None
    operands = equation.replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int | str] = {}
    for slot, letters in enumerate(operands):
        dims = shapes.dims(node, slot)
        if dims is None or len(dims) < len(letters.replace("...", "")):
            return None
        before, _, after = letters.partition("...")  # the letters before `...` lead, the rest trail
        pairs = [*zip(before, dims, strict=False), *zip(after, dims[len(dims) - len(after) :], strict=True)]
        for letter, d in pairs:
            if sizes.get(letter, 1) == 1 or d != 1:  # a broadcast 1 gives way to the other size
                sizes[letter] = d
    extra: tuple[int | str, ...] = ()
    if "..." in equation:
        out = shapes.out(node)
        named_out = equation.split("->")[1].replace("...", "")
        if out is None:
            return None
        extra = out[: len(out) - len(named_out)]
    return macs([*extra, *sizes.values()])


COSTS: dict[str, CostFn] = {
    "MatMul": matmul_macs,
    "Gemm": gemm_macs,
    "FusedGemm": gemm_macs,
    "FusedMatMul": fused_matmul_macs,
    "MatMulNBits": matmul_nbits_macs,
    "MatMulBnb4": matmul_nbits_macs,  # the same K and N attributes, 4-bit weights
    "Einsum": einsum_macs,
}
