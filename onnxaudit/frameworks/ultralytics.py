"""Ultralytics' exporter: Conv blocks with their BatchNorm fused, the Detect head's anchors."""

from __future__ import annotations

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import (
    ANONYMOUS_PARAMETER,
    SAME_OP,
    channels_of,
    inferred_layer,
    kind_of,
    weight_and_bias,
)
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import INFERRED, ZERO, Figure, FrameworkLayer


@rule(SAME_OP["Conv"])
def ultralytics_fused_conv(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """An Ultralytics Conv block is `conv` (no bias) + `bn` + activation; its exporter fuses the BN into
    the conv (`model.fuse()`), which gives the conv a bias: `<block>.conv.weight` with `<block>.conv.bias`.
    A plain nn.Conv2d of the head keeps its own bias under another name (`model.22.cv2.0.2`)."""
    weight, bias = weight_and_bias(tensors, "Conv")
    if weight is None or bias is None or len(tensors) != 2 or not weight.name.endswith(".conv.weight"):
        return None
    conv = weight.name.removesuffix(".weight")
    if bias.name != f"{conv}.bias":
        return None
    block, c, k = conv.removesuffix(".conv"), channels_of(bias), weight.count or 0
    return [
        FrameworkLayer(
            conv, "Conv", Figure.of(k), ZERO, INFERRED,
            [f"an Ultralytics Conv block: {conv} has no bias of its own; {bias.name} is {block}.bn's shift, "
             "fused into it by Ultralytics' exporter (model.fuse())"],
            [weight.name, bias.name],
        ),
        FrameworkLayer(
            f"{block}.bn", "BatchNorm", Figure.of(2 * c), Figure.of(2 * c), INFERRED,
            [f"BatchNorm {block}.bn fused into {conv}: weight, bias 2 x {c}; running_mean, running_var 2 x {c}"],
        ),
    ]  # fmt: skip


@rule("Sub", "Add", "Mul")
def ultralytics_anchors(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """The Detect head's anchor points and strides, computed for the export's input size (make_anchors)
    and stored as Constant nodes (`/model.22/Constant_12_output_0`) that the box decoding subtracts,
    adds and multiplies: attributes of the head, no parameter or buffer."""
    if not tensors or any(t.category != "unclassified" or t.origin != "constant" for t in tensors):
        return None
    if not all(ANONYMOUS_PARAMETER.fullmatch(t.name) and t.uses for t in tensors):
        return None
    if any(u.node.op_type not in ("Sub", "Add", "Mul") for t in tensors for u in t.uses):
        return None
    return inferred_layer(
        layer,
        kind_of(layer),
        ZERO,
        ZERO,
        f"{len(tensors)} Constant nodes of the Detect head ({', '.join(t.name for t in tensors)}): the anchor "
        "points and strides Ultralytics computes for the export's input size, no parameter",
        tensors,
    )
