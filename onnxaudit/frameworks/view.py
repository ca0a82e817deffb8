"""The framework view: rebuild Keras / PyTorch layer counts through the rewrites exporters make.

Exporters rarely keep BatchNormalization as one node: tf2onnx turns it into a per-channel Mul + Add
or folds it into the preceding Conv, torch.onnx folds it into the Conv in eval mode. Each rule (one
module per exporter family, tried in the order registry.py lists) recognizes one such pattern from names
and graph structure and says how sure it is: `exact` (counted as stored), `inferred` (with the evidence,
and any default it had to assume) or `ambiguous` (a range that contains the truth, with the reason).
Never an exact-looking guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter, itemgetter

from onnxaudit.count.layers import Layer
from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.frameworks.common import LOOKUP_NAME, ORT_REORDERED, STORED, counted, file_layer, folded_lookup
from onnxaudit.frameworks.context import FileContext, Rule
from onnxaudit.frameworks.doubts import (
    BUFFER_NAMED,
    anonymous_biases,
    bn_folded_at_run_time,
    buffer_named,
    folded_constants,
    folded_products,
    made_in_forward,
    maybe_counted_again,
    maybe_not_own,
    not_a_parameter,
    not_own,
    only_choices,
    open_above,
    parameters_or_not,
    read_by_several_modules,
    read_in_part,
    runtime_bn_fold_biases,
    state_dict_key,
    unknown_roles_settled,
)
from onnxaudit.frameworks.figures import AMBIGUOUS, EXACT, RANK, ZERO, Figure, FrameworkLayer, FrameworkView
from onnxaudit.frameworks.lowered import lowered_bn_chains
from onnxaudit.frameworks.onnxruntime import nchwc_true_channels, without_padding
from onnxaudit.frameworks.pairs import possible_copies
from onnxaudit.frameworks.registry import rules_for
from onnxaudit.model.ops import ML_ATTRIBUTE_PARAMS
from onnxaudit.model.view import ModelView, Node


def framework_view(view: ModelView, table: ParamTable, layers: list[Layer]) -> FrameworkView:
    """Each layer as the framework counted it: the first rule (in the registry's order for the file's
    origin) that rebuilds it, else the layer as stored, with the doubts that remain about its tensors."""
    ctx = FileContext(view, table)
    rules = rules_for(ctx)
    doubts = _Doubts.of(ctx, layers)
    chains = lowered_bn_chains(view, table)
    claimed = {name for _, _, names in chains for name in names}
    # (first node index, a rebuilt layer), a layer's rebuilt ones in turn: sorted stably by the index (no list
    # per layer, 49k at 200k nodes)
    ordered: list[tuple[int, FrameworkLayer]] = [(index, layer) for index, layer, _ in chains]
    applied: list[str] = [f"{layer.name}: {layer.evidence[0]}" for _, layer, _ in chains]
    fired: list[str] = []
    unpadded = nchwc_true_channels(view) if ctx.ort_optimized else {}
    needed = frozenset().union(*(rule.ops for rule in rules))
    doubted = doubts.layers_in_doubt(table, layers, unpadded)
    plain = not claimed and not unpadded
    for layer in layers:
        if not layer.tensors:
            continue
        if plain and (stored := _one_parameter(layer, needed)) is not None:
            if id(layer) in doubted:
                applied += doubts.revise(layer, layer.tensors, [stored], stored=True)
            ordered.append((layer.first_index, stored))
            continue
        tensors = _own_tensors(layer, claimed, unpadded)
        if not tensors:
            continue
        if _holds_any(needed, layer, tensors):
            rebuilt, rule = _rebuild(ctx, rules, layer, tensors)
        else:
            rebuilt, rule = [file_layer(layer, tensors)], None
        if rule is not None:
            applied.append(f"{layer.name}: {rebuilt[-1].evidence[0]}")
            fired.append(rule.id)
        if id(layer) in doubted or (rule is None and doubts.named and rebuilt[0].status == AMBIGUOUS):
            applied += doubts.revise(layer, tensors, rebuilt, stored=rule is None)
        index = layer.first_index
        ordered += [(index, fl) for fl in rebuilt]
    if "ai.onnx.ml" in view.opsets:
        ordered += [(node.index, attribute_parameters(node)) for node in _ml_attribute_nodes(view)]
    out = list(map(_SECOND, sorted(ordered, key=_FIRST)))
    dead = [t for t in table.tensors if t.category == "unused" and t.dtype.startswith(_FLOAT) and (t.count or 0) > 1]
    if dead:
        out.append(read_by_no_node(dead))
    # as torch.onnx wrote it: onnxruntime's fusions and quantizers rename the weights they rewrite
    if (
        ctx.origin == "pytorch"
        and view.fx.signature_parameters
        and not any(d.startswith("com.microsoft") for d in view.opsets)
    ):
        out += not_in_the_file(view)
    return FrameworkView(ctx.origin, _merge_same_name(out), applied, _notes(ctx, doubts), fired)


def _own_tensors(layer: Layer, claimed: set[str], unpadded: dict[str, int]) -> list[ParamTensor]:
    """The layer's counted tensors (once per layer, for every rule), without those a file-wide rewrite
    claimed, cut back to the channels onnxruntime's NCHWc padding hid."""
    tensors = counted(layer.tensors)
    if claimed:
        tensors = [t for t in tensors if t.name not in claimed]
    if unpadded:
        tensors = [without_padding(t, unpadded[t.name]) if t.name in unpadded else t for t in tensors]
    return tensors


