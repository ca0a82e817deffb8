"""Safe open and structural reading: a ModelView of graphs, nodes and tensors, never weight values.

The reader keeps names, dtypes, dims and where each tensor's data lives. It decodes values only for
small integer tensors (shape constants, at most SMALL_VALUES elements), because ConstantOfShape and
Reshape need them; it never opens external data files.
"""

from __future__ import annotations

import ast
import mmap
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from math import prod
from operator import attrgetter
from pathlib import Path

from onnxaudit.errors import AuditError
from onnxaudit.io.dims import INTEGER_DTYPES, MAX_ELEMENTS, element_count
from onnxaudit.io.isolate import IsolatedFailure, run_isolated
from onnxaudit.io.onnxcore import (
    AttributeProto,
    FunctionProto,
    GraphProto,
    ModelProto,
    NodeProto,
    SparseTensorProto,
    TensorProto,
    TypeProto,
    infer_shapes,
)
from onnxaudit.io.safeopen import open_model
from onnxaudit.io.text import as_text, text_names
from onnxaudit.io.wire import LightModel, strip_weights_parts

# protobuf cannot parse a message over 2 GiB; such files need the wire reader.
MAX_MODEL_BYTES = 2**31 - 1
# the structure walk takes ~1 us a field; wire.MAX_FIELDS of them stay far below this
STRIP_TIMEOUT = 300.0
SMALL_VALUES = 64
MAIN = "main"
READERS = ("wire", "protobuf")
# onnx shape inference costs ~10 us a node plus our reading of its result: above this many nodes it
# would dominate a run (seconds), so it is skipped and the report says so.
MAX_INFER_NODES = 20_000

# A reader that left weight bytes out of the ModelProto says how many the file held for a tensor:
# (stored bytes, raw_data bytes), or None when the TensorProto is complete.
SizeHook = Callable[[TensorProto], "tuple[int, int] | None"]


@dataclass(frozen=True)
class ExternalRef:
    """Where an external tensor's bytes are said to live (unchecked until `check`)."""

    location: str
    offset: int | None
    length: int | None


@dataclass(frozen=True)
class Tensor:
    """A tensor with data (or a weight-slot input without it): identity is (scope, name)."""

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


@dataclass(frozen=True)
class Node:
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
    norms_without_affine: set[str] = field(default_factory=set)  # nodes of a batch/instance norm call given None
    bn_fusions: dict[str, int] = field(default_factory=dict)  # nodes BNs were fused into: how many


@dataclass
class ModelView:
    path: Path
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

    @property
    def main(self) -> Graph:
        return self.graphs[MAIN]

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


# ---------------------------------------------------------------- safe open


def open_model_file(path: Path) -> tuple[int, int]:
    """An open descriptor and the size of `path`, refusing anything but a non-empty regular file.
    The caller closes the descriptor. safeopen never opens a FIFO or device (it lstats first) and
    follows a symlink only inside the folder, without a window to swap it between check and open."""
    opened = open_model(path)
    return opened.fd, opened.size


