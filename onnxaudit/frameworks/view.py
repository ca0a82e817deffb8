"""The framework view: rebuild Keras / PyTorch layer counts through the rewrites exporters make.

Exporters rarely keep BatchNormalization as one node: tf2onnx turns it into a per-channel Mul + Add
or folds it into the preceding Conv, torch.onnx folds it into the Conv in eval mode. Each rewrite
below recognizes one such pattern from names and graph structure and says how sure it is:
`exact` (counted as stored), `inferred` (with the evidence, and any default it had to assume) or
`ambiguous` (a range that contains the truth, with the reason). Never an exact-looking guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter, itemgetter

from onnxaudit.count.layers import Layer, TfNaming, names_weight_op, path_from_tensor_name, tf_naming, tflite_parts
from onnxaudit.count.roles import ROLES, Use, called_again
from onnxaudit.count.table import COUNTED_CATEGORIES, FROZEN, ParamTable, ParamTensor
from onnxaudit.io.dims import element_count
from onnxaudit.model.load import MAIN, ModelView, Node, torchscript_node_names
from onnxaudit.model.ops import DATA, ML_ATTRIBUTE_PARAMS, output_channels

EXACT, INFERRED, AMBIGUOUS = "exact", "inferred", "ambiguous"
_RANK = {EXACT: 0, INFERRED: 1, AMBIGUOUS: 2}


@dataclass(frozen=True)
class Figure:
    """A count known exactly (lo == hi) or only as a range that contains the truth; hi None: no upper
    bound the file can show (a table the exporter folded to the slice it used)."""

    lo: int
    hi: int | None

    @staticmethod
    def of(n: int) -> Figure:
        return Figure(n, n) if n else ZERO  # most layers hold no statistics: one shared (frozen) zero

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.lo + other.lo, _plus(self.hi, other.hi))

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    def contains(self, n: int) -> bool:
        return self.lo <= n and (self.hi is None or n <= self.hi)

    def text(self) -> str:
        lo, hi = self.lo, self.hi
        if hi is None:
            return f"{lo:,}+"
        return f"{lo:,}" if lo == hi else f"{lo:,}..{hi:,}"


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


ZERO = Figure(0, 0)


@dataclass
class FrameworkLayer:
    name: str
    kind: str
    trainable: Figure
    non_trainable: Figure
    status: str
    evidence: list[str] = field(default_factory=list)
    tensors: list[str] = field(default_factory=list)

    @property
    def total(self) -> Figure:
        return self.trainable + self.non_trainable


@dataclass
class FrameworkView:
    origin: str  # keras | pytorch | unknown: who exported the file, from its producer and names
    layers: list[FrameworkLayer]
    rewrites: list[str]  # one line per rewrite recognized
    notes: list[str]

    @property
    def trainable(self) -> Figure:
        return _sum_figures(map(_TRAINABLE, self.layers))

    @property
    def non_trainable(self) -> Figure:
        return _sum_figures(map(_NON_TRAINABLE, self.layers))

    @property
    def total(self) -> Figure:
        return self.trainable + self.non_trainable

    @property
    def status(self) -> str:
        return max({la.status for la in self.layers}, key=_RANK.__getitem__, default=EXACT)


_TRAINABLE, _NON_TRAINABLE = attrgetter("trainable"), attrgetter("non_trainable")
_LO, _HI = attrgetter("lo"), attrgetter("hi")


def _sum_figures(figures: Iterable[Figure]) -> Figure:
    """The sum of `figures` (ZERO for none), adding ints instead of making a Figure per step
    (attrgetters, not generators: 49k layers at 200k nodes)."""
    figures = list(figures)
    his = list(map(_HI, figures))
    return Figure(sum(map(_LO, figures)), None if None in his else sum(his))  # type: ignore[arg-type]


def _counted(tensors: list[ParamTensor]) -> list[ParamTensor]:
    return [t for t in tensors if t.category in COUNTED_CATEGORIES and t.count is not None]


_LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze", "Shape", "Constant"})


def _kind(layer: Layer) -> str:
    """The layer's ops without the layout and shape plumbing exporters put around them."""
    ops = dict.fromkeys([n.op_type for n in layer.nodes if n.op_type not in _LAYOUT_OPS])  # Constant among them
    return "+".join(ops or layer.op_types)


def _inferred_layer(
    layer: Layer, kind: str, trainable: Figure, non_trainable: Figure, evidence: str, tensors: list[ParamTensor]
) -> list[FrameworkLayer]:
    """The one framework layer a rewrite inferred from `tensors`, with its evidence."""
    return [FrameworkLayer(layer.name, kind, trainable, non_trainable, INFERRED, [evidence], [t.name for t in tensors])]


def _file_layer(layer: Layer, tensors: list[ParamTensor]) -> FrameworkLayer:
    """The layer as stored: constants of unknown role make it ambiguous, counted as trainable at most."""
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
        at_most = "holds constants of unknown role; counted as trainable at most"
        lookups = [(t, text) for t in tensors if t.category == "unclassified" and (text := _folded_lookup(t))]
        texts = [text for _, text in lookups]
        # a constant named after its lookup, or after the op that computed it from parameters (EdgeNeXt's
        # positional projection folded by dynamo into `permute_12`), says the range can be short: first,
        # the evidence line shown
        named = any(_LOOKUP_NAME.fullmatch(t.name) or _FOLDED_OP_OUTPUT.fullmatch(t.name) for t, _ in lookups)
        evidence = [*texts, at_most] if named else [at_most, *texts]
        # a lookup folded to its slice: the table it came from is larger by an amount the file cannot show
        upper = None if named else trainable + unknown
        return FrameworkLayer(
            layer.name, _kind(layer), Figure(trainable, upper), Figure.of(stats), AMBIGUOUS, evidence, names
        )
    return FrameworkLayer(
        layer.name, _kind(layer), Figure.of(trainable), Figure.of(stats), EXACT, ["counted as stored"], names
    )


# what torch.onnx names a lookup it folded: dynamo the op's output (`embedding_1`), the TorchScript
# exporter the Gather's (`/embeddings/position_embeddings/Gather_output_0`)
_LOOKUP_NAME = re.compile(r"embedding(_\d+)?|.*/Gather(_\d+)?_output_\d+")
# dynamo names a constant it folded after the FX op that made it last
_FOLDED_OP_OUTPUT = re.compile(
    r"(permute|transpose|view|reshape|convolution|conv[123]d|add|mul|cat|expand|repeat|flatten|unsqueeze|squeeze)(_\d+)?"
)


def _folded_lookup(t: ParamTensor) -> str:
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


def _origin(view: ModelView) -> str:
    producer = view.producer.lower()
    if "pytorch" in producer or any(map(attrgetter("module_scopes"), view.main.nodes)):  # 200k nodes: no genexpr
        return "pytorch"
    if "tf2onnx" in producer or "keras" in producer:
        return "keras"
    if "paddle" in producer or view.graph_name.startswith("PaddlePaddle") or "Paddle" in view.opsets:
        return "paddle"  # paddle2onnx: "PaddlePaddle Graph in PIR mode", no producer since 2.x
    if torchscript_node_names(view):
        # a TorchScript export that another tool re-saved under its own name: onnxruntime, Optimum,
        # onnx.compose's merge_models
        return "pytorch"
    return "unknown"


# onnxruntime's optimizer turns Conv + activation into FusedConv (and Gemm into FusedGemm), its quantizers
# into QLinearConv, ConvInteger and QGemm: the same layer.
_SAME_OP = {
    "Conv": ("Conv", "FusedConv", "NhwcFusedConv", "QLinearConv", "ConvInteger"),
    "Gemm": ("Gemm", "FusedGemm", "QGemm"),
}


def _weight_and_bias(tensors: list[ParamTensor], op: str) -> tuple[ParamTensor | None, ParamTensor | None]:
    ops = _SAME_OP.get(op, (op,))
    weight = next((t for t in tensors if t.role == "weight" and any(u.node.op_type in ops for u in t.uses)), None)
    bias = next((t for t in tensors if t.role == "bias" and any(u.node.op_type in ops for u in t.uses)), None)
    return weight, bias


def _first_weight_and_bias(
    tensors: list[ParamTensor], ops: Iterable[str]
) -> tuple[str, ParamTensor | None, ParamTensor | None]:
    """The first of `ops` whose weight the tensors hold, with that weight and its bias (else no weight)."""
    op = ""
    for op in ops:
        weight, bias = _weight_and_bias(tensors, op)
        if weight is not None:
            return op, weight, bias
    return op, None, None


def _channels(t: ParamTensor | None) -> int:
    return t.count or 0 if t is not None else 0


# ---------------------------------------------------------------- Keras (tf2onnx) rewrites

# The shift of tf.nn.batch_normalization, named after the op that made it: with gamma the ops are
# mul (rsqrt * gamma), mul_1 (x * scale), mul_2 (mean * scale), sub (beta - mul_2); without gamma
# mul (x * rsqrt), mul_1 (mean * rsqrt), sub. Without beta there is no sub: the shift is -(mean * scale),
# named after the product. So `sub` shows beta; `mul_2` gamma and no beta; `mul_1` neither.
_BN_SHIFT = re.compile(r"/batchnorm/(sub|mul_1|mul_2)(:\d+)?$")
_BN_SHIFT_SAYS = {"sub": (None, True), "mul_2": (True, False), "mul_1": (False, False)}


def _bn_shift_says(name: str) -> tuple[bool | None, bool | None]:
    """(gamma, beta) as the name of a BN's folded shift shows them; None where it cannot."""
    found = _BN_SHIFT.search(name)
    return _BN_SHIFT_SAYS[found.group(1)] if found else (None, None)


