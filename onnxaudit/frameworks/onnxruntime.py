"""Files onnxruntime's optimizer saved: ConvBnFusion, NCHWc padding, folds without a name."""

from __future__ import annotations

from dataclasses import replace

from onnxaudit.count.layers import Layer, path_from_tensor_name
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import ORT_REORDERED, SAME_OP, maybe_folded_bn, weight_and_bias
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import AMBIGUOUS, INFERRED, ZERO, Figure, FrameworkLayer
from onnxaudit.io.dims import element_count
from onnxaudit.model.view import ModelView, Node

# What onnxruntime's graph optimizer names the tensors it writes when it folds a per-channel scale
# into a conv (SessionOptions.optimized_model_filepath): ConvBnFusion from a BatchNormalization,
# ConvMulFusion from a constant Mul (tf2onnx's lowered BN, or any other scale).
_ORT_BN_W, _ORT_MUL_W = "ConvBnFusion_W_", "ConvMulFusion_W_"


_ORT_BN_B = "ConvBnFusion_BN_B_"


@rule(SAME_OP["Conv"])
def ort_conv_bn_fusion(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """onnxruntime folded a BatchNormalization (ConvBnFusion) or a per-channel Mul (ConvMulFusion) into
    the conv before it. The conv's own bias, if it had one, went into the folded shift: it cannot be
    told apart. After a Mul fusion, the scale was a BN only where its folded name says so."""
    bias = next((t for t in tensors if t.role == "bias" and t.name.startswith("Conv") and "Fusion_" in t.name), None)
    # the NCHWc layout pass (ORT_ENABLE_ALL) renames the fused weight "reorder*"; the bias keeps its name
    # unless the output channels were padded to a block, which gives it a "reorder*" name too
    reordered = bias is not None and bias.name.startswith(_ORT_BN_B)
    weight = next(
        (
            t
            for t in tensors
            if t.role == "weight"
            and (t.name.startswith((_ORT_BN_W, _ORT_MUL_W)) or (reordered and ORT_REORDERED.fullmatch(t.name)))
        ),
        None,
    )
    if weight is None or not weight.dims:
        return None
    if len(tensors) != (2 if bias is not None else 1):
        return None
    c, k = weight.dims[0], weight.count or 0
    from_bn = weight.name.startswith(_ORT_BN_W) or reordered
    bn_bias = bias.name[len(_ORT_BN_B) :] if bias is not None and bias.name.startswith(_ORT_BN_B) else ""
    torch_names = from_bn and weight.name.endswith(".weight") and "/" not in weight.name
    conv_name = weight.name[len(_ORT_BN_W) : -len(".weight")] if torch_names else layer.name
    bn_name = bn_bias.removesuffix(".bias") if bn_bias.endswith(".bias") else f"{layer.name} (+folded BatchNorm)"
    if conv_name == bn_name:  # a layer named after the BN's bias (the reordered weight kept no name): two rows
        conv_name = f"conv before {bn_name}"
    said_bn = from_bn or any("batchnorm" in t.name.lower() for t in tensors)
    conv = FrameworkLayer(
        conv_name, "Conv", Figure(k, k + c), ZERO, AMBIGUOUS,
        [f"{weight.name}: onnxruntime folded a per-channel {'BatchNorm' if from_bn else 'Mul'} into {conv_name}",
         f"the original conv bias ({c}) cannot be told apart from the folded shift"],
        [t.name for t in (weight, bias) if t is not None],
    )  # fmt: skip
    affine = bn_bias.endswith(".bias")  # a state_dict name: the BN had its own weight and bias
    gamma_beta = Figure.of(2 * c) if affine else Figure(0, 2 * c)
    stats = Figure.of(2 * c) if said_bn else Figure(0, 2 * c)
    evidence = (
        f"folded BatchNorm over {c} channels: running stats 2 x {c} existed; weight and bias "
        + (f"2 x {c} (its bias was named {bn_bias})" if affine else f"0 or 2 x {c}")
        if said_bn
        else f"a folded per-channel scale over {c} channels: a BatchNorm (up to 4 x {c}) or no layer at all"
    )
    status = INFERRED if affine else AMBIGUOUS
    return [conv, FrameworkLayer(bn_name, "BatchNorm", gamma_beta, stats, status, [evidence])]


# NCHWc ops that keep the channels of their input: a padded conv's output reaches ReorderOutput through them
_NCHWC_SAME_CHANNELS = frozenset(
    "MaxPool AveragePool GlobalMaxPool GlobalAveragePool Upsample Relu LeakyRelu Sigmoid Tanh Clip Add Sum".split()
)


def nchwc_true_channels(view: ModelView) -> dict[str, int]:
    """Filters and biases of NCHWc convs padded to a channel block (onnxruntime's nchwc_transformer
    rounds output channels up, the extra rows zero): name -> the conv's true output channels, read
    from the `channels` attribute of the ReorderOutput its output reaches. A conv whose output meets
    anything else first (another conv, a Concat) keeps its stored count."""
    readers = view.main.readers
    true_channels: dict[str, int] = {}
    for node in view.main.nodes:
        if node.domain != "com.microsoft.nchwc" or node.op_type != "Conv" or len(node.inputs) < 2:
            continue
        channels = _reorder_output_channels(node.outputs[0] if node.outputs else "", readers)
        weight = view.main.tensors.get(node.inputs[1])
        if channels is None or weight is None or not weight.dims or weight.dims[0] <= channels:
            continue
        true_channels[weight.name] = channels
        bias = view.main.tensors.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if bias is not None and bias.dims == weight.dims[:1]:
            true_channels[bias.name] = channels
    return true_channels


def _reorder_output_channels(value: str, readers: dict[str, list[Node]]) -> int | None:
    """The one `channels` every ReorderOutput reached from `value` through channel-keeping ops gives."""
    found: set[int] = set()
    pending, seen = [value], {value}
    while pending and len(seen) < 256:
        for node in readers.get(pending.pop(), []):
            if node.op_type == "ReorderOutput" and isinstance(node.attrs.get("channels"), int):
                found.add(node.attrs["channels"])  # type: ignore[arg-type]
            elif node.op_type in _NCHWC_SAME_CHANNELS:
                for out in node.outputs:
                    if out and out not in seen:
                        seen.add(out)
                        pending.append(out)
            else:
                return None  # the channels change or cannot be told on this path
    return found.pop() if len(found) == 1 else None


def without_padding(tensor: ParamTensor, channels: int) -> ParamTensor:
    """`tensor` as the framework held it: its leading dim cut back to `channels`."""
    dims = (channels, *(tensor.dims or ())[1:])
    count = element_count(dims)
    note = f"stored padded to {tensor.dims[0] if tensor.dims else '?'} channels by onnxruntime's NCHWc pass"
    return replace(tensor, dims=dims, count=count, notes=(*tensor.notes, note))


@rule(SAME_OP["Conv"])
def ort_silent_fold(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """In a file onnxruntime's optimizer saved, a conv with a bias may hold a BatchNormalization folded
    without a name left behind (a conv without a bias never does: the fusion would have made one).
    Not where TorchScript export names settle it (`torchscript_names`): there torch's own fold leaves
    `onnx::Conv_N` and onnxruntime's `ConvBnFusion_*`, so a weight and bias under their state_dict keys
    hold no BN (Whisper's conv1 and conv2)."""
    weight, bias = weight_and_bias(tensors, "Conv")
    if weight is None or bias is None:
        return None
    if ctx.torchscript_names and path_from_tensor_name(weight.name) and path_from_tensor_name(bias.name):
        return None
    return maybe_folded_bn(
        layer, tensors, bias, "folded by onnxruntime?",
        "saved by onnxruntime's optimizer, which folds a BatchNorm into the conv before it",
    )  # fmt: skip
