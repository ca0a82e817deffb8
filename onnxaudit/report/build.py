"""The Report: every figure the renderers show, as plain data with a schema_version.

Built here from the ParamTable, the layers and a convention; renderers only lay it out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from onnxaudit.cost.estimate import Amount, CostReport, Costs
from onnxaudit.count.conventions import NON_TRAINABLE, TRAINABLE, UNCLASSIFIED, Convention, convention_notes
from onnxaudit.count.explain import dims_text, formula
from onnxaudit.count.layers import Layer
from onnxaudit.count.table import COUNTED_CATEGORIES, ParamTable, ParamTensor
from onnxaudit.frameworks.figures import FrameworkReport
from onnxaudit.io.dims import INTEGER_DTYPES
from onnxaudit.io.remote import RemoteRead
from onnxaudit.model.exporters import op_behind_layout
from onnxaudit.model.ops import LAYOUT_OR_FLATTEN
from onnxaudit.model.view import ModelView, Node

if TYPE_CHECKING:
    from onnxaudit.shapes.options import ShapeCheck

# 2: a framework figure's "hi" is null where the file shows no upper bound; 3: cost; 4: a framework figure's
# "likely" (the value its range rests on: defaults the file cannot show) and a framework layer's "alternatives";
# 5: an alternative's "group" (alternatives of one group exclude each other: at most one is taken)
SCHEMA_VERSION = 5


@dataclass
class Row:
    """One table row: a layer, an op type, a role or a tensor, depending on --by."""

    name: str
    ops: list[str]  # the layer's own ops: those holding its weights or producing its output
    output_shape: list[int | str | None] | None
    params: int
    trainable: int
    non_trainable: int
    unclassified: int
    explain: str
    tensors: list[str]
    all_ops: list[str] = field(default_factory=list)  # every op type in the layer, helpers included
    # what the layer costs (layer rows with known shapes only): None where a dim is not known statically
    macs: Amount | None = None
    flops: Amount | None = None
    output_bytes: Amount | None = None  # of the value shown as the output shape
    cost_formula: str = ""


@dataclass
class TensorRow:
    name: str
    scope: str
    layer: str
    role: str
    category: str
    bucket: str | None  # trainable | non_trainable | unclassified | None (not a parameter)
    dtype: str
    dims: list[int] | None
    count: int | None
    bytes: int | None
    origin: str
    storage: str
    consumers: list[str]
    notes: list[str]


@dataclass
class Totals:
    total: int
    trainable: int
    non_trainable: int
    unclassified: int
    total_bytes: int
    trainable_bytes: int
    non_trainable_bytes: int
    unclassified_bytes: int
    by_dtype: dict[str, dict[str, int]]


@dataclass
class ConstantsSummary:
    """Stored tensors that are not parameters in either view, counted by category."""

    tensors: dict[str, int]
    elements: dict[str, int]
    bytes: dict[str, int]


@dataclass
class Report:
    schema_version: int
    model: str
    file_bytes: int
    ir_version: int
    opsets: dict[str, int]
    producer: str
    convention: str
    trainable_label: str
    non_trainable_label: str
    trainable_footer: str
    non_trainable_footer: str
    group_by: str
    depth: int | None
    shapes_source: str
    node_count: int
    rows: list[Row]
    tensors: list[TensorRow]
    totals: Totals
    constants: ConstantsSummary
    unclassified_consumers: list[str]
    limits: list[str]
    notes: list[str] = field(default_factory=list)
    framework: FrameworkReport | None = None  # counts rebuilt through exporter rewrites
    shape_check: ShapeCheck | None = None  # set when onnxruntime ran the model (`shapes`, `--run-shapes`)
    cost: CostReport | None = None  # MACs, FLOPs and memory; None when no shape is known
    domains_used: list[str] = field(default_factory=list)  # the opset domains some node's op is from
    remote: RemoteRead | None = None  # a URL's model: bytes fetched (JSON: written only for a URL)
    # row -> the counted tensors of other rows its nodes read (a module sharing another's weight:
    # GPT-2's lm_head reading wte's table): evidence for verify's per-module counts, not in the JSON
    shared_reads: dict[str, list[str]] = field(default_factory=dict)
    # tensor rows left out of `tensors` (a format that prints only their count: for_format text, markdown
    # and html keep the unclassified rows alone); tensor_count() counts them, not in the JSON
    tensors_left_out: int = 0

    def tensor_count(self) -> int:
        """The table's tensors: the rows in `tensors` and those left out for the format."""
        return len(self.tensors) + self.tensors_left_out

    def opsets_used(self) -> dict[str, int]:
        """The imported opsets a node uses (the default domain always): what a header shows."""
        return {k: v for k, v in self.opsets.items() if k == "ai.onnx" or k in self.domains_used}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in UNWRITTEN:
            del out[name]
        if self.remote is None:
            del out["remote"]  # a local file's JSON is what it was before URLs were read
        return out


