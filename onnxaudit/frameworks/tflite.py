"""TFLite files converted by tf2onnx: a conv or Dense whose name shows no BN may still hold one."""

from __future__ import annotations

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import FOLD_TARGETS, out_channels
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import AMBIGUOUS, ZERO, Alternative, Figure, FrameworkLayer
from onnxaudit.model.view import Node


@rule(FOLD_TARGETS)
def tflite_maybe_folded(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A conv or Dense of a TFLite file whose name shows no BN (keras_fused_bn takes those that do).
    TFLite's converter folds a BN into the op before it and, after a Dense, into the op after it (with
    that Dense's bias), where the names need not keep it; and it gives every conv a bias, zeros where the
    Keras layer had none (a SeparableConv2D's depthwise half). So its bias may be the converter's, and a
    BN may have been folded into it. A fold adds exactly 2 x C statistics and 0, C or 2 x C of gamma and
    beta: alternatives, so a figure off by one is no fold."""
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
    last = max(ops, key=lambda pair: pair[0].index)[0]
    k, b = sum(t.count or 0 for t in weights), sum(t.count or 0 for t in biases)
    what = f"its biases ({b}) may be the converter's (zeros it adds, or a folded shift); " if b else ""
    # each bias may be the converter's zeros (a SeparableConv2D's depthwise half has none in Keras)
    own_bias = [
        Alternative(f"{layer.name}'s bias {t.name} ({t.count}) is the converter's (use_bias=False)", -(t.count or 0))
        for t in biases
    ]
    # a Dense before a BN: the converter folds the BN forward into the next op, and the Dense's bias with it
    moved = [out_channels(node.op_type, node, t) for node, t in ops if _dense(node) and not _has_bias(node, biases)]
    if moved:
        own_bias.append(Alternative(f"{layer.name}'s bias ({sum(moved)}) was folded into the op after it", sum(moved)))
    stored = FrameworkLayer(
        layer.name, last.op_type, Figure.assumed(k + b, [a.trainable for a in own_bias]), ZERO, AMBIGUOUS,
        [f"a TFLite export: {what}its weights ({k}) are counted as stored"], [t.name for t in tensors], own_bias,
    )  # fmt: skip
    return [stored, _maybe_folded_bn(layer.name, ops, biases)]


def _maybe_folded_bn(name: str, ops: list[tuple[Node, ParamTensor]], biases: list[ParamTensor]) -> FrameworkLayer:
    """The BNs that may hide in the ops: none (the likely case: the converter names the BNs it folds
    backward), else one over an op's output (folded into the op before it), or for a Dense one over its
    input (folded forward, with the bias of the Dense before it)."""
    alternatives: list[Alternative] = []
    trainable_hi = stats_hi = 0
    for node, weight in ops:
        out = out_channels(node.op_type, node, weight)
        alternatives += _fold_alternatives(f"a BatchNormalization of {out} outputs", name, out, _after(node, biases))
        trainable_hi, stats_hi = trainable_hi + 2 * out, stats_hi + 2 * out
        if _dense(node) and weight.dims and len(weight.dims) == 2:
            inn = weight.dims[1] if node.attrs.get("transB", 0) else weight.dims[0]
            before = node.inputs[0] if node.inputs else None
            alternatives += _fold_alternatives(f"a BatchNormalization of {inn} inputs", name, inn, before)
            trainable_hi, stats_hi = trainable_hi + 2 * inn, stats_hi + 2 * inn
    widths = ", ".join(f"C = {a.non_trainable // 2}" for a in alternatives if a.trainable == 0)
    return FrameworkLayer(
        f"{name} (+BatchNorm folded?)", "BatchNormalization", Figure(0, trainable_hi, 0), Figure(0, stats_hi, 0),
        AMBIGUOUS,
        [f"a TFLite export: its converter folds a BatchNormalization into the op beside it without always naming "
         f"it: likely none, else 2 x C moving mean and variance and 0 to 2 x C gamma and beta ({widths})"],
        [],
        alternatives,
    )  # fmt: skip


def _dense(node: Node) -> bool:
    return node.op_type in ("MatMul", "Gemm")


def _has_bias(node: Node, biases: list[ParamTensor]) -> bool:
    """Whether one of `biases` is the op's own: in its bias slot, or added to its output."""
    out = node.outputs[0] if node.outputs else None
    return any(u.node is node or out in u.node.inputs for t in biases for u in t.uses)


def _after(node: Node, biases: list[ParamTensor]) -> str | None:
    """The value a BN over the op's output would read: its output, past an Add of its own bias."""
    out = node.outputs[0] if node.outputs else None
    add = next((u.node for t in biases for u in t.uses if u.node.op_type == "Add" and out in u.node.inputs), None)
    return add.outputs[0] if add is not None and add.outputs else out


def _fold_alternatives(bn: str, name: str, c: int, value: str | None) -> list[Alternative]:
    """One BN's folds, one group: the BN over `value` (an op's output, or a Dense's input: the same BN
    when the one op feeds the other, folded back or forward, never both) is taken at most once."""
    group = f"a BatchNormalization over {value}" if value else f"{name}: {bn}"
    return [
        Alternative(f"{name} holds {bn} (center=False, scale=False)", 0, 2 * c, group),
        Alternative(f"{name} holds {bn} (center or scale)", c, 2 * c, group),
        Alternative(f"{name} holds {bn}", 2 * c, 2 * c, group),
    ]
