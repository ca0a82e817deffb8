"""paddle2onnx: a BatchNorm without weight and bias, filled with constants of its own."""

from __future__ import annotations

import re

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import inferred_layer
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import ZERO, Figure, FrameworkLayer

# paddle2onnx writes a BatchNorm without weight and bias (weight_attr=False, bias_attr=False) with made-up
# ones and zeros named `const.N`; a paddle parameter keeps its `<layer>_k.w_i` name
_PADDLE_MADE = re.compile(r"const\.\d+")


@rule("BatchNormalization")
def paddle_bn_without_affine(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A PaddlePaddle BatchNorm without weight and bias: paddle2onnx fills ONNX's scale and B with
    constants of its own (`const.0` ones, `const.1` zeros); the running mean and variance are the
    layer's (`batch_norm2d_k.w_0`, `.w_1`: named one place earlier than with weight and bias)."""
    roles = {t.role: t for t in tensors}
    if sorted(roles) != ["bn_beta", "bn_gamma", "bn_mean", "bn_var"] or len(tensors) != 4:
        return None
    if not (_PADDLE_MADE.fullmatch(roles["bn_gamma"].name) and _PADDLE_MADE.fullmatch(roles["bn_beta"].name)):
        return None
    c = roles["bn_mean"].count or 0
    return inferred_layer(
        layer, "BatchNorm", ZERO, Figure.of(2 * c),
        f"scale {roles['bn_gamma'].name} and bias {roles['bn_beta'].name} are paddle2onnx's own constants: "
        f"a BatchNorm without weight and bias, mean and variance 2 x {c} only",
        tensors,
    )  # fmt: skip
