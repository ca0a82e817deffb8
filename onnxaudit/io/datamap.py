"""Where each tensor's bytes lie in the model file, found by walking the protobuf wire format.

Only tags, lengths and small fields (names, dims, external-data entries) are read; a weight's bytes are
skipped by their length and located as (offset, length) for the bounded scans in `weights.py`. The file
is read through a small window with pread, never mmap: a file truncated while mapped kills the
process with SIGBUS, a short pread is just an error.

Tensors get the same (scope, name) keys as `model.view.ModelView` (same walk order, same scope names, the
last definition of a name wins), so checks can join the two; callers confirm dtype and dims agree.
Repeated occurrences of a singular message field are merged as protobuf merges them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onnxaudit.errors import AuditError
from onnxaudit.io import onnxcore
from onnxaudit.io.budget import MAX_NODES, Tally
from onnxaudit.io.ranged import BLOCK, RangedBuffer
from onnxaudit.io.text import as_text
from onnxaudit.io.wire import KEEP_BYTES

if TYPE_CHECKING:
    from google.protobuf.message import Message

WINDOW = 1 << 20
MAX_DEPTH = 100  # protobuf's own recursion limit
MAX_FIELDS = 20_000_000  # fields walked: bounds the time a hostile structure can cost
MAX_TEXT = 1 << 24  # longest name or external-data entry read
MAX_PACKED_DIMS = 1 << 12  # bytes of packed dims read; more dims than this is not a real tensor
MAX_PLAIN_NODE = 1 << 12  # nodes up to this size are parsed by protobuf when they hold no tensor or graph

MAIN = "main"


def _numbers(message: type[Message]) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


_M = _numbers(onnxcore.ModelProto)
_G = _numbers(onnxcore.GraphProto)
_N = _numbers(onnxcore.NodeProto)
_A = _numbers(onnxcore.AttributeProto)
_T = _numbers(onnxcore.TensorProto)
_S = _numbers(onnxcore.SparseTensorProto)
_F = _numbers(onnxcore.FunctionProto)
_TYPED_FIELDS = {
    _T[n]: n for n in ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
}
# counted as wire.py counts them: outputs, attributes, metadata, device configurations (10, onnx 1.18+)
_NODE_ENTRIES = frozenset({_N["output"], _N["attribute"], _N["metadata_props"], 10})
_STRING_DATA = _T["string_data"]
_ATTR_TYPES = frozenset(onnxcore.AttributeProto.AttributeType.values())
_GRAPH_TYPE = onnxcore.AttributeProto.GRAPH
_TENSOR_TYPE = onnxcore.AttributeProto.TENSOR
_SPARSE_TYPE = onnxcore.AttributeProto.SPARSE_TENSOR
_CONSTANT_SCALARS = frozenset(
    {"value_float", "value_int", "value_floats", "value_ints", "value_string", "value_strings"}
)

Span = tuple[int, int]  # (start, end) in the file


@dataclass
class TypedField:
    """One typed data field (float_data, ...) as stored: its spans and how they were written."""

    spans: list[Span] = field(default_factory=list)
    packed: bool = True  # every occurrence length-delimited (packed); unpacked: one element per tag
    unpacked: int = 0  # elements written one per tag


@dataclass
class TensorRecord:
    scope: str
    name: str
    origin: str  # initializer | sparse_initializer | constant
    dtype: int = 0
    dims: tuple[int, ...] | None = ()  # signed, as written; None: too many to be a tensor
    data_location: int = 0
    raw: Span | None = None
    typed: dict[str, TypedField] = field(default_factory=dict)
    external: list[tuple[str, str]] = field(default_factory=list)
    node: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.scope, self.name)

    @property
    def is_external(self) -> bool:
        return self.data_location == onnxcore.TensorProto.EXTERNAL


@dataclass
class FileMap:
    tensors: dict[tuple[str, str], TensorRecord]  # the definition that wins, as in the view
    initializer_names: dict[str, list[str]]  # scope -> every initializer name in file order
    size: int


class _Malformed(Exception):
    pass


class _Reader:
    """Bytes of the file through a window refilled with pread, or from a remote file's RangedBuffer (a
    window of one block: a wider one would fetch the weight bytes the walk skips)."""

    def __init__(self, fd: int | RangedBuffer, size: int) -> None:
        self.fd = fd
        self.size = size
        self.start = 0
        self.data = b""

    def fill(self, pos: int, need: int) -> None:
        if pos + need > self.size:
            raise _Malformed(f"truncated at byte {self.size:,}")
        window = WINDOW if isinstance(self.fd, int) else BLOCK - pos % BLOCK  # remote: to the block's end
        want = min(max(window, need), self.size - pos)
        # a remote read that fails raises FetchRefused: the caller names the URL (not a malformed file)
        data = os.pread(self.fd, want, pos) if isinstance(self.fd, int) else self.fd.read(pos, want)
        if len(data) < want:
            raise _Malformed("the file changed while being read")
        self.start, self.data = pos, data

    def byte(self, pos: int) -> int:
        offset = pos - self.start
        if offset < 0 or offset >= len(self.data):
            if pos >= self.size:
                raise _Malformed(f"truncated at byte {pos:,}")
            self.fill(pos, 1)
            offset = 0
        return self.data[offset]

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        # a one-byte varint inside the window (most keys and lengths): no call to byte()
        offset = pos - self.start
        if pos < end and 0 <= offset < len(self.data):
            b = self.data[offset]
            if b < 0x80:
                return b, pos + 1
        result = shift = 0
        while True:
            if pos >= end:
                raise _Malformed(f"truncated varint at byte {pos:,}")
            b = self.byte(pos)
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise _Malformed(f"varint longer than 10 bytes at byte {pos:,}")

    def read(self, start: int, end: int) -> bytes:
        if end - start > MAX_TEXT:  # a limit passed, not bytes that are no protobuf: said as the other limits are
            raise AuditError(
                f"a text of {end - start:,} bytes at byte {start:,}: over the limit of {MAX_TEXT:,} bytes"
                " for a name or an external-data entry"
            )
        offset = start - self.start
        if offset < 0 or end - self.start > len(self.data):
            self.fill(start, end - start)
            offset = 0
        return self.data[offset : offset + end - start]


def _large(spans: list[Span]) -> bool:
    """A node or attribute whose fields count against the structure's (wire.strip_weights counts the same)."""
    return sum(end - start for start, end in spans) > KEEP_BYTES


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


