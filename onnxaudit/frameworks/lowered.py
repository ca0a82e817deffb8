"""Norms written out as ops (LayerNorm, RMSNorm, GroupNorm, a Sub+Mul+Add BatchNorm) rebuilt."""

from __future__ import annotations

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.frameworks.common import inferred_layer
from onnxaudit.frameworks.context import FileContext, rule
from onnxaudit.frameworks.figures import INFERRED, ZERO, Alternative, Figure, FrameworkLayer
from onnxaudit.io.dims import element_count
from onnxaudit.model.ops import RESHAPING_OPS
from onnxaudit.model.view import MAIN, ModelView, Node

_RUNTIME_STATS = frozenset({"ReduceMean", "GlobalAveragePool", "Sqrt", "Reciprocal", "ReduceSumSquare"})


def _scale_or_shift(t: ParamTensor) -> tuple[bool, bool]:
    """Whether `t` scales (reaches a Mul) and whether it shifts (reaches an Add, or is what a Sub takes
    from: tf.nn.batch_normalization, tf_keras's unfused LayerNormalization, shifts by `beta - mean * scale`),
    in one pass over its uses."""
    scales = shifts = False
    for u in t.uses:
        op = u.node.op_type
        if op == "Mul":
            scales = scales or RESHAPING_OPS.issuperset(u.via)
        elif op == "Add":
            shifts = shifts or RESHAPING_OPS.issuperset(u.via)
        elif op == "Sub" and u.slot == 0:
            shifts = True
    return scales, shifts


