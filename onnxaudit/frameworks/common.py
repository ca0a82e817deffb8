"""Helpers the exporter rules share: weight and bias pickers, channel counts, the layer as stored."""

from __future__ import annotations

import re
from collections.abc import Iterable

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import COUNTED_CATEGORIES, FROZEN, ParamTensor
from onnxaudit.frameworks.figures import AMBIGUOUS, EXACT, INFERRED, ZERO, Alternative, Figure, FrameworkLayer
from onnxaudit.model.ops import LAYOUT_OR_PLUMBING, output_channels
from onnxaudit.model.view import ModelView, Node


def counted(tensors: list[ParamTensor]) -> list[ParamTensor]:
    return [t for t in tensors if t.category in COUNTED_CATEGORIES and t.count is not None]


def kind_of(layer: Layer) -> str:
    """The layer's ops without the layout and shape plumbing exporters put around them."""
    if len(layer.nodes) == 1:  # most layers: its one op, plumbing or not
        return layer.nodes[0].op_type
    ops = dict.fromkeys([n.op_type for n in layer.nodes if n.op_type not in LAYOUT_OR_PLUMBING])  # Constant among them
    return "+".join(ops or layer.op_types)


def inferred_layer(
    layer: Layer, kind: str, trainable: Figure, non_trainable: Figure, evidence: str, tensors: list[ParamTensor]
) -> list[FrameworkLayer]:
    """The one framework layer a rewrite inferred from `tensors`, with its evidence."""
    return [FrameworkLayer(layer.name, kind, trainable, non_trainable, INFERRED, [evidence], [t.name for t in tensors])]


def file_layer(layer: Layer, tensors: list[ParamTensor]) -> FrameworkLayer:
    """The layer as stored: constants of unknown role make it ambiguous, counted as trainable at most."""
    if len(tensors) == 1 and tensors[0].category == "parameter" and tensors[0].role != "named_parameter":
        t = tensors[0]  # most layers (38k at 200k nodes): one weight, counted as stored
        return FrameworkLayer(layer.name, kind_of(layer), Figure.of(t.count or 0), ZERO, EXACT, [STORED], [t.name])
    trainable = stats = unknown = 0
    ambiguous = False
    for t in tensors:  # one pass instead of four: 38k layers at 200k nodes
        category, count = t.category, t.count or 0
        if category == "parameter":
            trainable += count
        elif category == "unclassified":
            unknown += count
            ambiguous = True
        elif category in ("statistic", FROZEN):
            stats += count
    names = [t.name for t in tensors]
    if ambiguous:
        at_most = UNKNOWN_ROLE
        lookups = [
            (t, text)
            for t in tensors
            if t.category == "unclassified" and (text := folded_lookup(t) or _folded_slice(t))
        ]
        texts = [text for _, text in lookups]
        # a constant named after its lookup, or after the op that computed it from parameters (EdgeNeXt's
        # positional projection folded by dynamo into `permute_12`), says the range can be short: first,
        # the evidence line shown
        named = any(
            LOOKUP_NAME.fullmatch(t.name) or FOLDED_OP_OUTPUT.fullmatch(t.name) or _TORCHSCRIPT_FOLD.fullmatch(t.name)
            for t, _ in lookups
        )
        evidence = [*texts, at_most] if named else [at_most, *texts]
        # a lookup folded to its slice: the table it came from is larger by an amount the file cannot show
        upper = None if named else trainable + unknown
        return FrameworkLayer(
            layer.name, kind_of(layer), Figure(trainable, upper), Figure.of(stats), AMBIGUOUS, evidence, names
        )
    by_name = [t.name for t in tensors if t.role == "named_parameter"]
    if by_name:  # a parameter by its name alone: inferred, and said
        evidence = [
            f"{', '.join(by_name)}: a module's weight by its state_dict name, read as data (looked up at indices "
            "traced as constants, or by a bare Add or Mul): counted as a parameter"
        ]
        return FrameworkLayer(
            layer.name, kind_of(layer), Figure.of(trainable), Figure.of(stats), INFERRED, evidence, names
        )
    return FrameworkLayer(layer.name, kind_of(layer), Figure.of(trainable), Figure.of(stats), EXACT, [STORED], names)


