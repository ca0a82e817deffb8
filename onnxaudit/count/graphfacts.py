"""What the role classifier asks of the graph before any role: who writes and reads a value, whether
it is constant (settled in one pass per top-level graph), and what a value is behind layout ops."""

from __future__ import annotations

from bisect import bisect_left
from functools import cached_property
from operator import attrgetter

from onnxaudit.io.dims import element_count
from onnxaudit.model.ops import LAYOUT_OR_QDQ, NONDETERMINISTIC, STORED_THROUGH
from onnxaudit.model.view import Graph, ModelView, Node, Tensor


def one_value(tensor: Tensor | None) -> bool:
    """A stored tensor of exactly one element (a scalar or [1]): eps, a `+ 0`, a literal."""
    return tensor is not None and tensor.dims is not None and element_count(tensor.dims) == 1


def more_than_scalar(tensor: Tensor) -> bool:
    dims = tensor.dims
    return dims is not None and len(dims) > 0 and element_count(dims) > 1  # () holds one value: no count to make


_index = attrgetter("index")


class GraphFacts:
    """The graph as the classifier reads it: producers, consumers, constness, values behind layout ops."""

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
        # from settle_constants: the constant names of each top-level graph (is_constant's answers
        # there) and the indices of the nodes whose outputs are all constant
        self.constants: dict[str, set[str]] = {}
        self.constant_nodes: set[int] = set()
        self.watched: dict[str, list[Node]] = {}  # and the other nodes reading a constant or a graph input

    @cached_property
    def nodes(self) -> list[Node]:
        """Every node of the model in index order (view.all_nodes()), made when first needed: a 200k-node
        copy that a model without If, BatchNormalization, ai.onnx.ml ops or unsettled graphs never needs."""
        return self.view.all_nodes()

    @cached_property
    def consumers(self) -> dict[tuple[str, str], list[tuple[Node, int]]]:
        """(scope, value) -> the (node, slot) pairs that read it; built when first needed (forward
        tracing, If outputs), which most graphs never are."""
        consumers: dict[tuple[str, str], list[tuple[Node, int]]] = {}
        for node in self.nodes:
            scope = node.scope
            for slot, name in enumerate(node.inputs):
                if name:
                    uses = consumers.get((scope, name))
                    if uses is None:
                        consumers[(scope, name)] = [(node, slot)]
                    else:
                        uses.append((node, slot))
        return consumers

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
        constant-only nodes and the nodes the walk visits. One pass instead of a recursive call per
        value (250k at 200k nodes). Subgraphs and graphs out of order are answered as the walk asks,
        by is_constant itself: the answers its depth limit and cycle guard give there depend on the
        order they are asked in."""
        for scope, graph in self.view.graphs.items():
            if graph.parent is None:
                settled = self.constant_names_in_order(scope, graph)
                if settled is not None:
                    constants, constant_nodes, reading, unwritten = settled
                    self.constants[scope] = constants
                    self.constant_nodes.update(constant_nodes)
                    self.watched[scope] = self.watched_nodes(graph, constants, set(constant_nodes), reading, unwritten)

    def watched_nodes(
        self,
        graph: Graph,
        constants: set[str],
        constant_nodes: set[int],
        reading: list[Node],
        unwritten: list[tuple[str, Node]],
    ) -> list[Node]:
        """The nodes of a settled graph the walk visits, in order: `reading` (those reading a constant)
        and the nodes of `unwritten` (names read before any node wrote them) that read a graph input;
        every node reading either, if a node writes a name some graph takes as input."""
        fed = self.graph_inputs
        if not self.producers[graph.scope].keys().isdisjoint(fed):  # a look-up per input name
            names = constants | fed
            return [
                node
                for node in graph.nodes
                if node.op_type != "Constant" and node.index not in constant_nodes and not names.isdisjoint(node.inputs)
            ]
        fed_readers = [
            node
            for name, node in unwritten
            if name in fed and node.op_type != "Constant" and node.index not in constant_nodes
        ]
        for node in fed_readers:  # a few: each put in its place among the others (if not there yet)
            at = bisect_left(reading, node.index, key=_index)
            if at == len(reading) or reading[at] is not node:
                reading.insert(at, node)
        return reading

    @cached_property
    def graph_inputs(self) -> set[str]:
        """The input names of every graph but function bodies: a weight slot may read one."""
        return {value.name for graph in self.view.graphs.values() if graph.kind != "function" for value in graph.inputs}

    def constant_names_in_order(
        self, scope: str, graph: Graph
    ) -> tuple[set[str], list[int], list[Node], list[tuple[str, Node]]] | None:
        """The constant names of a top-level graph, its constant-only nodes, the others that read a
        constant and the reads of names no node wrote before, in one pass in node order that also fills
        producers[scope]: a node's inputs were all decided before it (file order is topological), and
        its answer is is_constant's without the recursion. None when that order does not hold (any
        input read before it is written, a name written twice)."""
        constants = set(graph.tensors)  # stored: constant, whatever node computes the name
        produced: dict[str, Node] = {}
        self.producers[scope] = produced
        functions = self.view.functions
        constant_nodes: list[int] = []
        reading: list[Node] = []
        unwritten: list[tuple[str, Node]] = []  # names read before any node wrote them (graph inputs, or
        # out of order), and the node reading them
        written = 0  # names written (not empty): more than len(produced) if one is written twice
        for node in graph.nodes:
            constant = True  # every input constant, then the node's own test (most nodes never get there)
            reads = False  # any input constant: the walk visits the node (told as the inputs are looked at)
            for name in node.inputs:
                if name in constants:
                    reads = True
                elif name:
                    constant = False
                    if name not in produced:
                        unwritten.append((name, node))
            constant = constant and not (  # and no subgraph, random values or local function
                node.subgraphs
                or node.op_type in NONDETERMINISTIC
                or (functions and (node.domain, node.op_type) in functions)
            )
            every = bool(node.outputs)
            for out in node.outputs:
                if not out:
                    continue
                written += 1
                produced[out] = node  # the last writer, as producer() has always seen it
                if constant:
                    constants.add(out)
                elif out not in constants:
                    every = False
            if every:
                constant_nodes.append(node.index)
            elif reads and node.op_type != "Constant":  # reads a constant
                reading.append(node)
        in_order = written == len(produced) and produced.keys().isdisjoint(name for name, _ in unwritten)
        return (constants, constant_nodes, reading, unwritten) if in_order else None

    def is_constant_computation(self, node: Node) -> bool:
        if node.scope in self.constants:  # settled
            return node.index in self.constant_nodes
        if not node.outputs:
            return False
        for out in node.outputs:
            if out and not self.is_constant(node.scope, out):
                return False
        return True

    @cached_property
    def op_types(self) -> frozenset[str]:
        """Every op type in the model: the passes that look for one op (If, Cos, BatchNormalization)
        skip their walk over all nodes when it is absent. The view's, shared with the framework rules."""
        return self.view.op_types

    def stored_behind(self, scope: str, name: str) -> Tensor | None:
        """The stored tensor `name` is, or the one it is quantized, dequantized or cast from."""
        for _ in range(3):
            tensors = self.top_level.get(scope)  # trace's one dict instead of view.lookup's scope walk
            tensor = tensors.get(name) if tensors is not None else self.view.lookup(scope, name)
            if tensor is not None:
                return tensor
            node = self.producer(scope, name)
            if node is None or not node.inputs or node.op_type not in STORED_THROUGH:
                return None
            scope, name = node.scope, node.inputs[0]
        return None

    def through_layout(self, scope: str, name: str) -> Node | None:
        """The producer of `name` behind layout ops, Cast (LlamaRMSNorm's `.to(dtype)`) and static
        quantization's Quantize/Dequantize pairs."""
        # producer(), its top-level look-up inline: asked twice of each written-out norm's scale
        node = self.producers[scope].get(name) if scope in self.top_level else self.producer(scope, name)
        if node is None or node.op_type not in LAYOUT_OR_QDQ:
            return node  # most values: nothing to look behind
        for _ in range(5):
            if node is None or node.op_type not in LAYOUT_OR_QDQ:
                break
            node = self.producer(node.scope, node.inputs[0]) if node.inputs else None
        return node

    def _constant_or_assumed(self, node: Node, slot: int, assumed: str) -> bool:
        name = node.inputs[slot]
        return bool(name) and (name == assumed or self.is_constant(node.scope, name))

    def enclosing(self, scope: str | None) -> list[str]:
        """`scope` and the graphs around it, innermost first."""
        chain: list[str] = []
        while scope is not None and scope in self.view.graphs and len(chain) < 256:
            chain.append(scope)
            scope = self.view.graphs[scope].parent
        return chain