@rule(_RUNTIME_STATS)
def lowered_layer_norm(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A LayerNormalization written out as ops: mean and variance computed at run time, then
    `* gamma + beta` with two per-feature vectors (Keras 3 on TF; tf_keras via a stat-less BN node)."""
    ops = {n.op_type for n in layer.nodes}
    if not tensors or _RUNTIME_STATS.isdisjoint(ops):
        return None
    gammas, betas = [], []
    for t in tensors:
        # per-feature gamma and beta (a group norm's as (groups, C/groups)), not T5's (1, heads, q, k) zeros
        dims = t.dims or ()  # more than 2 dims over 1 needs more than 2 dims: no generator for a vector
        if t.category == "statistic" or len(dims) > 2 and sum(d > 1 for d in dims) > 2:
            return None
        scales, shifts = _scale_or_shift(t)
        if scales:
            gammas.append(t)
        if shifts:
            betas.append(t)
    if len(gammas) > 1 or len(betas) > 1 or len(gammas) + len(betas) != len(tensors):
        return None
    widths = {t.count for t in tensors}
    if len(widths) != 1:
        return None
    c = widths.pop() or 0
    parts = [f"gamma {gammas[0].name}"] if gammas else []
    parts += [f"beta {betas[0].name}"] if betas else []
    runtime = sorted(ops & _RUNTIME_STATS)
    # RMSNorm (Llama's, torch's nn.RMSNorm below opset 23) scales by the root mean square: no mean
    # is subtracted and there is no shift
    rms = not betas and "Sub" not in ops
    kind, what = ("RMSNormalization", "an RMS") if rms else ("LayerNormalization", "a layer")
    return inferred_layer(
        layer,
        kind,
        Figure.of(len(tensors) * c),
        ZERO,
        f"statistics computed at run time ({', '.join(runtime)}): {what} normalization lowered to ops, "
        f"{len(tensors)} x {c} ({'; '.join(parts)})",
        tensors,
    )


def lowered_bn_chains(view: ModelView, table: ParamTable) -> list[tuple[int, FrameworkLayer, set[str]]]:
    """BatchNormalization written as `(x - mean) * (gamma / sqrt(var + eps)) + beta` with three
    per-channel constants (Keras 3 on the torch backend): 3 of its 4 vectors survive, the variance
    folded into the scale. Returns (node index, rebuilt layer, tensor names it claims)."""
    if "Sub" not in view.op_types:  # every chain starts with one (no pass over 48k tensors for their constants)
        return []
    per_channel = {}
    for t in table.tensors:
        if t.category == "unclassified" and t.count and t.count > 1 and len(t.uses) == 1:
            per_channel[(t.uses[0].node.index, t.uses[0].slot)] = t
    if not per_channel:  # no chain without its three constants (no walk over 200k nodes for its Sub)
        return []
    subs = [node for node in view.main.nodes if node.op_type == "Sub"]
    if not subs:
        return []
    consumers = view.main.readers

    def constant_of(node: Node) -> ParamTensor | None:
        return next((per_channel[(node.index, i)] for i in range(2) if (node.index, i) in per_channel), None)

    found = []
    for sub in subs:
        if (mean := constant_of(sub)) is None or not sub.outputs:
            continue
        muls = consumers.get(sub.outputs[0], [])
        if len(muls) != 1 or muls[0].op_type != "Mul" or (scale := constant_of(muls[0])) is None:
            continue
        adds = consumers.get(muls[0].outputs[0], [])
        if len(adds) != 1 or adds[0].op_type != "Add" or (beta := constant_of(adds[0])) is None:
            continue
        if not mean.count == scale.count == beta.count:
            continue
        c = mean.count or 0
        name = f"{sub.label} (Sub+Mul+Add)"
        layer = FrameworkLayer(
            name, "BatchNormalization", Figure.assumed(2 * c, [-c]), Figure.of(2 * c), INFERRED,
            [f"Sub {mean.name} -> Mul {scale.name} -> Add {beta.name} over {c} channels: a BatchNormalization "
             f"written as (x - mean) * gamma/sqrt(var + eps) + beta; the variance is folded into the scale",
             "gamma assumed present (scale=True, the default; the folded scale cannot show it)"],
            [mean.name, scale.name, beta.name],
            [Alternative(f"{sub.label} has scale=False", -c)],
        )  # fmt: skip
        found.append((sub.index, layer, {mean.name, scale.name, beta.name}))
    return found


@rule("InstanceNormalization")
def lowered_group_norm(ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """torch's GroupNorm below opset 21: InstanceNormalization over G groups with made-up scale (ones)
    and bias (zeros) of G, reshaped back, then `* weight + bias` over the C channels. GroupNorm(affine=False)
    multiplies and adds the exporter's own ones and zeros: dynamo's FX call passes the norm None for its
    weight and bias, TorchScript writes them as scalar Constant nodes."""
    inner = [t for t in tensors if any(u.node.op_type == "InstanceNormalization" for u in t.uses)]
    made = _group_norm_without_affine(ctx, layer, inner, tensors)
    if made is not None:
        return made
    outer = [t for t in tensors if t not in inner and t.role in ("norm_scale", "norm_bias")]
    if not inner or not outer or len(inner) + len(outer) != len(tensors):
        return None
    groups, channels = {t.count or 0 for t in inner}, {t.count or 0 for t in outer}
    if len(groups) != 1 or len(channels) != 1:
        return None
    g, c = groups.pop(), channels.pop()
    if not 0 < g < c or c % g:
        return None
    return inferred_layer(
        layer,
        "GroupNorm",
        Figure.of(len(outer) * c),
        ZERO,
        f"InstanceNormalization over {g} groups (the exporter's {len(inner)} x {g} constants), then "
        f"weight and bias over {c} channels: a GroupNorm lowered to ops, {len(outer)} x {c}",
        tensors,
    )


def _group_norm_without_affine(
    ctx: FileContext, layer: Layer, inner: list[ParamTensor], tensors: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """A lowered GroupNorm(affine=False): every constant the exporter's (see lowered_group_norm)."""
    outer = [t for t in tensors if t not in inner]
    if not inner or not outer or not all(u.node.op_type in ("Mul", "Add") for t in outer for u in t.uses):
        return None
    if any(node.name in ctx.view.fx.norms_without_affine for node in layer.nodes):
        why = "the norm's FX call (dynamo's metadata) passes it no weight and bias"
    elif all(t.origin == "constant" and t.count == 1 for t in outer):
        why = "the Mul and Add read scalar Constant nodes, no state_dict weight and bias over the channels"
    else:
        return None
    g = inner[0].count or 0
    return inferred_layer(
        layer, "GroupNorm", ZERO, ZERO,
        f"InstanceNormalization over {g} groups (the exporter's {len(inner)} x {g} constants), then `* {outer[0].name}"
        f"{' + ' + outer[1].name if len(outer) > 1 else ''}`: a GroupNorm lowered to ops without affine parameters "
        f"(affine=False): {why}; 0 parameters",
        tensors,
    )  # fmt: skip


@rule("InstanceNormalization")
def instance_norm_over_groups(
    ctx: FileContext, layer: Layer, tensors: list[ParamTensor]
) -> list[FrameworkLayer] | None:
    """A GroupNorm lowered to ops by an exporter whose nodes carry no module scope (paddle2onnx, torch
    before 1.13): InstanceNormalization over G groups, with a scale (ones) and bias (zeros) of G the
    exporter made, reshaped back to C channels and then `* weight + bias` over C, in rows of their own.
    The G constants are no parameter; the C ones are counted where the Mul and Add are."""
    inner = [t for t in tensors if t.uses and all(u.node.op_type == "InstanceNormalization" for u in t.uses)]
    if not inner or len(inner) != len(tensors):
        return None
    norm = inner[0].uses[0].node
    g = inner[0].count or 0
    if any(t.count != g for t in inner) or norm.scope != MAIN or not norm.outputs:
        return None
    view = ctx.view
    readers, value = view.main.readers, norm.outputs[0]
    for _ in range(3):  # Reshape back to (N, C, ...), an Identity or two on the way
        nxt = [n for n in readers.get(value, []) if n.op_type in ("Reshape", "Identity")]
        if len(nxt) != 1 or not nxt[0].outputs:
            return None
        value = nxt[0].outputs[0]
        if nxt[0].op_type == "Reshape":
            break
    scale = next((n for n in readers.get(value, []) if n.op_type == "Mul"), None)
    c = _scale_channels(view, scale) if scale is not None else 0
    if not 0 < g < c or c % g:
        return None
    return inferred_layer(
        layer, "GroupNorm", ZERO, ZERO,
        f"InstanceNormalization over {g} groups, then reshaped to {c} channels and scaled: a GroupNorm lowered "
        f"to ops; its {len(inner)} x {g} constants are the exporter's (ones, zeros), its weight and bias over "
        f"{c} channels are counted with the Mul and Add after it",
        tensors,
    )  # fmt: skip


def _scale_channels(view: ModelView, mul: Node) -> int:
    """Elements of the constant operand of `mul` (the GroupNorm's weight over C channels), 0 if none."""
    tensors = view.main.tensors
    for name in mul.inputs:
        t = tensors.get(name)
        if (
            t is None
            and (producer := view.main.producers.get(name)) is not None
            and producer.op_type in ("Unsqueeze", "Reshape", "Identity")
        ):  # paddle2onnx unsqueezes the weight unless it folded it
            t = tensors.get(producer.inputs[0]) if producer.inputs else None
        if t is not None and t.dims:
            return element_count(t.dims)
    return 0
