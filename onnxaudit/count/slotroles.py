"""The role of a node's input slot: the op table's, or told from the node (matrix products, Add and
Mul beside a product or a norm, function and Loop/Scan bodies), or from where a value finally lands."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from onnxaudit.count.products import ProductRoles
from onnxaudit.count.vocabulary import FORWARD_CATEGORIES, ROLES
from onnxaudit.model.ops import (
    DATA,
    LAYOUT_DOMAINS,
    MATMUL_OPERANDS,
    MATMUL_QUANT_SLOTS,
    MS_DOMAINS,
    MS_SLOT_TABLE,
    QOPERATOR_ELEMENTWISE,
    SLOT_TABLE,
    STD_DOMAINS,
    STD_MS_DOMAINS,
    WEIGHT_CARRIERS,
)
from onnxaudit.model.view import ModelView, Node

_NO_SLOTS: dict[int, str] = {}
# the slot table of an op whose every slot is DATA: (DATA,) reads as () does (DATA past its end), but is
# true, so a rule is never falsy and `rules.get(key) or ...` looks it up once
_ALL_DATA = (DATA,)


# onnxruntime's first quantizer (producer onnx.quantize 0.1.0) quantized a float bias at run time: Div by
# the product of the scales, Floor, Cast, then Add after the ConvInteger or MatMulInteger
_QUANTIZED_BY_HAND = frozenset({"Div", "Floor", "Round", "Cast"})


class SlotRoles(ProductRoles):
    def __init__(self, view: ModelView) -> None:
        super().__init__(view)
        # (domain, op) -> its fixed slot table, or the method that looks at the node: chosen once an op.
        # Kept as the class's functions, not bound methods: a bound method here would make the classifier
        # a reference cycle, kept alive (with all it built) while the collector is paused (+66 MB at 200k nodes)
        self.slot_rules: dict[tuple[str, str], SlotRule] = {}

    def slot_role(self, node: Node, slot: int, depth: int = 0, assumed: str = "") -> str:
        """The role of input `slot` of `node`; `assumed` names a function formal bound to a constant."""
        rule = self.slot_rules.get((node.domain, node.op_type)) or self.slot_rule(node)
        if rule.__class__ is tuple:
            return rule[slot] if slot < len(rule) else DATA
        return rule(self, node, slot, depth, assumed)  # type: ignore[operator]

    def slot_rule(self, node: Node) -> SlotRule:
        """How slot_role answers for `node`'s op, chosen once an op."""
        key = (node.domain, node.op_type)
        rule = self.slot_rules.get(key)
        if rule is None:
            rule = self.slot_rules[key] = self._slot_rule(node.op_type, node.domain)
        return rule

    def _slot_rule(self, op: str, domain: str) -> SlotRule:
        """How slot_role answers for this op: the slot table it reads whatever the node (_ALL_DATA for all
        DATA), or the method that tells from the node: functions, Loop/Scan, matrix products, Gather,
        Add, Mul, Sub, QLinearAdd/QLinearMul."""
        if (domain, op) in self.view.functions:
            return SlotRoles.formal_role
        if op in ("Loop", "Scan") and domain in STD_DOMAINS:
            return SlotRoles.loop_role
        if domain in MS_DOMAINS and op in MS_SLOT_TABLE:
            # QLinearAdd/QLinearMul: an operand, or a bias or a norm's scale or shift
            return SlotRoles.ms_role if op in QOPERATOR_ELEMENTWISE else MS_SLOT_TABLE[op] or _ALL_DATA
        if op in MATMUL_OPERANDS and domain in STD_MS_DOMAINS:
            return SlotRoles.matmul_role
        if domain in STD_DOMAINS:
            if op in ("Gather", "Add", "Mul", "Sub"):
                return SlotRoles.std_role
            return SLOT_TABLE.get(op) or _ALL_DATA
        if domain in LAYOUT_DOMAINS:
            return SLOT_TABLE.get(op) or _ALL_DATA
        return _ALL_DATA

    def loop_role(self, node: Node, slot: int, depth: int, assumed: str = "") -> str:
        """Loop inputs (M, cond, v...) and Scan inputs line up one to one with the body's inputs. A carried
        value the body changes at each step is a state (tf2onnx's `zeros` initial state of a Keras LSTM
        written as a Loop), whatever it is multiplied with; one passed through unchanged takes the role of
        the slot it is read in (weights a TF while loop carries). Without a body: the op table's."""
        if not node.subgraphs:
            return self.std_role(node, slot, depth, assumed)
        op = node.op_type
        if self.updated_each_step(node, slot):
            return "initial_state"
        role = (
            self.body_role(node.subgraphs[0], node, slot, slot, depth) if slot >= (2 if op == "Loop" else 0) else DATA
        )
        return role if role != DATA else ("shape" if op == "Loop" and slot < 2 else DATA)

    def updated_each_step(self, node: Node, slot: int) -> bool:
        """Whether input `slot` of a Loop or Scan is a carried state its body writes anew at each step:
        the body's matching output is not the matching input passed through (directly or by Identity)."""
        body = self.view.graphs[node.subgraphs[0]]
        if node.op_type == "Loop":
            if slot < 2:
                return False
            out_index = slot - 1  # body inputs (iteration, cond, v...), outputs (cond, v..., scan outputs)
        else:
            scanned = node.attrs.get("num_scan_inputs")
            if not isinstance(scanned, int) or slot >= len(node.inputs) - scanned:
                return False
            out_index = slot  # Scan: the state variables first, in inputs and outputs alike
        if slot >= len(body.inputs) or out_index >= len(body.outputs):
            return False
        formal, value = body.inputs[slot].name, body.outputs[out_index]
        producers = body.producers
        for _ in range(8):
            producer = producers.get(value)
            if value == formal or producer is None or producer.op_type != "Identity" or not producer.inputs:
                break
            value = producer.inputs[0]
        return value != formal

    def ms_role(self, node: Node, slot: int, depth: int, assumed: str) -> str:
        """An onnxruntime contrib op's slot: its table's, but for QOperator Add/Mul beside a product or a norm."""
        op = node.op_type
        if op == "QLinearAdd" and self.is_bias_add(node, slot, assumed):
            return "bias"
        if op in QOPERATOR_ELEMENTWISE and (affine := self.normalization_affine(node, slot, assumed)):
            return affine
        table = MS_SLOT_TABLE[op]
        return table[slot] if slot < len(table) else DATA

    def std_role(self, node: Node, slot: int, depth: int, assumed: str) -> str:
        """A standard op's slot whose role depends on the node (Gather, Add, Mul), else its table's."""
        op = node.op_type
        if op == "Gather":
            return "embedding" if slot == 0 else "shape"
        if op == "Add" and self.is_bias_add(node, slot, assumed):
            return "bias"
        if op == "Mul" and self.dynamic_quantization and self.is_integer_rescale(node, slot, assumed):
            return "quant_scale"
        if (op in ("Mul", "Add") or op == "Sub" and slot == 0) and len(node.inputs) == 2:
            affine = self.normalization_affine(node, slot, assumed)
            if affine:
                return affine
        std_table = SLOT_TABLE.get(op)
        if std_table is not None:
            return std_table[slot] if slot < len(std_table) else DATA
        return DATA

    def matmul_role(self, node: Node, slot: int, depth: int = 0, assumed: str = "") -> str:
        quant = MATMUL_QUANT_SLOTS.get(node.op_type, _NO_SLOTS)
        if slot in quant:
            return quant[slot]
        if node.op_type == "Gemm" and slot == 2:
            return "bias"
        if slot not in (MATMUL_OPERANDS[node.op_type] or range(len(node.inputs))):
            return DATA
        name = node.inputs[slot]  # _constant_or_assumed, inline: one ask per product weight read
        if name and (name == assumed or self.is_constant(node.scope, name)):
            return "precomputed" if self.has_trig and self.feeds_only_cos_sin(node) else "weight"
        return DATA

    @cached_property
    def has_trig(self) -> bool:
        """Any Cos or Sin at all: most graphs have none, and never build the consumer index for it."""
        return not self.op_types.isdisjoint(("Cos", "Sin"))

    @cached_property
    def trig_feeders(self) -> set[int]:
        """The nodes whose value may reach a Cos or Sin through layout ops (WEIGHT_CARRIERS), found back
        from the few Cos and Sin by their producers: the only ones feeds_only_cos_sin can say yes of."""
        found: set[int] = set()
        frontier = [node for node in self.nodes if node.op_type in ("Cos", "Sin")]
        while frontier:
            node = frontier.pop()
            for name in node.inputs:
                producer = self.producer(node.scope, name) if name else None
                if producer is not None and producer.index not in found:
                    found.add(producer.index)
                    if producer.op_type in WEIGHT_CARRIERS:
                        frontier.append(producer)
        return found

    def feeds_only_cos_sin(self, node: Node, depth: int = 0) -> bool:
        """The product reaches only Cos and Sin (through layout ops): rotary embeddings' inv_freq times
        positions. inv_freq is a non-persistent buffer computed from the config, not a weight."""
        if node.index not in self.trig_feeders:
            return False  # no Cos or Sin is reached from it (most products): without the consumer index
        uses = [use for out in node.outputs if out for use in self.consumers.get((node.scope, out), [])]
        if not uses or depth > 6:
            return False
        for consumer, _ in uses:
            if consumer.op_type in ("Cos", "Sin"):
                continue
            if consumer.op_type not in WEIGHT_CARRIERS or not self.feeds_only_cos_sin(consumer, depth + 1):
                return False
        return True

    def formal_role(self, call: Node, slot: int, depth: int, assumed: str = "") -> str:
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


# how slot_role answers for an op: its fixed slot table, or a SlotRoles method asked of the node and slot
SlotRule = tuple[str, ...] | Callable[[SlotRoles, Node, int, int, str], str]
