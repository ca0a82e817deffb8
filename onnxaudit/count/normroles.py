"""Normalization roles: the scale and shift of a normalization written out as ops (x_hat * gamma + beta)."""

from __future__ import annotations

from onnxaudit.count.graphfacts import GraphFacts
from onnxaudit.io.dims import element_count
from onnxaudit.model.ops import MULS, OPERAND_SLOTS
from onnxaudit.model.view import Node


class NormalizationRoles(GraphFacts):
    def normalization_affine(self, node: Node, slot: int, assumed: str) -> str:
        """`x_hat * gamma + beta` after a normalization written out as ops (opset < 17 LayerNorm:
        ReduceMean, Sub, Pow, Sqrt, Div; Keras 3 on TF: Sqrt, Reciprocal; tf_keras: a BatchNormalization
        fed run-time statistics): the constants are the norm's scale and bias. BN lowered with stored
        statistics (Mul + Add of folded mean/var) computes no Sqrt at run time and stays out of this.
        Statically quantized too: QLinearMul/QLinearAdd (operands in slots 0 and 3), or Q/DQ pairs."""
        # tf.nn.batch_normalization's shift, beta - mean * (gamma / sqrt(var)), added after x * (gamma / sqrt(var))
        # (tf_keras's GroupNormalization): a Sub whose first operand is the constant
        op, inputs, scope = node.op_type, node.inputs, node.scope
        pair = (0, 1) if op == "Sub" else OPERAND_SLOTS.get(op)
        if pair is None or slot not in pair or len(inputs) <= pair[1]:
            return ""
        name = inputs[slot]  # _constant_or_assumed, inline: asked of every constant a Mul or Add reads
        if not name or (name != assumed and not self.is_constant(scope, name)):
            return ""
        mine = self.stored_behind(scope, name)
        if mine is not None and mine.dims is not None and (not mine.dims or element_count(mine.dims) <= 1):
            return ""  # a per-feature scale or shift is a vector; a scalar is a literal (T5's x * d**-0.5)
        other = inputs[pair[1] if slot == pair[0] else pair[0]]
        if op in MULS:
            return "norm_scale" if self.normalizing(scope, other, 0) else ""
        source = self.through_layout(scope, other)
        if source is None or source.op_type not in MULS:
            return ""
        for j in OPERAND_SLOTS[source.op_type]:
            name = source.inputs[j] if j < len(source.inputs) else ""
            if not name:
                continue
            if self.is_constant(source.scope, name):
                if self.normalization_affine(source, j, "") == "norm_scale":
                    return "norm_bias"
            elif self.normalizing(source.scope, name, 0):
                return "norm_bias"
        return ""

    def normalizing(self, scope: str, name: str, depth: int) -> bool:
        """`name` is a run-time normalized value or factor: x / sqrt(var), 1 / sqrt(var) (times a
        constant gamma), or the output of a norm op fed run-time statistics."""
        node = self.through_layout(scope, name)
        if node is None or depth > 3 or self.is_constant(scope, name):
            return False
        op = node.op_type
        if op == "Reciprocal" and node.inputs:
            inner = self.through_layout(node.scope, node.inputs[0])
            return inner is not None and inner.op_type == "Sqrt"
        if op == "Div" and len(node.inputs) == 2:
            divisor = self.through_layout(node.scope, node.inputs[1])
            return divisor is not None and divisor.op_type == "Sqrt"
        if op in MULS:
            operands = [node.inputs[j] for j in OPERAND_SLOTS[op] if j < len(node.inputs)]
            return any(
                not self.is_constant(node.scope, i) and self.normalizing(node.scope, i, depth + 1) for i in operands
            )
        if op == "BatchNormalization" and len(node.inputs) >= 5:
            return not self.is_constant(node.scope, node.inputs[3])
        # torch's GroupNorm below opset 18: InstanceNormalization over the groups (scale ones, bias zeros),
        # reshaped back, then * weight + bias per channel
        return op == "InstanceNormalization"
