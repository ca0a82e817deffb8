"""Keras through tf2onnx: BatchNormalization lowered or folded, PReLU, Normalization, recurrent biases."""

from __future__ import annotations

import re

from onnxaudit.count.layers import Layer, tflite_parts
from onnxaudit.count.roles import Use
from onnxaudit.count.table import ParamTensor
from onnxaudit.frameworks.common import (
    FOLD_TARGETS,
    SAME_OP,
    channels_of,
    file_layer,
    inferred_layer,
    kind_of,
    out_channels,
    weight_and_bias,
)
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import AMBIGUOUS, INFERRED, ZERO, Alternative, Figure, FrameworkLayer
from onnxaudit.model.view import Node

# The shift of tf.nn.batch_normalization, named after the op that made it: with gamma the ops are
# mul (rsqrt * gamma), mul_1 (x * scale), mul_2 (mean * scale), sub (beta - mul_2); without gamma
# mul (x * rsqrt), mul_1 (mean * rsqrt), sub. Without beta there is no sub: the shift is -(mean * scale),
# named after the product. So `sub` shows beta; `mul_2` gamma and no beta; `mul_1` neither.
_BN_SHIFT = re.compile(r"/batchnorm/(sub|mul_1|mul_2)(:\d+)?$")


UNNAMED_CONV = " (the conv before "  # a folded conv whose node kept no layer name: `Conv__36 (the conv before bn)`

_BN_SHIFT_SAYS = {"sub": (None, True), "mul_2": (True, False), "mul_1": (False, False)}


def _bn_shift_says(name: str) -> tuple[bool | None, bool | None]:
    """(gamma, beta) as the name of a BN's folded shift shows them; None where it cannot."""
    found = _BN_SHIFT.search(name)
    return _BN_SHIFT_SAYS[found.group(1)] if found else (None, None)