# the Report's fields never written (to_dict, render/summary's JSON): verify's evidence, and a count of rows the
# format left out (tensor_count() prints it)
UNWRITTEN = frozenset({"shared_reads", "tensors_left_out"})


def _output_value(
    view: ModelView,
    layer_nodes: list[Node],
    here: int,
    reader: dict[str, int],
    data: set[str],
) -> str | None:
    """The layer's output: the main (first) value computed from the input data that leaves the layer's
    last node handing such a value on (its shape may be unknown); else the last value leaving it,
    preferring float data over shape math. Never a helper's value when a data value leaves: a Reshape
    whose output inference cannot size is shown unknown, not as the (3,) of the Concat that computed
    its target; a DynamicQuantizeLinear's result, not its zero point."""
    if not view.value_shapes:  # inference skipped (huge graph): nothing to look up, per layer
        return None
    leaving: list[str] = []
    moving = None
    for node in sorted(layer_nodes, key=lambda n: n.index):
        handed = [out for out in node.outputs if reader.get(out, here) != here]
        leaving += handed
        moving = next((out for out in handed if out in data), moving)
    if moving is not None:
        return moving
    leaving = [out for out in leaving if out in view.value_shapes]
    if not leaving:
        leaving = [out for node in layer_nodes for out in node.outputs if out in view.value_shapes]
    floats = [out for out in leaving if view.value_shapes[out].dtype not in INTEGER_DTYPES]
    chosen = (floats or leaving)[-1:] if leaving else []
    return chosen[0] if chosen else None


# ops that read only their input's dims: their outputs are shape arithmetic, not the input's data
_DIMS_ONLY = frozenset({"Shape", "Size"})


def _data_values(view: ModelView, layers: list[Layer]) -> set[str]:
    """The main graph's values computed from its input data: its inputs that are neither stored nor a
    counted tensor (a weight fed as an input), and each output of a node that reads one (not Shape or
    Size, which read its dims) or runs a body (which may read them from the outer scope). One pass in
    graph order; empty when there is no data input (or no inferred shape to show)."""
    graph = view.main
    if not view.value_shapes:
        return set()
    held = {t.name for layer in layers for t in layer.tensors}
    data = {v.name for v in graph.inputs if v.name not in graph.tensors and v.name not in held}
    if not data:
        return data
    for node in graph.nodes:
        if node.op_type in _DIMS_ONLY:
            continue
        if node.subgraphs or not data.isdisjoint(node.inputs):
            data.update(out for out in node.outputs if out)
    return data


def _tensor_row(t: ParamTensor, layer: str, convention: Convention) -> TensorRow:
    # positional, in field order: keywords cost twice the call in a dataclass __init__ (48k tensors)
    bucket = convention.columns.get(t.category)  # convention.bucket's lookup, without its call (48k tensors)
    return TensorRow(
        t.name,
        t.scope,
        layer,
        t.role,
        t.category,
        bucket,
        t.dtype,
        list(t.dims) if t.dims is not None else None,
        t.count,
        t.nbytes,
        t.origin,
        t.storage,
        list(t.consumers),
        list(t.notes),
    )


