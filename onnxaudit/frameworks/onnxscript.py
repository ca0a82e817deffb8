"""onnxscript's optimizer (dynamo, or run by hand): a BatchNorm fused into a conv, told by node metadata."""

from __future__ import annotations

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import bns_fused_by_dynamo, channels_of, first_weight_and_bias
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import AMBIGUOUS, INFERRED, ZERO, Figure, FrameworkLayer


@rule("Conv", "ConvTranspose", "Gemm")
def onnxscript_bn_fusion(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """onnxscript's optimizer or rewriter (run by torch.onnx dynamo, or by hand on any export) fused a BN
    into a Conv, ConvTranspose or Gemm and recorded it on the node (`rule_name` FuseBatchNormIntoConv).
    The weight keeps its name; the bias is `<weight>_bias` when the fusion made it, the layer's own
    `<module>.bias` (re-valued) when there was one, and cannot be told apart under any other name."""
    fused = ctx.view.fx.bn_fusions
    if not fused or len(tensors) > 2:
        return None
    op, weight, bias = first_weight_and_bias(tensors, ("Conv", "ConvTranspose", "Gemm"))
    if weight is None or (bias is None and (op != "Conv" or not weight.dims)):
        return None
    if not any(n.op_type == op and n.name in fused and weight.name in n.inputs for n in layer.nodes):
        return None
    c, k = channels_of(bias) if bias is not None else weight.dims[0], weight.count or 0  # type: ignore[index]
    module = weight.name.removesuffix(".weight")
    if bias is None:  # an untrained BN after a conv without bias: the fused shift is all zeros, dropped
        figure, status = Figure.of(k), INFERRED
        why = "no bias: the fused shift was all zeros (an untrained BN) and dropped; bias=False assumed"
    elif bias.name == f"{weight.name}_bias":
        figure, status, why = Figure.of(k), INFERRED, f"bias {bias.name}: made by the fusion, the {op} had none"
    elif bias.name == f"{module}.bias":
        figure, status, why = Figure.of(k + c), INFERRED, f"bias {bias.name}: the {op}'s own, re-valued by the fusion"
    else:
        figure, status = Figure(k, k + c), AMBIGUOUS
        why = f"bias {bias.name}: the {op}'s own bias ({c}) cannot be told apart from the folded shift"
    conv = FrameworkLayer(
        layer.name, op, figure, ZERO, status,
        [f"{op} node records onnxscript's BatchNorm fusion (rule_name metadata): a BN was fused into {layer.name}",
         why],
        [t.name for t in (weight, bias) if t is not None],
    )  # fmt: skip
    return [conv, *bns_fused_by_dynamo(layer, layer.name, c, ctx.view, f"{layer.name} (+fused BatchNorm)")]
