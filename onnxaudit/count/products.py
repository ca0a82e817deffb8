"""What a constant beside a weight-bearing product is: its bias, a literal added to it, a rescale of an
integer product, or the per-channel quantization scale of dynamic quantization."""

from __future__ import annotations

from functools import cached_property

from onnxaudit.count.normroles import NormalizationRoles
from onnxaudit.io.dims import element_count
from onnxaudit.model.ops import LAYOUT_OR_QDQ, WEIGHT_OPS, output_channels
from onnxaudit.model.view import Node


class ProductRoles(NormalizationRoles):
    def is_bias_add(self, node: Node, slot: int, assumed: str = "") -> bool:
        """Add(product, constant) right after a weight-bearing op: the constant is its bias. Also
        QLinearAdd (operands in slots 0 and 3), static quantization's QOperator form of that Add."""
        inputs, scope = node.inputs, node.scope
        if node.op_type == "QLinearAdd":
            if slot not in (0, 3) or len(inputs) < 4:
                return False
            other = inputs[3 - slot]
        elif len(inputs) == 2:
            other = inputs[1 - slot]
        else:
            return False
        name = inputs[slot]  # _constant_or_assumed, inline: asked of every constant an Add reads
        if not name or (name != assumed and not self.is_constant(scope, name)):
            return False
        if self.is_constant(scope, other):
            return False
        producer = self.producer(scope, other)
        for _ in range(4):  # through the rescaling that integer products need (Cast, Mul by a scale)
            if producer is None or producer.op_type in WEIGHT_OPS:
                break
            if not self.is_rescale(producer):
                return False
            producer = self.producer(producer.scope, producer.inputs[0])
        if producer is None or producer.op_type not in WEIGHT_OPS or not self.holds_constant(producer):
            return False
        return not self.scalar_on_wide_product(node, slot, producer)

    def scalar_on_wide_product(self, node: Node, slot: int, producer: Node) -> bool:
        """One value added to a product of several output channels: a literal (hard-swish's `x + 3`
        after a conv), not a bias, which has one value per channel (a Dense(1) or a one-filter conv)."""
        mine = self.stored_behind(node.scope, node.inputs[slot])
        if mine is None or mine.dims is None or element_count(mine.dims) != 1 or len(producer.inputs) < 2:
            return False
        weight = self.stored_behind(producer.scope, producer.inputs[1])
        if weight is None or not weight.dims:
            return False
        group = producer.int_attr("group", 1) or 1
        return output_channels(producer.op_type, weight.dims, group, bool(producer.attrs.get("transB"))) > 1

    def holds_constant(self, node: Node) -> bool:
        """A product with a stored operand (a layer): attention's MatMul(Q, K^T) of two run-time values is
        none, so a constant added to its scores (a folded mask or position bias) is no layer's bias."""
        graph = self.view.graphs[node.scope]
        # inside a Loop/Scan body or a function an input may be bound to a stored weight by the caller
        formals = {v.name for v in graph.inputs} if graph.kind != "graph" else set()
        return any(name and (name in formals or self.is_constant(node.scope, name)) for name in node.inputs)

    def is_rescale(self, node: Node) -> bool:
        """Cast/Reshape of a product, or Mul by a run-time or scalar scale (not a per-channel constant,
        which is a lowered normalization, not a rescale)."""
        if node.op_type in LAYOUT_OR_QDQ:
            return bool(node.inputs)
        if node.op_type != "Mul" or len(node.inputs) != 2:
            return False
        scale = self.view.lookup(node.scope, node.inputs[1])
        if scale is None:
            return not self.is_constant(node.scope, node.inputs[1])
        return scale.dims is not None and element_count(scale.dims) <= 1

    def is_integer_rescale(self, node: Node, slot: int, assumed: str) -> bool:
        """Mul(constant, DynamicQuantizeLinear's run-time scale): the constant is the weight's (per-channel)
        quantization scale. onnxruntime's dynamic quantization multiplies the two scales first, then the
        MatMulInteger/ConvInteger result. A constant multiplying the product itself stays unknown: it may
        be a folded BatchNormalization just as well."""
        if not self.dynamic_quantization:
            return False  # no run-time scale anywhere (most models): nothing to look behind
        if len(node.inputs) != 2 or not self._constant_or_assumed(node, slot, assumed):
            return False
        return self.dynamic_scale(node.scope, node.inputs[1 - slot])

    @cached_property
    def dynamic_quantization(self) -> bool:
        """Any DynamicQuantizeLinear, whose run-time scale a Mul may rescale by: asked before each Mul's
        is_integer_rescale (most models have none)."""
        return "DynamicQuantizeLinear" in self.op_types

    def dynamic_scale(self, scope: str, name: str, depth: int = 0) -> bool:
        """`name` is the scale output of DynamicQuantizeLinear (through Cast, Reshape and the like)."""
        producer = self.producer(scope, name)
        if producer is None or depth > 3:
            return False
        if producer.op_type == "DynamicQuantizeLinear":
            return len(producer.outputs) > 1 and name == producer.outputs[1]
        if producer.op_type in ("Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze") and producer.inputs:
            return self.dynamic_scale(producer.scope, producer.inputs[0], depth + 1)
        return False