def _one_parameter(layer: Layer, needed: frozenset[str]) -> FrameworkLayer | None:
    """A layer of one node and one parameter that no rule can match (none of the op types in `needed`,
    in the node or a node reading the parameter): file_layer's figures, without its passes (38k of 49k
    layers at 200k nodes). None for any other layer."""
    nodes, tensors = layer.nodes, layer.tensors
    if len(nodes) != 1 or len(tensors) != 1:
        return None
    t = tensors[0]
    if (
        t.category != "parameter"
        or t.count is None
        or t.role == "named_parameter"
        or _holds_any(needed, layer, tensors)
    ):
        return None
    return FrameworkLayer(layer.name, nodes[0].op_type, Figure.of(t.count), ZERO, EXACT, [STORED], [t.name])


def _holds_any(needed: frozenset[str], layer: Layer, tensors: list[ParamTensor]) -> bool:
    """Whether the layer holds one of the op types some rule declares (`needed`), in a node or a node
    reading one of its tensors: a layer without any is counted as stored with no rule asked and no set
    of its op types made (38k of 49k layers at 200k nodes)."""
    nodes = layer.nodes
    if len(nodes) == 1:
        if nodes[0].op_type in needed:
            return True
    elif not needed.isdisjoint(map(_OP_TYPE, nodes)):
        return True
    for t in tensors:  # loops, not a generator per layer
        for u in t.uses:
            if u.node.op_type in needed:
                return True
    return False


_OP_TYPE = attrgetter("op_type")
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_NAME = attrgetter("name")


def _rebuild(
    ctx: FileContext, rules: list[Rule], layer: Layer, tensors: list[ParamTensor]
) -> tuple[list[FrameworkLayer], Rule | None]:
    """The layer as the first rule that matches rebuilds it (a rule is tried only where the layer holds
    one of its op types), else as stored."""
    ops = {n.op_type for n in layer.nodes}
    ops.update([u.node.op_type for t in tensors for u in t.uses])
    for rule in rules:
        if not rule.ops.isdisjoint(ops):
            rebuilt = rule.function(ctx, layer, tensors)
            if rebuilt:
                return rebuilt, rule
    return [file_layer(layer, tensors)], None