# formula()'s text for a row of one counted tensor, by what formula reads of it (dims, count, role,
# category), the non-trainable count and the ops: a model repeats a few (48.6k rows, 4 texts at 200k nodes)
_Explained = dict[tuple[tuple[int, ...] | None, int | None, str, str, int, str], str]


def _row(
    name: str,
    ops: list[str],
    shape: list[int | str | None] | None,
    tensors: list[ParamTensor],
    convention: Convention,
    all_ops: list[str],
    explained: _Explained,
) -> Row:
    # positional, in field order (name, ops, output_shape, params, the three columns, explain, tensors,
    # all_ops): keywords cost twice the call in a dataclass __init__ (70k rows)
    if not tensors:  # a layer of ops alone (30% of them)
        return Row(name, ops, shape, 0, 0, 0, 0, "", [], all_ops)
    if len(tensors) == 1:  # one tensor (most of the others): no sums to keep
        t = tensors[0]
        bucket = convention.columns.get(t.category)
        if bucket is None:
            return Row(name, ops, shape, 0, 0, 0, 0, "", [], all_ops)
        n = t.count or 0
        frozen = n if bucket == NON_TRAINABLE else 0
        label = "+".join(ops)
        key = (t.dims, t.count, t.role, t.category, frozen, label)
        explain = explained.get(key)
        if explain is None:  # formula's call, its list and its cache's key: once per distinct row
            explain = explained[key] = formula(tensors, frozen, label, convention.non_trainable_label.lower())
        trainable, unclassified = (n, 0) if bucket == TRAINABLE else (0, n if bucket == UNCLASSIFIED else 0)
        return Row(name, ops, shape, n, trainable, frozen, unclassified, explain, [t.name], all_ops)
    # the column sums and the counted tensors in one pass; `columns` is what bucket() looks up,
    # without a method call per tensor
    columns = convention.columns
    sums = {TRAINABLE: 0, NON_TRAINABLE: 0, UNCLASSIFIED: 0}
    counted = []
    for t in tensors:
        bucket = columns.get(t.category)
        if bucket is not None:
            sums[bucket] += t.count or 0
            counted.append(t)
    explain = ""
    if counted:
        explain = formula(counted, sums[NON_TRAINABLE], "+".join(ops), convention.non_trainable_label.lower())
    return Row(
        name,
        ops,
        shape,
        sum(sums.values()),
        sums[TRAINABLE],
        sums[NON_TRAINABLE],
        sums[UNCLASSIFIED],
        explain,
        [t.name for t in counted],
        all_ops,
    )


def _shape_math(view: ModelView, node: Node) -> bool:
    """All outputs are integer tensors: the node computes shapes or indices, not the layer's data."""
    infos = [view.value_shapes.get(out) for out in node.outputs if out]
    return bool(infos) and all(i is not None and i.dtype in INTEGER_DTYPES for i in infos)


def _principal_ops(view: ModelView, layer: Layer, here: int, reader: dict[str, int]) -> list[str]:
    """Op types of the nodes that hold the layer's weights or hand its result on, in graph order;
    the shape arithmetic exporters add around them stays in `all_ops`."""
    counted = COUNTED_CATEGORIES
    tensors = layer.tensors
    holders = (
        {u.node.index for t in tensors if t.category in counted for u in t.uses if u.role == t.role} if tensors else ()
    )
    shapes_known = bool(view.value_shapes)  # without any, no node is shape math
    picked = []
    for n in layer.nodes:
        op = n.op_type
        if op == "Constant":
            continue
        if n.index not in holders:
            if shapes_known and _shape_math(view, n):
                continue
            # hands a value on: a graph output, or one read outside the layer (_reading_layers says both)
            for out in n.outputs:
                if reader.get(out, here) != here:
                    break
            else:
                continue
        picked.append(op)
    # the op behind a closing Reshape is the layer's, not the Mul that computed the Reshape's target
    if picked and LAYOUT_OR_FLATTEN.issuperset(picked):  # else op_behind_layout finds none: no list to make
        real = [n.op_type for n in layer.nodes if not (shapes_known and _shape_math(view, n))]
        behind = op_behind_layout(picked, real)
        if behind is not None:  # layout ops hand the result on; the layer's real op sits before them
            picked = [behind, *picked]
    if picked:
        return list(dict.fromkeys(picked))
    ops = layer.op_types  # nothing held or handed on (a body's module whose weights another call holds)
    return [op for op in ops if op not in _SCAFFOLD] or ops


