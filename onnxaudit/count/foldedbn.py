"""Roles inside a BatchNormalization folded into a conv at run time (onnxoptimizer's fuse_bn_into_conv):
the variance under the Sqrt, eps beside it, the mean the bias's Sub takes."""

from __future__ import annotations

from onnxaudit.count.graphfacts import one_value
from onnxaudit.count.slotroles import SlotRoles
from onnxaudit.model.view import Node


class FoldedBnRoles(SlotRoles):
    def folded_bn_roles(self, node: Node) -> list[str | None] | None:
        """onnxoptimizer's fuse_bn_into_conv folds a BN into the conv at run time: W * (gamma / Sqrt(var +
        eps)) and (b - mean) * (gamma / Sqrt(var + eps)) + beta feed the conv's weight and bias. On the way
        back from the conv: the variance under the Sqrt (eps beside it is a literal), the mean the Sub takes
        from the bias. Roles for the node's inputs (None: the role carried on); None if no such step."""
        if node.op_type == "Sqrt":
            if self._variance_plus_eps(node) is not None:
                return ["bn_var"]
        elif node.op_type == "Add" and len(node.inputs) == 2:
            for out in node.outputs:  # var + eps, read by a Sqrt
                for reader, _ in self.consumers.get((node.scope, out), []):
                    found = self._variance_plus_eps(reader) if reader.op_type == "Sqrt" else None
                    if found is not None and found[0] is node:
                        return ["literal" if j == found[1] else "bn_var" for j in range(2)]
        elif node.op_type == "Sub" and len(node.inputs) == 2:
            for out in node.outputs:  # (b - mean) times the BN's scale
                for reader, _ in self.consumers.get((node.scope, out), []):
                    if reader.op_type == "Mul" and any(self._bn_scale(node.scope, i) for i in reader.inputs):
                        return [None, "bn_mean"]
        return None

    def _variance_plus_eps(self, sqrt: Node) -> tuple[Node, int] | None:
        """The Add under a Sqrt that adds a one-value constant (eps, maybe cast) to another value, and the
        eps's slot; None if the Sqrt reads anything else."""
        add = self.producer(sqrt.scope, sqrt.inputs[0]) if sqrt.inputs else None
        if add is None or add.op_type != "Add" or len(add.inputs) != 2:
            return None
        for j, name in enumerate(add.inputs):
            source = self.producer(add.scope, name)
            if source is not None and source.op_type == "Cast" and source.inputs:
                name = source.inputs[0]
            if one_value(self.view.lookup(add.scope, name)):
                return add, j
        return None

    def _bn_scale(self, scope: str, name: str) -> bool:
        """Whether `name` is gamma / Sqrt(var + eps)."""
        div = self.producer(scope, name)
        if div is None or div.op_type != "Div" or len(div.inputs) != 2:
            return False
        sqrt = self.producer(scope, div.inputs[1])
        return sqrt is not None and sqrt.op_type == "Sqrt" and self._variance_plus_eps(sqrt) is not None
