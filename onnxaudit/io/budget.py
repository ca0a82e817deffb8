"""How large a graph a run accepts (--max-nodes), and the one tally every reader keeps of it.

The two wire walks (wire.strip_weights, datamap.map_file) count nodes, node inputs and graphs as they pass
them and stop at the first one over the limit, before protobuf parses anything; model.build counts the
same while it builds the view. All three refuse with the same words, so a file says the same whichever
reader met it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onnxaudit.errors import AuditError

# Nodes in every graph a run accepts by default, with node inputs up to INPUTS_PER_NODE and graphs
# (subgraphs, functions) up to one per NODES_PER_GRAPH of it. Each costs the pipeline ~1.3 KB and ~12 us
# (a graph ~8 nodes' worth, an input ~1/3), and a file of 2 bytes a node could otherwise hold 10M of them
# in 20 MB; at these bounds a file costs under 1 GiB (BENCHMARKS.md, bombs).
MAX_NODES = 250_000
INPUTS_PER_NODE = 4
NODES_PER_GRAPH = 8
# Fields of the structure (FIELDS_PER_NODE per allowed node): every field of the model, its graphs, functions
# and training infos, and of every node, attribute, value info or type over wire.KEEP_BYTES, but nodes and node
# inputs (limited above). A graph's initializers, inputs, outputs and value infos, a model's opsets and metadata,
# a large node's outputs and attributes, a shape's dims: each is a message protobuf builds (~150 B) and the view
# reads, in 2 bytes of file.
FIELDS_PER_NODE = 4
# Stored tensors (initializers, sparse initializers) of every graph: one per allowed node. A named initializer costs
# the pipeline far more than a field (a tensor, a role, a row: ~16 us and ~1.7 KB in summary, twice that in check),
# and 999,980 scalars with names of their own fit in 15 MB (summary 15.9 s / 1.7 GiB, check 32.7 s / 2.4 GiB; #17).
# Real exports hold a few thousand (a 7B decoder ~300; the 200k-node benchmark 48k).
TENSORS_PER_NODE = 1
# A graph's inputs, outputs and value infos with names of their own: each a value shape inference types and the
# view keeps (~7 us and ~0.7 KB in summary); 999,980 named ones fit in 18 MB (summary 6.9 s / 768 MiB, check
# 9.1 s, diff twice that). A dynamo export lists about one value info per node.
VALUES_PER_NODE = 2


class GraphTooLarge(AuditError):
    """A graph over --max-nodes: one line naming the limit and the flag that raises it."""


@dataclass
class Tally:
    """Nodes, node inputs and graphs met so far, against the limits --max-nodes sets."""

    max_nodes: int = MAX_NODES
    nodes: int = 0
    inputs: int = 0
    graphs: int = 0
    fields: int = 0
    tensors: int = 0
    values: int = 0
    # the limits --max-nodes sets, worked out once: add_inputs and add_fields run once a node in each reader
    max_inputs: int = field(init=False)
    max_fields: int = field(init=False)
    max_graphs: int = field(init=False)
    max_tensors: int = field(init=False)
    max_values: int = field(init=False)

    def __post_init__(self) -> None:
        self.max_inputs = self.max_nodes * INPUTS_PER_NODE
        self.max_fields = self.max_nodes * FIELDS_PER_NODE
        self.max_graphs = max(1, self.max_nodes // NODES_PER_GRAPH)
        self.max_tensors = self.max_nodes * TENSORS_PER_NODE
        self.max_values = self.max_nodes * VALUES_PER_NODE

    def too_large(self, what: str) -> GraphTooLarge:
        return GraphTooLarge(f"{what}: over the limit for --max-nodes {self.max_nodes:,} (a larger value raises it)")

    def add_nodes(self, count: int) -> None:
        """Count `count` nodes; raises GraphTooLarge before they are read when they pass the limit."""
        self.nodes += count
        if self.nodes > self.max_nodes:
            raise self.too_large(f"more than {self.max_nodes:,} nodes")

    def add_inputs(self, count: int) -> None:
        self.inputs += count
        if self.inputs > self.max_inputs:
            raise self.too_large(f"more than {self.max_inputs:,} node inputs")

    def add_fields(self, count: int) -> None:
        self.fields += count
        if self.fields > self.max_fields:
            raise self.too_large(f"more than {self.max_fields:,} fields of graph structure")

    def add_tensors(self, count: int) -> None:
        """Count `count` stored tensors (a graph's initializers); raises before they are read past the limit."""
        self.tensors += count
        if self.tensors > self.max_tensors:
            raise self.too_large(f"more than {self.max_tensors:,} initializers")

    def add_values(self, count: int) -> None:
        """Count `count` graph inputs, outputs and value infos; raises before they are read past the limit."""
        self.values += count
        if self.values > self.max_values:
            raise self.too_large(f"more than {self.max_values:,} graph inputs, outputs and value infos")

    def add_graph(self, kinds: str = "graphs and subgraphs") -> None:
        """Count one graph (the main graph, a subgraph or a function)."""
        if self.graphs >= self.max_graphs:
            raise self.too_large(f"more than {self.max_graphs:,} {kinds}")
        self.graphs += 1