@dataclass
class _Doubts:
    """What may make a stored tensor no parameter of the layer holding it (or one counted elsewhere), found
    once per file and applied to each layer."""

    origin: str
    tied: dict[str, str]  # copy -> why it may be one (no values settled it)
    known: dict[str, tuple[str, str]]  # copy -> (the parameter it is, how that shows)
    runtime_fold: bool  # onnxoptimizer's BN fold left at run time
    shared: dict[str, list[str]]  # tensor -> the other modules that read it
    named: bool  # a PyTorch file that keeps its parameters' state_dict names
    view: ModelView

    @classmethod
    def of(cls, ctx: FileContext, layers: list[Layer]) -> _Doubts:
        origin, table = ctx.origin, ctx.table
        tied, known = possible_copies(ctx.view, table, layers, origin, ctx.op_types)
        shared = read_by_several_modules(table, layers) if origin == "pytorch" else {}
        named = origin == "pytorch" and ctx.state_dict_names
        # the fold's Sub is an op of the file (no pass over 48k tensors for it in a file without one)
        runtime_fold = "Sub" in ctx.op_types and bn_folded_at_run_time(table)
        return cls(origin, tied, known, runtime_fold, shared, named, ctx.view)

    def layers_in_doubt(self, table: ParamTable, layers: list[Layer], unpadded: dict[str, int]) -> set[int]:
        """The layers (by id) holding a tensor some doubt of revise() may be about: each doubt is a fact
        of one tensor, looked for once over the table's tensors instead of once per layer (49k layers
        with tensors at 200k nodes). revise() then looks again at these layers only; of the others only
        a stored ambiguous layer of a file that keeps state_dict names can be revised (parameters_or_not)."""
        suspects = {*self.tied, *self.known, *self.shared, *unpadded}
        odd = odd_tensors(table.tensors) if self.origin != "keras" else []  # a Keras file asks nothing of them
        if self.origin != "keras":
            suspects.update(t.name for t in buffer_named(odd))
        if self.origin == "pytorch":
            fx, stored = self.view.fx, self.view.main.tensors
            if fx.folded_from:  # what read_in_part and folded_constants look up
                every = counted(table.tensors)
                suspects.update(read_in_part(every, fx, stored))
                suspects.update(folded_constants(every, fx, stored))
            suspects.update(folded_products(odd))
            if self.named:
                suspects.update(anonymous_biases(odd))
                suspects.update(made_in_forward(odd))
        if self.runtime_fold:
            suspects.update(runtime_bn_fold_biases(counted(table.tensors)))
        if not suspects:
            return set()
        return {id(layer) for layer in layers for t in layer.tensors if t.name in suspects}

    def revise(
        self, layer: Layer, tensors: list[ParamTensor], rebuilt: list[FrameworkLayer], stored: bool
    ) -> list[str]:
        """Revise the rebuilt layers' figures for each doubt about `tensors`; one line per revision."""
        lines = self._stored(layer, tensors, rebuilt[0]) if stored else []
        for t in buffer_named(tensors) if self.origin != "keras" else ():
            lines.append(f"{layer.name}: {maybe_not_own(_holder(rebuilt, t), t, BUFFER_NAMED, choice=True)}")
        for t in tensors if self.shared else ():
            if t.name in self.shared:
                lines.append(f"{layer.name}: {maybe_counted_again(_holder(rebuilt, t), t, self.shared[t.name])}")
        partial = read_in_part(tensors, self.view.fx, self.view.main.tensors) if self.origin == "pytorch" else {}
        for t in tensors if partial else ():
            if t.name in partial:
                lines.append(f"{layer.name}: {open_above(_holder(rebuilt, t), t, partial[t.name])}")
        return lines

    def _stored(self, layer: Layer, tensors: list[ParamTensor], fl: FrameworkLayer) -> list[str]:
        """Doubts about a layer no rule rebuilt (counted as stored): copies, and values made at export.
        What the file settles first (folded constants, copies told by values), then the choices it
        cannot settle (a tensor is a parameter or not), then the ranges of anything else."""
        copies, choices = self._copies(tensors)
        lines = []
        folded = folded_constants(tensors, self.view.fx, self.view.main.tensors) if self.origin == "pytorch" else {}
        if folded and self.known:  # a copy told by its values says more: its line, not this one
            folded = {name: why for name, why in folded.items() if name not in self.known}
        for t in tensors if folded else ():
            if t.name in folded:
                lines.append(f"{layer.name}: {not_a_parameter(fl, t, folded[t.name])}")
        if self.named and fl.status == AMBIGUOUS:
            unknown = [t for t in tensors if t.category == "unclassified" and t.name not in folded]
            if all(state_dict_key(t, self.view.fx) for t in unknown):
                parameters_or_not(fl, unknown)
        for copy in tensors if copies else ():
            if copy.name in copies and copy.name not in folded:
                lines.append(f"{layer.name}: {maybe_not_own(fl, copy, copies[copy.name], copy.name in choices)}")
        for copy in tensors if self.known else ():
            if copy.name in self.known:
                lines.append(f"{layer.name}: {not_own(fl, copy, *self.known[copy.name])}")
        unknown = [t for t in tensors if t.category == "unclassified"] if self.known and lines else []
        if unknown and all(t.name in self.known for t in unknown):
            unknown_roles_settled(fl)
        return lines

    def _copies(self, tensors: list[ParamTensor]) -> tuple[dict[str, str], set[str]]:
        """Stored tensors that may be no parameter of their layer: name -> why; and those of them that
        are that or a parameter as stored, nothing between (a copy or not, made in forward or not)."""
        copies = {**self.tied, **runtime_bn_fold_biases(tensors)} if self.runtime_fold else dict(self.tied)
        choices = set(copies)
        if self.origin == "pytorch":
            copies.update(folded_products(tensors))
            if self.named:
                copies.update(anonymous_biases(tensors))
                made = made_in_forward(tensors)
                copies.update(made)
                choices.update(made)
        return copies, choices


