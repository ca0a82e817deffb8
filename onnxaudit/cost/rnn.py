"""Recurrent layers by closed form: per step, per direction, the input and recurrent products of every gate.

With T steps, B sequences, D directions, I inputs and H hidden units:
  LSTM = D·T·B·4H·(I+H)   GRU = D·T·B·3H·(I+H)   RNN = D·T·B·H·(I+H)
(onnx-tool counted these wrongly, ThanatosShinji/onnx-tool#64). The gate biases, activations and the state
update are elementwise FLOPs per hidden unit per step: LSTM 17 (8 bias adds, 5 activations, 4 for the cell
and output), GRU 14 (6 bias adds, 3 activations, 5 for the reset and the blend), RNN 3 (2 bias adds, 1 activation).
"""

from __future__ import annotations

from onnxaudit.cost.base import CostFn, OpCost, Shapes, attr_int, macs
from onnxaudit.cost.poly import Poly
from onnxaudit.model.view import Node

# op: (gates, elementwise FLOPs per hidden unit per step)
_FORMS = {"LSTM": (4, 17), "GRU": (3, 14), "RNN": (1, 3)}


def rnn_macs(node: Node, shapes: Shapes) -> OpCost | None:
    x, w, r = shapes.dims(node, 0), shapes.dims(node, 1), shapes.dims(node, 2)
    if x is None or w is None or r is None or len(x) != 3 or len(w) != 3 or len(r) != 3:
        return None
    gates, per_unit = _FORMS[node.op_type]
    steps, batch, inputs = (x[1], x[0], x[2]) if attr_int(node, "layout", 0) else x
    directions, hidden = w[0], r[2]
    if not isinstance(hidden, int):
        return None
    cost = macs([directions, steps, batch, gates * hidden, Poly.dim(inputs) + Poly.dim(hidden)])
    flops = Poly.product([directions, steps, batch, per_unit * hidden])
    return OpCost(cost.macs, flops, cost.formula)


COSTS: dict[str, CostFn] = {op: rnn_macs for op in _FORMS}
