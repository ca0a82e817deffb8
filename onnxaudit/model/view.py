"""The ModelView: graphs, nodes and tensors as the reader saw them (names, dtypes, dims, where data lives)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from operator import attrgetter
from pathlib import Path

from onnxaudit.io.budget import MAX_NODES
from onnxaudit.io.onnxcore import (
    TypeProto,
)
from onnxaudit.io.ranged import RangedBuffer
from onnxaudit.io.remote import RemoteRead
from onnxaudit.io.text import as_text

MAIN = "main"


@dataclass(frozen=True)
class ExternalRef:
    """Where an external tensor's bytes are said to live (unchecked until `check`)."""

    location: str
    offset: int | None
    length: int | None


@dataclass(slots=True, unsafe_hash=True)
class Tensor:
    """A tensor with data (or a weight-slot input without it): identity is (scope, name). Not frozen, but never
    changed once built (hashed by its fields as a frozen one is): slotted, as Node is, for the same reasons."""

    name: str
    scope: str
    dtype: int
    dims: tuple[int, ...] | None  # None: not statically known
    origin: str  # initializer | sparse_initializer | constant | graph_input | computed
    storage: str  # embedded | external | none
    stored_bytes: int | None = None
    external: ExternalRef | None = None
    node: str | None = None  # the Constant (or ConstantOfShape) node that holds it
    sparse_nnz: int | None = None
    also_graph_input: bool = False
    values: tuple[int, ...] | None = None  # small integer tensors only

    @property
    def key(self) -> tuple[str, str]:
        return (self.scope, self.name)


@dataclass(slots=True)
class Node:
    """One node of a graph. Not frozen, but never changed once built: slotted, a node is made by its __init__ in
    half the time a frozen one's __dict__ takes, holds 10 slots instead of a 10-key dict (200k nodes: ~50 MB) and
    each field is read faster by every stage after (build._add_nodes)."""

    index: int
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, object]
    scope: str
    subgraphs: tuple[str, ...] = ()
    module_scopes: tuple[str, ...] = ()  # torch dynamo's pkg.torch.onnx.name_scopes, when present

    def int_attr(self, name: str, default: int) -> int:
        """Attribute `name` when the file holds it as an int, else `default` (a malformed file may hold a
        float, a string or a list under any name)."""
        value = self.attrs.get(name)
        return value if isinstance(value, int) else default

    @property
    def label(self) -> str:
        return self.name or f"{self.op_type}_{self.index}"


@dataclass(frozen=True)
class ValueInfo:
    name: str
    dtype: int
    shape: tuple[int | str | None, ...] | None


@dataclass
class Graph:
    scope: str
    parent: str | None
    kind: str  # graph | subgraph | function
    nodes: list[Node] = field(default_factory=list)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @cached_property
    def producers(self) -> dict[str, Node]:
        """Value name -> the node of this graph that writes it (the last, if several do; empty names
        left out). Built on first use and shared: roles, layers, frameworks and normaxis each needed
        it (a 200k-entry dict, ~0.1 s at 200k nodes each time)."""
        return {out: node for node in self.nodes for out in node.outputs if out}

    @cached_property
    def readers(self) -> dict[str, list[Node]]:
        """Value name -> the nodes of this graph that read it, in graph order (a node once per input
        slot it reads it in). Built on first use: only pattern searches that walk forward need it."""
        readers: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        return readers