STORED = "counted as stored"  # the evidence of a layer no rule rebuilt and no doubt revised
UNKNOWN_ROLE = "holds constants of unknown role; counted as trainable at most"


# what torch.onnx names a lookup it folded: dynamo the op's output (`embedding_1`), the TorchScript
# exporter the Gather's (`/embeddings/position_embeddings/Gather_output_0`)
LOOKUP_NAME = re.compile(r"embedding(_\d+)?|.*/Gather(_\d+)?_output_\d+")


# dynamo names a constant it folded after the FX op that made it last
FOLDED_OP_OUTPUT = re.compile(
    r"(permute|transpose|view|reshape|convolution|conv[123]d|add|mul|cat|expand|repeat|flatten|unsqueeze|squeeze)(_\d+)?"
)


# the TorchScript exporter's name for a constant it folded before an Add or a Mul (`onnx::Add_100`,
# `onnx::Mul_32`: one row of a table read at a traced index); a Sub's or Div's (`onnx::Sub_7`) is mostly a
# Python constant written as such (torchvision's normalizing mean and std)
_TORCHSCRIPT_FOLD = re.compile(r"onnx::(Add|Mul)_\d+")


def _folded_slice(t: ParamTensor) -> str:
    """A constant the TorchScript exporter folded (`onnx::Add_100`) read as data by an elementwise op: computed
    at export from tensors the file need not hold (`token_type.weight[0]`, one row of a table), so the
    framework's count may be larger than what is stored."""
    if not _TORCHSCRIPT_FOLD.fullmatch(t.name):
        return ""
    return (
        f"{t.name} {'x'.join(map(str, t.dims or ()))} was computed by constant folding at export (a row of a "
        "table looked up at a traced index, or a product): the tensors it came from, and the framework's count, "
        "may be larger than this range"
    )


def folded_lookup(t: ParamTensor) -> str:
    """A (1, length, width) constant added to activations: torch dynamo looks up position and token-type
    embeddings at export for the traced length and stores only that slice, so the table it came from
    (and the framework's count) can be larger than anything in the file. Said, since it cannot be seen."""
    dims = t.dims or ()
    if len(dims) != 3 or dims[0] != 1 or not t.uses or any(u.node.op_type != "Add" for u in t.uses):
        return ""
    return (
        f"{t.name} {'x'.join(map(str, dims))} may be an embedding table looked up at export for a traced length "
        f"of {dims[1]} (a folded position or token-type embedding): the framework's table, and its count, may be "
        "larger than this range"
    )


# onnxruntime's optimizer turns Conv + activation into FusedConv (and Gemm into FusedGemm), its quantizers
# into QLinearConv, ConvInteger and QGemm: the same layer.
SAME_OP = {
    "Conv": ("Conv", "FusedConv", "NhwcFusedConv", "QLinearConv", "ConvInteger"),
    "Gemm": ("Gemm", "FusedGemm", "QGemm"),
}


def weight_and_bias(tensors: list[ParamTensor], op: str) -> tuple[ParamTensor | None, ParamTensor | None]:
    ops = SAME_OP.get(op, (op,))
    weight = next((t for t in tensors if t.role == "weight" and any(u.node.op_type in ops for u in t.uses)), None)
    bias = next((t for t in tensors if t.role == "bias" and any(u.node.op_type in ops for u in t.uses)), None)
    return weight, bias


def first_weight_and_bias(
    tensors: list[ParamTensor], ops: Iterable[str]
) -> tuple[str, ParamTensor | None, ParamTensor | None]:
    """The first of `ops` whose weight the tensors hold, with that weight and its bias (else no weight)."""
    op = ""
    for op in ops:
        weight, bias = weight_and_bias(tensors, op)
        if weight is not None:
            return op, weight, bias
    return op, None, None