def read_model_bytes(path: Path) -> bytes:
    """The file's bytes, refusing anything but a regular file of plausible size."""
    fd, size = open_model_file(path)
    try:
        if size > MAX_MODEL_BYTES:
            gib = size / 2**30
            raise AuditError(f"{path}: {gib:.1f} GiB is over protobuf's 2 GiB message limit")
        chunks = []
        remaining = size
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_model(data: bytes, name: str) -> ModelProto:
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError, RecursionError, ValueError...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditError(f"{name}: not an ONNX model (protobuf parse failed: {detail})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise AuditError(f"{name}: not an ONNX model (no graph or no IR version)")
    return model


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
    """Bytes held in the typed repeated fields (float_data etc.), counted, not decoded."""
    counts = (
        len(tensor.float_data) * 4,
        len(tensor.int32_data) * 4,
        len(tensor.int64_data) * 8,
        len(tensor.double_data) * 8,
        len(tensor.uint64_data) * 8,
        sum(len(s) for s in tensor.string_data),
    )
    return sum(counts)


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
_RAW_FORMATS = {
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
    dims = tuple(tensor.dims[:])  # int64 fields arrive as Python ints
    tensor_name = tensor.name if name is None else name
    if not _plain_dims(dims):
        try:
            element_count(dims)  # rejects negative or absurd dims early
        except AuditError:
            element_count(dims, f"tensor {tensor_name!r}")  # the same error, naming the tensor
    if tensor.data_location == _EXTERNAL:
        return Tensor(
            tensor_name, scope, tensor.data_type, dims, origin, "external",
            external=_external_ref(tensor), node=node,
        )  # fmt: skip
    known = sizes(tensor) if sizes is not None else None
    if known is not None:
        stored = known[0]
    else:
        stored = len(tensor.raw_data)
        if not stored and not tensor.HasField("raw_data"):
            stored = _typed_field_bytes(tensor)
    dtype = tensor.data_type
    return _new_tensor(
        tensor_name, scope, dtype, dims, origin, "embedded", stored, None, node, None, False,
        _small_values(tensor, dims) if dtype in INTEGER_DTYPES else None,
    )  # fmt: skip


_EXTERNAL = TensorProto.EXTERNAL


def _plain_dims(dims: tuple[int, ...]) -> bool:
    """Whether element_count would accept `dims` without a look at each: few, all positive, with a
    product in range (then every partial product is too). Two C calls instead of a Python loop, for
    the 48k initializers of a large model; anything else goes to element_count for its exact error."""
    return len(dims) <= 16 and (not dims or min(dims) >= 1) and prod(dims) <= MAX_ELEMENTS


def _constant_tensor(node: NodeProto, scope: str, sizes: SizeHook | None = None) -> Tensor | None:
    """The tensor a Constant node holds, whichever attribute carries it."""
    if not node.output:
        return None
    out = node.output[0]
    for attr in node.attribute:
        if attr.name == "value" and attr.type == AttributeProto.TENSOR:
            return tensor_from_proto(attr.t, scope, "constant", name=out, node=node.name, sizes=sizes)
        if attr.name == "sparse_value" and attr.type == AttributeProto.SPARSE_TENSOR:
            return _sparse_tensor(attr.sparse_tensor, scope, "constant", out, node.name)
        if attr.name == "value_float":
            return Tensor(out, scope, TensorProto.FLOAT, (), "constant", "embedded", 4, node=node.name)
        if attr.name == "value_int":
            return Tensor(
                out, scope, TensorProto.INT64, (), "constant", "embedded", 8,
                node=node.name, values=(int(attr.i),),
            )  # fmt: skip
        if attr.name == "value_floats":
            n = len(attr.floats)
            return Tensor(out, scope, TensorProto.FLOAT, (n,), "constant", "embedded", 4 * n, node=node.name)
        if attr.name == "value_ints":
            n = len(attr.ints)
            values = tuple(int(v) for v in attr.ints) if n <= SMALL_VALUES else None
            return Tensor(
                out, scope, TensorProto.INT64, (n,), "constant", "embedded", 8 * n,
                node=node.name, values=values,
            )  # fmt: skip
        if attr.name == "value_string":
            return Tensor(out, scope, TensorProto.STRING, (), "constant", "embedded", len(attr.s), node=node.name)
        if attr.name == "value_strings":
            n = len(attr.strings)
            return Tensor(out, scope, TensorProto.STRING, (n,), "constant", "embedded", node=node.name)
    return None


def _sparse_tensor(sparse: SparseTensorProto, scope: str, origin: str, name: str, node: str | None) -> Tensor:
    dims = tuple(int(d) for d in sparse.dims)
    element_count(dims, f"sparse tensor {name!r}")
    values = sparse.values
    nnz = element_count(tuple(int(d) for d in values.dims), f"sparse tensor {name!r} values")
    return Tensor(name, scope, values.data_type, dims, origin, "embedded", node=node, sparse_nnz=nnz)


def _shape_of(type_proto: TypeProto) -> tuple[int, tuple[int | str | None, ...] | None]:
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
            dims.append(as_text(d.dim_param))  # bytes when not UTF-8
        else:
            dims.append(None)
    return tt.elem_type, tuple(dims)


_A_INT, _A_FLOAT, _A_STRING, _A_INTS, _A_FLOATS, _A_GRAPH = (
    AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS, AttributeProto.FLOATS,
    AttributeProto.GRAPH,
)  # fmt: skip


_SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def _may_hold_module_scopes(data: bytes | bytearray | memoryview) -> bool:
    """Whether a node of the serialized model in `data` can carry torch's module scopes or onnxscript's
    rewrite rules: their keys' common prefix is somewhere in it. One search in C (~35 ms at 94 MB)
    spares reading every node's metadata_props (~90 ms at 200k nodes) in the many files that have
    none. A view is searched in the whole of what it views: a hit outside it only costs that reading."""
    whole = data.obj if isinstance(data, memoryview) else data
    return whole.find(_METADATA_PREFIX) >= 0


_FX_NODE_KEY = "pkg.torch.onnx.fx_node"
# the FX graph's placeholders: `%p_fc_weight` a parameter, `%b_running_mean` a buffer (dots as underscores)
_FX_BUFFER = re.compile(r"%b_(\w+)")
_FX_PARAMETER = re.compile(r"%p_(\w+)")
# aten's batch and instance norms take (input, weight, bias, running_mean, running_var, ...): affine=False
# passes None
_FX_NORM_WITHOUT_AFFINE = re.compile(r"(?:batch|instance)_norm\w*\.default\]\(args = \(%\w+, None, None, ")
_REWRITE_RULES_KEY = "pkg.onnxscript.rewriter.rule_name"
_BN_FUSION_RULE = "FuseBatchNormInto"  # ...Conv, ...ConvTranspose, ...Gemm
_METADATA_PREFIX = b"pkg."  # of _SCOPES_KEY, _FX_NODE_KEY and _REWRITE_RULES_KEY


def _node_metadata(node: NodeProto, facts: FxFacts) -> tuple[str, ...]:
    """The node's module scopes: torch.onnx (dynamo) records its module stack as a Python list literal.
    Also what its FX call and its optimizer's rewrite rules say, collected into `facts`."""
    scopes: tuple[str, ...] = ()
    for prop in node.metadata_props:
        key, text = as_text(prop.key), as_text(prop.value)  # bytes when not UTF-8
        if key == _SCOPES_KEY and len(text) < 4096:
            try:
                found = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(found, list) and all(isinstance(x, str) for x in found):
                scopes = tuple(found)
        elif key == _FX_NODE_KEY and "%" in (value := text) and len(value) < 65536:
            if "%p_" in value:
                facts.parameters.update(_FX_PARAMETER.findall(value))
            if "%b_" in value:
                facts.buffers.update(_FX_BUFFER.findall(value))
                if "None, None" in value and _FX_NORM_WITHOUT_AFFINE.search(value):
                    facts.norms_without_affine.add(node.name)
        elif key == _REWRITE_RULES_KEY and (fused := text.count(_BN_FUSION_RULE)):
            facts.bn_fusions[node.name] = fused
    return scopes


_new = object.__new__
_set_dict = object.__setattr__  # a frozen dataclass refuses `obj.__dict__ = ...`


def frozen_from_dict(cls: type, fields: dict[str, object]):  # type: ignore[no-untyped-def]
    """A dataclass instance (frozen or not) holding `fields` (every field, in order) without its
    __init__, which costs 3x as much for a frozen one (object.__setattr__ per field): 200k nodes
    make that a second."""
    obj = _new(cls)
    _set_dict(obj, "__dict__", fields)
    return obj


def _new_tensor(
    name: str, scope: str, dtype: int, dims: tuple[int, ...] | None, origin: str, storage: str,
    stored_bytes: int | None, external: ExternalRef | None, node: str | None, sparse_nnz: int | None,
    also_graph_input: bool, values: tuple[int, ...] | None,
) -> Tensor:  # fmt: skip
    """Tensor(...) with every field given in order, without the frozen dataclass's __init__."""
    return frozen_from_dict(Tensor, {  # type: ignore[no-any-return]
        "name": name, "scope": scope, "dtype": dtype, "dims": dims, "origin": origin, "storage": storage,
        "stored_bytes": stored_bytes, "external": external, "node": node, "sparse_nnz": sparse_nnz,
        "also_graph_input": also_graph_input, "values": values,
    })  # fmt: skip


class _Builder:
    """Walks the ModelProto once, giving every node a global index in file order."""

    MAX_DEPTH = 64

    def __init__(self, sizes: SizeHook | None = None, module_scopes: bool = True) -> None:
        self.graphs: dict[str, Graph] = {}
        self.counter = 0
        self.sizes = sizes
        self.module_scopes = module_scopes  # False: no node has them, their reading is skipped
        self.fx = FxFacts()

    def add_graph(self, graph: GraphProto, scope: str, parent: str | None, depth: int) -> str:
        if depth > self.MAX_DEPTH:
            raise AuditError(f"subgraphs nested deeper than {self.MAX_DEPTH} levels")
        if scope in self.graphs:
            scope = f"{scope}#{len(self.graphs)}"
        view = Graph(scope, parent, "graph" if parent is None else "subgraph")
        self.graphs[scope] = view
        tensors, sizes = view.tensors, self.sizes
        for init in graph.initializer:
            tensor = tensor_from_proto(init, scope, "initializer", sizes=sizes)
            tensors[tensor.name] = tensor  # its name read once, not again from protobuf
        for sparse in graph.sparse_initializer:
            name = sparse.values.name
            view.tensors[name] = _sparse_tensor(sparse, scope, "sparse_initializer", name, None)
        for value in graph.input:
            dtype, shape = _shape_of(value.type)
            view.inputs.append(ValueInfo(value.name, dtype, shape))
            if value.name in view.tensors:  # IR < 4: initializers also listed as inputs
                old = view.tensors[value.name]
                view.tensors[value.name] = frozen_from_dict(Tensor, {**old.__dict__, "also_graph_input": True})
        view.outputs = [o.name for o in graph.output]
        self._add_nodes(graph.node, view, depth)
        return scope

    def add_function(self, func: FunctionProto) -> str:
        scope = f"function:{func.domain}.{func.name}"
        view = Graph(scope, None, "function")
        self.graphs[scope] = view
        view.inputs = [ValueInfo(name, 0, None) for name in func.input]
        view.outputs = list(func.output)
        self._add_nodes(func.node, view, 0)
        return scope

    def _add_nodes(self, nodes: list[NodeProto], view: Graph, depth: int) -> None:
        scope = view.scope
        append = view.nodes.append
        new, set_dict = _new, _set_dict
        scoped = self.module_scopes
        for proto in nodes:
            index = self.counter
            self.counter = index + 1
            # each protobuf field read costs ~100 ns (200k nodes: read each field once, into a local)
            name, op_type, domain = proto.name, proto.op_type, proto.domain
            attributes = proto.attribute
            if len(attributes):  # most nodes have none
                attrs, subscopes = self._attributes(attributes, name or f"{op_type}_{index}", view, depth)
            else:
                attrs, subscopes = {}, ()
            module_scopes = _node_metadata(proto, self.fx) if scoped and len(proto.metadata_props) else ()
            node = new(Node)
            # slices ([:]) copy a repeated field in one call; tuple(field) reads it item by item
            set_dict(node, "__dict__", {
                "index": index, "name": name, "op_type": op_type, "domain": domain,
                "inputs": tuple(proto.input[:]), "outputs": tuple(proto.output[:]), "attrs": attrs, "scope": scope,
                "subgraphs": subscopes, "module_scopes": module_scopes,
            })  # fmt: skip
            append(node)
            if op_type == "Constant" and (domain == "" or domain == "ai.onnx"):
                const = _constant_tensor(proto, scope, self.sizes)
                if const is not None:
                    view.tensors[const.name] = const

    def _attributes(
        self, attributes: list[AttributeProto], label: str, view: Graph, depth: int
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


# the ops constfold can evaluate (its _EVAL table, plus Shape); kept equal by tests/test_constfold.py
FOLDABLE_OPS = frozenset(
    "Identity Cast Gather Concat Slice Reshape Transpose Unsqueeze Squeeze ConstantOfShape Add Sub Mul Div "
    "Neg Equal Where Range Expand Shape".split()
)
FOLD_MAX_ELEMENTS = 64  # constfold.MAX_ELEMENTS


def has_foldable_chain(graph: GraphProto) -> bool:
    """Whether constfold would fold anything beyond Constant nodes (which inference reads as they
    are): a look over names only, so numpy is imported only for graphs that need it."""
    known: set[str] = set()  # small constant values
    dims: set[str] = set()  # values whose dims are known (what Shape needs)
    for init in graph.initializer:
        dims.add(init.name)
        if init.data_location != TensorProto.EXTERNAL and element_count(tuple(init.dims)) <= FOLD_MAX_ELEMENTS:
            known.add(init.name)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            continue
        out = node.output[0]
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == AttributeProto.TENSOR:
                    dims.add(out)
                    if element_count(tuple(attr.t.dims)) <= FOLD_MAX_ELEMENTS:
                        known.add(out)
        elif node.op_type == "Shape":
            if node.input and node.input[0] in dims:
                return True
        elif node.op_type in FOLDABLE_OPS and node.input and all(not i or i in known for i in node.input):
            return True
    return False


def infer_value_shapes(
    model: ModelProto, sizes: SizeHook | None = None, in_place: bool = False, notes: list[str] | None = None
) -> dict[str, ValueInfo]:
    """Static shapes from onnx shape inference, run on a copy whose large weights are stripped
    (`in_place`: the model is already a light copy of the reader's own). A failure of inference
    is added to `notes`."""
    if in_place:
        light = model
    else:
        light = ModelProto()
        light.CopyFrom(model)
    for init in light.graph.initializer:
        known = sizes(init) if sizes is not None else None
        if (known[1] if known is not None else len(init.raw_data)) > 4096:
            init.ClearField("raw_data")
            init.data_location = TensorProto.EXTERNAL  # dims stay; inference never reads the bytes
            del init.external_data[:]
            init.external_data.add(key="location", value="__stripped__")
    if has_foldable_chain(light.graph):
        from onnxaudit.model.constfold import fold_shape_arithmetic  # numpy: imported only when needed

        try:
            fold_shape_arithmetic(light)
        except Exception:  # folding only sharpens inference; it never decides a count
            pass
    try:
        inferred = infer_shapes(light)
    except IsolatedFailure as exc:  # inference is a courtesy; counts never depend on it
        if notes is not None:
            notes.append(f"static shape inference failed: {exc}; output shapes not shown")
        inferred = light
    shapes: dict[str, ValueInfo] = {}
    graph = inferred.graph
    for value in list(graph.value_info) + list(graph.output) + list(graph.input):
        dtype, shape = _shape_of(value.type)
        if shape is not None:
            shapes[value.name] = ValueInfo(value.name, dtype, shape)
    return shapes


def _updated_by_training(model: ModelProto) -> frozenset[str] | None:
    """The initializers the file's training algorithms update (TrainingInfoProto.update_binding keys)."""
    keys = [as_text(binding.key) for info in model.training_info for binding in info.update_binding]
    return frozenset(keys) if keys else None


def model_view(
    model: ModelProto,
    path: Path,
    file_bytes: int,
    with_shapes: bool = True,
    sizes: SizeHook | None = None,
    module_scopes: bool = True,
) -> ModelView:
    """The view of `model`; `sizes` comes with a light copy made by the wire reader (and lets
    inference run on that copy in place). `module_scopes` False: the serialized model was seen to
    hold no torch module scopes, so no node's metadata is read."""
    builder = _Builder(sizes, module_scopes)
    builder.add_graph(model.graph, MAIN, None, 0)
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
        _updated_by_training(model), builder.fx, as_text(model.graph.name), _metadata(model),
    )  # fmt: skip
    return text_names(view)  # invalid UTF-8 names arrive from protobuf as bytes


def _metadata(model: ModelProto, most: int = 64, longest: int = 256) -> dict[str, str]:
    """The model's metadata_props, a few short ones: what exporters say of themselves there."""
    return {as_text(p.key): as_text(p.value)[:longest] for p in model.metadata_props[:most]}


def _read_wire(path: Path) -> tuple[ModelProto, int, SizeHook, bool]:
    """The wire reader: map the file, copy its structure without weight bytes (walked in a forked
    child, see _strip_in_child), parse that copy. Weight bytes are never read, whatever the size.
    Also says whether the copy may hold torch module scopes (_may_hold_module_scopes)."""
    fd, size = open_model_file(path)
    try:
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise AuditError(f"{path}: cannot map the file ({exc})") from None
    finally:
        os.close(fd)
    try:
        light = _strip_in_child(mapped, str(path))
    finally:
        mapped.close()
    model = parse_model(light.data, str(path))
    scoped = _may_hold_module_scopes(light.data)
    light.data = b""  # parsed: the copy is not needed while the view is built (sizes reads the model)
    return model, size, light.sizes, scoped


def _strip_in_child(mapped: mmap.mmap, name: str) -> LightModel:
    """strip_weights over the mapped file, in a forked child: if another process truncates the file
    during the walk, touching a vanished page raises SIGBUS, which would kill us without a word."""

    def walk() -> tuple[bytes | memoryview, ...]:
        try:
            light, parts = strip_weights_parts(mapped)
        except AuditError as exc:
            raise _StripRefused(str(exc)) from None
        # the parts go to the pipe one by one: the copy is never joined here
        return (_STRIP_HEADER.pack(light.nonce, light.stripped_tensors, light.stripped_bytes), *parts)

    try:
        answer = run_isolated(walk, timeout=STRIP_TIMEOUT)
    except IsolatedFailure as exc:
        reason = str(exc)
        if reason.startswith(_StripRefused.MARK):
            raise AuditError(f"{name}: {reason[len(_StripRefused.MARK) :]}") from None
        if "SIGBUS" in reason:
            raise AuditError(
                f"{name}: the file changed while it was read (SIGBUS: truncated by another process?)"
            ) from None
        raise AuditError(f"{name}: reading the structure failed: {reason}") from None
    nonce, stripped_tensors, stripped_bytes = _STRIP_HEADER.unpack_from(answer)
    data = memoryview(answer)[_STRIP_HEADER.size :]  # parsed, never copied
    return LightModel(data, nonce, stripped_tensors, stripped_bytes)  # type: ignore[arg-type]


# what the strip child sends before the light copy: the nonce, then stripped tensors and bytes
_STRIP_HEADER = struct.Struct("<8sQQ")


class _StripRefused(Exception):
    """strip_weights' own one-line refusal, told apart from a crash once it is back in the parent."""

    MARK = "refused: "

    def __init__(self, message: str) -> None:
        super().__init__(self.MARK + message)


def load(path: str | os.PathLike[str], with_shapes: bool = True, reader: str = "wire") -> ModelView:
    """Open `path` safely and read its structure. Raises AuditError for unusable input.

    reader "wire" (default) never copies weight bytes and has no 2 GiB limit; "protobuf" parses
    the whole file with protobuf and is kept as the reference the wire reader is tested against.
    """
    path = Path(path)
    sizes: SizeHook | None = None
    if reader == "wire":
        model, file_bytes, sizes, scoped = _read_wire(path)
    elif reader == "protobuf":
        data = read_model_bytes(path)
        model, file_bytes, scoped = parse_model(data, str(path)), len(data), _may_hold_module_scopes(data)
        del data
    else:
        raise ValueError(f"unknown reader {reader!r} (choose from {', '.join(READERS)})")
    try:
        view = model_view(model, path, file_bytes, with_shapes, sizes, scoped)
    except AuditError as exc:
        raise AuditError(f"{path}: {exc}") from None
    except RecursionError:
        raise AuditError(f"{path}: model nesting is too deep to read") from None
    del model, sizes
    _return_freed_memory()
    return view


def _return_freed_memory() -> None:
    """Hand the parsed ModelProto's pages back to the system. protobuf frees it in many small blocks
    that glibc keeps mapped when later allocations sit above them (~90 MB at 100k nodes, held to the
    end of the run); malloc_trim releases free pages wherever they are. A no-op off glibc."""
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return
    trim(0)
