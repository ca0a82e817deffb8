"""protobuf -> ModelView: graphs, nodes and tensors, never weight values.

It decodes values only for small integer tensors (shape constants, at most SMALL_VALUES elements),
because ConstantOfShape and Reshape need them; it never opens external data files.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace
from math import prod
from pathlib import Path

from onnxaudit.errors import AuditError
from onnxaudit.io.budget import MAX_NODES, Tally
from onnxaudit.io.dims import INTEGER_DTYPES, MAX_ELEMENTS, element_count
from onnxaudit.io.onnxcore import (
    AttributeProto,
    FunctionProto,
    GraphProto,
    ModelProto,
    NodeProto,
    SparseTensorProto,
    TensorProto,
)
from onnxaudit.io.text import as_text, nodes_as_text, text_names
from onnxaudit.io.wire import LightModel
from onnxaudit.model.infer import infer_value_shapes
from onnxaudit.model.metadata import graph_signature, may_hold_module_scopes, node_metadata
from onnxaudit.model.read import SizeHook
from onnxaudit.model.view import (
    MAIN,
    ExternalRef,
    FxFacts,
    Graph,
    ModelView,
    Node,
    Tensor,
    ValueInfo,
    dtype_and_shape,
)

SMALL_VALUES = 64


# onnx shape inference costs ~10 us a node plus our reading of its result: above this many nodes it
# would dominate a run (seconds), so it is skipped and the report says so.
MAX_INFER_NODES = 20_000


# ---------------------------------------------------------------- protobuf -> view


def _external_ref(tensor: TensorProto) -> ExternalRef:
    entries = {e.key: e.value for e in tensor.external_data}

    def as_int(key: str) -> int | None:
        try:
            return int(entries[key]) if key in entries else None
        except ValueError:
            return None

    return ExternalRef(entries.get("location", ""), as_int("offset"), as_int("length"))


def _typed_field_bytes(tensor: TensorProto) -> int:
    """Bytes held in the typed repeated fields (float_data etc.), counted, not decoded. ListFields names only
    the fields set, in one call: six len() calls cost 2 us a tensor (999,980 empty initializers: 2 s)."""
    total = 0
    for described, value in tensor.ListFields():
        number = described.number
        if number in _TYPED_WIDTHS:
            total += len(value) * _TYPED_WIDTHS[number]
        elif number == _STRING_DATA:
            total += sum(len(s) for s in value)
    return total


# bytes per element of the typed repeated fields: float_data, int32_data, int64_data, double_data, uint64_data
_TYPED_WIDTHS = {
    TensorProto.FLOAT_DATA_FIELD_NUMBER: 4,
    TensorProto.INT32_DATA_FIELD_NUMBER: 4,
    TensorProto.INT64_DATA_FIELD_NUMBER: 8,
    TensorProto.DOUBLE_DATA_FIELD_NUMBER: 8,
    TensorProto.UINT64_DATA_FIELD_NUMBER: 8,
}
_STRING_DATA = TensorProto.STRING_DATA_FIELD_NUMBER


def _small_values(tensor: TensorProto, dims: tuple[int, ...]) -> tuple[int, ...] | None:
    if tensor.data_type not in INTEGER_DTYPES or tensor.data_location == TensorProto.EXTERNAL:
        return None
    try:
        count = element_count(dims)
        if count > SMALL_VALUES:
            return None
        return _integer_values(tensor, count)
    except Exception:  # malformed small tensor: values stay unknown, counting does not need them
        return None


# struct codes of the whole-byte integer types as raw_data stores them (little-endian, packed)
_RAW_FORMATS: dict[int, str] = {
    TensorProto.UINT8: "B",
    TensorProto.INT8: "b",
    TensorProto.UINT16: "H",
    TensorProto.INT16: "h",
    TensorProto.INT32: "i",
    TensorProto.UINT32: "I",
    TensorProto.INT64: "q",
    TensorProto.UINT64: "Q",
}


def _integer_values(tensor: TensorProto, count: int) -> tuple[int, ...] | None:
    """A small integer tensor's values, decoded without numpy (shape targets, axes, pads).
    4- and 2-bit types stay unknown: no shape or index is ever stored that way."""
    code = _RAW_FORMATS.get(tensor.data_type)
    if code is None:
        return None
    if tensor.HasField("raw_data"):
        values = struct.unpack(f"<{count}{code}", tensor.raw_data)  # raises on a wrong length
    elif tensor.data_type == TensorProto.INT64:
        values = tuple(tensor.int64_data)
    elif tensor.data_type in (TensorProto.UINT32, TensorProto.UINT64):
        values = tuple(tensor.uint64_data)
    else:
        values = tuple(tensor.int32_data)
    return values if len(values) == count else None


def tensor_from_proto(
    tensor: TensorProto,
    scope: str,
    origin: str,
    name: str | None = None,
    node: str | None = None,
    sizes: SizeHook | None = None,
) -> Tensor:
    # one call a tensor, each protobuf field read once: 999,980 initializers fit in 2 MB (issue #17)
    field = tensor.dims
    dims: tuple[int, ...] = tuple(field[:]) if len(field) else ()  # int64 fields arrive as Python ints
    tensor_name = tensor.name if name is None else name
    # whether element_count would accept `dims` without a look at each: few, all positive, with a product
    # in range (then every partial product is too); anything else goes to element_count for its exact error
    if dims and not (len(dims) <= 16 and min(dims) >= 1 and prod(dims) <= MAX_ELEMENTS):
        try:
            element_count(dims)  # rejects negative or absurd dims early
        except AuditError:
            element_count(dims, f"tensor {tensor_name!r}")  # the same error, naming the tensor
    if tensor.data_location == _EXTERNAL:
        return Tensor(
            tensor_name, scope, tensor.data_type, dims, origin, "external",
            external=_external_ref(tensor), node=node,
        )  # fmt: skip
    # raw_data read once (each read copies it, up to wire.KEEP_BYTES): a tensor that kept some is complete, as
    # `sizes` would say, and one the wire reader stripped holds none (LightModel.sizes)
    stored = len(tensor.raw_data)
    if not stored:
        known = sizes(tensor) if sizes is not None else None
        if known is not None:
            stored = known[0]
        elif not tensor.HasField("raw_data"):
            stored = _typed_field_bytes(tensor)
    dtype = tensor.data_type
    return Tensor(
        tensor_name, scope, dtype, dims, origin, "embedded", stored, None, node, None, False,
        _small_values(tensor, dims) if dtype in INTEGER_DTYPES else None,
    )  # fmt: skip


_EXTERNAL = TensorProto.EXTERNAL


def _constant_tensor(
    node: NodeProto, scope: str, sizes: SizeHook | None = None, node_name: str | None = None
) -> Tensor | None:
    """The tensor a Constant node holds, whichever attribute carries it (the first that does). `node_name`: the
    node's name, when the caller read it already. Each attribute's name is read once (each read makes a str)."""
    outputs = node.output
    if not outputs:
        return None
    out = outputs[0]
    held = node.name if node_name is None else node_name
    for attr in node.attribute:
        name = attr.name
        if name == "value_ints":  # the most common: a dynamo export's 9.9k shape constants of 10.5k
            ints = attr.ints
            n = len(ints)
            return _constant(out, scope, _INT64, (n,), 8 * n, held, tuple(ints[:]) if n <= SMALL_VALUES else None)
        if name == "value":
            if attr.type == AttributeProto.TENSOR:
                return tensor_from_proto(attr.t, scope, "constant", name=out, node=held, sizes=sizes)
        elif name == "sparse_value":
            if attr.type == AttributeProto.SPARSE_TENSOR:
                return _sparse_tensor(attr.sparse_tensor, scope, "constant", out, held)
        elif name == "value_float":
            return _constant(out, scope, TensorProto.FLOAT, (), 4, held)
        elif name == "value_int":
            return _constant(out, scope, _INT64, (), 8, held, (int(attr.i),))
        elif name == "value_floats":
            n = len(attr.floats)
            return _constant(out, scope, TensorProto.FLOAT, (n,), 4 * n, held)
        elif name == "value_string":
            return _constant(out, scope, TensorProto.STRING, (), len(attr.s), held)
        elif name == "value_strings":
            return _constant(out, scope, TensorProto.STRING, (len(attr.strings),), None, held)
    return None


_INT64 = TensorProto.INT64


def _constant(
    name: str, scope: str, dtype: int, dims: tuple[int, ...], stored: int | None, node: str,
    values: tuple[int, ...] | None = None,
) -> Tensor:  # fmt: skip
    """Tensor(name, scope, dtype, dims, "constant", "embedded", stored, node=node, values=values), its arguments by
    position (keywords cost more: the dynamo file's 10.5k Constants)."""
    return Tensor(name, scope, dtype, dims, "constant", "embedded", stored, None, node, None, False, values)


def _sparse_tensor(sparse: SparseTensorProto, scope: str, origin: str, name: str, node: str | None) -> Tensor:
    dims = tuple(int(d) for d in sparse.dims)
    element_count(dims, f"sparse tensor {name!r}")
    values = sparse.values
    nnz = element_count(tuple(int(d) for d in values.dims), f"sparse tensor {name!r} values")
    return Tensor(name, scope, values.data_type, dims, origin, "embedded", node=node, sparse_nnz=nnz)


_A_INT, _A_FLOAT, _A_STRING, _A_INTS, _A_FLOATS, _A_GRAPH = (
    AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS, AttributeProto.FLOATS,
    AttributeProto.GRAPH,
)  # fmt: skip


class _Builder:
    """Walks the ModelProto once, giving every node a global index in file order."""

    MAX_DEPTH = 64

    def __init__(self, sizes: SizeHook | None = None, module_scopes: bool = True, max_nodes: int = MAX_NODES) -> None:
        self.graphs: dict[str, Graph] = {}
        self.counter = 0
        # --max-nodes (io/budget.py), counted again as the view is built: a ModelProto given to model_view was
        # not necessarily walked by the wire reader
        self.tally = Tally(max_nodes)
        self.sizes = sizes
        self.module_scopes = module_scopes  # False: no node has them, their reading is skipped
        self.fx = FxFacts()
        # the main graph's Constant tensors, when its nodes were read before its initializers (StreamedMain)
        self.main_constants: list[Tensor] | None = None

    def add_graph(self, graph: GraphProto, scope: str, parent: str | None, depth: int) -> str:
        if depth > self.MAX_DEPTH:
            raise AuditError(f"subgraphs nested deeper than {self.MAX_DEPTH} levels")
        streamed, self.main_constants = (self.main_constants, None) if parent is None else (None, self.main_constants)
        if streamed is not None:  # the main graph, its nodes read already (StreamedMain): `graph` holds none
            view = self.graphs[scope]
        else:
            self.tally.add_graph()
            if scope in self.graphs:
                scope = f"{scope}#{len(self.graphs)}"
            view = Graph(scope, parent, "graph" if parent is None else "subgraph")
            self.graphs[scope] = view
        tensors = view.tensors
        self.tally.add_tensors(len(graph.initializer) + len(graph.sparse_initializer))  # before a tensor is built
        self.tally.add_values(len(graph.input) + len(graph.output) + len(graph.value_info))  # before inference
        self.add_initializers(graph.initializer, view)
        for sparse in graph.sparse_initializer:
            name = sparse.values.name
            view.tensors[name] = _sparse_tensor(sparse, scope, "sparse_initializer", name, None)
        for value in graph.input:
            dtype, shape = dtype_and_shape(value.type)
            view.inputs.append(ValueInfo(value.name, dtype, shape))
            if value.name in view.tensors:  # IR < 4: initializers also listed as inputs
                old = view.tensors[value.name]
                view.tensors[value.name] = replace(old, also_graph_input=True)
        view.outputs = [o.name for o in graph.output]
        for const in streamed or ():  # as _add_nodes would have put them, after the initializers
            tensors[const.name] = const
        self._add_nodes(graph.node, view, depth)
        return scope

    def add_initializers(self, initializers: Sequence[TensorProto], view: Graph) -> None:
        """The tensors of `initializers`, in file order, into `view` (counted against the tally by the caller)."""
        tensors, scope, sizes = view.tensors, view.scope, self.sizes
        for init in initializers:
            tensor = tensor_from_proto(init, scope, "initializer", sizes=sizes)
            tensors[tensor.name] = tensor  # its name read once, not again from protobuf

    def add_function(self, func: FunctionProto) -> str:
        scope = f"function:{func.domain}.{func.name}"
        self.tally.add_graph("graphs and functions")
        view = Graph(scope, None, "function")
        self.graphs[scope] = view
        view.inputs = [ValueInfo(name, 0, None) for name in func.input]
        view.outputs = list(func.output)
        self._add_nodes(func.node, view, 0)
        return scope

    def _add_nodes(
        self, nodes: Sequence[NodeProto], view: Graph, depth: int, constants: list[Tensor] | None = None
    ) -> None:
        """The view's nodes, and its Constants' tensors (into `constants` when given, to be added later)."""
        tally = self.tally
        tally.add_nodes(len(nodes))  # before reading them: 1M empty nodes fit in 2 MB
        # node inputs counted against the tally in a local sum, told to it where the limit is passed, before
        # a node's subgraphs (they count their own) and after the last node: no call per node (200k)
        read, room = 0, tally.max_inputs - tally.inputs
        scope = view.scope
        append = view.nodes.append
        scoped = self.module_scopes
        counter = self.counter  # kept in a local, told to self before a node's subgraphs take their numbers
        for proto in nodes:
            index = counter
            counter += 1
            # each protobuf field read costs ~100 ns (200k nodes: read each field once, into a local)
            name, op_type, domain = proto.name, proto.op_type, proto.domain
            attributes = proto.attribute
            if len(attributes):  # most nodes have none
                tally.add_inputs(read)
                read, room = 0, tally.max_inputs - tally.inputs
                self.counter = counter
                attrs, subscopes = self._attributes(attributes, name or f"{op_type}_{index}", view, depth)
                counter, room = self.counter, tally.max_inputs - tally.inputs
            else:
                attrs, subscopes = {}, ()
            module_scopes = node_metadata(proto, self.fx) if scoped and len(proto.metadata_props) else ()
            inputs = tuple(proto.input[:])
            read += len(inputs)
            if read > room:
                tally.add_inputs(read)  # raises: over --max-nodes' node inputs
            # slices ([:]) copy a repeated field in one call; tuple(field) reads it item by item
            append(
                Node(
                    index, name, op_type, domain, inputs, tuple(proto.output[:]), attrs, scope, subscopes, module_scopes
                )
            )
            if op_type == "Constant" and (domain == "" or domain == "ai.onnx"):
                const = _constant_tensor(proto, scope, self.sizes, name)
                if const is None:
                    pass
                elif constants is None:
                    view.tensors[const.name] = const
                else:
                    constants.append(const)
        self.counter = counter
        tally.add_inputs(read)

    def _attributes(
        self, attributes: Sequence[AttributeProto], label: str, view: Graph, depth: int
    ) -> tuple[dict[str, object], tuple[str, ...]]:
        """A node's simple attributes (scalars and small lists; tensors are read elsewhere) and the
        scopes of its subgraphs, in one pass over the attributes."""
        attrs: dict[str, object] = {}
        found: list[str] = []
        for attr in attributes:
            kind = attr.type
            if kind == _A_INT:
                attrs[attr.name] = attr.i
            elif kind == _A_FLOAT:
                attrs[attr.name] = attr.f
            elif kind == _A_STRING:
                attrs[attr.name] = attr.s.decode("utf-8", "replace")
            elif kind == _A_INTS:
                ints = attr.ints
                if len(ints) <= SMALL_VALUES:
                    attrs[attr.name] = tuple(ints[:])
            elif kind == _A_FLOATS:
                floats = attr.floats
                if len(floats) <= SMALL_VALUES:
                    attrs[attr.name] = tuple(floats[:])
            # any kind but GRAPH may carry graphs (a file may set both): each is walked, as before
            if kind == _A_GRAPH:
                subgraphs = [attr.g]
            elif len(attr.graphs):
                subgraphs = attr.graphs[:]
            else:
                continue
            name = attr.name
            for k, sub in enumerate(subgraphs):
                suffix = name if len(subgraphs) == 1 else f"{name}[{k}]"
                found.append(self.add_graph(sub, f"{view.scope}/{label}:{suffix}", view.scope, depth + 1))
        return attrs, tuple(found)


def _updated_by_training(model: ModelProto) -> frozenset[str] | None:
    """The initializers the file's training algorithms update (TrainingInfoProto.update_binding keys)."""
    keys = [as_text(binding.key) for info in model.training_info for binding in info.update_binding]
    return frozenset(keys) if keys else None


def _no_sizes(tensor: TensorProto) -> tuple[int, int] | None:
    return None


class StreamedMain:
    """The main graph's nodes and initializers read as the wire walk sends them (model/read.NodeChunks' feed: the
    nonce and a chunk of them), while it walks the rest; model_view then finishes the view with the rest of the model.
    The same view as from the whole light copy: nodes are numbered in the same order, the initializers' tensors come
    first, in file order, their Constants' tensors after the initializers and inputs as _add_nodes would, and a chunk
    without torch's metadata holds no node that has any."""

    def __init__(self, max_nodes: int = MAX_NODES) -> None:
        self.max_nodes = max_nodes
        self.builder: _Builder | None = None
        self.constants: list[Tensor] = []
        self.scoped = False
        self.text = True  # every name of the nodes read so far arrived as str (io/text.nodes_as_text)
        self.sizes: tuple[SizeHook, SizeHook] = (_no_sizes, _no_sizes)  # feed's: without, with unknown-field marks

    def feed(
        self,
        nonce: bytes,
        data: memoryview,
        scoped: bool | None = None,
        text: bool | None = None,
        stripped: bool = True,
    ) -> bool:
        """Read one chunk; False when it cannot (model_view is then given the whole copy, and this is dropped).
        `scoped`: whether its nodes may hold torch's module scopes, as the walk saw (wire.NodeStream.metadata); None:
        the chunk is searched for their keys' prefix (metadata.may_hold_module_scopes). `text`: whether every name
        of its nodes is valid UTF-8, as the walk's child found (io/text.nodes_as_text); None: looked at here.
        `stripped` False: the walk left no tensor of it without bytes but the marked ones (wire.NodeStream.stripped),
        so a tensor with no raw_data is not searched for the walk's unknown-field mark (~2 us each)."""
        try:
            graph = GraphProto()
            graph.ParseFromString(data)  # type: ignore[arg-type]  # any buffer parses; the stub says bytes
            builder = self.builder
            if builder is None:  # model_view's add_graph(MAIN) would start so, before its initializers
                builder = self.builder = _Builder(None, True, self.max_nodes)
                builder.tally.add_graph()
                builder.graphs[MAIN] = Graph(MAIN, None, "graph")
                # the sizes of the tensors the walk left bytes out of: marked ones (LightModel.marked), and those with
                # its unknown-field mark (stripped_tensors), or only the first
                self.sizes = (LightModel(b"", nonce, 0, marked=1).sizes, LightModel(b"", nonce, 1, marked=1).sizes)
            builder.sizes = self.sizes[stripped]
            builder.module_scopes = may_hold_module_scopes(data) if scoped is None else scoped
            self.scoped = self.scoped or builder.module_scopes
            self.text = self.text and (nodes_as_text(data) if text is None else text)
            main = builder.graphs[MAIN]
            builder._add_nodes(graph.node, main, 0, self.constants)
            initializers = graph.initializer
            if len(initializers):  # in file order, before any of the rest's, as add_graph would put them
                builder.tally.add_tensors(len(initializers))  # before a tensor is built
                builder.add_initializers(initializers, main)
        except Exception:  # noqa: BLE001 - whatever it is, the whole copy is read as before and says it
            return False
        return True


def model_view(
    model: ModelProto,
    path: Path | str,
    file_bytes: int,
    with_shapes: bool = True,
    sizes: SizeHook | None = None,
    module_scopes: bool = True,
    max_nodes: int = MAX_NODES,
    streamed: StreamedMain | None = None,
) -> ModelView:
    """The view of `model`; `sizes` comes with a light copy made by the wire reader (and lets
    inference run on that copy in place). `module_scopes` False: the serialized model was seen to
    hold no torch module scopes, so no node's metadata is read. `streamed`: the main graph's nodes, read
    already (`model` holds none of them); there are more than MAX_INFER_NODES."""
    known = 0  # the main graph's first nodes known to have every name as str (StreamedMain.text)
    if streamed is not None and streamed.builder is not None:
        builder = streamed.builder
        known = len(builder.graphs[MAIN].nodes) if streamed.text else 0
        module_scopes = module_scopes or streamed.scoped
        builder.sizes, builder.module_scopes, builder.main_constants = sizes, module_scopes, streamed.constants
    else:
        builder = _Builder(sizes, module_scopes, max_nodes)
    builder.add_graph(model.graph, MAIN, None, 0)
    if module_scopes and len(model.graph.metadata_props):
        graph_signature(model.graph, builder.fx)
    functions = {}
    for func in model.functions:
        functions[(func.domain, func.name)] = builder.add_function(func)
    opsets = {as_text(imp.domain) or "ai.onnx": int(imp.version) for imp in model.opset_import}
    producer = " ".join(as_text(p) for p in (model.producer_name, model.producer_version) if p)
    nodes = builder.counter
    notes: list[str] = []
    shapes: dict[str, ValueInfo] = {}
    if with_shapes and nodes > MAX_INFER_NODES:
        notes.append(
            f"static shape inference skipped: {nodes:,} nodes is over {MAX_INFER_NODES:,}; output shapes not shown"
        )
    elif with_shapes:
        shapes = infer_value_shapes(model, sizes, in_place=sizes is not None, notes=notes)
    view = ModelView(
        path, file_bytes, int(model.ir_version), opsets, producer, builder.graphs, functions, shapes, notes,
        _updated_by_training(model), builder.fx, as_text(model.graph.name), _metadata(model), max_nodes=max_nodes,
        module_scoped=module_scopes,
    )  # fmt: skip
    return text_names(view, known)  # invalid UTF-8 names arrive from protobuf as bytes


def _metadata(model: ModelProto, most: int = 64, longest: int = 256) -> dict[str, str]:
    """The model's metadata_props, a few short ones: what exporters say of themselves there."""
    return {as_text(p.key): as_text(p.value)[:longest] for p in model.metadata_props[:most]}