def keras_bn_scale_shift(
    layer: Layer, tensors: list[ParamTensor], naming: TfNaming, folded: frozenset[str] = frozenset()
) -> list[FrameworkLayer] | None:
    """tf2onnx on Keras: BatchNormalization lowered to x * scale + shift (2 of its 4 vectors survive).
    The scale's name tells whether gamma was multiplied in (`batchnorm/mul`) or not (`batchnorm/Rsqrt`).
    One of the two may be gone: an untrained BN's shift is all zeros and tf2onnx drops its Add, and a
    simplifier (onnxsim, onnxslim) or onnxruntime fuses the scale's Mul into the conv before it."""
    if not any("/batchnorm/" in n.name for n in layer.nodes):
        return None
    muls = [t for t in tensors if any(u.node.op_type == "Mul" for u in t.uses)]
    adds = [t for t in tensors if any(u.node.op_type in ("Add", "Sub") for u in t.uses)]
    if len(tensors) == 2 and len(muls) == 1 and len(adds) == 1 and muls[0].count == adds[0].count:
        scale, shift = muls[0], adds[0]
    elif len(tensors) == 1 and len(muls) + len(adds) == 1:
        scale, shift = (muls[0], None) if muls else (None, adds[0])
    else:
        return None
    if scale is None and layer.name in folded:
        return None  # the shift is the bias of the op the BN was folded into, rebuilt from that op's name
    c = (scale or shift).count or 0  # type: ignore[union-attr]
    ops = "Mul + Add" if scale and shift else "Mul" if scale else "Add"
    evidence = [f"node scope {layer.name}/batchnorm: BatchNormalization lowered to {ops} over {c} channels"]
    folded = " and ".join(t.name for t in (scale, shift) if t is not None)
    evidence.append(f"moving mean and variance folded into {folded}: 2 x {c} non-trainable")
    says_gamma, says_beta = _bn_shift_says(shift.name) if shift is not None else (None, None)
    gamma = scale is not None and scale.name.endswith(("batchnorm/mul:0", "batchnorm/mul")) or says_gamma is True
    no_gamma = scale is not None and "Rsqrt" in scale.name or says_gamma is False
    status = INFERRED
    trainable = ZERO
    seen = f"the scale is {scale.name}" if scale is not None and says_gamma is None else f"the shift is {shift.name}"
    if gamma:
        trainable += Figure.of(c)
        evidence.append(f"gamma present: {seen} (rsqrt(var) * gamma)")
    elif no_gamma:
        evidence.append(f"no gamma (scale=False): {seen}")
    else:
        trainable += Figure(0, c)
        status = AMBIGUOUS
        evidence.append(
            "gamma cannot be told from the scale's name"
            if scale is not None
            else "gamma cannot be told: the scale's Mul was fused into the layer before (a simplifier, onnxruntime)"
        )
    if says_beta:
        trainable += Figure.of(c)
        evidence.append(f"beta present: the shift is {shift.name} (beta - mean * scale)")  # type: ignore[union-attr]
    elif says_beta is False:
        evidence.append(f"no beta (center=False): the shift is {shift.name}, -(mean * scale)")  # type: ignore[union-attr]
    elif gamma:
        trainable += Figure.of(c)
        evidence.append(
            f"beta assumed present (center=True, the Keras default): the shift {shift.name} cannot show it"
            if shift is not None
            else "beta assumed present (center=True, the Keras default): the shift was all zeros (an untrained "
            "BN: beta 0, moving mean 0) and tf2onnx dropped its Add"
        )
    else:
        trainable += Figure(0, c)
        status = AMBIGUOUS
        evidence.append(
            f"beta cannot be told: the layer is not at Keras defaults and the shift {shift.name} was folded"
            if shift is not None
            else "beta cannot be told: the shift's Add is gone"
        )
    names = [t.name for t in (scale, shift) if t is not None]
    return [FrameworkLayer(layer.name, "BatchNormalization", trainable, Figure.of(2 * c), status, evidence, names)]


def keras_conv_bn_merged(layer: Layer, tensors: list[ParamTensor], naming: TfNaming) -> list[FrameworkLayer] | None:
    """tf2onnx on Keras 3: a BN after a bias-free conv is merged into it; the conv's bias is the BN's
    shift (`<bn>/batchnorm/sub`, or `mul_2` / `mul_1` without beta: _bn_shift_says), so the conv had
    no bias of its own. A SeparableConv2D is two convs (depthwise, then pointwise, which takes the shift): both
    kernels are the layer's."""
    weight, bias = _weight_and_bias(tensors, "Conv")
    if weight is None or bias is None or not _BN_SHIFT.search(bias.name):
        return None
    bn_name = naming.layer(bias.name)
    if not bn_name or bn_name == layer.name:
        return None
    kernels = [t for t in tensors if t is not bias]
    if any(t.category != "parameter" for t in kernels):
        return None
    c = _channels(bias)
    conv = FrameworkLayer(
        layer.name, "Conv", Figure.of(sum(t.count or 0 for t in kernels)), ZERO, INFERRED,
        [f"the conv's bias {bias.name} is BatchNormalization {bn_name}'s folded shift: the conv had no bias"],
        [t.name for t in kernels],
    )  # fmt: skip
    gamma, beta = _bn_shift_says(bias.name)
    if beta:
        vectors, kept = (
            4,
            (
                f"beta present (the shift is {bias.name}); gamma assumed present (scale=True, the Keras default: "
                "the merge cannot show scale=False)"
            ),
        )
    elif gamma:
        vectors, kept = 3, f"gamma present, no beta (center=False): the shift {bias.name} is -(mean * scale)"
    else:
        vectors, kept = 2, f"no gamma, no beta (scale=False, center=False): the shift {bias.name} is -(mean * rsqrt)"
    bn = FrameworkLayer(
        bn_name, "BatchNormalization", Figure.of((vectors - 2) * c), Figure.of(2 * c), INFERRED,
        [
            f"BatchNormalization {bn_name} merged into {layer.name}: {vectors} x {c} (moving stats 2 x {c} "
            "non-trainable)",
            kept,
        ],
        [bias.name],
    )  # fmt: skip
    return [conv, bn]


# The ops a BN may be folded into, in the order a layer's weights are looked for
_FOLD_TARGETS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _out_channels(op: str, node: Node, weight: ParamTensor) -> int:
    """Output channels of `node` (an `op` of _FOLD_TARGETS) as its weight's dims show them: the width of a
    BN folded into it."""
    if not weight.dims:
        return 0
    group, trans_b = node.attrs.get("group", 1), node.attrs.get("transB", 0)
    return output_channels(op, weight.dims, int(group), bool(trans_b))  # type: ignore[call-overload]


def keras_fused_bn(
    layer: Layer, tensors: list[ParamTensor], naming: TfNaming, producer_of: Callable[[str], Node | None]
) -> list[FrameworkLayer] | None:
    """tf2onnx on tf_keras (Keras 2): BN folded into the conv (`*_fused_bn` initializers, the conv's
    output named `<bn>/FusedBatchNormV3`). Or a simplifier (onnxslim) fused tf2onnx's Conv, Mul and Add
    into one Conv named after the BN's ops (`<bn>/batchnorm/mul_1`). Or tf2onnx converted a TFLite file,
    whose converter folded the BN into the conv, transposed conv or Dense before it: the op's fused name
    lists the BN's ops (`...;<bn>/batchnorm/add_1;<conv>/BiasAdd;...`). The original bias cannot be
    told from the folded shift."""
    op, weight, bias = _first_weight_and_bias(tensors, _FOLD_TARGETS)
    if weight is None:
        return None
    ops = _SAME_OP.get(op, (op,))
    conv_node = next(u.node for u in weight.uses if u.node.op_type in ops)
    bn_part = next((part for part in tflite_parts(conv_node.name) if "/batchnorm/" in part), None)
    in_bn_scope = bn_part is not None
    if not in_bn_scope and not (op == "Conv" and weight.name.endswith("_fused_bn")):
        return None
    bn_name = next((naming.layer(o) for o in conv_node.outputs if "FusedBatchNorm" in o), None)
    fused = ";" in conv_node.name  # a TFLite op's name: its main part names the layer of the weights
    if in_bn_scope:
        bn_name = bn_name or naming.layer(bn_part)  # type: ignore[arg-type]
        conv_name = naming.layer(conv_node.name) if fused else None
        if not conv_name or conv_name == bn_name:
            conv_name = _input_layer(conv_node, naming, producer_of) or conv_node.label
    else:
        conv_name = naming.layer(weight.name) or _input_layer(conv_node, naming, producer_of)
        conv_name = conv_name or (f"{conv_node.label} (the conv before {bn_name})" if bn_name else conv_node.label)
    c = _channels(bias) if bias is not None else _out_channels(op, conv_node, weight)
    k = weight.count or 0
    what = "conv bias" if op == "Conv" else f"{op} bias"
    conv = FrameworkLayer(
        conv_name, op, Figure(k, k + c), ZERO, AMBIGUOUS,
        [f"BN folded into {conv_name}: the original {what} ({c}) cannot be told apart from the folded shift"],
        [weight.name],
    )  # fmt: skip
    layers = [conv]
    # the *_fused_bn weight alone proves the fold; onnxruntime's re-save may drop the output's name
    if fused:
        seen = f"{op} node fused from the BatchNormalization's ops ({bn_part}; a TFLite op)"
    elif in_bn_scope:
        seen = f"conv node {conv_node.name} in the BatchNormalization's scope (its Mul and Add fused into the conv)"
    else:
        seen = f"conv output named {bn_name}/FusedBatchNormV3" if bn_name else f"weight {weight.name}"
    layers.append(
        FrameworkLayer(
            bn_name or f"{conv_name} (+folded BatchNorm)",
            "BatchNormalization",
            Figure(0, 2 * c),
            Figure.of(2 * c),
            AMBIGUOUS,
            [
                f"{seen}: BatchNormalization folded, over {c} channels",
                f"moving mean and variance 2 x {c} non-trainable; gamma and beta 0 to 2 x {c}: "
                "a fold cannot show center/scale",
            ],
            [t.name for t in (weight, bias) if t is not None],
        )  # fmt: skip
    )
    return layers