def odd_tensors(tensors: list[ParamTensor]) -> list[ParamTensor]:
    """The only counted tensors buffer_named, folded_products, anonymous_biases and made_in_forward can name,
    in one pass (no call per tensor: 48.6k at 200k nodes): a name that is no state_dict key (a product's, a
    factory's, `onnx::Add_7`) or is a buffer's, a Constant node's output, a weight of 3 dims or more.
    tests/test_frameworks.py holds every fixture to it: those four find the same over these as over all."""
    return counted(
        [
            t
            for t in tensors
            if "." not in (name := t.name) or t.origin == "constant" or len(t.dims or ()) > 2 or "buf" in name.lower()
        ]
    )


def _notes(ctx: FileContext, doubts: _Doubts) -> list[str]:
    """What the whole view needs said once: what no file can show."""
    table, notes = ctx.table, []
    if any(LOOKUP_NAME.fullmatch(t.name) and folded_lookup(t) for t in table.tensors if t.category == "unclassified"):
        notes.append(
            "Constants added to activations look like embedding rows looked up at export for a traced length "
            "(torch.onnx dynamo with static shapes): the tables they came from are not in the file, so the "
            "framework's count can be above this range."
        )
    if doubts.shared:
        notes.append(
            "Some tensors are read by several modules: one parameter they share (tied), or equal values stored "
            "once, as in an untrained model's export, whose all-zero biases exporters and simplifiers also remove; "
            "no count of the file can show those, so the framework's count may then be larger than this range."
        )
    if ctx.origin == "keras":
        notes.append("Keras layers frozen with trainable=False cannot be seen in an ONNX file.")
    if ctx.ort_optimized and any(t.role == "weight" and ORT_REORDERED.fullmatch(t.name) for t in table.tensors):
        notes.append(
            "onnxruntime's NCHWc layout pass pads a conv's filter and bias with zeros up to a multiple of the "
            "CPU's channel block (8 or 16) when its output channels are not one: the file view counts them as "
            "stored, this view the channels the ReorderOutput after the conv restores (where one is reached)"
        )
    return notes


