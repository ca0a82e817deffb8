"""The op families, one module each, behind one list: the only place that says which op is costed how."""

from __future__ import annotations

from onnxaudit.cost import attention, conv, elementwise, matmul, pooling, quantized, rnn
from onnxaudit.cost.base import CostFn
from onnxaudit.model.ops import STD_DOMAINS
from onnxaudit.model.view import Node

FAMILIES = (conv, matmul, quantized, attention, rnn, elementwise, pooling)

TABLE: dict[str, CostFn] = {}
for _family in FAMILIES:
    _shared = TABLE.keys() & _family.COSTS.keys()
    assert not _shared, f"{_family.__name__} costs {sorted(_shared)} again"
    TABLE.update(_family.COSTS)

# ops with their own meaning in ONNX's domain (com.microsoft's Attention is another op)
ONNX_TABLE: dict[str, CostFn] = {**TABLE, **attention.ONNX_COSTS}

# ops that compute but whose work no family counts: named in the footer instead of counted as 0
NOT_COUNTED = frozenset({"Einsum", "Loop", "Scan", "If", "DeformConv", "Col2Im", "STFT", "DFT"})


def cost_fn(node: Node) -> CostFn | None:
    if node.op_type == "Einsum" and len(node.inputs) != 2:
        return None  # a trace, a transpose or a chain of three: no declared formula
    return (ONNX_TABLE if node.domain in STD_DOMAINS else TABLE).get(node.op_type)
