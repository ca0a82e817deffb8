"""Which role each constant tensor plays: an op/slot table plus tracing through constant-only paths.

A tensor's role comes from the slot it finally lands in (Conv input 1 is a weight, BatchNormalization
input 3 is a running mean), not from its name. Weights reached through Transpose, Cast, Reshape,
DequantizeLinear, ConstantOfShape and other constant-only computations are traced back to the stored
tensor, which is the parameter, counted once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter

from onnxaudit.io.dims import INTEGER_DTYPES, element_count
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.model.exporters import called_again, torchscript_export
from onnxaudit.model.ops import (
    DATA,
    LAYOUT_DOMAINS,
    LAYOUT_OR_QDQ,
    MATMUL_OPERANDS,
    MATMUL_QUANT_SLOTS,
    ML_ATTRIBUTE_PARAMS,
    MS_DOMAINS,
    MS_SLOT_TABLE,
    MULS,
    NONDETERMINISTIC,
    OPERAND_SLOTS,
    PACKED_OPS,
    QOPERATOR_ELEMENTWISE,
    SLOT_TABLE,
    STD_DOMAINS,
    STD_MS_DOMAINS,
    STORED_THROUGH,
    WEIGHT_CARRIERS,
    WEIGHT_OPS,
    output_channels,
)
from onnxaudit.model.view import Graph, ModelView, Node, Tensor, frozen_from_dict

# ---------------------------------------------------------------- the roles


@dataclass(frozen=True)
class RoleInfo:
    category: str  # parameter | statistic | quantization | shape | literal | state | unclassified
    describe: str


ROLES: dict[str, RoleInfo] = {
    "weight": RoleInfo("parameter", "weight"),
    "bias": RoleInfo("parameter", "bias"),
    "bn_gamma": RoleInfo("parameter", "BN scale (gamma)"),
    "bn_beta": RoleInfo("parameter", "BN shift (beta)"),
    "bn_mean": RoleInfo("statistic", "BN moving/running mean"),
    "bn_var": RoleInfo("statistic", "BN moving/running variance"),
    "norm_scale": RoleInfo("parameter", "normalization scale"),
    "norm_bias": RoleInfo("parameter", "normalization bias"),
    "embedding": RoleInfo("parameter", "embedding table"),
    "rnn_W": RoleInfo("parameter", "RNN input weights W"),
    "rnn_R": RoleInfo("parameter", "RNN recurrent weights R"),
    "rnn_B": RoleInfo("parameter", "RNN biases B"),
    "rnn_P": RoleInfo("parameter", "RNN peephole weights P"),
    "prelu_slope": RoleInfo("parameter", "PRelu slope"),
    "scalar_parameter": RoleInfo("parameter", "scalar parameter (stored under its module attribute's name)"),
    "fx_parameter": RoleInfo("parameter", "parameter read as data (torch.onnx's node metadata says so)"),
    "quant_scale": RoleInfo("quantization", "quantization scale"),
    "quant_zero_point": RoleInfo("quantization", "quantization zero point"),
    "shape": RoleInfo("shape", "shape-like constant (shape, axes, indices, sizes)"),
    "literal": RoleInfo("literal", "scalar literal"),
    "initial_state": RoleInfo("state", "initial recurrent/attention state"),
    "precomputed": RoleInfo("state", "precomputed table (rotary cos/sin cache): a non-persistent buffer"),
    "mask": RoleInfo("state", "boolean mask (causal/padding mask): a non-persistent buffer"),
    "buffer": RoleInfo("state", "registered buffer, not a parameter (torch.onnx's node metadata says so)"),
    "unclassified": RoleInfo("unclassified", "constant of unknown role"),
    "unused": RoleInfo("unused", "stored but consumed by no node"),
}

# a module attribute's state_dict name (`logit_scale`, `encoder.alpha`); not `onnx::Mul_3`, `/a/Constant_output_0`
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_]\w*(\.\w+)*")
_FLOAT_DTYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16})
_UNKNOWN = object()
_NO_SLOTS: dict[int, str] = {}

PARAMETER_CATEGORIES = frozenset({"parameter", "statistic"})
# Slot roles a constant keeps when it reaches them through run-time layout ops: an RNN's zero initial
# state broadcast by Expand to the batch (torch.onnx legacy LSTM/GRU/RNN without h0) is a state too.
FORWARD_CATEGORIES = PARAMETER_CATEGORIES | {"state"}
# When a tensor lands in several slots, the strongest role names it (tied weights keep the first).
_STRENGTH = {"parameter": 0, "statistic": 1, "unclassified": 2, "state": 3, "quantization": 4,
             "shape": 5, "literal": 6, "unused": 7}  # fmt: skip
_ROLE_STRENGTH = {role: _STRENGTH[info.category] for role, info in ROLES.items()}  # one lookup per use


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Use:
    """One consumption of a source tensor: the node and slot it finally lands in."""

    node: Node
    slot: int
    role: str
    via: tuple[str, ...] = ()  # constant-only ops passed through on the way, nearest the source first


def _later_call(consumer: Node, readers: list[tuple[Node, int]] | tuple[()]) -> bool:
    """Whether `consumer` sits in a later call of a module whose own nodes (`X/...`) are among `readers`."""
    base = called_again(consumer.name.rpartition("/")[0])
    return base is not None and any(node.name.rpartition("/")[0] == base for node, _ in readers)


def _use(node: Node, slot: int, role: str, via: tuple[str, ...]) -> Use:
    """Use(node, slot, role, via) without the frozen dataclass's __init__ (one per consumed constant)."""
    return frozen_from_dict(Use, {"node": node, "slot": slot, "role": role, "via": via})  # type: ignore[no-any-return]


def _classified(tensor: Tensor, role: str, logical: tuple[int, ...] | None) -> Classified:
    """Classified(tensor, role, logical_dims=logical) without the dataclass's __init__ (one per tensor)."""
    fields = {"tensor": tensor, "role": role, "uses": [], "logical_dims": logical, "notes": []}
    return frozen_from_dict(Classified, fields)  # type: ignore[no-any-return]


@dataclass
class Classified:
    tensor: Tensor
    role: str
    uses: list[Use] = field(default_factory=list)
    logical_dims: tuple[int, ...] | None = None  # e.g. MatMulNBits' N x K for packed storage
    notes: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        return ROLES[self.role].category