def _ml_attribute_nodes(view: ModelView) -> list[Node]:
    return [n for n in view.all_nodes() if n.domain == "ai.onnx.ml" and n.op_type in ML_ATTRIBUTE_PARAMS]


def attribute_parameters(node: Node) -> FrameworkLayer:
    """An ai.onnx.ml op (skl2onnx's LinearClassifier, TreeEnsemble...) keeps what it learned in node
    attributes, which neither view counts: the framework's count is this layer's, at least 0."""
    return FrameworkLayer(
        node.label, node.op_type, Figure(0, None), ZERO, AMBIGUOUS,
        [f"learned values ({ML_ATTRIBUTE_PARAMS[node.op_type]}) held in node attributes: not counted"],
    )  # fmt: skip


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


NOT_IN_FILE = "not in the file"  # the kind of a row of parameters the file does not hold


def not_in_the_file(view: ModelView) -> list[FrameworkLayer]:
    """Parameters torch.onnx's graph signature names that the file neither stores nor folded into anything,
    of modules no node was made in: a module forward never called (torch counts its parameters; the
    exporter writes none of them) or one whose weight is tied to a stored one and whose call the optimizer
    merged with another's (T5's decoder embed_tokens, its `shared`), read by that name. The signature lists
    both alike and no size: each such module's count is open above. A BatchNorm's fused away with its
    statistics is the fusion rules'."""
    fx = view.fx
    stored = view.main.tensors
    folded = {source for sources in fx.folded_from.values() for source in sources}
    unstored = [name for name in sorted(fx.signature_parameters) if name not in stored and name not in folded]
    if not unstored:  # every parameter stored or folded (a 40k-node export's): no walk over the nodes' scopes
        return []
    called = {scope for node in view.main.nodes for scope in node.module_scopes}
    unheld: dict[str, list[str]] = {}
    for name in unstored:
        module = name.rpartition(".")[0]
        if not module or module in called:
            continue
        if f"{module}.running_mean" in fx.signature_buffers:
            continue
        unheld.setdefault(module, []).append(name)
    return [
        FrameworkLayer(
            module,
            NOT_IN_FILE,
            Figure(0, None),
            ZERO,
            AMBIGUOUS,
            [
                f"{', '.join(names)}: named by torch.onnx's graph signature, neither stored nor folded, and no node "
                f"was made in {module}: a module forward never called (torch counts it) or a weight tied to a stored "
                "one (counted there); the signature gives no size"
            ],
        )  # fmt: skip
        for module, names in unheld.items()
    ]


def _holder(rebuilt: list[FrameworkLayer], t: ParamTensor) -> FrameworkLayer:
    """The rebuilt layer that lists `t`, else the first (a rewrite may list only the tensors it used)."""
    return next((fl for fl in rebuilt if t.name in fl.tensors), rebuilt[0])


def _merge_same_name(layers: list[FrameworkLayer]) -> list[FrameworkLayer]:
    """A BN rebuilt from a conv row may share its name with a zero-param row of the file view."""
    if len(set(map(_NAME, layers))) == len(layers):  # no two share one (a set in C, no loop: 49k at 200k nodes)
        return layers
    merged: dict[str, FrameworkLayer] = {}
    for layer in layers:
        if layer.name in merged:
            prior = merged[layer.name]
            prior.trainable += layer.trainable
            prior.non_trainable += layer.non_trainable
            prior.status = max(prior.status, layer.status, key=RANK.__getitem__)
            prior.evidence += layer.evidence
            prior.tensors += layer.tensors
            if layer.alternatives or prior.alternatives:
                prior.alternatives = [*prior.alternatives, *layer.alternatives]
                if not only_choices(prior) and prior.trainable.likely is None:
                    prior.alternatives = []  # a range of more than choices: its bounds alone decide
        else:
            merged[layer.name] = layer
    return list(merged.values())