# ops that test, slice and reshape around a body's real op (an LSTM called in an If's branch)
_SCAFFOLD = frozenset(
    "Shape Size Equal Not Cast If Gather Unsqueeze Squeeze Concat ConstantOfShape Slice Identity".split()
)


def _row_positions(layers: list[Layer]) -> list[int]:
    """Node index (global in the view) -> its layer's position, -1 for a node in none: a list filled per
    layer instead of a dict of every node (200k at 200k nodes)."""
    row_at: list[int] = []
    for here, layer in enumerate(layers):
        for node in layer.nodes:
            index = node.index
            if index >= len(row_at):
                row_at += [-1] * (index + 1 - len(row_at))
            row_at[index] = here
    return row_at


_SPREAD = -1  # a value read in several layers, or by a node in none


def _reading_layers(view: ModelView, layers: list[Layer]) -> dict[str, int]:
    """Value -> position of the one layer all the main nodes reading it sit in, or _SPREAD (also a graph
    output). A value leaves layer `i` when it is in the map and this is not `i`: one pass over the graph instead
    of a node set and a consumer walk per layer (70k layers at 200k nodes), one lookup per value asked
    about (view.main.readers, a list of nodes per value, costs as much to build and more to ask). The
    layers partition the main nodes (group_layers and roll_up make them so)."""
    reader: dict[str, int] = {}
    placed = 0
    for here, layer in enumerate(layers):
        placed += len(layer.nodes)
        for node in layer.nodes:
            for name in node.inputs:
                if reader.setdefault(name, here) != here:
                    reader[name] = _SPREAD
    if placed < len(view.main.nodes):  # a node in no layer reads from outside every layer
        inside = {n.index for layer in layers for n in layer.nodes}
        for node in view.main.nodes:
            if node.index not in inside:
                reader.update(dict.fromkeys(node.inputs, _SPREAD))
    # a graph output leaves the layer computing it; an empty name (an absent optional value) never leaves:
    # one lookup answers for a value asked about (146k at 200k nodes)
    reader.update(dict.fromkeys(view.main.outputs, _SPREAD))
    reader.pop("", None)
    return reader


def layer_rows(view: ModelView, layers: list[Layer], convention: Convention, costs: Costs | None = None) -> list[Row]:
    reader = _reading_layers(view, layers)
    data = _data_values(view, layers)
    shapes = view.value_shapes  # none (inference skipped on a huge graph): no output value to look for
    explained: _Explained = {}
    rows = []
    for here, layer in enumerate(layers):
        nodes = layer.nodes
        if len(nodes) == 1:  # most layers: Layer.op_types' answer, without its call
            all_ops, ops = [nodes[0].op_type], [nodes[0].op_type]
        else:
            all_ops = layer.op_types
            # with one op type the principal ops can only be that one: no node walk
            ops = list(all_ops) if len(all_ops) <= 1 else _principal_ops(view, layer, here, reader)
        value = _output_value(view, nodes, here, reader, data) if shapes else None
        info = shapes.get(value) if value is not None else None
        shape = list(info.shape or ()) if info is not None else None
        row = _row(layer.name, ops, shape, layer.tensors, convention, all_ops, explained)
        if costs is not None:
            _add_cost(row, nodes, value, costs)
        rows.append(row)
    return rows


def _add_cost(row: Row, nodes: list[Node], value: str | None, costs: Costs) -> None:
    macs, flops, row.cost_formula = costs.of_nodes(nodes)
    row.macs = Amount.of(macs) if macs is not None else None
    row.flops = Amount.of(flops) if flops is not None else None
    size = costs.bytes_of(value)
    row.output_bytes = Amount.of(size) if size is not None else None