class _Walker:
    def __init__(self, reader: _Reader, tally: Tally, nodes: bool = True) -> None:
        self.r = reader
        self.nodes = nodes  # False: the main graph's nodes and the functions neither walked nor counted
        self.tally = tally  # nodes, inputs and graphs against --max-nodes: the walk stops at the first over
        self.fields = 0
        self.counter = 0  # global node index, in the order load's builder gives it
        self.scopes: list[str] = []
        self.scope_set: set[str] = set()
        self.tensors: dict[tuple[str, str], TensorRecord] = {}
        self.initializer_names: dict[str, list[str]] = {}

    # -- wire level

    def fields_of(
        self, spans: list[Span], depth: int, counted: int | None = None
    ) -> Iterator[tuple[int, int, int, int, int]]:
        """(number, wire type, varint value or value start, value end, field start) over a message
        given as the spans whose concatenation it is. `counted`: each field but those numbered `counted` (nodes,
        node inputs: limited on their own; 0 for none) counts against --max-nodes' structure fields
        (io/budget.py), as wire.strip_weights counts them; None: none counts."""
        if depth > MAX_DEPTH:
            raise _Malformed(f"nested deeper than {MAX_DEPTH} levels")
        r = self.r
        add_fields = self.tally.add_fields
        for start, end in spans:
            pos = start
            while pos < end:
                field_start = pos
                key, pos = r.varint(pos, end)
                self.fields += 1
                if counted is not None and key >> 3 != counted:
                    add_fields(1)
                if self.fields > MAX_FIELDS:
                    raise _Malformed(f"more than {MAX_FIELDS:,} fields")
                number, wire = key >> 3, key & 7
                if number == 0:
                    raise _Malformed(f"invalid field number at byte {field_start:,}")
                if wire == 0:
                    value, pos = r.varint(pos, end)
                    yield number, wire, value, pos, field_start
                    continue
                if wire == 2:
                    length, value_start = r.varint(pos, end)
                    pos = value_start + length
                elif wire == 1:
                    value_start, pos = pos, pos + 8
                elif wire == 5:
                    value_start, pos = pos, pos + 4
                elif wire == 3:
                    value_start, pos = pos, self.skip_group(number, pos, end, depth + 1)
                else:
                    raise _Malformed(f"invalid wire type {wire} at byte {field_start:,}")
                if pos > end:
                    raise _Malformed(f"field runs past the end of its message at byte {field_start:,}")
                yield number, wire, value_start, pos, field_start

    def skip_group(self, number: int, pos: int, end: int, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _Malformed(f"nested deeper than {MAX_DEPTH} levels")
        while pos < end:
            key, pos = self.r.varint(pos, end)
            self.fields += 1
            wire = key & 7
            if wire == 4:
                if key >> 3 != number:
                    raise _Malformed("mismatched end of group")
                return pos
            if wire == 0:
                _, pos = self.r.varint(pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = self.r.varint(pos, end)
                pos += length
            elif wire == 3:
                pos = self.skip_group(key >> 3, pos, end, depth + 1)
            else:
                raise _Malformed(f"invalid wire type {wire}")
        raise _Malformed("group without an end")

    def text(self, start: int, end: int) -> str:
        data = self.r.read(start, end)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return as_text(data)

    # -- messages, in model.build._Builder's order

    def model(self, size: int) -> None:
        graphs: list[Span] = []
        functions: list[list[Span]] = []
        for number, wire, start, end, _ in self.fields_of([(0, size)], 0, 0):
            if wire != 2:
                continue
            if number == _M["graph"]:
                graphs.append((start, end))  # a repeated singular message merges
            elif number == _M["functions"]:
                functions.append([(start, end)])
        self.tally.add_graph()
        self.graph(graphs, MAIN, 1)
        for spans in functions if self.nodes else ():
            self.function(spans)

    def graph(self, spans: list[Span], scope: str, depth: int) -> None:
        if scope in self.scope_set:
            scope = f"{scope}#{len(self.scopes)}"
        self.scopes.append(scope)
        self.scope_set.add(scope)
        inits: list[Span] = []
        sparse: list[Span] = []
        nodes: list[Span] = []
        for number, wire, start, end, _ in self.fields_of(spans, depth, _G["node"]):
            if wire != 2:
                continue
            if number == _G["initializer"]:
                inits.append((start, end))
            elif number == _G["sparse_initializer"]:
                sparse.append((start, end))
            elif number == _G["node"] and self.nodes:
                self.tally.add_nodes(1)  # counted as met: 9M empty nodes stop at the limit, not at the end
                nodes.append((start, end))
        self.tally.add_tensors(len(inits) + len(sparse))  # before a record is made, as model.build counts them
        names = self.initializer_names.setdefault(scope, [])
        for span in inits:
            if span[0] == span[1] and depth < MAX_DEPTH:  # an empty TensorProto (999,980 fit in 2 MB): no walk
                record = TensorRecord(scope, "", "initializer")
            else:
                record = self.tensor([span], scope, "initializer", depth + 1)
            names.append(record.name)
            self.tensors[record.key] = record
        for span in sparse:
            record = self.sparse([span], scope, depth + 1)
            names.append(record.name)
            self.tensors[record.key] = record
        for span in nodes:
            self.node([span], scope, depth + 1)

    def function(self, spans: list[Span]) -> None:
        self.tally.add_graph("graphs and functions")
        name = domain = ""
        nodes: list[Span] = []
        for number, wire, start, end, _ in self.fields_of(spans, 1, _F["node"]):
            if wire != 2:
                continue
            if number == _F["name"]:
                name = self.text(start, end)
            elif number == _F["domain"]:
                domain = self.text(start, end)
            elif number == _F["node"]:
                self.tally.add_nodes(1)
                nodes.append((start, end))
        scope = f"function:{domain}.{name}"
        self.scopes.append(scope)
        self.scope_set.add(scope)
        for span in nodes:
            self.node([span], scope, 2)

    def node(self, spans: list[Span], scope: str, depth: int) -> None:
        index = self.counter
        self.counter += 1
        if self.plain_node(spans):
            return
        name = op_type = domain = ""
        outputs: list[str] = []
        attrs: list[Span] = []
        large = _large(spans)  # every field but inputs counts; of a smaller node, its entries
        for number, wire, start, end, _ in self.fields_of(spans, depth, _N["input"] if large else None):
            if wire != 2:
                continue
            if not large and number in _NODE_ENTRIES:
                self.tally.add_fields(1)
            if number == _N["name"]:
                name = self.text(start, end)
            elif number == _N["op_type"]:
                op_type = self.text(start, end)
            elif number == _N["domain"]:
                domain = self.text(start, end)
            elif number == _N["output"]:
                outputs.append(self.text(start, end))
            elif number == _N["attribute"]:
                attrs.append((start, end))
            elif number == _N["input"]:
                self.tally.add_inputs(1)
        parsed = [self.attribute([span], depth + 1) for span in attrs]
        label = name or f"{op_type}_{index}"
        for attr in parsed:
            subgraphs = [attr.g] if attr.type == _GRAPH_TYPE else attr.graphs
            for k, sub in enumerate(subgraphs):
                suffix = attr.name if len(subgraphs) == 1 else f"{attr.name}[{k}]"
                self.tally.add_graph()
                self.graph(sub, f"{scope}/{label}:{suffix}", depth + 2)
        if op_type == "Constant" and domain in ("", "ai.onnx") and outputs:
            for attr in parsed:
                if attr.name == "value" and attr.type == _TENSOR_TYPE:
                    record = self.tensor(attr.t, scope, "constant", depth + 2, name=outputs[0], node=name)
                    self.tensors[record.key] = record
                    break
                if attr.name == "sparse_value" and attr.type == _SPARSE_TYPE:
                    self.tensors[(scope, outputs[0])] = TensorRecord(scope, outputs[0], "sparse_constant", node=name)
                    break
                if attr.name in _CONSTANT_SCALARS:
                    self.tensors.pop((scope, outputs[0]), None)  # a literal with no bytes to scan
                    break

    def plain_node(self, spans: list[Span]) -> bool:
        """A small node holding no tensor and no subgraph (most of them) needs only counting: protobuf
        parses it in C. Anything else, or bytes protobuf rejects, takes the field-by-field walk."""
        if len(spans) != 1 or spans[0][1] - spans[0][0] > MAX_PLAIN_NODE:
            return False
        try:
            proto = onnxcore.NodeProto.FromString(self.r.read(*spans[0]))
        except Exception:  # DecodeError and friends: the walk reports where the bytes go wrong
            return False
        if proto.op_type == "Constant" or any(a.type == _GRAPH_TYPE or a.graphs for a in proto.attribute):
            return False
        self.fields += len(proto.input) + len(proto.output) + len(proto.attribute) + 3
        self.tally.add_inputs(len(proto.input))
        self.tally.add_fields(len(proto.output) + len(proto.attribute) + len(proto.metadata_props))
        return True

    def attribute(self, spans: list[Span], depth: int) -> _Attr:
        attr = _Attr()
        for number, wire, start, end, _ in self.fields_of(spans, depth, 0 if _large(spans) else None):
            if number == _A["type"] and wire == 0:
                if _signed(start, 32) in _ATTR_TYPES:  # proto2 enum: unknown values are ignored
                    attr.type = _signed(start, 32)
            elif wire != 2:
                continue
            elif number == _A["name"]:
                attr.name = self.text(start, end)
            elif number == _A["g"]:
                attr.g.append((start, end))
            elif number == _A["graphs"]:
                attr.graphs.append([(start, end)])
            elif number == _A["t"]:
                attr.t.append((start, end))
        return attr

    def sparse(self, spans: list[Span], scope: str, depth: int) -> TensorRecord:
        values: list[Span] = []
        for number, wire, start, end, _ in self.fields_of(spans, depth):
            if number == _S["values"] and wire == 2:
                values.append((start, end))
            elif number == _S["dims"] and wire != 2:  # counted as wire.py counts them: 9M were 5 s of this loop
                self.tally.add_fields(1)
            elif number == _S["dims"]:  # packed: the bytes that end a varint, a window at a time
                for at in range(start, end, MAX_PACKED_DIMS):
                    self.tally.add_fields(sum(b < 0x80 for b in self.r.read(at, min(end, at + MAX_PACKED_DIMS))))
        record = self.tensor(values, scope, "sparse_initializer", depth + 1)
        return TensorRecord(scope, record.name, "sparse_initializer", record.dtype, record.dims)

    def tensor(
        self, spans: list[Span], scope: str, origin: str, depth: int, name: str | None = None, node: str | None = None
    ) -> TensorRecord:
        record = TensorRecord(scope, "", origin, node=node)
        dims: list[int] = []
        too_many_dims = False
        add_fields = self.tally.add_fields  # its dims, external-data entries and strings, as wire.py counts them
        for number, wire, start, end, _ in self.fields_of(spans, depth):
            if number == _T["dims"]:
                if wire == 0:
                    add_fields(1)
                    dims.append(_signed(start, 64))
                elif wire == 2 and end - start <= MAX_PACKED_DIMS:
                    pos = start
                    while pos < end:
                        value, pos = self.r.varint(pos, end)
                        add_fields(1)
                        dims.append(_signed(value, 64))
                elif wire == 2:
                    too_many_dims = True
            elif number == _T["data_type"] and wire == 0:
                record.dtype = _signed(start, 32)  # an int32 field: protobuf truncates
            elif number == _T["data_location"] and wire == 0:
                if _signed(start, 32) in (0, 1):
                    record.data_location = _signed(start, 32)
            elif number == _T["name"] and wire == 2:
                record.name = self.text(start, end)
            elif number == _T["raw_data"] and wire == 2:
                record.raw = (start, end)  # the last one wins
            elif number == _T["external_data"] and wire == 2:
                add_fields(1)
                record.external.append(self.entry([(start, end)], depth + 1))
            elif number in _TYPED_FIELDS:
                typed = record.typed.setdefault(_TYPED_FIELDS[number], TypedField())
                if number == _STRING_DATA:
                    add_fields(1)  # a span each: 9M empty strings are 9M spans
                if wire == 2:
                    typed.spans.append((start, end))
                else:
                    typed.packed = False
                    typed.unpacked += 1
        record.dims = None if too_many_dims else tuple(dims)
        if name is not None:
            record.name = name
        return record

    def entry(self, spans: list[Span], depth: int) -> tuple[str, str]:
        key = value = ""
        for number, wire, start, end, _ in self.fields_of(spans, depth):
            if wire == 2 and number == 1:
                key = self.text(start, end)
            elif wire == 2 and number == 2:
                value = self.text(start, end)
        return key, value


@dataclass
class _Attr:
    name: str = ""
    type: int = 0
    g: list[Span] = field(default_factory=list)
    graphs: list[list[Span]] = field(default_factory=list)
    t: list[Span] = field(default_factory=list)


def map_file(fd: int | RangedBuffer, size: int, name: str, max_nodes: int = MAX_NODES, nodes: bool = True) -> FileMap:
    """Walk the model open at `fd` (or at a URL, through its RangedBuffer). Raises AuditError (one line
    naming `name`) for bytes that are not a well-formed protobuf message, or as soon as the graph is over
    `max_nodes` (io/budget.py); a remote read that fails, FetchRefused. `nodes` False: the main graph's
    initializers only, for a caller that already read the file's structure (its nodes neither walked nor counted,
    so neither are subgraphs and functions, nor the tensors of their Constant nodes)."""
    walker = _Walker(_Reader(fd, size), Tally(max_nodes), nodes)
    try:
        walker.model(size)
    except AuditError as exc:  # the graph size or a text refused
        raise AuditError(f"{name}: {exc}") from None
    except _Malformed as exc:
        raise AuditError(f"{name}: not an ONNX model (malformed protobuf: {exc})") from None
    except RecursionError:
        raise AuditError(f"{name}: not an ONNX model (nesting too deep to read)") from None
    return FileMap(walker.tensors, walker.initializer_names, size)