def channels_of(t: ParamTensor | None) -> int:
    return t.count or 0 if t is not None else 0


# The ops a BN may be folded into, in the order a layer's weights are looked for
FOLD_TARGETS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def out_channels(op: str, node: Node, weight: ParamTensor) -> int:
    """Output channels of `node` (an `op` of _FOLD_TARGETS) as its weight's dims show them: the width of a
    BN folded into it."""
    if not weight.dims:
        return 0
    group, trans_b = node.attrs.get("group", 1), node.attrs.get("transB", 0)
    return output_channels(op, weight.dims, int(group), bool(trans_b))  # type: ignore[call-overload]


def bns_fused_by_dynamo(
    layer: Layer, conv_module: str, c: int, view: ModelView, bn_module: str | None = None
) -> list[FrameworkLayer]:
    """The BN (or, BNs in a row, each) that dynamo's optimizer fused into the conv of `conv_module`;
    the BN's module is the layer's (the fused node sits in its scope) unless `bn_module` names it."""
    bn_module, names = bn_module or layer.name, [n.name for n in layer.nodes]
    if any(name in view.fx.norms_without_affine for name in names):
        bn = FrameworkLayer(
            bn_module, "BatchNorm", ZERO, Figure.of(2 * c), INFERRED,
            [f"BatchNorm {bn_module} fused into {conv_module}: running_mean, running_var 2 x {c}, no weight or bias",
             "affine=False: the node's FX call (dynamo's metadata) passes the BN no weight and bias"],
        )  # fmt: skip
    else:
        bn = FrameworkLayer(
            bn_module, "BatchNorm", Figure.of(2 * c), Figure.of(2 * c), INFERRED,
            [f"BatchNorm {bn_module} fused into {conv_module}: weight, bias 2 x {c}; running_mean, running_var 2 x {c}",
             "affine=True assumed (the PyTorch default); a fusion needs running stats, so they existed"],
        )  # fmt: skip
    fusions = max([view.fx.bn_fusions.get(name, 1) for name in names])
    if fusions == 1:
        return [bn]
    more = fusions - 1
    earlier = FrameworkLayer(
        f"(BatchNorm before {bn_module})", "BatchNorm", Figure(0, 2 * c * more), Figure.of(2 * c * more), AMBIGUOUS,
        [f"{more} more BatchNorm of {c} channels fused into {conv_module}: the node's rewrite rules (onnxscript's "
         f"rule_name metadata) name {fusions} BN fusions; of all but the last neither the module name nor the "
         f"call is recorded, so weight and bias 0 or 2 x {c} each (affine)",
         "a fusion needs running stats, so they existed"],
    )  # fmt: skip
    return [earlier, bn]


# NCHWc's reordered (and padded) filters and biases: graph_.GenerateNodeArgName("reorder")
ORT_REORDERED = re.compile(r"reorder(_token_\d+)?")


def maybe_folded_bn(
    layer: Layer, tensors: list[ParamTensor], bias: ParamTensor, label: str, why: str
) -> list[FrameworkLayer]:
    """The layer as stored, and a BN of the bias's channels that may have been folded into it."""
    c = channels_of(bias)
    bn = f"a BatchNorm over {c} channels was folded into {layer.name}"
    maybe_bn = FrameworkLayer(
        f"{layer.name} (+BatchNorm {label})", "BatchNorm", Figure(0, 2 * c), Figure(0, 2 * c), AMBIGUOUS,
        [f"{why}: 0 or 4 x {c}"], [],
        [Alternative(f"{bn} (its running statistics)", 0, 2 * c), Alternative(f"{bn} with weight and bias", 2 * c)],
    )  # fmt: skip
    return [file_layer(layer, tensors), maybe_bn]


# what torch.onnx calls a tensor it did not take from the state_dict: a folded value (`onnx::Conv_42`, a bare
# number before torch 1.13) or a Constant node's output (a frozen module's weights)
ANONYMOUS_PARAMETER = re.compile(r"onnx::.+|\d+|(/.*)?Constant(_\d+)?_output_\d+")
