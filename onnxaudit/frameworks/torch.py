"""PyTorch through torch.onnx (TorchScript and dynamo): folded and fused BatchNorms, norms without affine."""

from __future__ import annotations

import re

from onnxaudit.count.layers import Layer, path_from_tensor_name
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import (
    ORT_REORDERED,
    SAME_OP,
    bns_fused_by_dynamo,
    channels_of,
    first_weight_and_bias,
    inferred_layer,
    maybe_folded_bn,
    weight_and_bias,
)
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import AMBIGUOUS, INFERRED, ZERO, Alternative, Figure, FrameworkLayer
from onnxaudit.model.view import FxFacts, ModelView, Node

DYNAMO_FUSED_OPS = frozenset((*SAME_OP["Conv"], "ConvTranspose", *SAME_OP["Gemm"]))


@rule(DYNAMO_FUSED_OPS)
def torch_dynamo_conv_bn(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """torch.onnx dynamo (optimize=True) fuses BN into the conv: the conv node now sits in the BN
    module's scope, keeps the conv's weight name, and its bias is `<conv>.weight_bias` when the conv
    had none (or the conv's own `<conv>.bias`, re-valued). ConvTranspose + BN and Linear (Gemm) +
    BatchNorm1d fuse the same way. The node's metadata, read into the view, tells a BN without
    weight and bias (affine=False) and several BNs fused into one conv."""
    op, weight, bias = first_weight_and_bias(tensors, ("Conv", "ConvTranspose", "Gemm"))
    if weight is None or not weight.name.endswith(".weight"):
        return None
    if bias is None:
        return _dynamo_conv_bn_without_shift(layer, tensors, weight, ctx.view) if op == "Conv" else None
    if len(tensors) != 2:  # the BN's scope holds the fused weight and bias, nothing else
        return None
    conv_module = weight.name[: -len(".weight")]
    if conv_module == layer.name:
        return None
    c = channels_of(bias)
    had_bias = bias.name == f"{conv_module}.bias"
    if not had_bias and bias.name != f"{weight.name}_bias":
        return None
    # a bias the fusion made names it; a conv's own bias does not: then the node's call must be the BN's
    # (MultiheadAttention calls out_proj's weight and bias in its own scope, with no BN anywhere)
    if had_bias and not any(_bn_call(n) for n in layer.nodes if n.op_type == op):
        return None
    k = weight.count or 0
    conv = FrameworkLayer(
        conv_module, op, Figure.of(k + (c if had_bias else 0)), ZERO, INFERRED,
        [f"{op} node in BatchNorm scope {layer.name}: BN fused into {conv_module}",
         f"bias {bias.name}: the conv {'had its own bias' if had_bias else 'had no bias (created by the fusion)'}"],
        [t.name for t in (weight, bias)],
    )  # fmt: skip
    return [conv, *bns_fused_by_dynamo(layer, conv_module, c, ctx.view)]


_BN_CALLS = ("_native_batch_norm_legit", "batch_norm")


def _bn_call(node: Node) -> bool:
    """Whether dynamo recorded the node as made by a BatchNorm call (its last name scope)."""
    return bool(node.module_scopes) and node.module_scopes[-1].startswith(_BN_CALLS)


def _dynamo_conv_bn_without_shift(
    layer: Layer, tensors: list[ParamTensor], weight: ParamTensor, view: ModelView
) -> list[FrameworkLayer] | None:
    """The fusion of an untrained BN (beta 0, mean 0) after a conv without bias: the fused bias is all
    zeros and the optimizer drops it, so only the conv node's call, the BN's (its last name scope),
    tells that a BN was there."""
    convs = [n for n in layer.nodes if n.op_type == "Conv"]
    if len(tensors) != 1 or len(convs) != 1 or not _bn_call(convs[0]) or not weight.dims:
        return None
    conv_module, c = weight.name[: -len(".weight")], weight.dims[0]
    if conv_module == layer.name:
        return None
    conv = FrameworkLayer(
        conv_module, "Conv", Figure.of(weight.count or 0), ZERO, INFERRED,
        [f"Conv node in BatchNorm scope {layer.name} with no bias: BN fused into {conv_module}, its shift all "
         "zeros (an untrained BN: beta 0, running_mean 0) and dropped; bias=False assumed for the conv"],
        [weight.name],
    )  # fmt: skip
    return [conv, *bns_fused_by_dynamo(layer, conv_module, c, view)]


@rule(DYNAMO_FUSED_OPS)
def torch_parametrized_weight(
    ctx: FileContext, layer: Layer, tensors: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """torch.onnx dynamo folds a parametrized weight (weight_norm's g * v / |v|, spectral_norm's W / sigma)
    into one stored tensor named after the op that made it (`mul`, `div`), while the module's bias keeps
    its state_dict name. weight_norm's g spans one dim of the weight; spectral_norm adds no parameter."""
    if len(tensors) != 2:
        return None
    for op in ("Conv", "Gemm", "ConvTranspose"):
        weight, bias = weight_and_bias(tensors, op)
        if weight is None or bias is None or not weight.dims:
            continue
        module = bias.name.removesuffix(".bias")
        if module == bias.name or "/" in bias.name or "." in weight.name or "/" in weight.name:
            return None  # the bias must be a state_dict key, the weight an op output (`mul`, `div`)
        if ORT_REORDERED.fullmatch(weight.name):
            return None  # onnxruntime's NCHWc copy of a plain weight, reordered into channel blocks
        k, c, most = weight.count or 0, bias.count or 0, max(weight.dims)
        signed = _signed_parametrization(ctx.view.fx, weight, module)
        if signed is not None:
            least, most, said = signed
            status = INFERRED if least == most else AMBIGUOUS
            trainable = Figure.of(k + c + least) if least == most else Figure(k + c + least, k + c + most)
            return [FrameworkLayer(module, op, trainable, ZERO, status, [said], [weight.name, bias.name])]
        return [
            FrameworkLayer(
                module,
                op,
                Figure(k + c, k + c + most),
                ZERO,
                AMBIGUOUS,
                [
                    f"weight {weight.name} was computed at export beside state_dict bias {bias.name}: a parametrized "
                    f"weight (weight_norm: + g over one dim, at most {most}; spectral_norm: + 0)"
                ],
                [weight.name, bias.name],
            )  # fmt: skip
        ]
    return None


def _signed_parametrization(fx: FxFacts, weight: ParamTensor, module: str) -> tuple[int, int, str] | None:
    """What torch.onnx's graph signature says the folded weight came from: spectral_norm's one parameter
    (`<module>.parametrizations.weight.original`, the weight itself: + 0) or weight_norm's two
    (`original0` g and `original1` v, v the weight's shape: + g, over one dim or 0-d, 1 at least).
    (added at least, at most, evidence); None where the signature does not say."""
    most = max(weight.dims or (0,))
    sources = fx.folded_from.get(weight.name)
    if sources is None or not weight.dims:
        return None
    base = f"{module}.parametrizations.weight.original"
    own = sorted(s for s in sources if s in fx.signature_parameters)
    said = f"weight {weight.name} was folded at export from {', '.join(own)} (torch.onnx's graph signature)"
    if own == [base]:
        return 0, 0, f"{said}: spectral_norm's weight, stored as the product; no parameter more"
    if own == [f"{base}0", f"{base}1"]:
        return 1, most, f"{said}: weight_norm's g and v, v of the weight's shape, g over one dim or 0-d"
    return None


_TORCH_NORMS = frozenset({"LayerNormalization", "InstanceNormalization", "GroupNormalization", "RMSNormalization"})


@rule(_TORCH_NORMS)
def torch_norm_without_affine(
    ctx: FileContext, layer: Layer, tensors: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """LayerNorm(elementwise_affine=False) and the like: ONNX's norm ops want a scale, so the exporter
    writes one (a Constant node, or a dynamo `val_N`) where the module has none. Where dynamo's FX call
    passes the norm None for its weight and bias, the stand-ins are the exporter's: 0. Otherwise a scale
    or bias without a state_dict name may be such a stand-in: 0 to its size. LayerNorm(bias=False)
    through TorchScript: a state_dict weight and a zero bias the exporter wrote as a Constant node."""
    in_norm = [t for t in tensors if any(u.node.op_type in _TORCH_NORMS for u in t.uses)]
    if not in_norm or len(in_norm) != len(tensors):
        return None
    op = next(u.node.op_type for u in in_norm[0].uses if u.node.op_type in _TORCH_NORMS)
    # state_dict keys: the module's own weight or bias (not a Constant's output under a dotted scope:
    # `/stages/stages.1/downsample/norm/Constant_output_0`)
    named = [t for t in in_norm if "." in t.name and "/" not in t.name]
    if named:
        return _norm_without_bias(layer, op, named, [t for t in in_norm if t not in named])
    n, names = sum(t.count or 0 for t in in_norm), ", ".join(t.name for t in in_norm)
    if any(node.name in ctx.view.fx.norms_without_affine for node in layer.nodes):
        return inferred_layer(
            layer, op, ZERO, ZERO,
            f"{names}: written by the exporter, not parameters: the norm's FX call (dynamo's metadata) passes it "
            "no weight and bias (elementwise_affine=False)",
            in_norm,
        )  # fmt: skip
    return [
        FrameworkLayer(
            layer.name,
            op,
            Figure(0, n),
            ZERO,
            AMBIGUOUS,
            [
                f"{names}: no state_dict name, written by the exporter for a "
                f"norm without affine parameters (elementwise_affine=False) or renamed: 0 to {n}"
            ],
            [t.name for t in in_norm],
            [Alternative(f"{t.name} is the norm's parameter (renamed)", t.count or 0) for t in in_norm],
        )  # fmt: skip
    ]


def _norm_without_bias(
    layer: Layer, op: str, named: list[ParamTensor], made: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """A norm reading its state_dict weight and a bias the TorchScript exporter wrote as a Constant node
    in the norm's own scope (LayerNorm(bias=False)): the weight alone is the module's."""
    if len(named) != 1 or len(made) != 1 or named[0].origin != "initializer" or made[0].origin != "constant":
        return None
    weight, bias = named[0], made[0]
    node = next(u.node for u in weight.uses if u.node.op_type == op)
    if len(node.inputs) < 3 or node.inputs[1:3] != (weight.name, bias.name):
        return None
    return inferred_layer(
        layer, op, Figure.of(weight.count or 0), ZERO,
        f"weight {weight.name} {weight.count}; bias {bias.name}: a Constant node the exporter wrote beside the "
        "state_dict weight (bias=False), not a parameter",
        [weight, bias],
    )  # fmt: skip


@rule("BatchNormalization")
def bn_statistics_stored_once(
    ctx: FileContext, layer: Layer, tensors: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """An untrained BN's running mean (zeros) and variance (ones) equal its beta and gamma: a
    simplifier (onnxsim, onnxslim) stores each once and the node reads `(gamma, beta, beta, gamma)`.
    The statistics are then counted as the parameters they equal, not as buffers of their own."""
    affine = {t.name: t for t in tensors if t.role in ("bn_gamma", "bn_beta")}
    if not affine or len(affine) != len(tensors):
        return None
    bns = [n for n in layer.nodes if n.op_type == "BatchNormalization" and len(n.inputs) == 5]
    if len(bns) != 1 or not set(bns[0].inputs[3:]) & set(affine):
        return None
    c = max(t.count or 0 for t in affine.values())
    stats = ", ".join(f"{slot} {name}" for slot, name in zip(("mean", "variance"), bns[0].inputs[3:], strict=True))
    return inferred_layer(
        layer,
        "BatchNormalization",
        Figure.of(sum(t.count or 0 for t in affine.values())),
        Figure.of(2 * c),
        f"running statistics read from the BN's own parameters ({stats}): equal values stored once (an untrained "
        f"BN: mean 0 = beta, variance 1 = gamma); 2 x {c} statistics",
        tensors,
    )


@rule("BatchNormalization")
def torch_instance_norm_with_stats(
    ctx: FileContext, layer: Layer, tensors: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """InstanceNorm(track_running_stats=True) in eval mode, as dynamo writes it for a static batch N: a
    BatchNormalization over the input reshaped to N*C channels, its four vectors tiled N times. C is in
    the Reshape back to (N, C, ...), or else the output channels of the conv before it."""
    bn = next((n for n in layer.nodes if n.op_type == "BatchNormalization" and n.outputs), None)
    if bn is None or not bn.module_scopes or not bn.module_scopes[-1].startswith("instance_norm"):
        return None
    widths = {t.count for t in tensors}
    if len(tensors) != 4 or len(widths) != 1:
        return None
    width = widths.pop() or 0
    c, source = _instance_channels(bn, layer, ctx.view)
    if not c or width % c:
        return None
    n = width // c
    affine = bn.name not in ctx.view.fx.norms_without_affine
    return inferred_layer(
        layer,
        "InstanceNorm",
        Figure.of(2 * c if affine else 0),
        Figure.of(2 * c),
        f"InstanceNorm with running stats written as a BatchNormalization over N x C = {n} x {c} channels: "
        f"{'weight, bias, ' if affine else ''}running_mean, running_var stored {n} times each, {c} channels "
        f"({source})",
        tensors,
    )


def _instance_channels(bn: Node, layer: Layer, view: ModelView) -> tuple[int, str]:
    """C of an InstanceNorm written as a BN over N*C: from the Reshape back to (N, C, ...) in its layer,
    or from the weight of the conv whose output was reshaped to (1, N*C, ...) for it."""
    restore = next((n for n in layer.nodes if n.op_type == "Reshape" and n.inputs[:1] == bn.outputs[:1]), None)
    shape = view.main.tensors.get(restore.inputs[1]) if restore is not None and len(restore.inputs) > 1 else None
    values = shape.values if shape is not None else None
    if values and len(values) >= 2 and values[1] > 0:
        return values[1], f"the Reshape back to {tuple(values)}"
    producers = view.main.producers
    flat = producers.get(bn.inputs[0]) if bn.inputs else None
    conv = producers.get(flat.inputs[0]) if flat is not None and flat.op_type == "Reshape" and flat.inputs else None
    weight = view.main.tensors.get(conv.inputs[1]) if conv is not None and conv.op_type == "Conv" else None
    if weight is not None and weight.dims:
        return weight.dims[0], f"the {weight.dims[0]} output channels of {conv.label}"  # type: ignore[union-attr]
    return 0, ""


@rule("BatchNormalization")
def torch_bn_without_affine(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """BatchNorm(affine=False) through torch.onnx (TorchScript): the exporter writes gamma and beta as
    Constant nodes (ones, zeros) while the running statistics stay state_dict initializers."""
    roles = {t.role: t for t in tensors}
    if sorted(roles) != ["bn_beta", "bn_gamma", "bn_mean", "bn_var"] or len(tensors) != 4:
        return None
    made = [roles["bn_gamma"], roles["bn_beta"]]
    if any(t.origin != "constant" for t in made) or any(
        roles[r].origin != "initializer" for r in ("bn_mean", "bn_var")
    ):
        return None
    c = roles["bn_mean"].count or 0
    return inferred_layer(
        layer,
        "BatchNorm",
        ZERO,
        Figure.of(2 * c),
        f"gamma and beta are Constant nodes the exporter wrote, running stats are initializers: "
        f"affine=False, running_mean and running_var 2 x {c} only",
        tensors,
    )


# a conv weight computed at export, named by who folded it: torch.onnx's constant folding (`onnx::Conv_42`;
# a bare number, `391`, before torch 1.13), onnx-simplifier (`_v_37`), onnxslim (`<the BN's output>_weight`:
# `/b1/BatchNormalization_output_0_weight`, `getitem_weight`)
_FOLDED_CONV_WEIGHT = re.compile(r"onnx::.+|\d+|_v_\d+|.+_weight")


@rule(SAME_OP["Conv"])
def torch_legacy_folded_conv(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A BN folded into a conv (torch.onnx (TorchScript) with constant folding, or a simplifier run
    on any export) leaves an anonymous weight where an unfolded conv keeps its state_dict name. The
    BN's own name is gone and the conv's original bias cannot be told from the folded shift."""
    weight, bias = weight_and_bias(tensors, "Conv")
    if weight is None or not _FOLDED_CONV_WEIGHT.fullmatch(weight.name) or path_from_tensor_name(weight.name):
        return None
    # a layer holding more than one conv's weight and biases (a BN folded at run time): not this rule's
    if sum(t.role == "weight" for t in tensors) != 1 or any(t.role not in ("weight", "bias") for t in tensors):
        return None
    c = channels_of(bias) if bias is not None else (weight.dims[0] if weight.dims else 0)
    k = weight.count or 0
    conv = FrameworkLayer(
        layer.name, "Conv", Figure(k, k + c), ZERO, AMBIGUOUS,
        [f"anonymous folded weight {weight.name}: a BatchNorm was folded into {layer.name}",
         f"the original conv bias ({c}) cannot be told apart from the folded shift"],
        [t.name for t in (weight, bias) if t is not None],
        [Alternative(f"{layer.name} had a bias of its own before the fold", c)],
    )  # fmt: skip
    bn = FrameworkLayer(
        f"{layer.name} (+folded BatchNorm)", "BatchNorm", Figure(0, 2 * c), Figure.of(2 * c), AMBIGUOUS,
        [f"folded BatchNorm over {c} channels: running stats 2 x {c} existed; weight and bias 0 or 2 x {c} (affine)"],
        alternatives=[Alternative(f"the BatchNorm folded into {layer.name} was affine (weight and bias)", 2 * c)],
    )  # fmt: skip
    return [conv, bn]


@rule(SAME_OP["Conv"], SAME_OP["Gemm"])
def nameless_torch_fold(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A PyTorch export in which no parameter keeps its state_dict name (torch.jit.freeze'd modules,
    whose weights become `/Constant_N` nodes; scripted modules of old releases, named `391`): freezing
    folds a BN into the Conv or Linear before it, and nothing in the file tells whether it did."""
    for op in ("Conv", "Gemm"):
        weight, bias = weight_and_bias(tensors, op)
        if weight is not None and bias is not None and len(tensors) == 2:
            return maybe_folded_bn(
                layer, tensors, bias, "folded?",
                f"no parameter of this PyTorch export keeps its name (a frozen or scripted module): a "
                f"BatchNorm may have been folded into this {op}",
            )  # fmt: skip
    return None