def tflite_export(view: ModelView) -> bool:
    """tf2onnx converted a .tflite file: its ops, or the tensors they hold, are named by all the TF ops
    fused into them (`a/b;c/d`)."""
    names = (*(node.name for node in view.main.nodes), *view.main.tensors)
    return any(";" in name and "/" in name for name in names)


def tflite_folded_bns(view: ModelView, naming: TfNaming) -> frozenset[str]:
    """The BNs a TFLite file's weight ops list in their fused names (keras_fused_bn rebuilds those). A
    full-int8 file also names the Add of the folded shift after the BN: that Add is no second BN."""
    found = set()
    for node in view.main.nodes:
        if ";" in node.name and naming.layer(node.name) and "/batchnorm/" in node.name:
            parts = tflite_parts(node.name)
            if any(map(names_weight_op, parts)):
                found.update(naming.layer(part) for part in parts if "/batchnorm/" in part)
    return frozenset(name for name in found if name)


def tflite_maybe_folded(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A conv or Dense of a TFLite file whose name shows no BN (keras_fused_bn takes those that do).
    TFLite's converter folds a BN into the op before it and, after a Dense, into the op after it,
    where the names need not keep it; and it gives every conv a bias, zeros where the Keras layer had
    none (a SeparableConv2D's depthwise half). So its bias may be the converter's, and a BN of its
    output width may have been folded into it."""
    weights = [t for t in tensors if t.role == "weight"]
    biases = [t for t in tensors if t.role == "bias"]
    if not weights or len(weights) + len(biases) != len(tensors):
        return None
    # each weight's op may hold a BN of its own output width (a row may hold more than one op)
    ops = [(next((u.node for u in t.uses if u.node.op_type in _FOLD_TARGETS), None), t) for t in weights]
    if any(node is None for node, _ in ops):
        return None
    width = sum(_out_channels(node.op_type, node, t) for node, t in ops)  # type: ignore[union-attr]
    last = max(ops, key=lambda pair: pair[0].index)[0]  # type: ignore[union-attr]
    k, b = sum(t.count or 0 for t in weights), sum(t.count or 0 for t in biases)
    what = f"its biases ({b}) may be the converter's (zeros it adds, or a folded shift); " if b else ""
    stored = FrameworkLayer(
        layer.name, last.op_type, Figure(k, k + b), ZERO, AMBIGUOUS,
        [f"a TFLite export: {what}its weights ({k}) are counted as stored"], [t.name for t in tensors],
    )  # fmt: skip
    maybe_bn = FrameworkLayer(
        f"{layer.name} (+BatchNorm folded?)", "BatchNormalization", Figure(0, 2 * width), Figure(0, 2 * width),
        AMBIGUOUS,
        [f"a TFLite export: its converter folds a BatchNormalization into the op beside it without always "
         f"naming it: 0 or 4 x {width}"],
    )  # fmt: skip
    return [stored, maybe_bn]


def _input_layer(node: Node, naming: TfNaming, producer_of: Callable[[str], Node | None]) -> str | None:
    """The Keras layer of the Transpose feeding `node`: tf2onnx's NHWC->NCHW Transpose keeps the conv's
    scope. Any other producer is the layer before (a ReLU), which names nothing about the conv."""
    producer = producer_of(node.inputs[0]) if node.inputs else None
    return naming.layer(producer.name) if producer is not None and producer.op_type == "Transpose" else None


def _producer_index(view: ModelView) -> Callable[[str], Node | None]:
    """Main-graph producer lookup: Graph.producers, built on first use (most layers never ask) and
    shared with the other stages."""
    main = view.main

    def producer_of(name: str) -> Node | None:
        return main.producers.get(name)

    return producer_of


def keras_recurrent_bias(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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


def keras_prelu(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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


def keras_normalization(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """tf2onnx on a Keras Normalization: (x - mean) * 1/sqrt(variance), both folded to constants
    (`<norm>/sub/y`, `.../truediv_recip`). Keras also keeps a `count` scalar that no op reads, so it is
    never in the file: Keras's figure is 2 x features + 1, all non-trainable."""
    if len(tensors) != 2 or any(t.category != "unclassified" for t in tensors):
        return None
    # the mean is what the Sub takes away; tf2onnx may name it after an op folded into it (a Rescaling's
    # offset) and may write the Sub as an Add of the negated mean that keeps the Sub's node name
    mean = next((t for t in tensors if any(_subtracts(u) for u in t.uses)), None)
    inv = next((t for t in tensors if t is not mean and any(u.node.op_type in ("Mul", "Div") for u in t.uses)), None)
    if mean is None or inv is None or mean.count != inv.count or "truediv" not in inv.name:
        return None
    c = mean.count or 0
    evidence = [
        f"Normalization lowered to Sub + Mul over {c} features: mean {mean.name}, 1/sqrt(variance) {inv.name}"
        f" (non-trainable)",
        "count: Keras keeps 1 non-trainable scalar beside mean and variance that no op reads; "
        "it is not in the file and is added here",
        "assumed built without mean=/variance= arguments (adapted or loaded): with them Keras holds "
        "constants and reports 0",
    ]
    return [
        FrameworkLayer(
            layer.name, "Normalization", ZERO, Figure.of(2 * c + 1), INFERRED, evidence, [mean.name, inv.name]
        )
    ]


_TF_CONST = re.compile(r"/Const(_\d+)?(:\d+)?$")


def keras_bn_const_affine(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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


def keras_rnn_loop_bias(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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
            layer.name, _kind(layer), Figure.of(total), ZERO, INFERRED, [evidence], [t.name for t in tensors]
        )
    ]


def _feeds_bias_add(t: ParamTensor) -> bool:
    return any(u.node.op_type == "Add" and u.node.name.rsplit("/", 1)[-1] == "BiasAdd" for u in t.uses)


_RUNTIME_STATS = frozenset({"ReduceMean", "GlobalAveragePool", "Sqrt", "Reciprocal", "ReduceSumSquare"})


# ops a gamma or beta may pass through on its way to its Mul or Add: a mask constant that reaches
# an attention score's Add through Expand/Sub/Where is no beta
_RESHAPING = frozenset({"Reshape", "Unsqueeze", "Squeeze", "Flatten", "Cast", "Identity"})


def _reaches(tensor: ParamTensor, op_type: str) -> bool:
    """Whether `tensor` feeds an `op_type` node directly or through reshaping ops only."""
    return any(u.node.op_type == op_type and _RESHAPING.issuperset(u.via) for u in tensor.uses)


def lowered_layer_norm(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A LayerNormalization written out as ops: mean and variance computed at run time, then
    `* gamma + beta` with two per-feature vectors (Keras 3 on TF; tf_keras via a stat-less BN node)."""
    if not tensors or _RUNTIME_STATS.isdisjoint([n.op_type for n in layer.nodes]):
        return None
    if any(t.category == "statistic" for t in tensors):
        return None
    gammas = [t for t in tensors if _reaches(t, "Mul")]
    betas = [t for t in tensors if _reaches(t, "Add")]
    if len(gammas) > 1 or len(betas) > 1 or len(gammas) + len(betas) != len(tensors):
        return None
    widths = {t.count for t in tensors}
    if len(widths) != 1:
        return None
    c = widths.pop() or 0
    parts = [f"gamma {gammas[0].name}"] if gammas else []
    parts += [f"beta {betas[0].name}"] if betas else []
    ops = {n.op_type for n in layer.nodes}
    runtime = sorted(ops & _RUNTIME_STATS)
    # RMSNorm (Llama's, torch's nn.RMSNorm below opset 23) scales by the root mean square: no mean
    # is subtracted and there is no shift
    rms = not betas and "Sub" not in ops
    kind, what = ("RMSNormalization", "an RMS") if rms else ("LayerNormalization", "a layer")
    return _inferred_layer(
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
    per_channel = {}
    for t in table.tensors:
        if t.category == "unclassified" and t.count and t.count > 1 and len(t.uses) == 1:
            per_channel[(t.uses[0].node.index, t.uses[0].slot)] = t
    subs = [node for node in view.main.nodes if node.op_type == "Sub"]
    if not per_channel or not subs:  # no chain without its Sub and its three constants
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
        layer = FrameworkLayer(
            f"{sub.label} (Sub+Mul+Add)", "BatchNormalization", Figure.of(2 * c), Figure.of(2 * c), INFERRED,
            [f"Sub {mean.name} -> Mul {scale.name} -> Add {beta.name} over {c} channels: a BatchNormalization "
             f"written as (x - mean) * gamma/sqrt(var + eps) + beta; the variance is folded into the scale",
             "gamma assumed present (scale=True, the default; the folded scale cannot show it)"],
            [mean.name, scale.name, beta.name],
        )  # fmt: skip
        found.append((sub.index, layer, {mean.name, scale.name, beta.name}))
    return found


# ---------------------------------------------------------------- PyTorch rewrites


_DYNAMO_FUSED_OPS = frozenset((*_SAME_OP["Conv"], "ConvTranspose", *_SAME_OP["Gemm"]))


def torch_dynamo_conv_bn(layer: Layer, tensors: list[ParamTensor], view: ModelView) -> list[FrameworkLayer] | None:
    """torch.onnx dynamo (optimize=True) fuses BN into the conv: the conv node now sits in the BN
    module's scope, keeps the conv's weight name, and its bias is `<conv>.weight_bias` when the conv
    had none (or the conv's own `<conv>.bias`, re-valued). ConvTranspose + BN and Linear (Gemm) +
    BatchNorm1d fuse the same way. The node's metadata, read into the view, tells a BN without
    weight and bias (affine=False) and several BNs fused into one conv."""
    if _DYNAMO_FUSED_OPS.isdisjoint([u.node.op_type for t in tensors for u in t.uses]):
        return None  # one look at the layer's ops instead of three (50k layers at 200k nodes)
    op, weight, bias = _first_weight_and_bias(tensors, ("Conv", "ConvTranspose", "Gemm"))
    if weight is None or not weight.name.endswith(".weight"):
        return None
    if bias is None:
        return _dynamo_conv_bn_without_shift(layer, tensors, weight, view) if op == "Conv" else None
    if len(tensors) != 2:  # the BN's scope holds the fused weight and bias, nothing else
        return None
    conv_module = weight.name[: -len(".weight")]
    if conv_module == layer.name:
        return None
    c = _channels(bias)
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
    return [conv, *_bns_fused_by_dynamo(layer, conv_module, c, view)]


def _bns_fused_by_dynamo(
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


def _ml_attribute_nodes(view: ModelView) -> list[Node]:
    return [n for n in view.all_nodes() if n.domain == "ai.onnx.ml" and n.op_type in ML_ATTRIBUTE_PARAMS]


def attribute_parameters(node: Node) -> FrameworkLayer:
    """An ai.onnx.ml op (skl2onnx's LinearClassifier, TreeEnsemble...) keeps what it learned in node
    attributes, which neither view counts: the framework's count is this layer's, at least 0."""
    return FrameworkLayer(
        node.label, node.op_type, Figure(0, None), ZERO, AMBIGUOUS,
        [f"learned values ({ML_ATTRIBUTE_PARAMS[node.op_type]}) held in node attributes: not counted"],
    )  # fmt: skip


def ultralytics_export(view: ModelView) -> bool:
    """Written by Ultralytics' exporter (YOLOv8 and later name their author; YOLOv5 writes stride and
    class names), which fuses every Conv block's BatchNorm into its conv before exporting."""
    meta = view.metadata
    return meta.get("author", "").startswith("Ultralytics") or {"stride", "names"} <= meta.keys()


def ultralytics_fused_conv(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """An Ultralytics Conv block is `conv` (no bias) + `bn` + activation; its exporter fuses the BN into
    the conv (`model.fuse()`), which gives the conv a bias: `<block>.conv.weight` with `<block>.conv.bias`.
    A plain nn.Conv2d of the head keeps its own bias under another name (`model.22.cv2.0.2`)."""
    weight, bias = _weight_and_bias(tensors, "Conv")
    if weight is None or bias is None or len(tensors) != 2 or not weight.name.endswith(".conv.weight"):
        return None
    conv = weight.name.removesuffix(".weight")
    if bias.name != f"{conv}.bias":
        return None
    block, c, k = conv.removesuffix(".conv"), _channels(bias), weight.count or 0
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


def ultralytics_anchors(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """The Detect head's anchor points and strides, computed for the export's input size (make_anchors)
    and stored as Constant nodes (`/model.22/Constant_12_output_0`) that the box decoding subtracts,
    adds and multiplies: attributes of the head, no parameter or buffer."""
    if not tensors or any(t.category != "unclassified" or t.origin != "constant" for t in tensors):
        return None
    if not all(_ANONYMOUS_PARAMETER.fullmatch(t.name) and t.uses for t in tensors):
        return None
    if any(u.node.op_type not in ("Sub", "Add", "Mul") for t in tensors for u in t.uses):
        return None
    return _inferred_layer(
        layer,
        _kind(layer),
        ZERO,
        ZERO,
        f"{len(tensors)} Constant nodes of the Detect head ({', '.join(t.name for t in tensors)}): the anchor "
        "points and strides Ultralytics computes for the export's input size, no parameter",
        tensors,
    )


def onnxscript_bn_fusion(layer: Layer, tensors: list[ParamTensor], view: ModelView) -> list[FrameworkLayer] | None:
    """onnxscript's optimizer or rewriter (run by torch.onnx dynamo, or by hand on any export) fused a BN
    into a Conv, ConvTranspose or Gemm and recorded it on the node (`rule_name` FuseBatchNormIntoConv).
    The weight keeps its name; the bias is `<weight>_bias` when the fusion made it, the layer's own
    `<module>.bias` (re-valued) when there was one, and cannot be told apart under any other name."""
    fused = view.fx.bn_fusions
    if not fused or len(tensors) > 2:
        return None
    op, weight, bias = _first_weight_and_bias(tensors, ("Conv", "ConvTranspose", "Gemm"))
    if weight is None or (bias is None and (op != "Conv" or not weight.dims)):
        return None
    if not any(n.op_type == op and n.name in fused and weight.name in n.inputs for n in layer.nodes):
        return None
    c, k = _channels(bias) if bias is not None else weight.dims[0], weight.count or 0  # type: ignore[index]
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
    return [conv, *_bns_fused_by_dynamo(layer, layer.name, c, view, f"{layer.name} (+fused BatchNorm)")]


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
    return [conv, *_bns_fused_by_dynamo(layer, conv_module, c, view)]


def torch_parametrized_weight(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """torch.onnx dynamo folds a parametrized weight (weight_norm's g * v / |v|, spectral_norm's W / sigma)
    into one stored tensor named after the op that made it (`mul`, `div`), while the module's bias keeps
    its state_dict name. weight_norm's g spans one dim of the weight; spectral_norm adds no parameter."""
    if len(tensors) != 2:
        return None
    for op in ("Conv", "Gemm", "ConvTranspose"):
        weight, bias = _weight_and_bias(tensors, op)
        if weight is None or bias is None or not weight.dims:
            continue
        module = bias.name.removesuffix(".bias")
        if module == bias.name or "/" in bias.name or "." in weight.name or "/" in weight.name:
            return None  # the bias must be a state_dict key, the weight an op output (`mul`, `div`)
        if _ORT_REORDERED.fullmatch(weight.name):
            return None  # onnxruntime's NCHWc copy of a plain weight, reordered into channel blocks
        k, c, most = weight.count or 0, bias.count or 0, max(weight.dims)
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


_TORCH_NORMS = frozenset({"LayerNormalization", "InstanceNormalization", "GroupNormalization", "RMSNormalization"})


def torch_norm_without_affine(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """LayerNorm(elementwise_affine=False) and the like: ONNX's norm ops want a scale, so the exporter
    writes one (a Constant node, or a dynamo `val_N`) where the module has none. A scale or bias without
    a state_dict name may be such a stand-in: 0 to its size."""
    in_norm = [t for t in tensors if any(u.node.op_type in _TORCH_NORMS for u in t.uses)]
    if not in_norm or len(in_norm) != len(tensors):
        return None
    if any("." in t.name for t in in_norm):  # a state_dict key: the module's own weight or bias
        return None
    n = sum(t.count or 0 for t in in_norm)
    op = next(u.node.op_type for u in in_norm[0].uses if u.node.op_type in _TORCH_NORMS)
    return [
        FrameworkLayer(
            layer.name,
            op,
            Figure(0, n),
            ZERO,
            AMBIGUOUS,
            [
                f"{', '.join(t.name for t in in_norm)}: no state_dict name, written by the exporter for a "
                f"norm without affine parameters (elementwise_affine=False) or renamed: 0 to {n}"
            ],
            [t.name for t in in_norm],
        )  # fmt: skip
    ]


def _bn_reads_its_parameters_as_statistics(table: ParamTable) -> bool:
    return any(
        u.slot in (3, 4) for t in table.tensors if t.role in ("bn_gamma", "bn_beta") for u in t.uses
        if u.node.op_type == "BatchNormalization"
    )  # fmt: skip


def bn_statistics_stored_once(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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
    return _inferred_layer(
        layer,
        "BatchNormalization",
        Figure.of(sum(t.count or 0 for t in affine.values())),
        Figure.of(2 * c),
        f"running statistics read from the BN's own parameters ({stats}): equal values stored once (an untrained "
        f"BN: mean 0 = beta, variance 1 = gamma); 2 x {c} statistics",
        tensors,
    )


def torch_instance_norm_with_stats(
    layer: Layer, tensors: list[ParamTensor], view: ModelView
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
    c, source = _instance_channels(bn, layer, view)
    if not c or width % c:
        return None
    n = width // c
    affine = bn.name not in view.fx.norms_without_affine
    return _inferred_layer(
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


def torch_bn_without_affine(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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
    return _inferred_layer(
        layer,
        "BatchNorm",
        ZERO,
        Figure.of(2 * c),
        f"gamma and beta are Constant nodes the exporter wrote, running stats are initializers: "
        f"affine=False, running_mean and running_var 2 x {c} only",
        tensors,
    )


def lowered_group_norm(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """torch's GroupNorm below opset 21: InstanceNormalization over G groups with made-up scale (ones)
    and bias (zeros) of G, reshaped back, then `* weight + bias` over the C channels."""
    inner = [t for t in tensors if any(u.node.op_type == "InstanceNormalization" for u in t.uses)]
    outer = [t for t in tensors if t not in inner and t.role in ("norm_scale", "norm_bias")]
    if not inner or not outer or len(inner) + len(outer) != len(tensors):
        return None
    groups, channels = {t.count or 0 for t in inner}, {t.count or 0 for t in outer}
    if len(groups) != 1 or len(channels) != 1:
        return None
    g, c = groups.pop(), channels.pop()
    if not 0 < g < c or c % g:
        return None
    return _inferred_layer(
        layer,
        "GroupNorm",
        Figure.of(len(outer) * c),
        ZERO,
        f"InstanceNormalization over {g} groups (the exporter's {len(inner)} x {g} constants), then "
        f"weight and bias over {c} channels: a GroupNorm lowered to ops, {len(outer)} x {c}",
        tensors,
    )


def instance_norm_over_groups(layer: Layer, tensors: list[ParamTensor], view: ModelView) -> list[FrameworkLayer] | None:
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
    return _inferred_layer(
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


# paddle2onnx writes a BatchNorm without weight and bias (weight_attr=False, bias_attr=False) with made-up
# ones and zeros named `const.N`; a paddle parameter keeps its `<layer>_k.w_i` name
_PADDLE_MADE = re.compile(r"const\.\d+")


def paddle_bn_without_affine(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A PaddlePaddle BatchNorm without weight and bias: paddle2onnx fills ONNX's scale and B with
    constants of its own (`const.0` ones, `const.1` zeros); the running mean and variance are the
    layer's (`batch_norm2d_k.w_0`, `.w_1`: named one place earlier than with weight and bias)."""
    roles = {t.role: t for t in tensors}
    if sorted(roles) != ["bn_beta", "bn_gamma", "bn_mean", "bn_var"] or len(tensors) != 4:
        return None
    if not (_PADDLE_MADE.fullmatch(roles["bn_gamma"].name) and _PADDLE_MADE.fullmatch(roles["bn_beta"].name)):
        return None
    c = roles["bn_mean"].count or 0
    return _inferred_layer(
        layer, "BatchNorm", ZERO, Figure.of(2 * c),
        f"scale {roles['bn_gamma'].name} and bias {roles['bn_beta'].name} are paddle2onnx's own constants: "
        f"a BatchNorm without weight and bias, mean and variance 2 x {c} only",
        tensors,
    )  # fmt: skip


# a conv weight computed at export, named by who folded it: torch.onnx's constant folding (`onnx::Conv_42`;
# a bare number, `391`, before torch 1.13), onnx-simplifier (`_v_37`), onnxslim (`<the BN's output>_weight`:
# `/b1/BatchNormalization_output_0_weight`, `getitem_weight`)
_FOLDED_CONV_WEIGHT = re.compile(r"onnx::.+|\d+|_v_\d+|.+_weight")
_SIMPLIFIER_FOLDED = re.compile(r"_v_\d+|.*BatchNormalization.*_(weight|bias)")


def torch_legacy_folded_conv(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A BN folded into a conv (torch.onnx (TorchScript) with constant folding, or a simplifier run
    on any export) leaves an anonymous weight where an unfolded conv keeps its state_dict name. The
    BN's own name is gone and the conv's original bias cannot be told from the folded shift."""
    weight, bias = _weight_and_bias(tensors, "Conv")
    if weight is None or not _FOLDED_CONV_WEIGHT.fullmatch(weight.name) or path_from_tensor_name(weight.name):
        return None
    # a layer holding more than one conv's weight and biases (a BN folded at run time): not this rule's
    if sum(t.role == "weight" for t in tensors) != 1 or any(t.role not in ("weight", "bias") for t in tensors):
        return None
    c = _channels(bias) if bias is not None else (weight.dims[0] if weight.dims else 0)
    k = weight.count or 0
    conv = FrameworkLayer(
        layer.name, "Conv", Figure(k, k + c), ZERO, AMBIGUOUS,
        [f"anonymous folded weight {weight.name}: a BatchNorm was folded into {layer.name}",
         f"the original conv bias ({c}) cannot be told apart from the folded shift"],
        [t.name for t in (weight, bias) if t is not None],
    )  # fmt: skip
    bn = FrameworkLayer(
        f"{layer.name} (+folded BatchNorm)", "BatchNorm", Figure(0, 2 * c), Figure.of(2 * c), AMBIGUOUS,
        [f"folded BatchNorm over {c} channels: running stats 2 x {c} existed; weight and bias 0 or 2 x {c} (affine)"],
    )  # fmt: skip
    return [conv, bn]


# ---------------------------------------------------------------- both

# What onnxruntime's graph optimizer names the tensors it writes when it folds a per-channel scale
# into a conv (SessionOptions.optimized_model_filepath): ConvBnFusion from a BatchNormalization,
# ConvMulFusion from a constant Mul (tf2onnx's lowered BN, or any other scale).
_ORT_BN_W, _ORT_MUL_W = "ConvBnFusion_W_", "ConvMulFusion_W_"
_ORT_BN_B = "ConvBnFusion_BN_B_"
# NCHWc's reordered (and padded) filters and biases: graph_.GenerateNodeArgName("reorder")
_ORT_REORDERED = re.compile(r"reorder(_token_\d+)?")


def ort_conv_bn_fusion(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
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
            and (t.name.startswith((_ORT_BN_W, _ORT_MUL_W)) or (reordered and _ORT_REORDERED.fullmatch(t.name)))
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


def ort_optimized(view: ModelView) -> bool:
    """Saved by onnxruntime's graph optimizer (SessionOptions.optimized_model_filepath), which imports
    every domain it registers, its NCHWc layout domain among them."""
    return "com.microsoft.nchwc" in view.opsets


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


def _without_padding(tensor: ParamTensor, channels: int) -> ParamTensor:
    """`tensor` as the framework held it: its leading dim cut back to `channels`."""
    dims = (channels, *(tensor.dims or ())[1:])
    count = element_count(dims)
    note = f"stored padded to {tensor.dims[0] if tensor.dims else '?'} channels by onnxruntime's NCHWc pass"
    return replace(tensor, dims=dims, count=count, notes=(*tensor.notes, note))


def ort_silent_fold(
    layer: Layer, tensors: list[ParamTensor], torchscript_names: bool = False
) -> list[FrameworkLayer] | None:
    """In a file onnxruntime's optimizer saved, a conv with a bias may hold a BatchNormalization folded
    without a name left behind (a conv without a bias never does: the fusion would have made one).
    Not where TorchScript export names settle it (`torchscript_names`): there torch's own fold leaves
    `onnx::Conv_N` and onnxruntime's `ConvBnFusion_*`, so a weight and bias under their state_dict keys
    hold no BN (Whisper's conv1 and conv2)."""
    weight, bias = _weight_and_bias(tensors, "Conv")
    if weight is None or bias is None:
        return None
    if torchscript_names and path_from_tensor_name(weight.name) and path_from_tensor_name(bias.name):
        return None
    return _maybe_folded_bn(
        layer, tensors, bias, "folded by onnxruntime?",
        "saved by onnxruntime's optimizer, which folds a BatchNorm into the conv before it",
    )  # fmt: skip


def nameless_torch_fold(layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
    """A PyTorch export in which no parameter keeps its state_dict name (torch.jit.freeze'd modules,
    whose weights become `/Constant_N` nodes; scripted modules of old releases, named `391`): freezing
    folds a BN into the Conv or Linear before it, and nothing in the file tells whether it did."""
    for op in ("Conv", "Gemm"):
        weight, bias = _weight_and_bias(tensors, op)
        if weight is not None and bias is not None and len(tensors) == 2:
            return _maybe_folded_bn(
                layer, tensors, bias, "folded?",
                f"no parameter of this PyTorch export keeps its name (a frozen or scripted module): a "
                f"BatchNorm may have been folded into this {op}",
            )  # fmt: skip
    return None


def _maybe_folded_bn(
    layer: Layer, tensors: list[ParamTensor], bias: ParamTensor, label: str, why: str
) -> list[FrameworkLayer]:
    """The layer as stored, and a BN of the bias's channels that may have been folded into it."""
    c = _channels(bias)
    maybe_bn = FrameworkLayer(
        f"{layer.name} (+BatchNorm {label})", "BatchNorm", Figure(0, 2 * c), Figure(0, 2 * c), AMBIGUOUS,
        [f"{why}: 0 or 4 x {c}"],
    )  # fmt: skip
    return [_file_layer(layer, tensors), maybe_bn]


def tied_transposed_copy(table: ParamTable) -> dict[str, str]:
    """Anonymous constant-folded weights shaped like a transposed copy of a stored, named weight: one
    parameter stored twice, once transposed. Tied embeddings and output heads (pytorch/pytorch#108342),
    or a parameter a module reads both as `x @ w` and `h @ w.T` (dynamo names the fold `t`). Values are
    not compared here. A copy of a square weight is only looked for beside an embedding table."""
    # by transposed dims, not dtype: a quantized head and its embedding table may be stored in two int types
    by_dims: dict[tuple[int, ...], list[ParamTensor]] = {}
    for t in table.tensors:
        if t.role in ("weight", "embedding") and t.dims and len(t.dims) == 2:
            by_dims.setdefault(t.dims, []).append(t)
    pairs: dict[str, str] = {}
    for (d0, d1), group in by_dims.items():
        # folded names first (a dotted state_dict key is ruled out without a regex), then their originals
        copies = [t for t in group if t.role == "weight" and _folded_name(t.name, _FOLDED_OR_VAL_NAME)]
        originals = [o for o in by_dims.get((d1, d0), ()) if o.role == "embedding" or d0 != d1] if copies else []
        originals = [o for o in originals if not _folded_name(o.name) and not _position_table(o)]
        for t in copies if originals else ():
            original = next((o for o in originals if o.name != t.name), None)
            if original is not None and (original.role == "embedding" or _folded_name(t.name)):
                pairs[t.name] = original.name
    return pairs


# names exporters give a weight they computed (here: transposed) at export: torch.onnx (TorchScript)
# `onnx::MatMul_12` or a bare number, onnxruntime's folding `/lm_head/Transpose_output_0`, dynamo the
# op it folded (`t`, `transpose_1`, `permute`)
_FOLDED_NAME = re.compile(r"onnx::.+|\d+|(.*/)?Transpose_output_\d+|(t|transpose|permute)(_\d+)?")
# dynamo's `val_12` too: its Linear weights are all such folds (of parameters the file does not store
# under their own name), so only an embedding table, which a Gather reads as stored, is matched with one;
# likewise tf2onnx's `const_fold_opt__14` (every transposed kernel it folds is named so)
_FOLDED_OR_VAL_NAME = re.compile(_FOLDED_NAME.pattern + r"|val_\d+|const_fold_opt__\d+")


def named_transposed_copies(table: ParamTable) -> dict[str, str]:
    """Hugging Face Optimum writes a tied output head as `Transpose(<table>)` named `<table>_transposed`
    (GPT-2's `transformer.wte.weight_transposed`), which onnxruntime's optimizer folds into a stored
    tensor of that name: the name and the reversed dims say which stored tensor it is a copy of.
    Copy name -> original name."""
    suffix = "_transposed"
    copies = [t for t in table.tensors if t.name.endswith(suffix) and t.dims and len(t.dims) == 2]
    if not copies:
        return {}
    dims = {t.name: t.dims for t in table.tensors if t.category == "parameter"}
    found = {}
    for t in copies:
        original = t.name[: -len(suffix)]
        if t.category == "parameter" and dims.get(original) == t.dims[::-1]:
            found[t.name] = original
    return found


def _not_own(fl: FrameworkLayer, copy: ParamTensor, of: str, how: str) -> str:
    """Leave `copy`, a stored copy of the parameter `of` (counted where `of` is), out of the layer;
    `how` says what shows it is one."""
    count = copy.count or 0
    why = f"{copy.name} is {of} {how}: counted once, with {of}"
    return _revise(fl, Figure(fl.trainable.lo - count, _plus(fl.trainable.hi, -count)), why, INFERRED)


def _folded_name(name: str, pattern: re.Pattern[str] = _FOLDED_NAME) -> bool:
    # a state_dict key (dotted, no slash) is no fold: no regex for the common case (48k weights at 200k nodes)
    return not ("." in name and "/" not in name) and pattern.fullmatch(name) is not None


def _revise(fl: FrameworkLayer, trainable: Figure, why: str, status: str = AMBIGUOUS) -> str:
    """Give `fl` the figure `trainable` for the reason `why`, at least as unsure as `status`;
    returns why's short form."""
    fl.trainable = trainable
    fl.status = max(fl.status, status, key=_RANK.__getitem__)
    if fl.evidence == ["counted as stored"]:
        fl.evidence.clear()  # the first evidence line is the one shown: make it the reason
    fl.evidence.append(why)
    return why.partition(":")[0]


def _maybe_not_own(fl: FrameworkLayer, copy: ParamTensor, of: str) -> str:
    """Leave `copy` out of the layer's lower bound: it may be `of` (a tensor counted elsewhere, or a
    value computed from parameters; `of` says why and how it is counted)."""
    lower = Figure(fl.trainable.lo - (copy.count or 0), fl.trainable.hi)
    return _revise(fl, lower, f"{copy.name} {'x'.join(map(str, copy.dims or ()))} may be {of}")


def _maybe_counted_again(fl: FrameworkLayer, t: ParamTensor, readers: list[str]) -> str:
    """Let the layer's upper bound count `t` once more for each other module that reads it."""
    upper = Figure(fl.trainable.lo, _plus(fl.trainable.hi, (t.count or 0) * len(readers)))
    return _revise(
        fl,
        upper,
        f"{t.name} is read by {1 + len(readers)} modules (also {', '.join(readers)}): one parameter they share, "
        "or equal values the exporter stored once (an untrained model's ones and zeros); counted once at least, "
        "once per module at most",
    )


_TIED = frozenset({"embedding", "weight"})


def _same_parameter_kind(role: str, read_as: str) -> bool:
    if read_as == DATA or ROLES[read_as].category != "parameter":
        return False
    return role == read_as or not {role, read_as} == _TIED


def read_by_several_modules(table: ParamTable, layers: list[Layer]) -> dict[str, list[str]]:
    """torch.onnx (dynamo) stores tensors of equal values once: an untrained model's LayerNorm scales
    and zero biases of several modules become one initializer they all read. Tensor name -> the
    other modules that read it as a parameter (a zero bias of one and a LayerNorm shift of another
    become one). A module's later call (`X_1` in a legacy export) shares its parameters for real and
    is left out, as is an embedding table read as an output head's weight (tied: once in torch)."""
    several = [t for t in table.tensors if len(t.uses) > 1 and t.category == "parameter"]
    if not several:
        return {}
    # modules only: a node of no module (`/MatMul_2`, an unrolled RNN's step) is a layer of its own
    modules = [layer for layer in layers if layer.path and not layer.path[0].startswith("#")]
    layer_of_node = {node.index: layer.name for layer in modules for node in layer.nodes}
    layer_of_tensor = {t.name: layer.name for layer in modules for t in layer.tensors}
    found = {}
    for t in several:
        own = layer_of_tensor.get(t.name)
        if own is None:
            continue
        readers = dict.fromkeys(layer_of_node.get(u.node.index) for u in t.uses if _same_parameter_kind(t.role, u.role))
        others = [name for name in readers if name and name != own and called_again(name) != own]
        if others:
            found[t.name] = others
    return found


def later_call_copies(layers: list[Layer]) -> dict[str, tuple[str, str]]:
    """torch.onnx (legacy) scopes a module's later calls `X_1`, `X_2`; a simplifier (onnxslim) then
    folds the weight's transpose once per call and stores it under the call's name
    (`.../query_1/Transpose_output_0`): an anonymous weight of `X_n` shaped like a weight of X may be
    X's. Copy name -> (the weight it may be a copy of, why)."""
    by_name: dict[str, Layer] | None = None
    found = {}
    for layer in layers:
        name = layer.name
        if not name[-1:].isdigit() or (base := called_again(name)) is None:
            continue
        by_name = by_name or {la.name: la for la in layers}
        first = by_name.get(base)
        if first is None:
            continue
        shapes = {(t.dtype, t.dims): t.name for t in first.tensors if t.role == "weight" and t.dims}
        for t in layer.tensors:
            key = (t.dtype, t.dims)
            if t.role == "weight" and key in shapes and path_from_tensor_name(t.name) is None:
                found[t.name] = (
                    shapes[key],
                    f"{shapes[key]} of {first.name} stored again for a later call of that module: counted once "
                    "at least, as stored at most (values not compared)",
                )
    return found


# a layer of these ops (and layout plumbing) is one matrix product per call, plus its bias
_ONE_PRODUCT_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Add"})


# what dynamo names a product it computed at export, or a parameter it repeated per batch row
# (MultiheadAttention's bias_k as `repeat`): an op's output, not a parameter's name
_DYNAMO_PRODUCT = re.compile(r"(linear|addmm|mm|bmm|matmul|baddbmm|repeat|tile|expand)(_\d+)?")


def folded_products(tensors: list[ParamTensor]) -> dict[str, str]:
    """torch.onnx (dynamo) computes at export what depends on parameters alone, e.g. DeBERTa's relative
    position embeddings projected by each layer's pos_key_proj and split per head ((heads, positions,
    head size) `transpose_1`), or a Linear applied to a zero state (`linear_1`: its bias, repeated per
    batch row). A Linear weight is 2-D: an anonymous constant of 3 dims or more that a MatMul reads is
    more likely such a product, whose sources the file does not hold; so is one named after a product."""
    found = {}
    for t in tensors:
        dims = t.dims
        if t.category != "parameter" or not dims:
            continue
        named_product = "." not in t.name and _DYNAMO_PRODUCT.fullmatch(t.name) is not None
        if not named_product and (t.role != "weight" or len(dims) < 3 or path_from_tensor_name(t.name) is not None):
            continue
        if named_product or all(u.node.op_type == "MatMul" for u in t.uses):
            why = (
                f"named after the {t.name.rstrip('_0123456789')} that made it"
                if named_product
                else "a Linear weight has 2 dims"
            )
            found[t.name] = (
                f"a product computed at export from parameters ({why}): counted as stored at most; the "
                "parameters it came from, and their count, may not be in the file"
            )
    return found


def measured_only(view: ModelView, table: ParamTable) -> dict[str, str]:
    """Weights whose products only a Shape reads: their values are never used. onnxruntime's T5 attention
    fusion copies layer 0's key projection into the fused qkv weight and keeps the original MatMul for
    the key length its position bias needs. Weight name -> why it may be counted twice."""
    readers, main = view.main.readers, view.main.scope
    return {
        t.name: "a copy an optimizer's fusion left behind (only a Shape reads its product): counted as stored at most"
        for t in table.tensors
        if t.role == "weight" and t.uses and all(u.node.scope == main and _measured(u.node, readers) for u in t.uses)
    }


def _measured(node: Node, readers: dict[str, list[Node]], depth: int = 0) -> bool:
    """Whether only Shape reads `node`'s outputs, directly or through reshaping ops."""
    outputs = [out for out in node.outputs if out]
    if not outputs or depth > 4:
        return False
    for out in outputs:
        for reader in readers.get(out) or [None]:
            if reader is None or not (
                reader.op_type == "Shape"
                or (
                    reader.op_type in _RESHAPING
                    and reader.inputs[:1] == (out,)
                    and _measured(reader, readers, depth + 1)
                )
            ):
                return False
    return True


def anonymous_biases(tensors: list[ParamTensor]) -> dict[str, str]:
    """A (1, N) constant the TorchScript exporter named `onnx::Add_N`, added like a bias, in a file that
    keeps its parameters' state_dict names: a registered buffer (BART's final_logits_bias after its
    lm_head) or a value folded at export. Not a Linear's bias: that keeps its key, or, a slice folded at
    export (MultiheadAttention's in_proj_bias split per q, k, v), has one dim."""
    return {
        t.name: "a registered buffer or a value folded at export (an anonymous bias, where the file names its "
        "parameters): counted as stored at most"
        for t in tensors
        if t.role == "bias"
        and t.dims is not None
        and len(t.dims) > 1
        and _ANONYMOUS_ADD.fullmatch(t.name)
        and all(u.node.op_type == "Add" for u in t.uses)
    }


def buffer_named(tensors: list[ParamTensor]) -> list[ParamTensor]:
    """Tensors named like a registered buffer (Silero's `stft.forward_basis_buffer`, a conv's fixed STFT
    basis): the TorchScript exporter, and tools that inline its files, store a buffer as they store a
    parameter, and only dynamo's node metadata tells them apart. The name is the only evidence, so
    such a tensor stays in the upper bound."""
    found = []
    for t in tensors:
        if "buf" not in t.name.lower():  # most names: no split (48k weights at 200k nodes)
            continue
        leaf = _NAME_PARTS.split(t.name)[-1].lower()
        if "buffer" in leaf or leaf == "buf" or leaf.endswith("_buf"):
            found.append(t)
    return found


_BUFFER_NAMED = "a registered buffer, by its name, stored as the exporter stores a parameter: counted as stored at most"
# a name's parts: state_dict dots, scopes' slashes, the `__` spox and onnx's inliner put before a branch's names
_NAME_PARTS = re.compile(r"[./]|__")
_TOOL_SUFFIX = re.compile(r"(_quantized|_merged_\d+)$")
# the TorchScript exporter's name for an Add's constant input (Optimum's merged decoders add `_merged_0`)
_ANONYMOUS_ADD = re.compile(r"onnx::Add_\d+(_merged_\d+)?")


def per_call_copies(layer: Layer, tensors: list[ParamTensor]) -> dict[str, tuple[str, str]]:
    """torch.onnx (dynamo) folds a shared module's weight transpose once per call (ALBERT's shared
    layers): a Linear called k times holds k anonymous weights of one shape, one per product. Copy
    name -> (what it may be a copy of: the first of its shape, why)."""
    weights = [t for t in tensors if t.role == "weight" and t.dims]
    if len(weights) < 2:  # most layers: one weight
        return {}
    if any(n.op_type not in _ONE_PRODUCT_OPS and n.op_type not in _LAYOUT_OPS for n in layer.nodes):
        return {}
    first: dict[tuple[object, ...], ParamTensor] = {}
    found = {}
    for t in weights:
        if path_from_tensor_name(t.name) is not None or len(t.uses) != 1:
            continue  # a state_dict key names a parameter of its own
        key = (t.dtype, t.dims)
        if key in first:
            found[t.name] = (
                first[key].name,
                f"{first[key].name} stored again for another call of this module: counted once at least, "
                "as stored at most (values not compared)",
            )
        else:
            first[key] = t
    return found


def _position_table(t: ParamTensor) -> bool:
    """An EmbedLayerNormalization position or segment table (inputs 3, 4): never tied to an output head,
    so a square hidden x hidden weight matching its shape is no copy of it."""
    return bool(t.uses) and all(u.node.op_type == "EmbedLayerNormalization" and u.slot in (3, 4) for u in t.uses)


# a rewrite gets the layer and its counted tensors (computed once per layer, not once per rewrite)
Rewrite = Callable[[Layer, list[ParamTensor]], "list[FrameworkLayer] | None"]


def framework_view(view: ModelView, table: ParamTable, layers: list[Layer]) -> FrameworkView:
    origin = _origin(view)
    rewrites: list[Rewrite]
    named = False  # a PyTorch file that keeps its parameters' state_dict names
    if origin == "keras":
        naming = tf_naming(view)
        producer_of = _producer_index(view)
        tflite = tflite_export(view)
        folded = tflite_folded_bns(view, naming) if tflite else frozenset()
        rewrites = [
            lambda la, tensors: keras_bn_scale_shift(la, tensors, naming, folded),
            lambda la, tensors: keras_conv_bn_merged(la, tensors, naming),
            lambda la, tensors: keras_fused_bn(la, tensors, naming, producer_of),
            keras_recurrent_bias,
            lowered_layer_norm,
            keras_prelu,
            keras_normalization,
            keras_bn_const_affine,
            keras_rnn_loop_bias,
        ]
        if tflite:
            rewrites.append(tflite_maybe_folded)
    elif origin == "pytorch":
        dynamo_conv_bn: Rewrite = partial(torch_dynamo_conv_bn, view=view)
        rewrites = [
            dynamo_conv_bn,
            lambda la, tensors: onnxscript_bn_fusion(la, tensors, view),
            lowered_layer_norm,
            lambda la, tensors: torch_instance_norm_with_stats(la, tensors, view),
            torch_bn_without_affine,
            lowered_group_norm,
        ]
        rewrites += [torch_parametrized_weight, torch_norm_without_affine]
        if ultralytics_export(view):
            rewrites[:0] = [ultralytics_fused_conv, ultralytics_anchors]
        # an anonymous conv weight means "folded" only where the file keeps state_dict names elsewhere,
        # or where a simplifier named what it folded
        # onnxruntime's quantizers store `fc.weight` as `fc.weight_quantized`, Optimum's merged decoders as
        # `fc.weight_merged_0`
        params = [_TOOL_SUFFIX.sub("", t.name) for t in table.tensors if t.category == "parameter"]
        named = any(map(path_from_tensor_name, params))
        if named or any(map(_SIMPLIFIER_FOLDED.fullmatch, params)):
            rewrites.insert(1, torch_legacy_folded_conv)
        elif params and all(map(_ANONYMOUS_PARAMETER.fullmatch, params)) and not ort_optimized(view):
            rewrites.append(nameless_torch_fold)  # (onnxruntime's own doubt, below, says the same of its files)
        # a rule for ops that no weight of the file meets cannot match: skipped (50k layers at 200k nodes)
        used = {u.node.op_type for t in table.tensors for u in t.uses}
        for rule, ops in ((dynamo_conv_bn, _DYNAMO_FUSED_OPS), (lowered_group_norm, {"InstanceNormalization"}),
                          (torch_legacy_folded_conv, _SAME_OP["Conv"])):  # fmt: skip
            if rule in rewrites and used.isdisjoint(ops):
                rewrites.remove(rule)
    elif origin == "paddle":
        rewrites = [paddle_bn_without_affine, lowered_layer_norm]
    else:
        rewrites = [lowered_layer_norm]
    if origin != "pytorch":  # (the PyTorch rules hold these two in their own order)
        # onnxscript's optimizer and onnxslim run on any export (jax2onnx's, onnx.helper's): their folds
        # are told by the node's metadata and by the folded tensor's name, whoever exported the file
        rewrites.insert(0, lambda la, tensors: onnxscript_bn_fusion(la, tensors, view))
        params = [t.name for t in table.tensors if t.category == "parameter"]
        if origin == "unknown" and any(map(_SIMPLIFIER_FOLDED.fullmatch, params)):  # (Keras has its own)
            rewrites.insert(1, torch_legacy_folded_conv)
    rewrites.insert(0, ort_conv_bn_fusion)  # onnxruntime re-saves exports of either framework
    if any(t.uses and t.uses[0].node.op_type == "InstanceNormalization" for t in table.tensors):
        rewrites.append(lambda la, tensors: instance_norm_over_groups(la, tensors, view))
    if _bn_reads_its_parameters_as_statistics(table):  # so do simplifiers
        rewrites.insert(1, bn_statistics_stored_once)
    if ort_optimized(view):
        # torch.onnx before 1.13 named nodes `Conv_611` (Silero VAD v4, pytorch 1.12, saved by onnxruntime):
        # its folds are bare numbers, so what keeps its state_dict key there holds no fold either
        torchscript_names = torchscript_node_names(view) or (
            view.producer.startswith("pytorch")
            and all(_OLD_TORCHSCRIPT_NODE.fullmatch(n.name) for n in view.main.nodes)
        )
        rewrites.append(lambda la, tensors: ort_silent_fold(la, tensors, torchscript_names))
    tied, known = _possible_copies(view, table, layers, origin)
    runtime_fold = bn_folded_at_run_time(table)
    shared = read_by_several_modules(table, layers) if origin == "pytorch" else {}
    chains = lowered_bn_chains(view, table)
    claimed = {name for _, _, names in chains for name in names}
    ordered: list[tuple[int, list[FrameworkLayer]]] = [(index, [layer]) for index, layer, _ in chains]
    applied: list[str] = [f"{layer.name}: {layer.evidence[0]}" for _, layer, _ in chains]
    unpadded = nchwc_true_channels(view) if ort_optimized(view) else {}
    for layer in layers:
        tensors = _counted(layer.tensors)  # once per layer, for every rewrite
        if claimed:
            tensors = [t for t in tensors if t.name not in claimed]
        if unpadded:
            tensors = [_without_padding(t, unpadded[t.name]) if t.name in unpadded else t for t in tensors]
        if not tensors:
            continue
        rebuilt = None
        for rewrite in rewrites:
            rebuilt = rewrite(layer, tensors)
            if rebuilt:
                applied.append(f"{layer.name}: {rebuilt[-1].evidence[0]}")
                break
        if rebuilt is None:
            rebuilt = [_file_layer(layer, tensors)]
            copies = {**tied, **runtime_bn_fold_biases(tensors)} if runtime_fold else tied
            if origin == "pytorch":
                copies = {**copies, **folded_products(tensors)}
                if named:
                    copies.update(anonymous_biases(tensors))
            for copy in tensors if copies else ():
                if copy.name in copies:
                    applied.append(f"{layer.name}: {_maybe_not_own(rebuilt[0], copy, copies[copy.name])}")
            for copy in tensors if known else ():
                if copy.name in known:
                    applied.append(f"{layer.name}: {_not_own(rebuilt[0], copy, *known[copy.name])}")
        for t in buffer_named(tensors) if origin != "keras" else ():
            applied.append(f"{layer.name}: {_maybe_not_own(_holder(rebuilt, t), t, _BUFFER_NAMED)}")
        for t in tensors if shared else ():
            if t.name in shared:
                applied.append(f"{layer.name}: {_maybe_counted_again(_holder(rebuilt, t), t, shared[t.name])}")
        ordered.append((layer.first_index, rebuilt))
    if "ai.onnx.ml" in view.opsets:
        ordered += [(node.index, [attribute_parameters(node)]) for node in _ml_attribute_nodes(view)]
    out = [fl for _, group in sorted(ordered, key=itemgetter(0)) for fl in group]
    dead = [t for t in table.tensors if t.category == "unused" and t.dtype.startswith(_FLOAT) and (t.count or 0) > 1]
    if dead:
        out.append(read_by_no_node(dead))
    notes = []
    if any(_LOOKUP_NAME.fullmatch(t.name) and _folded_lookup(t) for t in table.tensors if t.category == "unclassified"):
        notes.append(
            "Constants added to activations look like embedding rows looked up at export for a traced length "
            "(torch.onnx dynamo with static shapes): the tables they came from are not in the file, so the "
            "framework's count can be above this range."
        )
    if shared:
        notes.append(
            "Some tensors are read by several modules: one parameter they share (tied), or equal values stored "
            "once, as in an untrained model's export, whose all-zero biases exporters and simplifiers also remove; "
            "no count of the file can show those, so the framework's count may then be larger than this range."
        )
    if origin == "keras":
        notes.append("Keras layers frozen with trainable=False cannot be seen in an ONNX file.")
    if ort_optimized(view) and any(t.role == "weight" and _ORT_REORDERED.fullmatch(t.name) for t in table.tensors):
        notes.append(
            "onnxruntime's NCHWc layout pass pads a conv's filter and bias with zeros up to a multiple of the "
            "CPU's channel block (8 or 16) when its output channels are not one: the file view counts them as "
            "stored, this view the channels the ReorderOutput after the conv restores (where one is reached)"
        )
    return FrameworkView(origin, _merge_same_name(out), applied, notes)


# what torch.onnx calls a tensor it did not take from the state_dict: a folded value (`onnx::Conv_42`, a bare
# number before torch 1.13) or a Constant node's output (a frozen module's weights)
_ANONYMOUS_PARAMETER = re.compile(r"onnx::.+|\d+|(/.*)?Constant(_\d+)?_output_\d+")
_COMPARE_MAX_NODES = 20_000
_OLD_TORCHSCRIPT_NODE = re.compile(r"[A-Z][A-Za-z0-9]*_\d+")


def _possible_copies(
    view: ModelView, table: ParamTable, layers: list[Layer], origin: str
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Stored tensors that may be another parameter stored again: a transposed copy of a tied weight,
    a shared module's weight stored once per call, a fusion's leftover. Where both are embedded in the
    file, sampled values settle a pair (onnxaudit/copies.py): a copy is known, another weight is no
    copy. Returns the doubts left (copy name -> why) and the known copies (copy -> (original, how))."""
    transposed = tied_transposed_copy(table)
    calls: dict[str, tuple[str, str]] = {}
    if origin == "pytorch":
        calls = later_call_copies(layers)
        for layer in layers:
            if sum(t.role == "weight" for t in layer.tensors) > 1:  # most layers: one weight
                calls.update(per_call_copies(layer, _counted(layer.tensors)))
    branches = branch_copies(view, table)
    same: dict[str, bool] = {}
    samples = 0
    # datamap imports all of onnx and walks the whole structure again (~1.6 s at 200k nodes): only for
    # files with such a pair, and not for the largest graphs, whose pairs stay "values not compared"
    if (transposed or calls or branches) and len(view.main.nodes) <= _COMPARE_MAX_NODES:
        from onnxaudit.frameworks.copies import SAMPLES, settle_copies

        same_layout = {copy: first for copy, (first, _) in calls.items()}
        same = settle_copies(view.path, transposed, same_layout, {copy: first for copy, (first, _) in branches.items()})
        samples = SAMPLES
    doubts = {
        copy: f"a transposed copy of tied {first}: counted once at least, twice at most (values not compared)"
        for copy, first in transposed.items()
        if copy not in same
    }
    doubts.update((copy, why) for copy, (_, why) in calls.items() if copy not in same)
    if "com.microsoft" in view.opsets:  # onnxruntime's fusions: the only known source of such leftovers
        doubts.update(measured_only(view, table))
    known = {
        copy: (first, "stored again, transposed (its name says so)")
        for copy, first in named_transposed_copies(table).items()
    }
    equal = f"values equal at {samples} sampled positions"
    known.update(
        (copy, (first, f"stored again, transposed ({equal})")) for copy, first in transposed.items() if same.get(copy)
    )
    known.update(
        (copy, (first, f"stored again for another call ({equal})"))
        for copy, (first, _) in calls.items()
        if same.get(copy)
    )
    known.update(
        (copy[1], (first[1], f"stored again in the other branch of If {owner} ({equal})"))
        for copy, (first, owner) in branches.items()
        if same.get(copy[1])
    )
    return doubts, known


def branch_copies(view: ModelView, table: ParamTable) -> dict[tuple[str, str], tuple[tuple[str, str], str]]:
    """Weights of one module stored in both branches of an If (Silero VAD v4: its decoder LSTM folded
    once per branch by torch.onnx): for each tensor of the else branch, the first unpaired tensor of the
    then branch with its dtype and dims. Values decide (copies.py); names cannot. Copy (scope, name) ->
    ((scope, name) of the candidate original, the If's label)."""
    if len(view.graphs) == 1:  # no bodies (a 200k-node graph: no walk over its 48k tensors)
        return {}
    stored: dict[str, list[ParamTensor]] = {}
    for t in table.tensors:
        if t.scope != MAIN and t.dims and t.category in ("parameter", "statistic"):
            stored.setdefault(t.scope, []).append(t)
    if not stored:
        return {}
    children: dict[str, list[str]] = {}
    for scope, graph in view.graphs.items():
        if graph.parent is not None:
            children.setdefault(graph.parent, []).append(scope)

    def held(branch: str) -> list[ParamTensor]:  # stored in the branch or a body nested in it
        found, todo, seen = [], [branch], set()
        while todo:
            scope = todo.pop()
            if scope not in seen:
                seen.add(scope)
                found += stored.get(scope, ())
                todo += children.get(scope, ())
        return found

    pairs: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
    for node in view.all_nodes():
        if node.op_type != "If" or len(node.subgraphs) != 2:
            continue
        then, other = held(node.subgraphs[0]), held(node.subgraphs[1])
        if not then or not other:
            continue
        free: dict[tuple[str, tuple[int, ...]], list[ParamTensor]] = {}
        for t in then:
            free.setdefault((t.dtype, t.dims), []).append(t)  # type: ignore[arg-type]
        for t in other:
            candidates = free.get((t.dtype, t.dims))  # type: ignore[arg-type]
            if candidates:
                first = candidates.pop(0)
                pairs[(t.scope, t.name)] = ((first.scope, first.name), node.label)
    return pairs


_FLOAT = ("float", "bfloat")


def read_by_no_node(dead: list[ParamTensor]) -> FrameworkLayer:
    """Float tensors that no node reads: a module the graph never calls (its parameters still count in
    the framework: paddle2onnx's SimpleRNN, whose weights only dead Identity nodes read) or a leftover
    of an exporter. Counted as stored at most."""
    n = sum(t.count or 0 for t in dead)
    return FrameworkLayer(
        "(not consumed by any node)", "unused", Figure(0, n), ZERO, AMBIGUOUS,
        [f"{len(dead)} float tensors ({n:,} values) stored but read by no node: a module the graph never calls "
         "(its parameters still count in the framework) or an exporter's leftover; counted as stored at most"],
        [t.name for t in dead],
    )  # fmt: skip


def bn_folded_at_run_time(table: ParamTable) -> bool:
    """onnxoptimizer's fuse_bn_into_conv left its run-time fold: a BN mean that a Sub takes from a bias."""
    return any(t.role == "bn_mean" and any(u.node.op_type == "Sub" for u in t.uses) for t in table.tensors)


def runtime_bn_fold_biases(tensors: list[ParamTensor]) -> dict[str, str]:
    """onnxoptimizer's fuse_bn_into_conv computes the conv's bias at run time as (b - mean) * scale + beta
    and gives a conv without bias a b of zeros: the b the Sub takes the mean from may be no parameter of
    the framework."""
    return {
        t.name: "zeros onnxoptimizer's BatchNorm fusion made for a conv without bias: counted as stored at most"
        for t in tensors
        if t.role == "bias" and any("Sub" in u.via for u in t.uses)
    }


def _holder(rebuilt: list[FrameworkLayer], t: ParamTensor) -> FrameworkLayer:
    """The rebuilt layer that lists `t`, else the first (a rewrite may list only the tensors it used)."""
    return next((fl for fl in rebuilt if t.name in fl.tensors), rebuilt[0])


def _merge_same_name(layers: list[FrameworkLayer]) -> list[FrameworkLayer]:
    """A BN rebuilt from a conv row may share its name with a zero-param row of the file view."""
    merged: dict[str, FrameworkLayer] = {}
    for layer in layers:
        if layer.name in merged:
            prior = merged[layer.name]
            prior.trainable += layer.trainable
            prior.non_trainable += layer.non_trainable
            prior.status = max(prior.status, layer.status, key=_RANK.__getitem__)
            prior.evidence += layer.evidence
            prior.tensors += layer.tensors
        else:
            merged[layer.name] = layer
    return list(merged.values())


@dataclass
class FrameworkReport:
    """The framework view as plain data for the Report (figures as lo/hi ranges)."""

    origin: str
    status: str
    total: Figure
    trainable: Figure
    non_trainable: Figure
    layers: list[FrameworkLayer]
    rewrites: list[str]
    notes: list[str]


def framework_report(fv: FrameworkView) -> FrameworkReport:
    trainable, non_trainable = fv.trainable, fv.non_trainable  # each a sum over every layer
    return FrameworkReport(
        fv.origin, fv.status, trainable + non_trainable, trainable, non_trainable, fv.layers, fv.rewrites, fv.notes
    )