def grouped_rows(table: ParamTable, key: str, convention: Convention) -> list[Row]:
    """Rows by op type (of the first consumer), by role, or one per tensor."""
    groups: dict[str, list[ParamTensor]] = defaultdict(list)
    explained: _Explained = {}
    for t in table.tensors:
        if convention.bucket(t.category) is None:
            continue
        if key == "op":
            label = t.uses[0].node.op_type if t.uses else "(unused)"
        elif key == "role":
            label = t.role
        else:
            label = t.name
        groups[label].append(t)
    rows = []
    for label, tensors in groups.items():
        ops = list(dict.fromkeys(u.node.op_type for t in tensors for u in t.uses[:1]))
        dims = tensors[0].dims
        shape: list[int | str | None] | None = list(dims) if key == "tensor" and dims is not None else None
        rows.append(_row(label, ops, shape, tensors, convention, [], explained))
    if key != "tensor":
        rows.sort(key=lambda r: (-r.params, r.name))
    return rows


@dataclass
class _Tally:
    """What build_report sums over the table's tensors, in one pass: the totals, the constants, the op types
    reading an unclassified tensor, and whether some tensor's data is external."""

    totals: Totals
    constants: ConstantsSummary
    unclassified_ops: list[str]
    external: bool


def _tally(tensors: list[ParamTensor], convention: Convention) -> _Tally:
    columns = convention.columns  # what bucket() looks up, as in _row
    sums = {TRAINABLE: 0, NON_TRAINABLE: 0, UNCLASSIFIED: 0}
    nbytes = {TRAINABLE: 0, NON_TRAINABLE: 0, UNCLASSIFIED: 0}
    by_dtype: dict[str, dict[str, int]] = {}
    others: dict[str, list[int]] = {}  # category of the tensors in neither column -> [tensors, elements, bytes]
    ops: set[str] = set()
    external = False
    for t in tensors:
        count, size, category = t.count or 0, t.nbytes or 0, t.category
        bucket = columns.get(category)
        if bucket is None:
            other = others.setdefault(category, [0, 0, 0])
            other[0] += 1
            other[1] += count
            other[2] += size
        else:
            sums[bucket] += count
            nbytes[bucket] += size
            entry = by_dtype.setdefault(t.dtype, {"params": 0, "bytes": 0})
            entry["params"] += count
            entry["bytes"] += size
        if category == "unclassified":  # the category (the bucket may differ by convention)
            ops.update([u.node.op_type for u in t.uses])
        if t.storage == "external":
            external = True
    totals = Totals(
        total=sum(sums.values()),
        trainable=sums[TRAINABLE],
        non_trainable=sums[NON_TRAINABLE],
        unclassified=sums[UNCLASSIFIED],
        total_bytes=sum(nbytes.values()),
        trainable_bytes=nbytes[TRAINABLE],
        non_trainable_bytes=nbytes[NON_TRAINABLE],
        unclassified_bytes=nbytes[UNCLASSIFIED],
        by_dtype=dict(sorted(by_dtype.items())),
    )
    kept = sorted(others.items())
    constants = ConstantsSummary({k: v[0] for k, v in kept}, {k: v[1] for k, v in kept}, {k: v[2] for k, v in kept})
    return _Tally(totals, constants, sorted(ops), external)


