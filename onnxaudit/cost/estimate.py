"""What the model costs: every main-graph node's MACs and FLOPs, and the memory its values take.

Free dims stay symbolic (`19,300,352 x batch`); bound dims (`--dim`, a shape run) make the figures
concrete. A node whose dims are not known statically is named, never counted as 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from onnxaudit.cost.base import OpCost, Shapes
from onnxaudit.cost.families import NOT_COUNTED, cost_fn
from onnxaudit.cost.memory import Memory, activation_memory, value_bytes
from onnxaudit.cost.poly import Poly
from onnxaudit.model.view import ModelView, Node, ValueInfo


@dataclass
class Amount:
    """A figure that may hold free dims: its text, its value when concrete, and its terms."""

    text: str
    value: int | None  # None while a dim is free
    terms: dict[str, int]  # `batch*seq` -> coefficient; `` the constant

    @staticmethod
    def of(poly: Poly) -> Amount:
        return Amount(poly.text(), poly.value, poly.key())


@dataclass
class CostReport:
    """The footer's figures (torchinfo's), in bytes and operations."""

    macs: Amount
    flops: Amount
    input_bytes: Amount
    forward_bytes: Amount  # every activation, as if all were kept
    params_bytes: int
    total_bytes: Amount  # input + forward + params
    peak_bytes: Amount
    peak_exact: bool  # False: peak_bytes is an upper bound (which live sum is largest depends on the free dims)
    bindings: dict[str, int]
    unknown_ops: dict[str, int]  # op -> nodes whose dims are not known: their work is not in the totals
    not_counted_ops: dict[str, int]  # op -> nodes whose work no family counts (Einsum, Loop bodies...)
    unknown_values: int  # activations of unknown size, not in the memory figures
    notes: list[str] = field(default_factory=list)


@dataclass
class Costs:
    """Per node (by index) what it costs, and the model's totals."""

    nodes: dict[int, OpCost]
    unknown: set[int]
    report: CostReport
    value_shapes: Mapping[str, ValueInfo]
    bindings: dict[str, int]
    free: frozenset[str]  # the inputs' named dims: the only names a figure may hold

    def of_nodes(self, nodes: Iterable[Node]) -> tuple[Poly | None, Poly | None, str]:
        """A row's MACs and FLOPs (None when a node's dims are unknown) and its formula."""
        macs, flops, parts, complete = Poly(), Poly(), [], True
        for node in nodes:
            cost = self.nodes.get(node.index)
            if cost is None:
                complete = complete and node.index not in self.unknown
                continue
            macs, flops = macs + cost.macs, flops + cost.flops
            if cost.macs.terms:
                parts.append(f"{node.op_type} {cost.formula}")
        if not complete:
            return None, None, "dims not known statically"
        return macs.bind(self.bindings), flops.bind(self.bindings), " + ".join(parts)

    def bytes_of(self, value: str | None) -> Poly | None:
        info = self.value_shapes.get(value) if value else None
        size = value_bytes(info, self.free) if info is not None else None
        return size.bind(self.bindings) if size is not None else None


ASSUMPTIONS = (
    "peak activation memory is an estimate: nodes run in the file's order (a topological one), each value "
    "is allocated when produced and freed after its last reader, graph inputs and outputs are held, "
    "weights are not included, and no buffer is reused in place or padded by an allocator"
)


def estimate(
    view: ModelView,
    params_bytes: int,
    value_shapes: Mapping[str, ValueInfo] | None = None,
    bindings: Mapping[str, int] | None = None,
) -> Costs:
    shapes_known = view.value_shapes if value_shapes is None else value_shapes
    bound = dict(bindings or {})
    shapes = Shapes(view, shapes_known)
    nodes: dict[int, OpCost] = {}
    unknown: set[int] = set()
    unknown_ops: Counter[str] = Counter()
    not_counted: Counter[str] = Counter()
    macs, flops = Poly(), Poly()
    functions = {domain_name[1] for domain_name in view.functions}
    for node in view.main.nodes:
        fn = cost_fn(node)
        if fn is None:
            if node.op_type in NOT_COUNTED or node.op_type in functions:
                not_counted[node.op_type] += 1
            continue
        cost = fn(node, shapes) if shapes_known else None
        if cost is None:
            unknown.add(node.index)
            unknown_ops[node.op_type] += 1
            continue
        nodes[node.index] = cost
        macs, flops = macs + cost.macs, flops + cost.flops
    memory = activation_memory(view, shapes_known) if shapes_known else Memory(Poly(), Poly(), Poly(), True, 0)
    inputs, forward = memory.input_bytes.bind(bound), memory.forward_bytes.bind(bound)
    notes = [ASSUMPTIONS]
    if not memory.peak_exact:
        notes.append(
            "peak activation memory is an upper bound: which point of the run holds the most depends on the "
            "free dims (give them with --dim)"
        )
    report = CostReport(
        macs=Amount.of(macs.bind(bound)),
        flops=Amount.of(flops.bind(bound)),
        input_bytes=Amount.of(inputs),
        forward_bytes=Amount.of(forward),
        params_bytes=params_bytes,
        total_bytes=Amount.of(inputs + forward + Poly.const(params_bytes)),
        peak_bytes=Amount.of(memory.peak.bind(bound)),
        peak_exact=memory.peak_exact,
        bindings=bound,
        unknown_ops=dict(sorted(unknown_ops.items())),
        not_counted_ops=dict(sorted(not_counted.items())),
        unknown_values=memory.unknown_values,
        notes=notes,
    )
    return Costs(nodes, unknown, report, shapes_known, bound, shapes.free)
