"""Attention ops: the products they hide. Hand-written attention is its MatMuls (counted in matmul.py);
these are onnxruntime's fused forms and ONNX's own Attention (opset 23).

With S query positions, L key positions (past included), Dq = heads·head_size and Dv the value width:
scores Q·Kᵀ = B·S·L·Dq, weighted values = B·S·L·Dv. com.microsoft's Attention also projects its input
through one (D_in, Dq+Dk+Dv) weight: B·S·D_in·(Dq+Dk+Dv). Softmax is elementwise work (FLOPs), not here.
"""

from __future__ import annotations

from functools import partial

from onnxaudit.cost.base import CostFn, OpCost, Shapes, attr_int, macs
from onnxaudit.cost.poly import Poly
from onnxaudit.model.view import Node


def _scores_and_values(b: int | str, s: int | str, length: Poly, dq: Poly, dv: Poly) -> OpCost:
    # B·S·L·(Dq + Dv): the two batched products per head, summed over heads
    return macs([b, s, length, dq + dv])


def ort_attention(node: Node, shapes: Shapes, past_slot: int = 4) -> OpCost | None:
    """com.microsoft Attention: input (B, S, D_in), weights (D_in, Dq+Dk+Dv), past (2, B, H, P, head)."""
    x, w = shapes.dims(node, 0), shapes.dims(node, 1)
    if x is None or w is None or len(x) != 3 or len(w) != 2:
        return None
    b, s, d_in = x
    sizes = node.attrs.get("qkv_hidden_sizes")
    if isinstance(sizes, tuple) and len(sizes) == 3:
        dq, dv = Poly.dim(sizes[0]), Poly.dim(sizes[2])
    elif isinstance(w[1], int) and w[1] % 3 == 0:
        dq = dv = Poly.dim(w[1] // 3)
    else:
        return None
    length = Poly.dim(s)
    past = shapes.dims(node, past_slot)
    if past is not None and len(past) == 5:
        length = length + Poly.dim(past[3])
    project = macs([b, s, d_in, w[1]])
    attend = _scores_and_values(b, s, length, dq, dv)
    return OpCost(project.macs + attend.macs, attend.flops, f"{project.formula} + {attend.formula}")


def ort_multi_head_attention(node: Node, shapes: Shapes) -> OpCost | None:
    """com.microsoft MultiHeadAttention: query (B, S, Dq), key (B, L, Dq) or (B, H, L, head), value alike."""
    q, k, v = shapes.dims(node, 0), shapes.dims(node, 1), shapes.dims(node, 2)
    if q is None or k is None or v is None or len(q) != 3:
        return None
    b, s, dq = q
    if len(k) == 3 and len(v) == 3:
        length, dv = Poly.dim(k[1]), Poly.dim(v[2])
    elif len(k) == 4 and len(v) == 4:
        length, dv = Poly.dim(k[2]), Poly.product([v[1], v[3]])
    else:
        return None  # packed layouts: not read
    return _scores_and_values(b, s, length, Poly.dim(dq), dv)


def ort_group_query_attention(node: Node, shapes: Shapes) -> OpCost | None:
    """com.microsoft GroupQueryAttention: query (B, S, D) (or packed with K and V when key is absent);
    the keys attended are present_key's (B, kv_heads, L, head). Each of the num_heads query heads reads
    its group's keys: B·S·L·(D + D)."""
    q, present = shapes.dims(node, 0), shapes.out(node, 1)
    out = shapes.out(node)
    if q is None or present is None or out is None or len(out) != 3 or len(present) != 4:
        return None
    b, s, d = out
    return _scores_and_values(b, s, Poly.dim(present[2]), Poly.dim(d), Poly.dim(d))


def onnx_attention(node: Node, shapes: Shapes) -> OpCost | None:
    """ONNX Attention (opset 23): Q (B, Hq, S, head) or (B, S, Hq·head), K (…, L, …), V alike."""
    q, k, v = shapes.dims(node, 0), shapes.dims(node, 1), shapes.dims(node, 2)
    if q is None or k is None or v is None:
        return None
    if len(q) == 4 and len(k) == 4 and len(v) == 4:
        b, heads, s, head = q
        return _scores_and_values(b, s, Poly.dim(k[2]), Poly.product([heads, head]), Poly.product([heads, v[3]]))
    q_heads, kv_heads = attr_int(node, "q_num_heads", 0), attr_int(node, "kv_num_heads", 0)
    if len(q) == 3 and len(k) == 3 and len(v) == 3 and q_heads > 0 and kv_heads > 0 and isinstance(v[2], int):
        b, s, dq = q
        dv = Poly.const(v[2] // kv_heads * q_heads)
        return _scores_and_values(b, s, Poly.dim(k[1]), Poly.dim(dq), dv)
    return None


COSTS: dict[str, CostFn] = {
    "Attention": ort_attention,  # com.microsoft's; ONNX's own is picked by domain in families.py
    "QAttention": partial(ort_attention, past_slot=8),  # its quantized form: the same products
    "MultiHeadAttention": ort_multi_head_attention,
    "GroupQueryAttention": ort_group_query_attention,
}
ONNX_COSTS: dict[str, CostFn] = {"Attention": onnx_attention}