@dataclass
class RoleTable:
    tensors: list[Classified]
    limits: list[str]
    trained: frozenset[str] | None = None  # ModelView.trained: what the file's training updates


# ---------------------------------------------------------------- the classifier


class _Classifier:
    MAX_TRACE = 64

    def __init__(self, view: ModelView) -> None:
        self.view = view
        # scope -> value -> the node that writes it: a subgraph's shared index (view.Graph.producers);
        # settle_constants fills top-level graphs' in its own pass, which also checks their order
        self.producers: dict[str, dict[str, Node]] = {}
        for scope, graph in view.graphs.items():
            if graph.parent is not None:
                self.producers[scope] = graph.producers
        self.const_memo: dict[str, dict[str, bool]] = {scope: {} for scope in view.graphs}  # per scope, by name
        # the tensors of each graph without a parent: there a name resolves in one dict, without a walk
        self.top_level = {scope: graph.tensors for scope, graph in view.graphs.items() if graph.parent is None}
        # (domain, op) -> its fixed slot table, or None when slot_role must look at the node
        self.fixed_slots: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self.found: dict[tuple[str, str], Classified] = {}
        self.limits: list[str] = []
        self.formal_memo: dict[tuple[str, str], str] = {}
        # from settle_constants: the constant names of each top-level graph (is_constant's answers
        # there) and the indices of the nodes whose outputs are all constant
        self.constants: dict[str, set[str]] = {}
        self.constant_nodes: set[int] = set()
        # found's key -> its first use (node index, slot), kept as uses are recorded: the table's order
        self.first_use: dict[tuple[str, str], tuple[int, int]] = {}
        self.alias_notes: dict[tuple[str, str], str] = {}  # deduplicated_alias's tensors: their note

    @cached_property
    def consumers(self) -> dict[tuple[str, str], list[tuple[Node, int]]]:
        """(scope, value) -> the (node, slot) pairs that read it; built when first needed (forward
        tracing, If outputs), which most graphs never are."""
        consumers: dict[tuple[str, str], list[tuple[Node, int]]] = {}
        for node in self.view.all_nodes():
            scope = node.scope
            for slot, name in enumerate(node.inputs):
                if name:
                    uses = consumers.get((scope, name))
                    if uses is None:
                        consumers[(scope, name)] = [(node, slot)]
                    else:
                        uses.append((node, slot))
        return consumers

    # -- scoping

    def producer(self, scope: str, name: str) -> Node | None:
        if scope in self.top_level:  # no enclosing graph to walk to
            return self.producers[scope].get(name)
        current: str | None = scope
        while current is not None:
            node = self.producers[current].get(name)
            if node is not None:
                return node
            if name in self.view.graphs[current].tensors:
                return None
            current = self.view.graphs[current].parent
        return None

    def is_constant(self, scope: str, name: str, depth: int = 0) -> bool:
        settled = self.constants.get(scope)
        if settled is not None:  # a top-level graph, once settle_constants is through it
            return name in settled
        memo = self.const_memo[scope]
        known = memo.get(name)
        if known is not None:
            return known
        memo[name] = False  # cycle guard
        tensor = self.view.lookup(scope, name)
        if tensor is not None:
            result = True  # IR < 4 initializers listed as inputs too: a stored default, counted
        else:
            node = self.producer(scope, name)
            result = (
                node is not None
                and depth < self.MAX_TRACE
                and not node.subgraphs
                and node.op_type not in NONDETERMINISTIC
                and (node.domain, node.op_type) not in self.view.functions
            )
            if result and node is not None:  # every input constant, in order, up to the first that is not
                inner = self.const_memo[node.scope]  # is_constant's own first look, without the call
                for i in node.inputs:
                    if not i:
                        continue
                    constant = inner.get(i)
                    if constant is None:
                        constant = self.is_constant(node.scope, i, depth + 1)
                    if not constant:
                        result = False
                        break
        memo[name] = result
        return result

    def settle_constants(self) -> None:
        """Answer is_constant for every name of each top-level graph (the main graph, a function body:
        they see only their own names) at once, when its nodes are in file order, and note its
        constant-only nodes. One pass instead of a recursive call per value (250k at 200k nodes).
        Subgraphs and graphs out of order are answered as the walk asks, by is_constant itself: the
        answers its depth limit and cycle guard give there depend on the order they are asked in."""
        for scope, graph in self.view.graphs.items():
            if graph.parent is None:
                settled = self.constant_names_in_order(scope, graph)
                if settled is not None:
                    self.constants[scope], constant_nodes = settled
                    self.constant_nodes.update(constant_nodes)

    def constant_names_in_order(self, scope: str, graph: Graph) -> tuple[set[str], list[int]] | None:
        """The constant names of a top-level graph and its constant-only nodes, in one pass in node
        order that also fills producers[scope]: a node's inputs were all decided before it (file
        order is topological), and its answer is is_constant's without the recursion. None when that
        order does not hold (any input read before it is written, a name written twice)."""
        constants = set(graph.tensors)  # stored: constant, whatever node computes the name
        produced: dict[str, Node] = {}
        self.producers[scope] = produced
        functions = self.view.functions
        constant_nodes: list[int] = []
        unwritten: list[str] = []  # names read before any node wrote them: graph inputs, or out of order
        in_order = True
        for node in graph.nodes:
            constant = not (
                node.subgraphs
                or node.op_type in NONDETERMINISTIC
                or (functions and (node.domain, node.op_type) in functions)
            )
            for name in node.inputs:
                if name and name not in constants:
                    constant = False
                    if name not in produced:
                        unwritten.append(name)
            every = bool(node.outputs)
            for out in node.outputs:
                if not out:
                    continue
                if out in produced:
                    in_order = False
                produced[out] = node  # the last writer, as producer() has always seen it
                if constant:
                    constants.add(out)
                elif out not in constants:
                    every = False
            if every:
                constant_nodes.append(node.index)
        if not in_order or any(name in produced for name in unwritten):
            return None
        return constants, constant_nodes

    # -- slot roles

    def slot_role(self, node: Node, slot: int, depth: int = 0, assumed: str = "") -> str:
        """The role of input `slot` of `node`; `assumed` names a function formal bound to a constant."""
        op, domain = node.op_type, node.domain
        key = (domain, op)
        fixed = self.fixed_slots.get(key, _UNKNOWN)
        if fixed is _UNKNOWN:
            fixed = self.fixed_slots[key] = self._fixed_slots(op, domain)
        if fixed is not None:
            return fixed[slot] if slot < len(fixed) else DATA
        if key in self.view.functions:
            return self.formal_role(node, slot, depth)
        if op in ("Loop", "Scan") and domain in STD_DOMAINS and node.subgraphs:
            # Loop inputs (M, cond, v...) and Scan inputs line up one to one with the body's inputs
            role = (
                self.body_role(node.subgraphs[0], node, slot, slot, depth)
                if slot >= (2 if op == "Loop" else 0)
                else DATA
            )
            return role if role != DATA else ("shape" if op == "Loop" and slot < 2 else DATA)
        if domain in MS_DOMAINS and op in MS_SLOT_TABLE:
            if op == "QLinearAdd" and self.is_bias_add(node, slot, assumed):
                return "bias"
            if op in QOPERATOR_ELEMENTWISE and (affine := self.normalization_affine(node, slot, assumed)):
                return affine
            table = MS_SLOT_TABLE[op]
            return table[slot] if slot < len(table) else DATA
        if op in MATMUL_OPERANDS and domain in STD_MS_DOMAINS:
            return self.matmul_role(node, slot, assumed)
        if domain in STD_DOMAINS:
            if op == "Gather":
                return "embedding" if slot == 0 else "shape"
            if op == "Add" and self.is_bias_add(node, slot, assumed):
                return "bias"
            if op == "Mul" and self.is_integer_rescale(node, slot, assumed):
                return "quant_scale"
            if op in ("Mul", "Add") and len(node.inputs) == 2:
                affine = self.normalization_affine(node, slot, assumed)
                if affine:
                    return affine
            table = SLOT_TABLE.get(op)
            if table is not None:
                return table[slot] if slot < len(table) else DATA
        return DATA

    def _fixed_slots(self, op: str, domain: str) -> tuple[str, ...] | None:
        """The slot table slot_role reads for this op whatever the node (() for all DATA), or None
        when its answer depends on the node: functions, Loop/Scan, matrix products, Gather, Add, Mul."""
        if (domain, op) in self.view.functions:
            return None
        if op in ("Loop", "Scan") and domain in STD_DOMAINS:
            return None
        if domain in MS_DOMAINS and op in MS_SLOT_TABLE:
            # QLinearAdd/QLinearMul: an operand, or a bias or a norm's scale or shift
            return None if op in QOPERATOR_ELEMENTWISE else MS_SLOT_TABLE[op]
        if op in MATMUL_OPERANDS and domain in STD_MS_DOMAINS:
            return None
        if domain in STD_DOMAINS:
            if op in ("Gather", "Add", "Mul"):
                return None
            return SLOT_TABLE.get(op, ())
        if domain in LAYOUT_DOMAINS:
            return SLOT_TABLE.get(op, ())
        return ()

    def matmul_role(self, node: Node, slot: int, assumed: str = "") -> str:
        quant = MATMUL_QUANT_SLOTS.get(node.op_type, _NO_SLOTS)
        if slot in quant:
            return quant[slot]
        if node.op_type == "Gemm" and slot == 2:
            return "bias"
        operands = MATMUL_OPERANDS[node.op_type] or tuple(range(len(node.inputs)))
        if slot in operands and self._constant_or_assumed(node, slot, assumed):
            return "precomputed" if self.has_trig and self.feeds_only_cos_sin(node) else "weight"
        return DATA

    @cached_property
    def op_types(self) -> frozenset[str]:
        """Every op type in the model: the passes that look for one op (If, Cos, BatchNormalization)
        skip their walk over all nodes when it is absent."""
        return frozenset(map(attrgetter("op_type"), self.view.all_nodes()))

    @cached_property
    def has_trig(self) -> bool:
        """Any Cos or Sin at all: most graphs have none, and never build the consumer index for it."""
        return not self.op_types.isdisjoint(("Cos", "Sin"))

    def feeds_only_cos_sin(self, node: Node, depth: int = 0) -> bool:
        """The product reaches only Cos and Sin (through layout ops): rotary embeddings' inv_freq times
        positions. inv_freq is a non-persistent buffer computed from the config, not a weight."""
        uses = [use for out in node.outputs if out for use in self.consumers.get((node.scope, out), [])]
        if not uses or depth > 6:
            return False
        for consumer, _ in uses:
            if consumer.op_type in ("Cos", "Sin"):
                continue
            if consumer.op_type not in WEIGHT_CARRIERS or not self.feeds_only_cos_sin(consumer, depth + 1):
                return False
        return True

    def _constant_or_assumed(self, node: Node, slot: int, assumed: str) -> bool:
        name = node.inputs[slot]
        return bool(name) and (name == assumed or self.is_constant(node.scope, name))

    def normalization_affine(self, node: Node, slot: int, assumed: str) -> str:
        """`x_hat * gamma + beta` after a normalization written out as ops (opset < 17 LayerNorm:
        ReduceMean, Sub, Pow, Sqrt, Div; Keras 3 on TF: Sqrt, Reciprocal; tf_keras: a BatchNormalization
        fed run-time statistics): the constants are the norm's scale and bias. BN lowered with stored
        statistics (Mul + Add of folded mean/var) computes no Sqrt at run time and stays out of this.
        Statically quantized too: QLinearMul/QLinearAdd (operands in slots 0 and 3), or Q/DQ pairs."""
        pair = OPERAND_SLOTS.get(node.op_type)
        if pair is None or slot not in pair or len(node.inputs) <= pair[1]:
            return ""
        if not self._constant_or_assumed(node, slot, assumed):
            return ""
        mine = self.stored_behind(node.scope, node.inputs[slot])
        if mine is not None and mine.dims is not None and element_count(mine.dims) <= 1:
            return ""  # a per-feature scale or shift is a vector; a scalar is a literal (T5's x * d**-0.5)
        other = node.inputs[pair[1] if slot == pair[0] else pair[0]]
        if node.op_type in MULS:
            return "norm_scale" if self.normalizing(node.scope, other, 0) else ""
        source = self.through_layout(node.scope, other)
        if source is None or source.op_type not in MULS:
            return ""
        for j in OPERAND_SLOTS[source.op_type]:
            name = source.inputs[j] if j < len(source.inputs) else ""
            if not name:
                continue
            if self.is_constant(source.scope, name):
                if self.normalization_affine(source, j, "") == "norm_scale":
                    return "norm_bias"
            elif self.normalizing(source.scope, name, 0):
                return "norm_bias"
        return ""

    def stored_behind(self, scope: str, name: str) -> Tensor | None:
        """The stored tensor `name` is, or the one it is quantized, dequantized or cast from."""
        for _ in range(3):
            tensor = self.view.lookup(scope, name)
            node = self.producer(scope, name) if tensor is None else None
            if node is None or not node.inputs or node.op_type not in STORED_THROUGH:
                return tensor
            scope, name = node.scope, node.inputs[0]
        return None

    def through_layout(self, scope: str, name: str) -> Node | None:
        """The producer of `name` behind layout ops, Cast (LlamaRMSNorm's `.to(dtype)`) and static
        quantization's Quantize/Dequantize pairs."""
        node = self.producer(scope, name)
        for _ in range(5):
            if node is None or node.op_type not in LAYOUT_OR_QDQ:
                break
            node = self.producer(node.scope, node.inputs[0]) if node.inputs else None
        return node

    def normalizing(self, scope: str, name: str, depth: int) -> bool:
        """`name` is a run-time normalized value or factor: x / sqrt(var), 1 / sqrt(var) (times a
        constant gamma), or the output of a norm op fed run-time statistics."""
        node = self.through_layout(scope, name)
        if node is None or depth > 3 or self.is_constant(scope, name):
            return False
        op = node.op_type
        if op == "Reciprocal" and node.inputs:
            inner = self.through_layout(node.scope, node.inputs[0])
            return inner is not None and inner.op_type == "Sqrt"
        if op == "Div" and len(node.inputs) == 2:
            divisor = self.through_layout(node.scope, node.inputs[1])
            return divisor is not None and divisor.op_type == "Sqrt"
        if op in MULS:
            operands = [node.inputs[j] for j in OPERAND_SLOTS[op] if j < len(node.inputs)]
            return any(
                not self.is_constant(node.scope, i) and self.normalizing(node.scope, i, depth + 1) for i in operands
            )
        if op == "BatchNormalization" and len(node.inputs) >= 5:
            return not self.is_constant(node.scope, node.inputs[3])
        # torch's GroupNorm below opset 18: InstanceNormalization over the groups (scale ones, bias zeros),
        # reshaped back, then * weight + bias per channel
        return op == "InstanceNormalization"

    def is_bias_add(self, node: Node, slot: int, assumed: str = "") -> bool:
        """Add(product, constant) right after a weight-bearing op: the constant is its bias. Also
        QLinearAdd (operands in slots 0 and 3), static quantization's QOperator form of that Add."""
        if node.op_type == "QLinearAdd":
            if slot not in (0, 3) or len(node.inputs) < 4:
                return False
            other = node.inputs[3 - slot]
        elif len(node.inputs) == 2:
            other = node.inputs[1 - slot]
        else:
            return False
        if not self._constant_or_assumed(node, slot, assumed):
            return False
        if self.is_constant(node.scope, other):
            return False
        producer = self.producer(node.scope, other)
        for _ in range(4):  # through the rescaling that integer products need (Cast, Mul by a scale)
            if producer is None or producer.op_type in WEIGHT_OPS:
                break
            if not self.is_rescale(producer):
                return False
            producer = self.producer(producer.scope, producer.inputs[0])
        if producer is None or producer.op_type not in WEIGHT_OPS or not self.holds_constant(producer):
            return False
        return not self.scalar_on_wide_product(node, slot, producer)

    def scalar_on_wide_product(self, node: Node, slot: int, producer: Node) -> bool:
        """One value added to a product of several output channels: a literal (hard-swish's `x + 3`
        after a conv), not a bias, which has one value per channel (a Dense(1) or a one-filter conv)."""
        mine = self.stored_behind(node.scope, node.inputs[slot])
        if mine is None or mine.dims is None or element_count(mine.dims) != 1 or len(producer.inputs) < 2:
            return False
        weight = self.stored_behind(producer.scope, producer.inputs[1])
        if weight is None or not weight.dims:
            return False
        group = int(producer.attrs.get("group", 1) or 1)  # type: ignore[arg-type]
        return output_channels(producer.op_type, weight.dims, group, bool(producer.attrs.get("transB"))) > 1

    def holds_constant(self, node: Node) -> bool:
        """A product with a stored operand (a layer): attention's MatMul(Q, K^T) of two run-time values is
        none, so a constant added to its scores (a folded mask or position bias) is no layer's bias."""
        graph = self.view.graphs[node.scope]
        # inside a Loop/Scan body or a function an input may be bound to a stored weight by the caller
        formals = {v.name for v in graph.inputs} if graph.kind != "graph" else set()
        return any(name and (name in formals or self.is_constant(node.scope, name)) for name in node.inputs)

    def is_rescale(self, node: Node) -> bool:
        """Cast/Reshape of a product, or Mul by a run-time or scalar scale (not a per-channel constant,
        which is a lowered normalization, not a rescale)."""
        if node.op_type in LAYOUT_OR_QDQ:
            return bool(node.inputs)
        if node.op_type != "Mul" or len(node.inputs) != 2:
            return False
        scale = self.view.lookup(node.scope, node.inputs[1])
        if scale is None:
            return not self.is_constant(node.scope, node.inputs[1])
        return scale.dims is not None and element_count(scale.dims) <= 1

    def is_integer_rescale(self, node: Node, slot: int, assumed: str) -> bool:
        """Mul(constant, DynamicQuantizeLinear's run-time scale): the constant is the weight's (per-channel)
        quantization scale. onnxruntime's dynamic quantization multiplies the two scales first, then the
        MatMulInteger/ConvInteger result. A constant multiplying the product itself stays unknown: it may
        be a folded BatchNormalization just as well."""
        if len(node.inputs) != 2 or not self._constant_or_assumed(node, slot, assumed):
            return False
        return self.dynamic_scale(node.scope, node.inputs[1 - slot])

    def dynamic_scale(self, scope: str, name: str, depth: int = 0) -> bool:
        """`name` is the scale output of DynamicQuantizeLinear (through Cast, Reshape and the like)."""
        producer = self.producer(scope, name)
        if producer is None or depth > 3:
            return False
        if producer.op_type == "DynamicQuantizeLinear":
            return len(producer.outputs) > 1 and name == producer.outputs[1]
        if producer.op_type in ("Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze") and producer.inputs:
            return self.dynamic_scale(producer.scope, producer.inputs[0], depth + 1)
        return False

    def formal_role(self, call: Node, slot: int, depth: int) -> str:
        """A local function's input takes the role of the slot it is consumed by inside the body."""
        return self.body_role(self.view.functions[(call.domain, call.op_type)], call, slot, slot, depth)

    def body_role(self, scope: str, owner: Node, slot: int, formal_index: int, depth: int) -> str:
        """The role an input of `owner` plays inside the graph `scope` that receives it as input
        `formal_index` (a function body, or a Loop/Scan body that gets carried weights)."""
        body = self.view.graphs[scope]
        if formal_index >= len(body.inputs) or depth > 8:  # depth: recursive functions end here
            return DATA
        formal = body.inputs[formal_index].name
        actual = owner.inputs[slot] if slot < len(owner.inputs) else ""
        assumed = formal if actual and self.is_constant(owner.scope, actual) else ""
        for node in body.nodes:
            for j, name in enumerate(node.inputs):
                if name != formal:
                    continue
                role = self.slot_role(node, j, depth + 1, assumed=assumed)
                if role == DATA and assumed:
                    role, _ = self.forward_role(node)
                if role != DATA:
                    return role
        return DATA

    # -- tracing

    def record(self, tensor: Tensor, use: Use, logical: tuple[int, ...] | None = None) -> None:
        key = (tensor.scope, tensor.name)
        order = (use.node.index, use.slot)
        entry = self.found.get(key)
        if entry is None:
            entry = self.found[key] = _classified(tensor, use.role, logical)
            self.first_use[key] = order
        elif order < self.first_use[key]:
            self.first_use[key] = order
        entry.uses.append(use)
        if use.role != entry.role and _ROLE_STRENGTH[use.role] < _ROLE_STRENGTH[entry.role]:
            entry.role = use.role
        if logical is not None:
            entry.logical_dims = logical

    def constant_role(self, tensor: Tensor, role: str, node: Node) -> str:
        """The role of a constant in a slot: a data slot only tells what it is not."""
        if (
            role == "embedding"
            and node.op_type == "Gather"
            and (tensor.dtype in INTEGER_DTYPES or not tensor.dims)
            and not _quantized_table(tensor)
        ):
            return "shape" if tensor.dtype in INTEGER_DTYPES else "literal"
        if role != DATA:
            return role
        if tensor.dims is not None and element_count(tensor.dims) <= 1:
            return "scalar_parameter" if self.named_scalar(tensor) else "literal"
        if tensor.dtype == TensorProto.STRING:
            return "literal"
        if tensor.dtype == TensorProto.BOOL:  # true/false cannot be trained: a mask table (GPT-2's causal bias)
            return "mask"
        if tensor.dtype in INTEGER_DTYPES and tensor.dims is not None and element_count(tensor.dims) <= 1024:
            return "shape"
        return "unclassified"

    def named_scalar(self, tensor: Tensor) -> bool:
        """A stored float scalar under a torch module attribute's name: a parameter (CLIP's logit_scale).
        Dynamo's node metadata names its parameters (%p_logit_scale); the TorchScript exporter keeps
        state_dict names and calls its own constants `onnx::Mul_12`, `/scope/Constant_output_0` or a
        number."""
        if tensor.origin != "initializer" or tensor.dtype not in _FLOAT_DTYPES:
            return False
        if self.view.fx.parameters:
            return tensor.name.replace(".", "_") in self.view.fx.parameters
        return self.legacy_torch_export and _ATTRIBUTE_NAME.fullmatch(tensor.name) is not None

    @cached_property
    def legacy_torch_export(self) -> bool:
        """exporters.torchscript_export, asked once: a walk over every node name."""
        return torchscript_export(self.view)

    def forward_role(self, node: Node, depth: int = 0) -> tuple[str, tuple[str, ...]]:
        """Where a weight goes through layout ops computed at run time (Slice with runtime bounds,
        Concat of gate slices), the slot it finally lands in names it."""
        if (node.op_type not in WEIGHT_CARRIERS and node.op_type not in _QUANTIZED_BY_HAND) or depth > 16:
            return DATA, ()
        for out in node.outputs:
            for consumer, slot in self.consumers.get((node.scope, out), []):
                role = self.slot_role(consumer, slot, assumed=out)
                if role == DATA:
                    role, via = self.forward_role(consumer, depth + 1)
                    if role != DATA:
                        return role, (consumer.op_type, *via)
                elif ROLES[role].category in FORWARD_CATEGORIES:
                    return role, (consumer.op_type,)
        return DATA, ()

    def trace(
        self, scope: str, name: str, role: str, consumer: Node, slot: int, via: tuple[str, ...], depth: int
    ) -> None:
        tensors = self.top_level.get(scope)  # one dict instead of view.lookup's scope walk
        tensor = tensors.get(name) if tensors is not None else self.view.lookup(scope, name)
        if (
            tensor is not None
            and role == DATA
            and _more_than_scalar(tensor)
            and not self.is_constant_computation(consumer)
        ):
            forwarded, path = self.forward_role(consumer)
            if forwarded != DATA:
                self.record(tensor, _use(consumer, slot, forwarded, (*via, consumer.op_type, *path[:-1])))
                return
        if tensor is not None:
            final = self.constant_role(tensor, role, consumer)
            if via:  # broadcast_filler looks for an Expand on the way
                final = self.broadcast_filler(tensor, final, via)
                if final == "shape" and "DequantizeLinear" in via:
                    final = "unclassified"  # quantized values of a float tensor, whatever it is: no shape
            packed = final in ("weight", "embedding") and consumer.op_type in PACKED_OPS
            self.record(tensor, _use(consumer, slot, final, via), self.logical_dims(consumer, slot) if packed else None)
            return
        producer = self.producer(scope, name)
        if producer is None or depth > self.MAX_TRACE:
            return
        if producer.op_type == "ConstantOfShape":
            self.record_constant_of_shape(producer, role, consumer, slot, via)
            return
        alias = self.deduplicated_alias(producer, name, consumer)
        if alias is not None:
            final = self.constant_role(alias, role, consumer)
            self.record(alias, _use(consumer, slot, final, via))
            return
        # A constant-only computation: each input either carries the weight on, or plays its own role there.
        # One value added to or multiplied into a weight on its way (paddle2onnx writes an assign as `+ 0`)
        # is a literal, not a 1-element weight.
        arithmetic = role in ("weight", "embedding") and producer.op_type in _ARITHMETIC and len(producer.inputs) == 2
        folded_bn = self.folded_bn_roles(producer) if role in ("weight", "bias", "bn_var") else None
        for j, inner in enumerate(producer.inputs):
            if not inner:
                continue
            if folded_bn is not None and folded_bn[j] is not None:
                self.trace(producer.scope, inner, folded_bn[j], producer, j, (), depth + 1)
                continue
            inner_role = self.slot_role(producer, j)
            if arithmetic and _one_value(self.view.lookup(producer.scope, inner)):
                self.trace(producer.scope, inner, "literal", producer, j, (), depth + 1)
                continue
            if inner_role in (DATA, "weight", "embedding", "bias"):
                self.trace(producer.scope, inner, role, consumer, slot, (producer.op_type, *via), depth + 1)
            else:
                self.trace(producer.scope, inner, inner_role, producer, j, (), depth + 1)

    def folded_bn_roles(self, node: Node) -> list[str | None] | None:
        """onnxoptimizer's fuse_bn_into_conv folds a BN into the conv at run time: W * (gamma / Sqrt(var +
        eps)) and (b - mean) * (gamma / Sqrt(var + eps)) + beta feed the conv's weight and bias. On the way
        back from the conv: the variance under the Sqrt (eps beside it is a literal), the mean the Sub takes
        from the bias. Roles for the node's inputs (None: the role carried on); None if no such step."""
        if node.op_type == "Sqrt":
            if self._variance_plus_eps(node) is not None:
                return ["bn_var"]
        elif node.op_type == "Add" and len(node.inputs) == 2:
            for out in node.outputs:  # var + eps, read by a Sqrt
                for reader, _ in self.consumers.get((node.scope, out), []):
                    found = self._variance_plus_eps(reader) if reader.op_type == "Sqrt" else None
                    if found is not None and found[0] is node:
                        return ["literal" if j == found[1] else "bn_var" for j in range(2)]
        elif node.op_type == "Sub" and len(node.inputs) == 2:
            for out in node.outputs:  # (b - mean) times the BN's scale
                for reader, _ in self.consumers.get((node.scope, out), []):
                    if reader.op_type == "Mul" and any(self._bn_scale(node.scope, i) for i in reader.inputs):
                        return [None, "bn_mean"]
        return None

    def _variance_plus_eps(self, sqrt: Node) -> tuple[Node, int] | None:
        """The Add under a Sqrt that adds a one-value constant (eps, maybe cast) to another value, and the
        eps's slot; None if the Sqrt reads anything else."""
        add = self.producer(sqrt.scope, sqrt.inputs[0]) if sqrt.inputs else None
        if add is None or add.op_type != "Add" or len(add.inputs) != 2:
            return None
        for j, name in enumerate(add.inputs):
            source = self.producer(add.scope, name)
            if source is not None and source.op_type == "Cast" and source.inputs:
                name = source.inputs[0]
            if _one_value(self.view.lookup(add.scope, name)):
                return add, j
        return None

    def _bn_scale(self, scope: str, name: str) -> bool:
        """Whether `name` is gamma / Sqrt(var + eps)."""
        div = self.producer(scope, name)
        if div is None or div.op_type != "Div" or len(div.inputs) != 2:
            return False
        sqrt = self.producer(scope, div.inputs[1])
        return sqrt is not None and sqrt.op_type == "Sqrt" and self._variance_plus_eps(sqrt) is not None

    def deduplicated_alias(self, identity: Node, name: str, consumer: Node) -> Tensor | None:
        """torch.onnx (legacy) stores tensors of equal values once and gives each other one an Identity
        of it named after its own state_dict key (an untrained model's zero biases, unit BN scales and
        running variances): each Identity is a tensor of its own in the framework, not a use of the
        stored one. Told apart from a plain Identity on a weight's only path by the stored tensor
        being read elsewhere too; counted, never given bytes (the file holds the values once).
        Not when `consumer` is a later call of a module that reads the stored tensor itself: that is
        one parameter used again (a shared ALBERT layer's weight, transposed once per call)."""
        if identity.op_type != "Identity" or identity.domain not in STD_DOMAINS or not identity.inputs:
            return None
        source_name = identity.inputs[0]
        source = self.view.lookup(identity.scope, source_name)
        if source is None or source.storage == "none" or name == source_name:
            return None
        readers = self.consumers.get((identity.scope, source_name), ())
        if len(readers) < 2 or _later_call(consumer, readers):
            return None
        alias = Tensor(name, identity.scope, source.dtype, source.dims, "computed", "none", node=identity.label)
        self.alias_notes[alias.key] = f"an Identity of {source_name}: stored once by the exporter (equal values)"
        return alias

    def broadcast_filler(self, tensor: Tensor, role: str, via: tuple[str, ...]) -> str:
        """A single stored value Expanded into a weight or bias slot (torch.onnx dynamo writes a conv
        without bias as Expand(0.0, [C])): a filler, not a learned vector of one."""
        if "Expand" in via and ROLES[role].category in PARAMETER_CATEGORIES and not _more_than_scalar(tensor):
            return "literal"
        return role

    def record_constant_of_shape(self, node: Node, role: str, consumer: Node, slot: int, via: tuple[str, ...]) -> None:
        shape_name = node.inputs[0] if node.inputs else ""
        shape_tensor = self.view.lookup(node.scope, shape_name) if shape_name else None
        dims = shape_tensor.values if shape_tensor is not None else None
        if shape_name:
            self.trace(node.scope, shape_name, "shape", node, 0, (), 0)
        if role != DATA and ROLES[role].category not in PARAMETER_CATEGORIES:
            return  # a filler in shape arithmetic (pads, masks): its size is no parameter count
        if dims is None:
            return  # a filler whatever its size (below): nothing is left uncounted
        try:
            element_count(dims, f"ConstantOfShape {node.label}")
        except Exception:
            return
        synthetic = Tensor(
            node.outputs[0], node.scope, TensorProto.FLOAT, tuple(dims), "computed", "none", node=node.label
        )
        # one value repeated to a shape is a filler, not a weight: a mask's zeros in a data slot, and in
        # a weight slot what an exporter writes for a parameter the layer does not have (jax2onnx: a
        # LayerNorm's scale of ones without use_scale, an RNN's zero initial state)
        self.record(synthetic, Use(consumer, slot, "literal", ("ConstantOfShape", *via)))

    def logical_dims(self, node: Node, slot: int) -> tuple[int, ...] | None:
        """The logical dims of a weight stored packed (the ops in PACKED_OPS), else None."""
        if node.op_type in ("MatMulNBits", "MatMulBnb4") and slot == 1:
            n, k = node.attrs.get("N"), node.attrs.get("K")
            if isinstance(n, int) and isinstance(k, int):
                return (n, k)
        if node.op_type == "GatherBlockQuantized" and slot == 0:
            # 4-bit values packed two to a uint8 byte (int4/uint4 dtypes already count logically)
            tensor = self.view.lookup(node.scope, node.inputs[0])
            packed = tensor is not None and tensor.dtype == TensorProto.UINT8 and node.attrs.get("bits", 4) == 4
            if packed and tensor.dims:  # type: ignore[union-attr]
                return (*tensor.dims[:-1], tensor.dims[-1] * 2)  # type: ignore[union-attr]
        return None

    def weight_input_without_data(self, node: Node, slot: int, name: str, role: str) -> None:
        """A graph input (no initializer) sitting in a weight slot: a parameter fed at run time. Not an
        input of an If/Loop/Scan body (the values its node passes in at each step), nor a
        Gather's data picked at constant indices: that is an input read step by step (a loop over
        time steps unrolled at export), where an embedding's indices are the run-time ids."""
        if role == "embedding" and len(node.inputs) > 1 and self.is_constant(node.scope, node.inputs[1]):
            return
        graph = self.view.graphs[node.scope]
        current: str | None = node.scope
        while current is not None:
            graph = self.view.graphs[current]
            for value in graph.inputs:
                if value.name == name and graph.kind == "subgraph":
                    return  # a Loop's or Scan's step, state or carried value: what its node computes
                if value.name == name and graph.kind != "function":
                    dims = value.shape
                    known = dims is not None and all(isinstance(d, int) for d in dims)
                    tensor = Tensor(name, current, value.dtype, tuple(dims) if known else None, "graph_input", "none")  # type: ignore[arg-type]
                    self.record(tensor, Use(node, slot, role))
                    if not known:
                        self.limits.append(f"graph input {name!r} in a {role} slot has symbolic dims: not counted")
                    return
            current = graph.parent

    # -- the walk

    def classify(self) -> RoleTable:
        nodes = self.view.all_nodes()
        self.settle_constants()
        slot_role, is_constant, constant_nodes = self.slot_role, self.is_constant, self.constant_nodes
        fed = {value.name for graph in self.view.graphs.values() if graph.kind != "function" for value in graph.inputs}
        watched = {scope: constants | fed for scope, constants in self.constants.items()}
        for node in nodes:
            scope, inputs = node.scope, node.inputs
            constants = self.constants.get(scope)
            if constants is None:  # not settled: is_constant answers as it is asked, in the order it always was
                if node.op_type == "Constant" or self.is_constant_computation(node):
                    continue  # reached from its consumers
                for slot, name in enumerate(inputs):
                    if name:
                        role = slot_role(node, slot)
                        if is_constant(scope, name):
                            self.trace(scope, name, role, node, slot, (), 0)
                        elif role != DATA and ROLES[role].category in PARAMETER_CATEGORIES:
                            self.weight_input_without_data(node, slot, name, role)
                continue
            if node.op_type == "Constant" or node.index in constant_nodes:
                continue  # reached from its consumers
            if watched[scope].isdisjoint(inputs):
                continue  # no constant, no graph input: about half the nodes, told without a Python loop
            for slot, name in enumerate(inputs):
                if not name:
                    continue
                if name in constants:
                    self.trace(scope, name, slot_role(node, slot), node, slot, (), 0)
                elif name in fed:  # weight_input_without_data finds graph inputs only
                    role = slot_role(node, slot)
                    if role != DATA and ROLES[role].category in PARAMETER_CATEGORIES:
                        self.weight_input_without_data(node, slot, name, role)
        for key, note in self.alias_notes.items():
            self.found[key].notes.append(note)
        self.branch_outputs()
        self.add_unused()
        if self.view.fx.buffers:  # before the branches are weighed: a buffer is no parameter of either
            self.fx_named_buffers()
        if self.view.fx.parameters:
            self.fx_named_parameters()
        self.branch_alternatives()
        self.attribute_parameters(nodes)
        if "BatchNormalization" in self.op_types and any(
            n.op_type == "BatchNormalization" and n.attrs.get("training_mode") == 1 for n in nodes
        ):
            for entry in self.found.values():
                if any(
                    u.node.op_type == "BatchNormalization" and u.node.attrs.get("training_mode") == 1
                    for u in entry.uses
                ):
                    entry.notes.append("BatchNormalization has training_mode=1")
        # by first use (node index, slot), then scope and name; tensors never used come last
        first_use, unused = self.first_use, (1 << 62, 0)
        ordered = [self.found[key] for key in sorted(self.found, key=lambda key: (*first_use.get(key, unused), *key))]
        return RoleTable(ordered, self.limits, self.view.trained)

    def fx_named_parameters(self) -> None:
        """A tensor of unknown role that dynamo's FX calls read as a parameter (`%p_pos_embed`: ViT's
        position table added to the tokens, a layer scale's gamma) is one, whatever op reads it."""
        parameters = self.view.fx.parameters
        for entry in self.found.values():
            if entry.category == "unclassified" and (fx := entry.tensor.name.replace(".", "_")) in parameters:
                entry.role = "fx_parameter"
                entry.notes.append(f"a parameter: torch.onnx's node metadata reads it as %p_{fx}")

    def fx_named_buffers(self) -> None:
        """torch.onnx (dynamo) writes each node's FX call, whose arguments tell a registered buffer
        (`%b_proj`) from a parameter (`%p_fc_weight`): a buffer that a MatMul or an Add reads is no
        parameter, whatever its slot. BN running statistics are buffers too and keep their role."""
        buffers = self.view.fx.buffers
        for entry in self.found.values():
            if (
                entry.category in ("parameter", "unclassified")
                and (fx := entry.tensor.name.replace(".", "_")) in buffers
            ):
                entry.role = "buffer"
                entry.notes.append(
                    f"a registered buffer, not a parameter: torch.onnx's node metadata reads it as %b_{fx}"
                )

    def branch_outputs(self) -> None:
        """A constant returned by an If branch (weights kept in Constant nodes inside the branches)
        takes the role of the slot the If's output lands in."""
        if "If" not in self.op_types:
            return
        for node in self.view.all_nodes():
            if node.op_type != "If" or not node.subgraphs:
                continue
            for i, out in enumerate(node.outputs):
                uses = self.consumers.get((node.scope, out), [])
                roles = [(c, slot, self.slot_role(c, slot, assumed=out)) for c, slot in uses]
                target = next(((c, slot, r) for c, slot, r in roles if r != DATA), None)
                if target is None:
                    continue
                consumer, slot, role = target
                for branch in node.subgraphs:
                    outputs = self.view.graphs[branch].outputs
                    if i < len(outputs) and outputs[i] and self.is_constant(branch, outputs[i]):
                        self.trace(branch, outputs[i], role, consumer, slot, ("If",), 0)

    def branch_alternatives(self) -> None:
        """An If whose branches hold different numbers of parameters: the file stores (and the totals
        count) both, while one call runs only one of them. Said, not hidden in the sum."""
        if "If" not in self.op_types:
            return
        ifs = [n for n in self.view.all_nodes() if n.op_type == "If" and len(n.subgraphs) == 2]
        if not ifs:
            return
        held = self.parameters_by_scope()
        for node in ifs:
            counts = {branch.rsplit(":", 1)[-1]: held.get(branch, 0) for branch in node.subgraphs}
            if len(set(counts.values())) == 2:
                text = ", ".join(f"{name} holds {n:,}" for name, n in sorted(counts.items(), reverse=True))
                low, high = min(counts.values()), max(counts.values())
                self.limits.append(
                    f"If {node.label}: {text} parameters; both are stored and counted, a call runs one "
                    f"({low:,}..{high:,})"
                )

    def parameters_by_scope(self) -> dict[str, int]:
        """Parameters and statistics each graph holds: stored in it or in a graph nested inside it, or
        stored outside and read only inside it (torch dynamo keeps torch.cond weights outside)."""
        held: dict[str, int] = {}
        for entry in self.found.values():
            dims = entry.logical_dims if entry.logical_dims is not None else entry.tensor.dims
            if entry.category not in PARAMETER_CATEGORIES or dims is None:
                continue
            scopes = set(self.enclosing(entry.tensor.scope))
            if entry.uses:
                scopes |= set.intersection(*(set(self.enclosing(use.node.scope)) for use in entry.uses))
            count = element_count(dims)
            for scope in scopes:
                held[scope] = held.get(scope, 0) + count
        return held

    def enclosing(self, scope: str | None) -> list[str]:
        """`scope` and the graphs around it, innermost first."""
        chain: list[str] = []
        while scope is not None and scope in self.view.graphs and len(chain) < 256:
            chain.append(scope)
            scope = self.view.graphs[scope].parent
        return chain

    def attribute_parameters(self, nodes: list[Node]) -> None:
        """ai.onnx.ml ops keep their learned values in attributes, not tensors: named, never guessed."""
        if self.op_types.isdisjoint(ML_ATTRIBUTE_PARAMS):
            return
        for node in nodes:
            if node.domain == "ai.onnx.ml" and node.op_type in ML_ATTRIBUTE_PARAMS:
                self.limits.append(
                    f"ai.onnx.ml {node.op_type} {node.label}: its learned values "
                    f"({ML_ATTRIBUTE_PARAMS[node.op_type]}) are node attributes, not tensors: not counted"
                )

    def is_constant_computation(self, node: Node) -> bool:
        if node.scope in self.constants:  # settled
            return node.index in self.constant_nodes
        if not node.outputs:
            return False
        for out in node.outputs:
            if out and not self.is_constant(node.scope, out):
                return False
        return True

    def add_unused(self) -> None:
        outputs = {(scope, name) for scope, g in self.view.graphs.items() for name in g.outputs}
        for scope, graph in self.view.graphs.items():
            for tensor in graph.tensors.values():
                if tensor.key in self.found:
                    continue
                entry = Classified(tensor, "unused")
                if (scope, tensor.name) in outputs:
                    entry.role = "unclassified"
                    entry.notes.append("returned directly as a graph output")
                self.found[tensor.key] = entry