def build_report(
    view: ModelView,
    table: ParamTable,
    layers: list[Layer],
    convention: Convention,
    group_by: str = "layer",
    depth: int | None = None,
    framework: FrameworkReport | None = None,
    costs: Costs | None = None,
    for_format: str | None = None,
) -> Report:
    """The report of `view`'s figures; `for_format` as api.audit's: what that output format never shows is
    left out (verify's shared_reads; but for JSON, the rows of tensors that are not unclassified: text,
    Markdown and HTML print their count alone)."""
    tensors = table.tensors
    if for_format not in _TENSORS_SHOWN:
        columns = convention.columns  # convention.bucket's lookup, without its call (48k tensors)
        tensors = [t for t in tensors if columns.get(t.category) == UNCLASSIFIED]
    layer_of = {id(t): layer.name for layer in layers for t in layer.tensors} if tensors else {}
    if group_by == "layer":
        rows = layer_rows(view, layers, convention, costs)
    else:
        rows = grouped_rows(table, group_by, convention)
    tally = _tally(table.tensors, convention)
    limits = list(view.notes) + list(table.limits)  # what reading skipped (shape inference on huge graphs)
    if view.remote is not None:
        limits.insert(len(view.notes), view.remote.note())  # where load put it before: after reading's notes
    if tally.external:
        limits.append("external data present: counted from dims; the data files were not opened or checked")
    return Report(
        schema_version=SCHEMA_VERSION,
        model=str(view.path),
        file_bytes=view.file_bytes,
        ir_version=view.ir_version,
        opsets=dict(sorted(view.opsets.items())),
        domains_used=_domains_used(view),
        producer=view.producer,
        convention=convention.name,
        trainable_label=convention.trainable_label,
        non_trainable_label=convention.non_trainable_label,
        trainable_footer=convention.trainable_footer,
        non_trainable_footer=convention.non_trainable_footer,
        group_by=group_by,
        depth=depth,
        shapes_source="onnx shape inference (static; not run)",
        node_count=sum(len(g.nodes) for g in view.graphs.values()),
        rows=rows,
        tensors=[_tensor_row(t, layer_of.get(id(t), ""), convention) for t in tensors],
        tensors_left_out=len(table.tensors) - len(tensors),
        totals=tally.totals,
        constants=tally.constants,
        unclassified_consumers=tally.unclassified_ops,
        limits=limits,
        notes=convention_notes(convention, table),
        framework=framework,
        cost=costs.report if costs is not None else None,
        remote=view.remote,
        shared_reads=shared_reads(layers) if for_format is None and group_by == "layer" and depth is None else {},
    )


_DOMAIN = attrgetter("domain")


def _domains_used(view: ModelView) -> list[str]:
    """The opset domains some node's op is from, the default one ("") as ai.onnx."""
    domains = set().union(*[map(_DOMAIN, g.nodes) for g in view.graphs.values()])  # in C: 200k nodes
    if "" in domains:
        domains.remove("")
        domains.add("ai.onnx")
    return sorted(domains, key=str)


# the formats that print every tensor's row (None: the library's report, everything kept); text, Markdown
# and HTML print the unclassified tensors' rows and the count of all
_TENSORS_SHOWN = (None, "json")


def shared_reads(layers: list[Layer]) -> dict[str, list[str]]:
    """Row name -> the counted tensors of other rows that its nodes read, in row order."""
    # a node in no row (a body's) reads as the tensor's own row
    row_at = _row_positions(layers)
    size = len(row_at)
    out: dict[str, list[str]] = {}
    for here, layer in enumerate(layers):
        for t in layer.tensors:
            if t.category not in COUNTED_CATEGORIES:
                continue
            for use in t.uses:
                index = use.node.index
                there = row_at[index] if index < size else -1
                if there < 0 or there == here:
                    continue
                reader = layers[there].name
                if reader != layer.name and t.name not in out.setdefault(reader, []):
                    out[reader].append(t.name)
    return out


__all__ = ["Report", "Row", "SCHEMA_VERSION", "TensorRow", "Totals", "build_report", "dims_text"]


def annotate(report: Report, check: ShapeCheck) -> Report:
    """Say where the report's shapes come from, and carry the check's findings and limits."""
    report.shapes_source = check.source_text()
    report.limits.extend(check.limits)
    if check.message:
        report.limits.append(f"shapes not confirmed: {check.message}")
    report.notes.extend(f"shape mismatch: {finding}" for finding in check.findings)
    # the sizes the run chose for free dims, so `summary --run-shapes` says why as `shapes` does
    report.notes.extend(f"shape run chose {c.label} = {c.value}: {c.reason}" for c in check.choices)
    report.shape_check = check
    return report