@rule("Mul", "Add", "Sub")
def keras_bn_scale_shift(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx on Keras: BatchNormalization lowered to x * scale + shift (2 of its 4 vectors survive).
    The scale's name tells whether gamma was multiplied in (`batchnorm/mul`) or not (`batchnorm/Rsqrt`).
    One of the two may be gone: an untrained BN's shift is all zeros and tf2onnx drops its Add, and a
    simplifier (onnxsim, onnxslim) or onnxruntime fuses the scale's Mul into the conv before it."""
    if not any("/batchnorm/" in n.name for n in layer.nodes) or _moments_at_run_time(layer):
        return None
    muls = [t for t in tensors if any(u.node.op_type == "Mul" for u in t.uses)]
    adds = [t for t in tensors if any(u.node.op_type in ("Add", "Sub") for u in t.uses)]
    scale: ParamTensor | None
    shift: ParamTensor | None
    if len(tensors) == 2 and len(muls) == 1 and len(adds) == 1 and muls[0].count == adds[0].count:
        scale, shift = muls[0], adds[0]
    elif len(tensors) == 1 and len(muls) + len(adds) == 1:
        scale, shift = (muls[0], None) if muls else (None, adds[0])
    else:
        return None
    if scale is None and layer.name in ctx.tflite_folded_bns:
        return None  # the shift is the bias of the op the BN was folded into, rebuilt from that op's name
    c = (scale or shift).count or 0  # type: ignore[union-attr]
    ops = "Mul + Add" if scale and shift else "Mul" if scale else "Add"
    evidence = [f"node scope {layer.name}/batchnorm: BatchNormalization lowered to {ops} over {c} channels"]
    folded = " and ".join(t.name for t in (scale, shift) if t is not None)
    evidence.append(f"moving mean and variance folded into {folded}: 2 x {c} non-trainable")
    says_gamma, says_beta = _bn_shift_says(shift.name) if shift is not None else (None, None)
    gamma = scale is not None and scale.name.endswith(("batchnorm/mul:0", "batchnorm/mul")) or says_gamma is True
    no_gamma = scale is not None and "Rsqrt" in scale.name or says_gamma is False
    seen = f"the scale is {scale.name}" if scale is not None and says_gamma is None else f"the shift is {shift.name}"  # type: ignore[union-attr]
    known = 0  # vectors the names show
    alternatives = []
    if gamma:
        known += 1
        evidence.append(f"gamma present: {seen} (rsqrt(var) * gamma)")
    elif no_gamma:
        evidence.append(f"no gamma (scale=False): {seen}")
    else:
        alternatives.append(Alternative(f"{layer.name} has scale=False", -c))
        evidence.append(
            "gamma assumed present (scale=True, the Keras default): it cannot be told from the scale's name"
            if scale is not None
            else "gamma assumed present (scale=True, the Keras default): the scale's Mul was fused into the layer "
            "before (a simplifier, onnxruntime)"
        )
    if says_beta:
        known += 1
        evidence.append(f"beta present: the shift is {shift.name} (beta - mean * scale)")  # type: ignore[union-attr]
    elif says_beta is False:
        evidence.append(f"no beta (center=False): the shift is {shift.name}, -(mean * scale)")  # type: ignore[union-attr]
    else:
        alternatives.append(Alternative(f"{layer.name} has center=False", -c))
        evidence.append(
            f"beta assumed present (center=True, the Keras default): the shift {shift.name} cannot show it"
            if shift is not None
            else "beta assumed present (center=True, the Keras default): the shift was all zeros (an untrained "
            "BN: beta 0, moving mean 0) and tf2onnx dropped its Add"
        )
    trainable = Figure.assumed((known + len(alternatives)) * c, (a.trainable for a in alternatives))
    names = [t.name for t in (scale, shift) if t is not None]
    return [
        FrameworkLayer(
            layer.name, "BatchNormalization", trainable, Figure.of(2 * c), INFERRED, evidence, names, alternatives
        )
    ]


def _moments_at_run_time(layer: Layer) -> bool:
    """tf_keras's LayerNormalization off its fused path (epsilon under 1.001e-5, ConvNeXt's 1e-6) calls
    tf.nn.batch_normalization too, its `batchnorm/` ops named as a BN's, but on moments it computes (a
    ReduceMean): its two vectors are gamma and beta, no folded statistics."""
    return any(n.op_type == "ReduceMean" for n in layer.nodes)


@rule(SAME_OP["Conv"])
def keras_conv_bn_merged(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx on Keras 3: a BN after a bias-free conv is merged into it; the conv's bias is the BN's
    shift (`<bn>/batchnorm/sub`, or `mul_2` / `mul_1` without beta: _bn_shift_says), so the conv had
    no bias of its own. A SeparableConv2D is two convs (depthwise, then pointwise, which takes the shift): both
    kernels are the layer's."""
    weight, bias = weight_and_bias(tensors, "Conv")
    if weight is None or bias is None or not _BN_SHIFT.search(bias.name):
        return None
    bn_name = ctx.naming.layer(bias.name)
    if not bn_name or bn_name == layer.name:
        return None
    kernels = [t for t in tensors if t is not bias]
    if any(t.category != "parameter" for t in kernels):
        return None
    c = channels_of(bias)
    conv = FrameworkLayer(
        layer.name, "Conv", Figure.of(sum(t.count or 0 for t in kernels)), ZERO, INFERRED,
        [f"the conv's bias {bias.name} is BatchNormalization {bn_name}'s folded shift: the conv had no bias"],
        [t.name for t in kernels],
    )  # fmt: skip
    gamma, beta = _bn_shift_says(bias.name)
    alternatives = []
    if beta:
        vectors, kept = (
            4,
            (
                f"beta present (the shift is {bias.name}); gamma assumed present (scale=True, the Keras default: "
                "the merge cannot show scale=False)"
            ),
        )
        alternatives.append(Alternative(f"{bn_name} has scale=False", -c))
    elif gamma:
        vectors, kept = 3, f"gamma present, no beta (center=False): the shift {bias.name} is -(mean * scale)"
    else:
        vectors, kept = 2, f"no gamma, no beta (scale=False, center=False): the shift {bias.name} is -(mean * rsqrt)"
    bn = FrameworkLayer(
        bn_name, "BatchNormalization", Figure.assumed((vectors - 2) * c, (a.trainable for a in alternatives)),
        Figure.of(2 * c), INFERRED,
        [
            f"BatchNormalization {bn_name} merged into {layer.name}: {vectors} x {c} (moving stats 2 x {c} "
            "non-trainable)",
            kept,
        ],
        [bias.name],
        alternatives,
    )  # fmt: skip
    return [conv, bn]


@rule(FOLD_TARGETS, SAME_OP["Conv"], SAME_OP["Gemm"])
def keras_fused_bn(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx on tf_keras (Keras 2): BN folded into the conv (`*_fused_bn` initializers, the conv's
    output named `<bn>/FusedBatchNormV3`). Or a simplifier (onnxslim) fused tf2onnx's Conv, Mul and Add
    into one Conv named after the BN's ops (`<bn>/batchnorm/mul_1`). Or tf2onnx converted a TFLite file,
    whose converter folded the BN into the conv, transposed conv or Dense before it: the op's fused name
    lists the BN's ops (`...;<bn>/batchnorm/add_1;<conv>/BiasAdd;...`). The original bias cannot be
    told from the folded shift. One scope may hold several such convs (tf_keras layers named with a
    slash, MobileNetV3's `expanded_conv_9/expand`, `.../depthwise`, `.../project`): each is rebuilt, and
    the scope's other tensors (its squeeze-excite convs) are counted as stored."""
    convs: list[FrameworkLayer] = []
    bns: list[FrameworkLayer] = []
    used: set[str] = set()
    for op, weight, bias in _fold_targets(tensors):
        folded = _fused_bn(ctx, op, weight, bias)
        if folded:
            convs.append(folded[0])
            bns.append(folded[1])
            used.update(t.name for t in (weight, bias) if t is not None)
    if not convs:
        return None
    # the convs' bias alternatives first: verify names the fewest, first found (a conv before a BN is
    # more often bias-free than its BN without center)
    rebuilt = [*convs, *bns]
    rest = [t for t in tensors if t.name not in used]
    return [*rebuilt, file_layer(layer, rest)] if rest else rebuilt


def _fold_targets(tensors: list[ParamTensor]) -> list[tuple[str, ParamTensor, ParamTensor | None]]:
    """Each weight of an op a BN may be folded into, with the bias its node reads (None: no bias slot)."""
    biases = {u.node.index: t for t in tensors if t.role == "bias" for u in t.uses}
    found = []
    for op in FOLD_TARGETS:
        ops = SAME_OP.get(op, (op,))
        for weight in tensors:
            node = (
                next((u.node for u in weight.uses if u.node.op_type in ops), None) if weight.role == "weight" else None
            )
            if node is not None:
                found.append((op, weight, biases.get(node.index)))
    return found


def _fused_bn(ctx: FileContext, op: str, weight: ParamTensor, bias: ParamTensor | None) -> list[FrameworkLayer]:
    """The conv (or Dense) holding `weight` and the BN folded into it, when its names show the fold."""
    naming = ctx.naming
    ops = SAME_OP.get(op, (op,))
    conv_node = next(u.node for u in weight.uses if u.node.op_type in ops)
    bn_part = next((part for part in tflite_parts(conv_node.name) if "/batchnorm/" in part), None)
    in_bn_scope = bn_part is not None
    if not in_bn_scope and not (op == "Conv" and weight.name.endswith("_fused_bn")):
        return []
    bn_output = next((o for o in conv_node.outputs if "FusedBatchNorm" in o), None)
    bn_name = naming.layer(bn_output) if bn_output is not None else None
    fused = ";" in conv_node.name  # a TFLite op's name: its main part names the layer of the weights
    conv_scope = bn_scope = None  # the full scopes, where they name more than the row (slashed names)
    if in_bn_scope:
        bn_name = bn_name or naming.layer(bn_part)  # type: ignore[arg-type]
        conv_name = naming.layer(conv_node.name) if fused else None
        if not conv_name or conv_name == bn_name:
            conv_name = _input_layer(conv_node, ctx) or conv_node.label
    else:
        conv_name = naming.layer(weight.name) or _input_layer(conv_node, ctx)
        conv_name = conv_name or (f"{conv_node.label}{UNNAMED_CONV}{bn_name})" if bn_name else conv_node.label)
        conv_scope, bn_scope = naming.scope(weight.name), naming.scope(bn_output) if bn_output else None
    conv_label, bn_text = conv_scope or conv_name, bn_scope or bn_name
    c = channels_of(bias) if bias is not None else out_channels(op, conv_node, weight)
    conv = _folded_conv(conv_name, conv_label, op, weight, c, None if fused or in_bn_scope else conv_node)
    # the *_fused_bn weight alone proves the fold; onnxruntime's re-save may drop the output's name
    if fused:
        seen = f"{op} node fused from the BatchNormalization's ops ({bn_part}; a TFLite op)"
    elif in_bn_scope:
        seen = f"conv node {conv_node.name} in the BatchNormalization's scope (its Mul and Add fused into the conv)"
    else:
        seen = f"conv output named {bn_text}/FusedBatchNormV3" if bn_name else f"weight {weight.name}"
    bn_label = bn_name or f"{conv_name} (+folded BatchNorm)"
    said = bn_text or bn_label
    affine = [Alternative(f"{said} has center=False", -c), Alternative(f"{said} has scale=False", -c)]
    bn = FrameworkLayer(
        bn_label,
        "BatchNormalization",
        Figure.assumed(2 * c, [-c, -c]),
        Figure.of(2 * c),
        AMBIGUOUS,
        [
            f"{seen}: BatchNormalization folded, over {c} channels",
            f"moving mean and variance 2 x {c} non-trainable; gamma and beta 2 x {c} (center=True, "
            f"scale=True, the Keras defaults), 0 to 2 x {c}: a fold cannot show center/scale",
        ],
        [t.name for t in (weight, bias) if t is not None],
        affine,
    )  # fmt: skip
    return [conv, bn]


# the TF op whose name tf2onnx's folded conv keeps: the conv op itself (no BiasAdd after it), or its BiasAdd
_TF_CONV_OPS = ("Conv2D", "Conv3D", "depthwise", "convolution", "conv1d")


def _folded_conv(name: str, label: str, op: str, weight: ParamTensor, c: int, node: Node | None) -> FrameworkLayer:
    """The conv (or Dense) a BN was folded into. tf2onnx's conv keeps the name of the TF op whose output the BN
    read: `<conv>/BiasAdd` when the conv had a bias (merged into the conv first), `<conv>/Conv2D` (or
    `/depthwise`) when it had none; a conv tf2onnx made anew (`Conv__19`) cannot show it."""
    k = weight.count or 0
    what = "conv bias" if op == "Conv" else f"{op} bias"
    last = node.name.rpartition("/")[2] if node is not None and "/" in node.name else ""
    if last == "BiasAdd":
        evidence = (
            f"BN folded into {label}: the conv node kept the name of its BiasAdd ({node.name}): a {what} of {c} "  # type: ignore[union-attr]
            "(use_bias=True), folded with the BN's shift"
        )
        return FrameworkLayer(name, op, Figure.of(k + c), ZERO, INFERRED, [evidence], [weight.name])
    if last in _TF_CONV_OPS:
        evidence = (
            f"BN folded into {label}: the conv node is named after the TF conv op ({node.name}), no BiasAdd: "  # type: ignore[union-attr]
            f"no {what} (use_bias=False); the stored bias is the BN's folded shift"
        )
        return FrameworkLayer(name, op, Figure.of(k), ZERO, INFERRED, [evidence], [weight.name])
    return FrameworkLayer(
        name, op, Figure.assumed(k + c, [-c]), ZERO, AMBIGUOUS,
        [f"BN folded into {label}: the original {what} ({c}) cannot be told apart from the folded shift; "
         "counted (use_bias=True, the Keras default)"],
        [weight.name],
        [Alternative(f"{label} has use_bias=False", -c)],
    )  # fmt: skip


def _input_layer(node: Node, ctx: FileContext) -> str | None:
    """The Keras layer of the Transpose feeding `node`: tf2onnx's NHWC->NCHW Transpose keeps the conv's
    scope. Any other producer is the layer before (a ReLU), which names nothing about the conv."""
    producer = ctx.producer_of(node.inputs[0]) if node.inputs else None
    return ctx.naming.layer(producer.name) if producer is not None and producer.op_type == "Transpose" else None


@rule("LSTM", "GRU")
def keras_recurrent_bias(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx writes a Keras LSTM's single bias (4H) as ONNX's Wb and fills Rb with zeros (B is 8H);
    a GRU with reset_after=False (ONNX linear_before_reset=0) likewise has a zero-filled half."""
    rnn = next((u.node for t in tensors for u in t.uses if u.node.op_type in ("LSTM", "GRU")), None)
    bias = next((t for t in tensors if t.role == "rnn_B"), None)
    if rnn is None or bias is None or not bias.dims or len(bias.dims) != 2:
        return None
    if rnn.op_type == "GRU" and rnn.attrs.get("linear_before_reset") == 1:
        return None  # reset_after=True: Keras keeps both bias rows, as stored
    directions, width = bias.dims
    kept = directions * (width // 2)
    others = sum(t.count or 0 for t in tensors if t is not bias and t.category == "parameter")
    zeroed = f"{rnn.op_type} bias {bias.name} {directions}x{width}"
    return [
        FrameworkLayer(
            layer.name,
            rnn.op_type,
            Figure.of(others + kept),
            ZERO,
            INFERRED,
            [f"{zeroed}: Keras has one bias of {width // 2} per direction; the recurrent half is zero-filled"],
            [t.name for t in tensors],
        )  # fmt: skip
    ]


_PRELU_ALPHA = re.compile(r"/Neg(:\d+)?$")


@rule("Neg")  # with Relu, Mul and Add: Neg is the rarest
def keras_prelu(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx writes a Keras PReLU as relu(x) + (-alpha) * relu(-x): the slopes are stored negated
    (`<prelu>/Neg`) and feed a bare Mul, so the role table cannot call them parameters."""
    if len(tensors) != 1 or not {"Relu", "Neg", "Mul", "Add"} <= set(layer.op_types):
        return None
    alpha = tensors[0]
    if not _PRELU_ALPHA.search(alpha.name) or not any(u.node.op_type == "Mul" for u in alpha.uses):
        return None
    c = alpha.count or 0
    evidence = f"PReLU lowered to Relu(x) - alpha * Relu(-x): {alpha.name} holds the {c} negated slopes"
    return [FrameworkLayer(layer.name, "PReLU", Figure.of(c), ZERO, INFERRED, [evidence], [alpha.name])]


def _subtracts(use: Use) -> bool:
    if use.node.op_type == "Sub":
        return use.slot == 1
    return use.node.op_type == "Add" and use.node.name.rsplit("/", 1)[-1].lower().startswith("sub")


@rule("Mul", "Div")
def keras_normalization(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx on a Keras Normalization: (x - mean) * 1/sqrt(variance), both folded to constants
    (`<norm>/sub/y`, `.../truediv_recip`). Keras also keeps a `count` scalar that no op reads, so it is
    never in the file: Keras's figure is 2 x features + 1, all non-trainable. Keras 3's own export may
    leave the mean a graph input (`<norm>/Sub/y:0`): then only 1/sqrt(variance) is stored."""
    if not 1 <= len(tensors) <= 2 or any(t.category != "unclassified" for t in tensors):
        return None
    # the mean is what the Sub takes away; tf2onnx may name it after an op folded into it (a Rescaling's
    # offset) and may write the Sub as an Add of the negated mean that keeps the Sub's node name
    mean = next((t for t in tensors if any(_subtracts(u) for u in t.uses)), None)
    inv = next((t for t in tensors if t is not mean and any(u.node.op_type in ("Mul", "Div") for u in t.uses)), None)
    if inv is None or "truediv" not in inv.name:
        return None
    mean_name = mean.name if mean is not None else _input_subtracted(ctx, layer)
    if mean_name is None or mean is not None and mean.count != inv.count or len(tensors) == 2 and mean is None:
        return None
    c = inv.count or 0
    evidence = [
        f"Normalization lowered to Sub + Mul over {c} features: mean {mean_name}, 1/sqrt(variance) {inv.name}"
        f" (non-trainable)",
        "count: Keras keeps 1 non-trainable scalar beside mean and variance that no op reads; "
        "it is not in the file and is added here",
        "assumed built without mean=/variance= arguments (adapted or loaded): with them Keras holds "
        "constants and reports 0",
    ]
    if mean is None:
        evidence.insert(1, f"the mean is the graph input {mean_name} (Keras 3's export leaves it an input): counted")
    given = Alternative(f"{layer.name} was built with mean= and variance= (constants, no weights)", 0, -(2 * c + 1))
    stats = Figure.assumed(2 * c + 1, [given.non_trainable])
    names = [t.name for t in (mean, inv) if t is not None]
    return [FrameworkLayer(layer.name, "Normalization", ZERO, stats, INFERRED, evidence, names, [given])]


def _input_subtracted(ctx: FileContext, layer: Layer) -> str | None:
    """The graph input a Sub of the layer takes away (Keras 3's export of a Normalization's mean)."""
    inputs = {v.name for v in ctx.view.main.inputs}
    sub = next((n for n in layer.nodes if n.op_type == "Sub" and len(n.inputs) == 2 and n.inputs[1] in inputs), None)
    return sub.inputs[1] if sub is not None else None


_TF_CONST = re.compile(r"/Const(_\d+)?(:\d+)?$")


@rule("BatchNormalization")
def keras_bn_const_affine(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf_keras feeds a BatchNormalization node constants in place of a missing gamma (ones, scale=False)
    or beta (zeros, center=False), named `<bn>/Const`: stored in the file, but not Keras weights."""
    bn = next((n for n in layer.nodes if n.op_type == "BatchNormalization"), None)
    by_name = {t.name: t for t in tensors}
    if bn is None or len(bn.inputs) < 5 or len(by_name) != 4:
        return None
    gamma, beta, mean, var = (by_name.get(name) for name in bn.inputs[1:5])
    if gamma is None or beta is None or mean is None or var is None:
        return None
    missing = [(slot, t) for slot, t in (("gamma", gamma), ("beta", beta)) if _TF_CONST.search(t.name)]
    if not missing:
        return None
    c = mean.count or 0
    kept = [t for t in (gamma, beta) if all(t is not m for _, m in missing)]
    evidence = [f"{slot} is the constant {t.name}, not a weight (tf_keras's stand-in for scale/center=False)"
                for slot, t in missing]  # fmt: skip
    evidence.append(f"moving mean and variance 2 x {c} non-trainable")
    return [
        FrameworkLayer(
            layer.name,
            "BatchNormalization",
            Figure.of(sum(t.count or 0 for t in kept)),
            Figure.of(2 * c),
            INFERRED,
            evidence,
            [t.name for t in (*kept, mean, var)],
        )  # fmt: skip
    ]


@rule("Loop")
def keras_rnn_loop_bias(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A Keras RNN that tf2onnx left as a while Loop (masked input, SimpleRNN): the cell's bias feeds a
    `BiasAdd` and the Loop's body, so the role table leaves it unclassified; it is a trainable weight."""
    if "Loop" not in layer.op_types:
        return None
    unknown = [t for t in tensors if t.category == "unclassified"]
    if not unknown or any(not _feeds_bias_add(t) for t in unknown):
        return None
    total = sum(t.count or 0 for t in tensors)
    names = ", ".join(t.name for t in unknown)
    evidence = f"recurrent layer run as a Loop: {names} feeds BiasAdd, the cell's bias (trainable)"
    return [
        FrameworkLayer(
            layer.name, kind_of(layer), Figure.of(total), ZERO, INFERRED, [evidence], [t.name for t in tensors]
        )
    ]


def _feeds_bias_add(t: ParamTensor) -> bool:
    return any(u.node.op_type == "Add" and u.node.name.rsplit("/", 1)[-1] == "BiasAdd" for u in t.uses)


_TF_CALLS = ("StatefulPartitionedCall", "PartitionedCall")


@rule(_TF_CALLS)
def keras_conv_left_as_call(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A Conv2D with groups > 1 (ConvNeXt's depthwise conv, groups = channels): TensorFlow runs it as a
    compiled function that tf2onnx cannot convert and leaves as a (Stateful)PartitionedCall node reading
    the kernel in TF's layout (kh, kw, in/groups, out); the bias feeds the BiasAdd after it."""
    call = next((n for n in layer.nodes if n.op_type in _TF_CALLS), None)
    kernels = [t for t in tensors if len(t.dims or ()) == 4 and any(u.node is call for u in t.uses)]
    if call is None or len(kernels) != 1:
        return None
    kernel = kernels[0]
    out = kernel.dims[-1]  # type: ignore[index]
    biases = [t for t in tensors if t is not kernel]
    if any(t.count != out or not _feeds_bias_add(t) for t in biases) or len(biases) > 1:
        return None
    kh, kw, per_group, _ = kernel.dims  # type: ignore[misc]
    evidence = [
        f"{call.op_type} {call.name}: a TF function tf2onnx left unconverted, reading {kernel.name} "
        f"{kh}x{kw}x{per_group}x{out}, a conv kernel in TF's layout (kh, kw, in/groups, out): a Conv2D with "
        "groups > 1 (a depthwise conv when in/groups is 1), run by TF as a compiled function"
    ]
    if biases:
        evidence.append(f"its bias {biases[0].name} ({out}) feeds the BiasAdd after the call")
    total = sum(t.count or 0 for t in (kernel, *biases))
    names = [t.name for t in (kernel, *biases)]
    return [FrameworkLayer(layer.name, "Conv2D", Figure.of(total), ZERO, INFERRED, evidence, names)]


_VARIABLE_READ = re.compile(r"/ReadVariableOp(_\d+)?(:\d+)?$")


@rule("Mul")
def keras_layer_scale(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """ConvNeXt's LayerScale (and CaiT's, any per-channel learned scale): one Keras variable, read by
    name (`<layer>/mul/ReadVariableOp`), multiplied channel-wise into the branch it scales. A variable
    read, not a constant: a Keras weight, trainable (a frozen one no ONNX file shows)."""
    if len(tensors) != 1 or tensors[0].category != "unclassified":
        return None
    gamma = tensors[0]
    dims = [d for d in gamma.dims or () if d > 1]
    if len(dims) != 1 or not _VARIABLE_READ.search(gamma.name) or any(u.node.op_type != "Mul" for u in gamma.uses):
        return None
    c = dims[0]
    evidence = (
        f"{gamma.name}: a Keras variable (a ReadVariableOp, not a constant) of {c} multiplied channel-wise into "
        "the layer's input: a per-channel scale weight (ConvNeXt's LayerScale gamma), trainable"
    )
    return inferred_layer(layer, "LayerScale", Figure.of(gamma.count or 0), ZERO, evidence, [gamma])
