"""Which role each constant tensor plays: an op/slot table plus tracing through constant-only paths.

A tensor's role comes from the slot it finally lands in (Conv input 1 is a weight, BatchNormalization
input 3 is a running mean), not from its name. Weights reached through Transpose, Cast, Reshape,
DequantizeLinear, ConstantOfShape and other constant-only computations are traced back to the stored
tensor, which is the parameter, counted once.

The classifier is stacked one concern a module, each class asking only those below it: graphfacts
(producers, consumers, constness), normroles (a written-out norm's scale and shift), products (a
product's bias, rescale, quantization scale), slotroles (the role a slot gives), foldedbn (a BN folded at
run time), constants (what a constant in a slot is). This module walks the graph and records the uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from onnxaudit.count.constants import ASKED, ConstantRoles
from onnxaudit.count.graphfacts import more_than_scalar, one_value
from onnxaudit.count.vocabulary import FORWARD_CATEGORIES, PARAMETER_CATEGORIES, ROLES
from onnxaudit.io.dims import element_count
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.model.exporters import called_again
from onnxaudit.model.ops import DATA, ML_ATTRIBUTE_PARAMS, PACKED_OPS, STD_DOMAINS
from onnxaudit.model.view import ModelView, Node, Tensor

# When a tensor lands in several slots, the strongest role names it (tied weights keep the first).
_STRENGTH = {"parameter": 0, "statistic": 1, "unclassified": 2, "state": 3, "quantization": 4,
             "shape": 5, "literal": 6, "unused": 7}  # fmt: skip


_ROLE_STRENGTH = {role: _STRENGTH[info.category] for role, info in ROLES.items()}  # one lookup per use


# ---------------------------------------------------------------- results


class Use(NamedTuple):
    """One consumption of a source tensor: the node and slot it finally lands in. A named tuple: one C
    call makes it (one per consumed constant, 97k at 200k nodes), read by name like a frozen dataclass."""

    node: Node
    slot: int
    role: str
    via: tuple[str, ...] = ()  # constant-only ops passed through on the way, nearest the source first


def _later_call(consumer: Node, readers: list[tuple[Node, int]] | tuple[()]) -> bool:
    """Whether `consumer` sits in a later call of a module whose own nodes (`X/...`) are among `readers`."""
    base = called_again(consumer.name.rpartition("/")[0])
    return base is not None and any(node.name.rpartition("/")[0] == base for node, _ in readers)


_new_use = tuple.__new__  # Use(node, slot, role, via) without NamedTuple's Python-level __new__
_new = object.__new__  # a Classified without its __init__, its fields set as one dict: once per tensor


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


# ---------------------------------------------------------------- the walk

# A plan: what tracing a constant back reaches, in order, whatever slot it lands in. Each leaf is a tuple:
# (_STORED, steps, tensor), (_FILLED, steps, ConstantOfShape node), (_ALIAS, steps, Identity node, name,
# depth), where steps are the ops passed through from it (nearest the source first); or (_CALL, *trace's
# arguments): a value on the way that plays its own role in a computation, traced alike from every slot.
_STORED, _FILLED, _ALIAS, _CALL = range(4)
Leaf = tuple[Any, ...]
Plan = tuple[Leaf, ...]


class _Classifier(ConstantRoles):
    """Every stored tensor traced to the slots it lands in; the roles come from the classes below it:
    ConstantRoles <- FoldedBnRoles <- SlotRoles <- ProductRoles <- NormalizationRoles <- GraphFacts."""

    def __init__(self, view: ModelView) -> None:
        super().__init__(view)
        self.found: dict[tuple[str, str], Classified] = {}
        self.limits: list[str] = []
        # found's key -> its first use (node index, slot), kept as uses are recorded: the table's order
        self.first_use: dict[tuple[str, str], tuple[int, int]] = {}
        self.alias_notes: dict[tuple[str, str], str] = {}  # deduplicated_alias's tensors: their note
        self.plans: dict[tuple[str, str, str, int], Plan] = {}  # trace's, by (scope, name, role, depth)

    def record(
        self,
        tensor: Tensor,
        node: Node,
        slot: int,
        role: str,
        via: tuple[str, ...] = (),
        logical: tuple[int, ...] | None = None,
    ) -> None:
        """`tensor` used in `node`'s `slot` as `role`, reached through `via`."""
        key = (tensor.scope, tensor.name)
        entry = self.found.get(key)
        if entry is None:  # Classified(tensor, role, [use], logical_dims=logical), without the dataclass's __init__
            entry = self.found[key] = _new(Classified)
            uses = [_new_use(Use, (node, slot, role, via))]
            entry.__dict__ = {"tensor": tensor, "role": role, "uses": uses, "logical_dims": logical, "notes": []}
            self.first_use[key] = (node.index, slot)
            return
        first = self.first_use[key]
        if node.index <= first[0] and (node.index, slot) < first:  # the walk goes in node order: seldom
            self.first_use[key] = (node.index, slot)
        entry.uses.append(_new_use(Use, (node, slot, role, via)))
        if role != entry.role and _ROLE_STRENGTH[role] < _ROLE_STRENGTH[entry.role]:
            entry.role = role
        if logical is not None:
            entry.logical_dims = logical

    def trace(
        self, scope: str, name: str, role: str, consumer: Node, slot: int, via: tuple[str, ...], depth: int
    ) -> Plan:
        """Record every stored tensor the constant `name` is, or is computed from, as reached in
        `consumer`'s `slot` with `role`. The walk back from a value is the same whatever slot it lands in
        (only what is recorded at its ends differs): the first trace from (scope, name, role, depth)
        keeps it as a plan while it records, the next ones run the plan without walking again (a
        rotary table computed once from constants and read by every layer was walked once per read)."""
        tensors = self.top_level.get(scope)  # one dict instead of view.lookup's scope walk
        tensor = tensors.get(name) if tensors is not None else self.view.lookup(scope, name)
        if tensor is not None:  # stored: nothing to walk, no plan kept
            self.record_stored(tensor, role, consumer, slot, via)
            return ((_STORED, (), tensor),)
        key = (scope, name, role, depth)
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = self.first_trace(scope, name, role, consumer, slot, via, depth)
        else:
            self.run(plan, role, consumer, slot, via)
        return plan

    def first_trace(
        self, scope: str, name: str, role: str, consumer: Node, slot: int, via: tuple[str, ...], depth: int
    ) -> Plan:
        """trace's first walk back from `name`, a value no graph around `scope` stores."""
        producer = self.producer(scope, name)
        if producer is None or depth > self.MAX_TRACE:
            return ()
        if producer.op_type == "ConstantOfShape":
            self.record_constant_of_shape(producer, role, consumer, slot, via)
            return ((_FILLED, (), producer),)
        if producer.op_type == "Identity":  # deduplicated_alias asks the consumer, at each run
            plan: Plan = ((_ALIAS, (), producer, name, depth),)
            self.run(plan, role, consumer, slot, via)
            return plan
        return self.trace_computation(producer, role, consumer, slot, via, depth)

    def run(self, plan: Plan, role: str, consumer: Node, slot: int, via: tuple[str, ...]) -> None:
        """What trace records from a plan, reached in `consumer`'s `slot` with `role` after `via`."""
        for leaf in plan:
            kind = leaf[0]
            if kind == _CALL:  # a value playing its own role in a computation on the way: the same each time
                self.trace(*leaf[1:])
                continue
            reached = leaf[1] + via if leaf[1] else via
            if kind == _STORED:
                self.record_stored(leaf[2], role, consumer, slot, reached)
            elif kind == _FILLED:
                self.record_constant_of_shape(leaf[2], role, consumer, slot, reached)
            else:
                identity, name, depth = leaf[2:]
                alias = self.deduplicated_alias(identity, name, consumer)
                if alias is None:
                    self.trace_computation(identity, role, consumer, slot, reached, depth)
                else:
                    self.record(alias, consumer, slot, self.constant_role(alias, role, consumer), reached)

    def record_stored(self, tensor: Tensor, role: str, consumer: Node, slot: int, via: tuple[str, ...]) -> None:
        """A stored tensor reached in `consumer`'s `slot`: its role there, recorded."""
        if role == DATA and more_than_scalar(tensor) and not self.is_constant_computation(consumer):
            forwarded, path = self.forward_role(consumer)
            if forwarded != DATA:
                self.record(tensor, consumer, slot, forwarded, (*via, consumer.op_type, *path[:-1]))
                return
        final = self.constant_role(tensor, role, consumer)
        if via:  # broadcast_filler looks for an Expand on the way
            final = self.broadcast_filler(tensor, final, via)
            if final == "shape" and "DequantizeLinear" in via:
                final = "unclassified"  # quantized values of a float tensor, whatever it is: no shape
        packed = final in ("weight", "embedding") and consumer.op_type in PACKED_OPS
        self.record(tensor, consumer, slot, final, via, self.logical_dims(consumer, slot) if packed else None)

    def trace_computation(
        self, producer: Node, role: str, consumer: Node, slot: int, via: tuple[str, ...], depth: int
    ) -> Plan:
        """Trace the inputs of `producer`, a constant-only computation on the way to `consumer`: its plan."""
        # A constant-only computation: each input either carries the weight on, or plays its own role there.
        # One value added to or multiplied into a weight on its way (paddle2onnx writes an assign as `+ 0`)
        # is a literal, not a 1-element weight.
        arithmetic = role in ("weight", "embedding") and producer.op_type in _ARITHMETIC and len(producer.inputs) == 2
        folded_bn = self.folded_bn_roles(producer) if role in ("weight", "bias", "bn_var") else None
        plan: list[Leaf] = []
        step = (producer.op_type,)
        for j, inner in enumerate(producer.inputs):
            if not inner:
                continue
            bn_role = folded_bn[j] if folded_bn is not None else None
            if bn_role is not None:
                plan.append(self.own_role(producer, j, bn_role, depth + 1))
                continue
            inner_role = self.slot_role(producer, j)
            if arithmetic and one_value(self.view.lookup(producer.scope, inner)):
                plan.append(self.own_role(producer, j, "literal", depth + 1))
                continue
            if inner_role in (DATA, "weight", "embedding", "bias"):
                carried = self.trace(producer.scope, inner, role, consumer, slot, (*step, *via), depth + 1)
                plan += [leaf if leaf[0] == _CALL else (leaf[0], leaf[1] + step, *leaf[2:]) for leaf in carried]
            else:
                plan.append(self.own_role(producer, j, inner_role, depth + 1))
        return tuple(plan)

    def own_role(self, producer: Node, slot: int, role: str, depth: int) -> Leaf:
        """Trace input `slot` of a computation on the way, which plays its own `role` there: now, and as
        a plan's leaf."""
        leaf = (_CALL, producer.scope, producer.inputs[slot], role, producer, slot, (), depth)
        self.trace(*leaf[1:])
        return leaf

    def deduplicated_alias(self, identity: Node, name: str, consumer: Node) -> Tensor | None:
        """torch.onnx (legacy) stores tensors of equal values once and gives each other one an Identity
        of it named after its own state_dict key (an untrained model's zero biases, unit BN scales and
        running variances): each Identity is a tensor of its own in the framework, not a use of the
        stored one. Told apart from a plain Identity on a weight's only path by the stored tensor
        being read elsewhere too; counted, never given bytes (the file holds the values once).
        Not when `consumer` is a later call of a module that reads the stored tensor itself: that is
        one parameter used again (a shared ALBERT layer's weight, transposed once per call). Nor when the
        Identity's output has the exporter's own name for a value (`onnx::Reciprocal_19`), no state_dict
        key: the stored tensor read again on its way into a computation (a Snake's 1 / alpha beside alpha)."""
        if identity.op_type != "Identity" or identity.domain not in STD_DOMAINS or not identity.inputs:
            return None
        if name.startswith("onnx::"):
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

    def record_constant_of_shape(self, node: Node, role: str, consumer: Node, slot: int, via: tuple[str, ...]) -> None:
        shape_name = node.inputs[0] if node.inputs else ""
        shape_tensor = self.view.lookup(node.scope, shape_name) if shape_name else None
        dims = shape_tensor.values if shape_tensor is not None else None
        if shape_name:
            self.trace(node.scope, shape_name, "shape", node, 0, (), 0)
        if role != DATA and ROLES[role].category not in FORWARD_CATEGORIES:
            return  # a filler in shape arithmetic (pads, masks): its size is no parameter count
        if dims is None:
            return  # a filler whatever its size (below): nothing is left uncounted
        try:
            count = element_count(dims, f"ConstantOfShape {node.label}")
        except Exception:
            return
        if role == "weight":  # a Conv's or Gemm's weight (onnx's test models); not a norm's scale of ones
            self.limits.append(
                f"{consumer.op_type} {consumer.label}: its {ROLES[role].describe} is made by ConstantOfShape "
                f"{node.label}, one value repeated to {'x'.join(map(str, dims))}: counted as a literal, not as "
                f"{count:,} parameters (a framework that holds it as a parameter counts them)"
            )
        synthetic = Tensor(
            node.outputs[0], node.scope, TensorProto.FLOAT, tuple(dims), "computed", "none", node=node.label
        )
        # one value repeated to a shape is a filler, not a weight: a mask's zeros in a data slot, and in
        # a weight slot what an exporter writes for a parameter the layer does not have (jax2onnx: a
        # LayerNorm's scale of ones without use_scale, an RNN's zero initial state)
        self.record(synthetic, consumer, slot, "literal", ("ConstantOfShape", *via))

    def weight_input_without_data(self, node: Node, slot: int, name: str, role: str) -> None:
        """A graph input (no initializer) sitting in a weight slot: a parameter fed at run time. Not an
        input of an If/Loop/Scan body (the values its node passes in at each step), nor a
        Gather's data picked at constant indices: that is an input read step by step (a loop over
        time steps unrolled at export), where an embedding's indices are the run-time ids. Nothing for
        a `role` that is no parameter's."""
        if role == DATA or ROLES[role].category not in PARAMETER_CATEGORIES:
            return
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
                    fixed = tuple(d for d in value.shape or () if isinstance(d, int))
                    known = value.shape is not None and len(fixed) == len(value.shape)
                    tensor = Tensor(name, current, value.dtype, fixed if known else None, "graph_input", "none")
                    self.record(tensor, node, slot, role)
                    if not known:
                        self.limits.append(f"graph input {name!r} in a {role} slot has symbolic dims: not counted")
                    return
            current = graph.parent

    def classify(self) -> RoleTable:
        self.settle_constants()
        self.walk()
        for key, note in self.alias_notes.items():
            self.found[key].notes.append(note)
        self.branch_outputs()
        unused = self.add_unused()
        if self.view.fx.buffers:  # before the branches are weighed: a buffer is no parameter of either
            self.fx_named_buffers()
        if self.view.fx.parameters:
            self.fx_named_parameters()
        elif self.legacy_torch_export:
            self.state_dict_weights()
        self.power_iteration_vectors()
        self.branch_alternatives()
        self.attribute_parameters()
        self.bn_training_notes()
        # by first use (node index, slot), then scope and name; tensors never used come last, by scope and
        # name (pairs of (first use, key) sort in C, without a key function called per tensor)
        found, first_use = self.found, self.first_use
        firsts = sorted(zip(first_use.values(), first_use, strict=True))
        ordered = list(map(found.__getitem__, map(itemgetter(1), firsts)))
        ordered += map(found.__getitem__, sorted(unused))
        return RoleTable(ordered, self.limits, self.view.trained)

    def walk(self) -> None:
        """Trace every constant (and weight-slot graph input) each node reads, in node order: in a settled
        graph the nodes settle_constants saw reading one (about half), in the others every node."""
        record_stored, record, rules = self.record_stored, self.record, self.slot_rules
        fed, watched = self.graph_inputs, self.watched
        settled: str | None = None  # the settled graph of the last node, its constants and stored tensors
        constants: set[str] = set()
        stored: dict[str, Tensor] = {}
        for node in self.walk_order(watched):
            scope = node.scope
            if scope != settled:  # a graph other than the last node's (seldom): its sets
                if scope not in watched:
                    self.walk_unsettled(node)
                    continue
                settled, constants, stored = scope, self.constants[scope], self.top_level[scope]  # top-level graphs
            rule = None
            for slot, name in enumerate(node.inputs):
                if not name:
                    continue
                if name in constants:
                    if rule is None:  # slot_role's rule, looked up once a node, its slot table read inline
                        rule = rules.get((node.domain, node.op_type)) or self.slot_rule(node)
                    # slot_role(node, slot, 0, name): the constant as assumed spares is_constant the same answer
                    if rule.__class__ is tuple:
                        role = rule[slot] if slot < len(rule) else DATA
                    else:
                        role = rule(self, node, slot, 0, name)  # type: ignore[operator]
                    tensor = stored.get(name)
                    if tensor is None:
                        self.trace(scope, name, role, node, slot, (), 0)
                    elif role in ASKED or node.op_type in PACKED_OPS:
                        record_stored(tensor, role, node, slot, ())  # read as stored: trace's first step
                    else:  # a role that stands, in a slot that packs nothing (most uses): record_stored's answer
                        record(tensor, node, slot, role)
                elif name in fed:  # weight_input_without_data finds graph inputs only
                    self.weight_input_without_data(node, slot, name, self.slot_role(node, slot))

    def walk_order(self, watched: dict[str, list[Node]]) -> list[Node]:
        """The nodes the walk visits, in node order: settle_constants' of each settled graph, and every
        node of the others."""
        every = len(watched) == len(self.view.graphs)
        unsettled = [] if every else [node for node in self.nodes if node.scope not in watched]
        visits = [visit for visit in (*watched.values(), unsettled) if visit]
        return visits[0] if len(visits) == 1 else sorted(chain.from_iterable(visits), key=attrgetter("index"))

    def walk_unsettled(self, node: Node) -> None:
        """A node of a graph settle_constants did not settle: is_constant answers as it is asked, in
        the order it always was."""
        if node.op_type == "Constant" or self.is_constant_computation(node):
            return  # reached from its consumers
        for slot, name in enumerate(node.inputs):
            if name:
                role = self.slot_role(node, slot)
                if self.is_constant(node.scope, name):
                    self.trace(node.scope, name, role, node, slot, (), 0)
                elif role != DATA and ROLES[role].category in PARAMETER_CATEGORIES:
                    self.weight_input_without_data(node, slot, name, role)

    def bn_training_notes(self) -> None:
        """A note on every tensor a BatchNormalization in training mode reads."""
        if "BatchNormalization" not in self.op_types or not any(
            n.op_type == "BatchNormalization" and n.attrs.get("training_mode") == 1 for n in self.nodes
        ):
            return
        for entry in self.found.values():
            if any(
                u.node.op_type == "BatchNormalization" and u.node.attrs.get("training_mode") == 1 for u in entry.uses
            ):
                entry.notes.append("BatchNormalization has training_mode=1")

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

    def state_dict_weights(self) -> None:
        """A tensor of unknown role under a module's weight key (`embeddings.position_embeddings.weight`,
        `token_type.weight`) in a TorchScript export, which keeps state_dict names: an nn.Embedding's table
        looked up at indices traced as constants (BERT's position and token-type ids), or a weight read by a
        bare Add or Mul. Module weights are parameters; buffers are named otherwise."""
        for entry in self.found.values():
            name = entry.tensor.name
            if (
                entry.category != "unclassified"
                or not name.endswith(".weight")
                or not _STATE_DICT_WEIGHT.fullmatch(name)
            ):
                continue
            if entry.tensor.dtype not in _FLOAT_TABLES:
                continue
            entry.role = "named_parameter"
            entry.notes.append(f"a parameter: {name} is a module's weight by its state_dict name")

    def power_iteration_vectors(self) -> None:
        """torch.nn.utils.spectral_norm registers its power-iteration vectors as buffers `<name>_u` and
        `<name>_v` beside the parameter `<name>_orig` (the TorchScript exporter keeps all three
        state_dict names, and reads u and v in the MatMuls of sigma = u . W v): no parameters."""
        ends = "\0".join(map(itemgetter(1), self.found)) + "\0"  # every name and a NUL: one search in C for none
        if "_u\0" not in ends and "_v\0" not in ends:  # (a name holding a NUL at most costs the walk below)
            return
        vectors = [entry for (_, name), entry in self.found.items() if name.endswith(("_u", "_v"))]
        names = {key[1] for key in self.found} if vectors else set()
        for entry in vectors:
            name = entry.tensor.name
            if entry.category != "parameter" or f"{name[:-2]}_orig" not in names:
                continue
            if entry.tensor.dims is None or len(entry.tensor.dims) != 1:
                continue
            entry.role = "buffer"
            entry.notes.append(
                f"spectral_norm's power-iteration vector: a buffer beside the parameter {name[:-2]}_orig, "
                "not a parameter"
            )

    def branch_outputs(self) -> None:
        """A constant returned by an If branch (weights kept in Constant nodes inside the branches)
        takes the role of the slot the If's output lands in."""
        if "If" not in self.op_types:
            return
        for node in self.nodes:
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
        ifs = [n for n in self.nodes if n.op_type == "If" and len(n.subgraphs) == 2]
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

    def attribute_parameters(self) -> None:
        """ai.onnx.ml ops keep their learned values in attributes, not tensors: named, never guessed."""
        if self.op_types.isdisjoint(ML_ATTRIBUTE_PARAMS):
            return
        for node in self.nodes:
            if node.domain == "ai.onnx.ml" and node.op_type in ML_ATTRIBUTE_PARAMS:
                self.limits.append(
                    f"ai.onnx.ml {node.op_type} {node.label}: its learned values "
                    f"({ML_ATTRIBUTE_PARAMS[node.op_type]}) are node attributes, not tensors: not counted"
                )

    def add_unused(self) -> list[tuple[str, str]]:
        """Every stored tensor no use was recorded for, as unused (or returned as a graph output): the
        keys it adds, the only ones of `found` without a first use."""
        outputs = {(scope, name) for scope, g in self.view.graphs.items() for name in g.outputs}
        found = self.found
        added: list[tuple[str, str]] = []
        for scope, graph in self.view.graphs.items():
            for tensor in graph.tensors.values():
                key = (tensor.scope, tensor.name)  # tensor.key, without the property's call
                if key in found:
                    continue
                entry = Classified(tensor, "unused")
                if (scope, tensor.name) in outputs:
                    entry.role = "unclassified"
                    entry.notes.append("returned directly as a graph output")
                found[key] = entry
                added.append(key)
        return added


_ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div"})
# a module's weight key: dotted identifiers (a Sequential's numbers too), no exporter name (`onnx::`, `/`)
_STATE_DICT_WEIGHT = re.compile(r"\w+(\.\w+)*\.weight")
_FLOAT_TABLES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16})


def classify(view: ModelView) -> RoleTable:
    """Every stored tensor of `view` with its role, the uses that gave it, and what could not be told."""
    return _Classifier(view).classify()
