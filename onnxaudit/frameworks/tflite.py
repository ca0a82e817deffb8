"""TFLite files converted by tf2onnx: a conv or Dense whose name shows no BN may still hold one."""

from __future__ import annotations

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import FOLD_TARGETS, out_channels
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import AMBIGUOUS, ZERO, Figure, FrameworkLayer
from onnxaudit.model.view import Node


@rule(FOLD_TARGETS)
def tflite_maybe_folded(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A conv or Dense of a TFLite file whose name shows no BN (keras_fused_bn takes those that do).
    TFLite's converter folds a BN into the op before it and, after a Dense, into the op after it,
    where the names need not keep it; and it gives every conv a bias, zeros where the Keras layer had
    none (a SeparableConv2D's depthwise half). So its bias may be the converter's, and a BN of its
    output width may have been folded into it."""
    weights = [t for t in tensors if t.role == "weight"]
    biases = [t for t in tensors if t.role == "bias"]
    if not weights or len(weights) + len(biases) != len(tensors):
        return None
    # each weight's op may hold a BN of its own output width (a row may hold more than one op)
    ops: list[tuple[Node, ParamTensor]] = []
    for t in weights:
        node = next((u.node for u in t.uses if u.node.op_type in FOLD_TARGETS), None)
        if node is None:
            return None
        ops.append((node, t))
    width = sum(out_channels(node.op_type, node, t) for node, t in ops)
    last = max(ops, key=lambda pair: pair[0].index)[0]
    k, b = sum(t.count or 0 for t in weights), sum(t.count or 0 for t in biases)
    what = f"its biases ({b}) may be the converter's (zeros it adds, or a folded shift); " if b else ""
    stored = FrameworkLayer(
        layer.name, last.op_type, Figure(k, k + b), ZERO, AMBIGUOUS,
        [f"a TFLite export: {what}its weights ({k}) are counted as stored"], [t.name for t in tensors],
    )  # fmt: skip
    maybe_bn = FrameworkLayer(
        f"{layer.name} (+BatchNorm folded?)", "BatchNormalization", Figure(0, 2 * width), Figure(0, 2 * width),
        AMBIGUOUS,
        [f"a TFLite export: its converter folds a BatchNormalization into the op beside it without always "
         f"naming it: 0 or 4 x {width}"],
    )  # fmt: skip
    return [stored, maybe_bn]
