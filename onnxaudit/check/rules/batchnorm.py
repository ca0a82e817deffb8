"""BatchNormalization misuse: training mode (OA201), the wrong inputs (OA202), a variance that divides by
zero or explodes a channel (OA102, OA103: from the scanned values), and a BN over the wrong axis (OA212)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.check.rules.ops import STD_DOMAINS
from onnxaudit.count.normaxis import channel_axis_findings
from onnxaudit.io.text import as_text, key, quoted
from onnxaudit.model.ops import SLOT_NAMES
from onnxaudit.model.view import ModelView, Node

BN_GAIN_LIMIT = 100.0  # 1/sqrt(var + eps) above this turns noise into saturation
DEFAULT_EPSILON = 1e-5


def _batchnorms(view: ModelView) -> Iterator[tuple[Node, str]]:
    for node in view.all_nodes():
        if node.op_type == "BatchNormalization" and node.domain in STD_DOMAINS:
            yield node, as_text(node.label)


def _training_mode(ctx: CheckContext) -> Iterator[Hit]:
    opset = ctx.view.opsets.get("ai.onnx")
    for node, label in _batchnorms(ctx.view):
        training = node.attrs.get("training_mode") == 1
        extra = [o for o in node.outputs[1:] if o]
        legacy = opset is not None and opset < 7 and node.attrs.get("is_test", 0) == 0
        if training or extra or legacy:
            why = "training_mode=1" if training else f"{len(extra)} training outputs" if extra else "is_test=0"
            message = (
                f"BatchNormalization {quoted(label)} runs in training mode ({why}): batch statistics, not stored ones"
            )
            yield Hit(message, "node", label, node.scope)


def _malformed(ctx: CheckContext) -> Iterator[Hit]:
    view = ctx.view
    for node, label in _batchnorms(view):
        present = [name for name in node.inputs if name]
        slots = SLOT_NAMES["BatchNormalization"]
        if len(node.inputs) != 5 or len(present) != 5:
            message = f"BatchNormalization {quoted(label)} has {len(present)} inputs; it needs 5 ({', '.join(slots)})"
            yield Hit(message, "node", label, node.scope)
            continue
        sizes = {}
        for slot, name in zip(slots[1:], node.inputs[1:], strict=True):
            tensor = view.lookup(node.scope, name)
            if tensor is not None and tensor.dims is not None:
                sizes[slot] = tensor.dims
        shapes = set(sizes.values())
        spatial = node.attrs.get("spatial", 1) != 0
        channels = _channels(view, node)
        if len(shapes) > 1 or (spatial and any(len(d) != 1 for d in shapes)):
            shown = ", ".join(f"{slot} {'x'.join(map(str, d)) or 'scalar'}" for slot, d in sizes.items())
            message = f"BatchNormalization {quoted(label)}: parameter shapes disagree ({shown})"
            yield Hit(message, "node", label, node.scope)
        elif spatial and channels is not None and shapes and next(iter(shapes)) != (channels,):
            size = next(iter(shapes))[0]
            message = f"BatchNormalization {quoted(label)}: input has {channels} channels, its parameters {size}"
            yield Hit(message, "node", label, node.scope)


def _channels(view: ModelView, node: Node) -> int | None:
    if node.scope != "main":
        return None
    info = view.value_shapes.get(node.inputs[0])
    if info is None or info.shape is None or len(info.shape) < 2:
        return None
    dim = info.shape[1]
    return dim if isinstance(dim, int) else None


def _variances(ctx: CheckContext) -> Iterator[tuple[Node, str, str, float, float, int]]:
    """(node, label, variance name, min variance, epsilon, negative count) of each BN whose variance was scanned."""
    view, stats = ctx.view, ctx.values.stats
    for node, label in _batchnorms(view):
        if len(node.inputs) < 5 or not node.inputs[4]:
            continue
        var = view.lookup(node.scope, node.inputs[4])
        found = stats.get(key(*var.key)) if var is not None else None
        if var is None or found is None or found.minimum is None:
            continue
        eps = node.attrs.get("epsilon", DEFAULT_EPSILON)
        eps = float(eps) if isinstance(eps, (int, float)) else DEFAULT_EPSILON
        yield node, label, quoted(var.name), found.minimum, eps, found.negative


def _variance_not_positive(ctx: CheckContext) -> Iterator[Hit]:
    for node, label, var_name, minimum, eps, negative in _variances(ctx):
        if negative or minimum + eps <= 0:
            if negative:
                detail = f"has {negative:,} negative values (min {minimum:g})"
            else:
                detail = f"reaches var + epsilon = {minimum + eps:g} (epsilon {eps:g}): division by zero"
            yield Hit(f"BatchNormalization {quoted(label)}: variance {var_name} {detail}", "node", label, node.scope)


def _variance_tiny(ctx: CheckContext) -> Iterator[Hit]:
    for node, label, var_name, minimum, eps, negative in _variances(ctx):
        if negative or minimum + eps <= 0:
            continue  # OA102's
        gain = 1.0 / math.sqrt(minimum + eps)
        if gain > BN_GAIN_LIMIT:
            message = (
                f"BatchNormalization {quoted(label)}: variance {var_name} min {minimum:g} with epsilon "
                f"{eps:g} scales a channel by {gain:,.0f}x"
            )
            yield Hit(message, "node", label, node.scope)


def _channel_axis(ctx: CheckContext) -> Iterator[Hit]:
    """Keras BatchNormalization(axis=-3) on NHWC data normalizes rows, not channels (seed_cnn_axis_typo)."""
    for found in channel_axis_findings(ctx.view, ctx.table):
        yield Hit(found.message, "node", found.node)


VARIANCE_NOT_POSITIVE = Rule(
    "OA102",
    "bn-variance-not-positive",
    "error",
    "values",
    summary="a BN variance is negative, or var + epsilon <= 0",
    docs=(
        "BatchNormalization divides by sqrt(var + epsilon). A negative variance or var + epsilon <= 0 gives NaN "
        "or Inf for that channel on every input. No trained model has one: the statistics were corrupted or "
        "written into the wrong slot (mean and var swapped)."
    ),
    emit=_variance_not_positive,
)
VARIANCE_TINY = Rule(
    "OA103",
    "bn-variance-tiny",
    "warning",
    "values",
    summary=(
        f"1/sqrt(var + epsilon) > {BN_GAIN_LIMIT:g} for some channel "
        f"(var 0, epsilon 1e-5: {1 / math.sqrt(DEFAULT_EPSILON):.0f}x)"
    ),
    docs=(
        "A channel whose running variance is (near) zero is scaled by 1/sqrt(epsilon): a dead channel during "
        "training turns input noise into saturated activations at inference, and float16 or int8 conversion "
        "overflows there. Check the training data reached that channel; a larger epsilon (Keras uses 1e-3) "
        "bounds the gain."
    ),
    emit=_variance_tiny,
)
TRAINING_MODE = Rule(
    "OA201",
    "bn-training-mode",
    "error",
    "view",
    summary="BatchNormalization with training_mode=1, training outputs, or is_test=0 (opset < 7)",
    docs=(
        "A BatchNormalization in training mode normalizes with the statistics of the batch at hand, not the "
        "stored ones: outputs depend on what else is in the batch, and a batch of one gives garbage. Export in "
        "eval mode (model.eval() in PyTorch, training=False in Keras)."
    ),
    emit=_training_mode,
)
MALFORMED = Rule(
    "OA202",
    "bn-malformed",
    "error",
    "view",
    summary="BN without its 5 inputs, scale/B/mean/var shapes that disagree, or a channel count unlike its input's",
    docs=(
        "BatchNormalization needs X, scale, B, mean and var, the last four of one shape (C) matching the input's "
        "channel axis. A runtime refuses such a node, or broadcasts it into something that is not a "
        "normalization. The file was edited or converted wrongly."
    ),
    emit=_malformed,
)
NOT_CHANNEL_AXIS = Rule(
    "OA212",
    "bn-not-channel-axis",
    "warning",
    "view",
    summary=(
        "a BatchNormalization's width differs from the channels of the conv/dense before it (Keras `axis=-3` on NHWC)"
    ),
    docs=(
        "The normalization's parameters count something other than the channels the layer before it produces: "
        "Keras BatchNormalization(axis=-3) on NHWC data normalizes the rows, not the channels. The model runs, "
        "but it does not do what the author meant, and its parameter count differs from the intended one."
    ),
    emit=_channel_axis,
)

RULES = (VARIANCE_NOT_POSITIVE, VARIANCE_TINY, TRAINING_MODE, MALFORMED, NOT_CHANNEL_AXIS)