@dataclass
class FxFacts:
    """What torch.onnx (dynamo) wrote about the FX graph in its nodes' metadata, beyond module scopes."""

    # the FX placeholders read as %b_ (buffers) and %p_ (parameters), without that prefix: state_dict
    # keys with dots as underscores (`%b_bn_running_mean` is `bn_running_mean` for `bn.running_mean`)
    buffers: set[str] = field(default_factory=set)
    parameters: set[str] = field(default_factory=set)
    norms_without_affine: set[str] = field(default_factory=set)  # nodes of a norm call given no weight and bias
    norms_without_bias: set[str] = field(default_factory=set)  # nodes of a group/layer norm call given no bias
    bn_fusions: dict[str, int] = field(default_factory=dict)  # nodes BNs were fused into: how many
    # the ExportedProgram's graph signature torch.onnx writes on the main graph: the state_dict names
    # (targets) of every parameter and buffer the module had, stored in the file or folded away
    signature_parameters: frozenset[str] = frozenset()
    signature_buffers: frozenset[str] = frozenset()
    # initializer -> the values onnxscript's optimizer folded into it (its value_info's folded_from)
    folded_from: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class ModelView:
    path: Path | str  # str: a URL (io/remote.py)
    file_bytes: int
    ir_version: int
    opsets: dict[str, int]
    producer: str
    graphs: dict[str, Graph]
    functions: dict[tuple[str, str], str]  # (domain, name) -> scope of its body
    value_shapes: dict[str, ValueInfo]  # main-graph values with a statically inferred shape
    notes: list[str] = field(default_factory=list)
    # main-graph initializers a TrainingInfoProto.update_binding says training updates: the spec's
    # own marker of trainable tensors (None: the file carries no such binding)
    trained: frozenset[str] | None = None
    # torch.onnx (dynamo): what its node metadata says of the FX graph (buffers, parameters, BN calls)
    fx: FxFacts = field(default_factory=FxFacts)
    graph_name: str = ""  # the main graph's: paddle2onnx leaves the producer empty and names it
    metadata: dict[str, str] = field(default_factory=dict)  # the model's metadata_props (Ultralytics: author)
    remote: RemoteRead | None = None  # a URL's model: what reading it fetched
    ranged: RangedBuffer | None = field(default=None, repr=False)  # and the blocks it fetched (copies.py)
    max_nodes: int = MAX_NODES  # the --max-nodes it was read under, kept by a later walk of the file (copies.py)
    # whether a node may hold torch's module scopes: False when the reader saw no key of theirs in the file, so no
    # node has any (exporters.holds_module_scopes asks no node then). A hint, which each reader finds its own way: not
    # compared
    module_scoped: bool = field(default=True, compare=False)

    @property
    def main(self) -> Graph:
        return self.graphs[MAIN]

    @cached_property
    def op_types(self) -> frozenset[str]:
        """Every op type of the model, subgraphs and functions included: built on first use and shared by
        the classifier and the framework rules (a walk over 200k nodes, ~20 ms, each time)."""
        nodes = chain.from_iterable(graph.nodes for graph in self.graphs.values())  # in any order: no copy, no sort
        return frozenset(map(attrgetter("op_type"), nodes))

    def all_nodes(self) -> list[Node]:
        if len(self.graphs) == 1:  # the builder appends a graph's nodes in index order
            return list(next(iter(self.graphs.values())).nodes)
        return sorted((n for g in self.graphs.values() for n in g.nodes), key=attrgetter("index"))

    def lookup(self, scope: str, name: str) -> Tensor | None:
        """Resolve a name the way ONNX scoping does: this graph first, then enclosing graphs."""
        current: str | None = scope
        while current is not None:
            graph = self.graphs[current]
            if name in graph.tensors:
                return graph.tensors[name]
            current = graph.parent
        return None


LONG_DIM_NAME = 256  # characters; exporters name dims batch_size, sequence_length, unk__123, s0


def shown_dim_name(name: str) -> str:
    """A dim's name as every stage sees it: whole, unless over LONG_DIM_NAME characters, then its start and its
    length (one 100,000-character name on the input of 5,000 MatMuls reached every row's Output Shape and cost
    2.4 GiB, and a 2 GB JSON; #17)."""
    return name if len(name) <= LONG_DIM_NAME else f"{name[:32]}…({len(name):,} characters)"


def dtype_and_shape(type_proto: TypeProto) -> tuple[int, tuple[int | str | None, ...] | None]:
    """A value's element type and shape as its TypeProto declares them: (0, None) for a non-tensor,
    None for an unknown shape, a dim_param's name or None for a dim without a value."""
    if not type_proto.HasField("tensor_type"):
        return 0, None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(shown_dim_name(as_text(d.dim_param)))  # bytes when not UTF-8
        else:
            dims.append(None)
    return tt.elem_type, tuple(dims)