# Element types of quantized weights: a 2-D+ table of these in Gather is a quantized embedding
# (onnxruntime's quantize_dynamic: Gather, then DequantizeLinear), never a shape.
QUANTIZED_DTYPES = frozenset(
    {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT4, TensorProto.UINT4}
    | {getattr(TensorProto, name) for name in ("INT2", "UINT2") if hasattr(TensorProto, name)}  # onnx >= 1.19
)


def _quantized_table(tensor: Tensor) -> bool:
    return tensor.dtype in QUANTIZED_DTYPES and tensor.dims is not None and len(tensor.dims) >= 2


_ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div"})
# onnxruntime's first quantizer (producer onnx.quantize 0.1.0) quantized a float bias at run time: Div by
# the product of the scales, Floor, Cast, then Add after the ConvInteger or MatMulInteger
_QUANTIZED_BY_HAND = frozenset({"Div", "Floor", "Round", "Cast"})


def _one_value(tensor: Tensor | None) -> bool:
    """A stored tensor of exactly one element (a scalar or [1]): eps, a `+ 0`, a literal."""
    return tensor is not None and tensor.dims is not None and element_count(tensor.dims) == 1


def _more_than_scalar(tensor: Tensor) -> bool:
    return tensor.dims is not None and element_count(tensor.dims) > 1


def classify(view: ModelView) -> RoleTable:
    """Every stored tensor of `view` with its role, the uses that gave it, and what could not be told."""
    return _Classifier(view).classify()
