"""A model's structure read off the protobuf wire format, leaving weight bytes where they lie.

`strip_weights` walks a (memory-mapped) ONNX file field by field and writes a light copy of it: every
message that can hold a tensor (model, graph, node, attribute, function, training info, sparse tensor,
tensor) larger than KEEP_BYTES is walked and rewritten, and so is every graph, function and training info,
and every node or attribute that may hold a graph or a metadata entry no stage reads (NODE_METADATA_KEPT),
whatever its size; everything else is copied verbatim. Doc strings and unread node metadata are left out.
The walk counts nodes, node inputs and graphs as it meets them and stops at the first over --max-nodes
(io/budget.py), before protobuf parses anything. In a
rewritten tensor, raw_data and the typed data fields (float_data, int64_data, ...) beyond KEEP_BYTES are
skipped by their length and never read; the byte count they had is left in a private unknown field, so
`sizes` can still report what the file stored. protobuf then parses the light copy, which holds no
weights, and `model.build.model_view` reads it like any ModelProto, so both readers share one builder.

Pages holding weights are never touched (the copy stays small whatever the file size), external data
files are never opened, and protobuf's 2 GiB message limit applies to the structure alone.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from onnxaudit.errors import AuditError
from onnxaudit.io.budget import MAX_NODES, GraphTooLarge, Tally
from onnxaudit.io.ranged import RangedBuffer

if TYPE_CHECKING:
    from onnxaudit.io.onnxcore import TensorProto

# What the walk reads: the file mapped, its bytes (tests, small inputs), or a remote file by ranges
Buffer = bytes | bytearray | memoryview | mmap.mmap | RangedBuffer

# Data up to this many bytes stays in the copy: small integer tensors keep their values (shape
# constants), and model.infer.infer_value_shapes strips the same size from its inference copy.
KEEP_BYTES = 4096
MAX_DEPTH = 100  # protobuf's own recursion limit; deeper files fail to parse anyway
MAX_FIELDS = 20_000_000  # fields walked, not counting small messages copied whole
MAX_LIGHT_BYTES = 1 << 30  # a structure this large is hostile or beyond what we parse in memory

# One unknown field per rewritten tensor: nonce (so a file cannot forge it), raw_data length + 1
# (0: no raw_data), typed data bytes. Field number is outside every ONNX message's range.
MARK_FIELD = 536_870_901

_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(8)
# value infos and their types, walked (never rewritten) when large, so their fields are counted (a shape's dims)
_VALUE_INFO, _TYPE, _TENSOR_TYPE, _ELEM, _MAP, _SHAPE = range(8, 14)
# messages only ever counted inside (_Writer.inside), whatever their size: a graph's quantization annotations, the
# model's device configurations, a node's, and what these hold
_ANNOTATION, _DEVICE_CONFIG, _NODE_DEVICE, _SHARDING, _INT_LIST, _SHARDED_DIM = range(14, 20)
_COUNTED_ONLY = frozenset({_ANNOTATION, _DEVICE_CONFIG, _NODE_DEVICE, _SHARDING, _INT_LIST, _SHARDED_DIM})

# Length-delimited fields that hold the messages above (field number -> message), per message.
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION, 26: _DEVICE_CONFIG},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE, 11: _VALUE_INFO, 12: _VALUE_INFO, 13: _VALUE_INFO, 14: _ANNOTATION},
    _NODE: {5: _ATTR, 10: _NODE_DEVICE},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE, 14: _TYPE, 15: _TYPE},
    _FUNCTION: {7: _NODE, 11: _ATTR, 12: _VALUE_INFO},  # FunctionProto.node is field 7, attribute_proto 11
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _VALUE_INFO: {2: _TYPE},
    _TYPE: {1: _TENSOR_TYPE, 4: _ELEM, 5: _MAP, 8: _TENSOR_TYPE, 9: _ELEM},  # tensor, sequence, map, sparse, optional
    _TENSOR_TYPE: {2: _SHAPE},
    _ELEM: {1: _TYPE},
    _MAP: {2: _TYPE},
    _SHAPE: {},
}


def _tags(*numbers: int) -> frozenset[int]:
    return frozenset(number << 3 | 2 for number in numbers)


# What a message copied whole holds that protobuf builds an object for from 2 bytes of file, counted against the
# structure's fields (io/budget.FIELDS_PER_NODE) by _Writer.inside before the copy is parsed, per message: (the
# entries of its repeated message and string fields, one each; the messages it holds that may hold more; its
# repeated varint fields, counted one a number, packed or not: a tensor's dims and int32/int64/uint64 data, an
# attribute's ints, a sharding spec's devices and its lists' values). A packed number is 1 byte of file that
# protobuf decodes into 8, in an array it grows by doubling: 18M of an attribute's ints (18 MB) cost 880 MiB, a
# Constant's 1,036 MiB. Nodes and their inputs are limited on their own, graphs always walked (an attribute holding
# one is walked, so never counted here); repeated fixed-width numbers (float and double data, an attribute's
# floats) decode to their own size and are not counted (4.5M floats in 18 MB: 134 MiB). A test holds this against
# onnx's own descriptors: every repeated message or string field is an entry, every repeated varint field a
# number, every message a child.
_INSIDE: dict[int, tuple[frozenset[int], dict[int, int], frozenset[int]]] = {
    _VALUE_INFO: (_tags(4), {2 << 3 | 2: _TYPE}, frozenset()),
    _TYPE: (
        frozenset(),
        {1 << 3 | 2: _TENSOR_TYPE, 4 << 3 | 2: _ELEM, 5 << 3 | 2: _MAP, 8 << 3 | 2: _TENSOR_TYPE, 9 << 3 | 2: _ELEM},
        frozenset(),
    ),  # fmt: skip
    _TENSOR_TYPE: (frozenset(), {2 << 3 | 2: _SHAPE}, frozenset()),
    _ELEM: (frozenset(), {1 << 3 | 2: _TYPE}, frozenset()),
    _MAP: (frozenset(), {2 << 3 | 2: _TYPE}, frozenset()),
    _SHAPE: (_tags(1), {}, frozenset()),
    # string_data, external_data, metadata_props; dims, int32_data, int64_data, uint64_data
    _TENSOR: (_tags(6, 13, 16), {}, frozenset({1, 5, 7, 11})),
    _SPARSE: (frozenset(), {1 << 3 | 2: _TENSOR, 2 << 3 | 2: _TENSOR}, frozenset({3})),
    _ATTR: (
        _tags(9, 10, 11, 15, 23),
        {
            5 << 3 | 2: _TENSOR,
            10 << 3 | 2: _TENSOR,
            14 << 3 | 2: _TYPE,
            15 << 3 | 2: _TYPE,
            22 << 3 | 2: _SPARSE,
            23 << 3 | 2: _SPARSE,
        },
        frozenset({8}),  # ints
    ),  # fmt: skip
    _ANNOTATION: (_tags(2), {}, frozenset()),
    _DEVICE_CONFIG: (_tags(3), {}, frozenset()),
    _NODE_DEVICE: (_tags(2), {2 << 3 | 2: _SHARDING}, frozenset()),
    _SHARDING: (_tags(3, 4), {3 << 3 | 2: _INT_LIST, 4 << 3 | 2: _SHARDED_DIM}, frozenset({2})),  # device
    _INT_LIST: (frozenset(), {}, frozenset({2})),  # value
    _SHARDED_DIM: (_tags(2), {}, frozenset()),
}
# The same numbers by their tags, packed (length-delimited) and one a tag (varint), per message
_PACKED_KEYS = {kind: frozenset(n << 3 | 2 for n in numbers) for kind, (_, _, numbers) in _INSIDE.items()}
_NUMBER_KEYS = {kind: frozenset(n << 3 for n in numbers) for kind, (_, _, numbers) in _INSIDE.items()}
# Fields of one message past this many that are neither entries nor messages held: repeats of a singular field
# (protobuf keeps the last) or numbers written one per tag. No ONNX message has this many singular fields, so a
# file's own messages never reach it; past it, each counts as an entry would.
_MOST_PLAIN_FIELDS = 32
# Types this small are read once per distinct bytes (_Writer.known_type), up to this many of them.
_KNOWN_TYPE_BYTES, _KNOWN_TYPES = 64, 4096
# doc_string fields: nothing downstream reads them, so rewritten messages drop them.
_DOC_STRING = {_MODEL: 6, _GRAPH: 10, _NODE: 6, _ATTR: 13, _TENSOR: 12, _FUNCTION: 8}
# Dropped too: a training info's initialization and algorithm graphs (only its update_binding is read), so
# protobuf never parses their nodes.
_DROPPED = {kind: {number} for kind, number in _DOC_STRING.items()} | {_TRAINING: {1, 2}}
# The same by their tags as read off the wire (field number << 3 | 2), so the walk compares tags
# without taking them apart.
_CHILD_KEYS = {kind: {number << 3 | 2: child for number, child in fields.items()} for kind, fields in _CHILDREN.items()}
_DROP_KEYS = {kind: frozenset(number << 3 | 2 for number in numbers) for kind, numbers in _DROPPED.items()}
_MAX_KEY = 0x1FFFFFFF << 3 | 7  # the largest field number, with any wire type

# What the walk counts against --max-nodes (io/budget.py), by the tag it meets in a message: a graph's and
# a function's nodes, a node's inputs. Every graph, function and node is walked whatever its size, and so is
# every attribute that may hold a graph, so no node is left uncounted inside a message copied whole.
_COUNTED_KEY = {_GRAPH: 1 << 3 | 2, _FUNCTION: 7 << 3 | 2, _NODE: 1 << 3 | 2}
_WALKED_WHOLE = frozenset({_GRAPH, _FUNCTION, _TRAINING})
# Every field of these but nodes and inputs is counted against the structure's fields (io/budget.FIELDS_PER_NODE),
# and of the other messages but tensors the fields of those over KEEP_BYTES; of a smaller node or attribute, its
# entries: a node's outputs (2), attributes (5), metadata (9) and device configurations (10), an attribute's
# strings (9), tensors (10), graphs (11), type protos (15) and sparse tensors (23); of a message copied whole, what
# _INSIDE names. datamap counts a part of the same.
_FIELDS_COUNTED = frozenset({_MODEL, _GRAPH, _FUNCTION, _TRAINING})
_FIELDS_COUNTED_LARGE = frozenset({_NODE, _ATTR, _VALUE_INFO, _TYPE, _TENSOR_TYPE, _ELEM, _MAP, _SHAPE})
_ENTRY_KEYS = {
    _NODE: frozenset(number << 3 | 2 for number in (2, 5, 9, 10)),
    _ATTR: frozenset(number << 3 | 2 for number in (9, 10, 11, 15, 23)),
}
_UNCOUNTED = 1 << 62

# A node's metadata_props entries the light copy keeps, by key: the only ones any stage reads (all of them in
# model/metadata.node_metadata; a graph's and a value's metadata are copied whole: graph_signature reads them).
# Every other entry of a node's metadata_props is dropped in the walk, so the parent neither receives nor parses
# it: torch.onnx (dynamo) writes each node's stack trace, class hierarchy and namespace there, 62 MB of a
# 40k-node Llama export's 85 MB.
# tests/test_wire.py proves no dropped key is read (every reader's output the same with and without them).
NODE_METADATA_KEPT = (
    "pkg.torch.onnx.name_scopes",  # dynamo's module path of each node: layer names and grouping
    "pkg.torch.onnx.fx_node",  # dynamo's FX call: parameters vs buffers, norms without affine or bias (_FX_NODE_READ)
    "pkg.onnxscript.rewriter.rule_name",  # onnxscript's rewrite rules: a BatchNormalization fused into a Conv/Gemm
)
_KEPT_METADATA = frozenset(key.encode() for key in NODE_METADATA_KEPT)
_KEPT_LENGTHS = frozenset(map(len, _KEPT_METADATA))
# An FX call is read for nothing but these (model/metadata.node_metadata: a parameter, a buffer, a norm passing None):
# one without any says nothing to any stage, and is dropped too (34.6k of a 40k-node Llama export's 39.4k).
_FX_NODE = NODE_METADATA_KEPT[1].encode()
_FX_NODE_READ = re.compile(rb"%[pb]_|None")
_NODE_METADATA_KEY = 9 << 3 | 2
_GRAPH_METADATA_KEY = 16 << 3 | 2  # GraphProto.metadata_props: torch's graph signature (model/metadata)
_ENTRY_KEY, _ENTRY_VALUE = 1 << 3 | 2, 2 << 3 | 2  # StringStringEntryProto's key and value
_NODE_FIELD_KEY = _COUNTED_KEY[_GRAPH]  # GraphProto.node
_NODE_INPUT_KEY, _NODE_ATTRIBUTE_KEY, _NODE_DOC_KEY = 1 << 3 | 2, 5 << 3 | 2, _DOC_STRING[_NODE] << 3 | 2
_NODE_ENTRIES = _ENTRY_KEYS[_NODE]
# An attribute without a byte that can begin the tag of a graph (fields 6, 11) or of another entry (9, 10, 15, 23)
# holds none (7 low bits of the first byte, so an over-long tag too), found by a search in C; one with such a
# byte is walked, so its graphs are walked and its entries counted.
_ATTR_ENTRY_BYTE = re.compile(rb"[\x32\xb2\x5a\xda\x4a\xca\x52\xd2\x7a\xfa\xba]")
# Such a byte is mostly a value's (a Constant's data, an int of 50): the attribute's tags are then read one by one
# (_tags_plain), and only one holding a field of these numbers (any wire type), or anything unusual, is walked.
_ATTR_WALKED_NUMBERS = frozenset({6, 9, 10, 11, 15, 23})
_PACKED_FLOATS, _PACKED_INTS = 7 << 3 | 2, 8 << 3 | 2  # an attribute's floats and ints, packed
# An attribute copied whole holding a byte that can begin the tag of a tensor (t, 5), a type (tp, 14) or ints (8,
# packed or one a tag) is counted inside (_INSIDE); one without holds none of them.
_ATTR_INSIDE_BYTE = re.compile(rb"[\x2a\xaa\x72\xf2\x42\xc2\x40\xc0]")
_NODE_DEVICE_KEY = 10 << 3 | 2
# What plain_node does with a node's field, by its tag's first byte: walk the node (_WALK: a tag over one byte or of
# another wire type than length-delimited), count an input or an entry (_ENTRY_KEYS[_NODE]: outputs), read a metadata
# entry, an attribute or a device configuration, leave out a doc string, or nothing more (_PLAIN: name, op_type,
# domain, overload, fields of no NodeProto number). One look-up a field: a node of 200k has ~6 fields.
_WALK, _PLAIN, _INPUT, _ENTRY, _METADATA, _ATTRIBUTE, _DEVICE, _DOC = range(8)
_NODE_FIELD_ACTIONS = tuple(
    _WALK if key >= 0x80 or key & 7 != 2
    else _INPUT if key == _NODE_INPUT_KEY
    else _METADATA if key == _NODE_METADATA_KEY
    else _ATTRIBUTE if key == _NODE_ATTRIBUTE_KEY
    else _DEVICE if key == _NODE_DEVICE_KEY
    else _ENTRY if key in _NODE_ENTRIES
    else _DOC if key == _NODE_DOC_KEY
    else _PLAIN
    for key in range(256)
)  # fmt: skip
# Singular graph fields, which protobuf merges when a file repeats them: one graph, however often written.
_SINGULAR_GRAPH_KEY = {_MODEL: 7 << 3 | 2, _ATTR: 6 << 3 | 2}

_RAW_DATA = 9
# The streamed main graph's initializers (more than MAX_INFER_NODES nodes: shape inference does not run, and the view
# reads only the byte count of a floating-point tensor's data): one of just dims, a float data_type, a name and a
# raw_data of at least _MARKED_RAW_BYTES is copied without its raw_data, its size in a doc_string (_Writer.float_raw):
# 56 MB of the 200k-node benchmark's 58 MB of initializers never go through the pipe nor protobuf.
_INITIALIZER_KEY = 5 << 3 | 2
_INITIALIZER_TAG = bytes((_INITIALIZER_KEY,))
_DIM_KEY, _PACKED_DIMS_KEY, _DATA_TYPE_KEY, _TENSOR_NAME_KEY, _RAW_DATA_KEY = (
    1 << 3,
    1 << 3 | 2,
    2 << 3,
    8 << 3 | 2,
    9 << 3 | 2,
)
_DOC_MARK_TAG = bytes((12 << 3 | 2,))  # TensorProto.doc_string
_MARKED_RAW_BYTES = 256
_FLOAT_DTYPES = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
_TENSOR_DIMS, _STRING_DATA = 1, 6
_TENSOR_ENTRIES = frozenset({13, 16})  # external_data, metadata_props
# TensorProto typed data: field -> (element bytes, wire type of one unpacked element, packed as varints).
# string_data (6) counts the length of each string, as len(b) does.
_TYPED: dict[int, tuple[int, int, bool]] = {
    4: (4, 5, False),  # float_data, fixed32
    5: (4, 0, True),  # int32_data
    6: (0, 2, False),  # string_data
    7: (8, 0, True),  # int64_data
    10: (8, 1, False),  # double_data, fixed64
    11: (8, 0, True),  # uint64_data
}


def _varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _Malformed("truncated varint", pos)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes", pos)


def _encode_varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]
encode_varint = _encode_varint  # for the reader that puts streamed nodes back (model/read.py)
_MARK_TAG = _encode_varint(MARK_FIELD << 3 | 2)


class _Malformed(Exception):
    def __init__(self, what: str, pos: int) -> None:
        super().__init__(f"{what} at byte {pos:,}")


_CONTINUING = bytes(range(0x80, 0x100))  # bytes a varint goes on after


def _count_varints(buf: Buffer, start: int, end: int) -> int:
    """Elements of a packed varint field: bytes that end a varint. Large fields are scanned in
    bounded chunks (numpy, no copy of the field)."""
    if end == start:
        return 0
    if buf[end - 1] >= 0x80:
        raise _Malformed("packed field ends inside a varint", end)
    if end - start <= 1 << 16 or isinstance(buf, RangedBuffer):
        return sum(  # the bytes under 0x80, counted in C: the rest deleted
            len(bytes(buf[chunk : min(end, chunk + (1 << 16))]).translate(None, _CONTINUING))
            for chunk in range(start, end, 1 << 16)
        )
    import numpy as np

    count = 0
    for chunk in range(start, end, 1 << 24):
        view = np.frombuffer(buf, dtype=np.uint8, count=min(1 << 24, end - chunk), offset=chunk)
        count += int(np.count_nonzero(view < 0x80))
        del view
    return count


@dataclass
class LightModel:
    """The rewritten ModelProto bytes and how to read the byte counts left behind in it."""

    data: bytes | memoryview  # a view into the buffer the strip child's answer arrived in (model/read.py)
    nonce: bytes
    stripped_tensors: int = 0
    stripped_bytes: int = 0
    # whether the copy holds a node's metadata entry or a graph's metadata_props, where torch's module scopes and
    # graph signature are read (model/metadata): False spares the search for their keys' prefix in it
    metadata: bool = True
    marked: int = 0  # tensors copied without their raw_data, its size in their doc_string (_Writer.float_raw)

    def __post_init__(self) -> None:
        self.mark = self.nonce.hex()  # what a marked tensor's doc_string begins with: made once, not per tensor

    def sizes(self, tensor: TensorProto) -> tuple[int, int] | None:
        """(stored bytes, raw_data bytes) of a rewritten tensor as the file held them, or None when
        the tensor in the copy is complete and protobuf's own lengths are the truth."""
        if self.marked:
            doc = tensor.doc_string
            if doc[:16] == self.mark:  # str: the mark is ASCII (a file's own doc string may be bytes)
                left_out = int(doc[16:])
                return left_out, left_out
        if not self.stripped_tensors:
            return None  # no tensor lost data, so none carries a mark: skip the look
        if tensor.raw_data:
            return None  # kept raw_data is the file's own (a stripped one is left empty)
        from google.protobuf.unknown_fields import UnknownFieldSet

        raw: int | None = None
        typed = 0
        found = False
        unknown = UnknownFieldSet(tensor)
        for index in range(len(unknown)):  # indexed: the stub declares no __iter__
            item = unknown[index]
            if item.field_number != MARK_FIELD or item.wire_type != 2 or item.data[:8] != self.nonce:
                continue
            found = True
            raw_plus_one, pos = _varint(item.data, 8, len(item.data))
            typed_here, _ = _varint(item.data, pos, len(item.data))
            if raw_plus_one:
                raw = raw_plus_one - 1  # last raw_data wins, as in protobuf
            typed += typed_here  # repeated fields concatenate
        if not found:
            return None
        return (raw if raw is not None else typed), max(raw or 0, typed)


class NodeStream:
    """Where strip_weights_streamed sends the main graph's nodes and initializers while it walks the rest, when it has
    more than `least` nodes (counted first, by their tags): every `every` of them, as `send(nonce, parts)` (the parts
    joined: their fields as a GraphProto writes them); those after the last send stay with the walk's answer. The
    initializers go too so that the reader builds their tensors while the walk goes on through the rest of them."""

    def __init__(self, send: Callable[[bytes, list[bytes | memoryview]], None], least: int, every: int) -> None:
        self.send, self.least, self.every = send, least, every
        self.walked_nodes, self.next = 0, every
        self.decided: bool | None = None  # once, at the main graph's first field: a graph written twice is merged
        # whether the nodes sent (or, after the walk, those after the last send) may hold metadata any stage reads:
        # a kept entry was walked since the previous send (LightModel.metadata's, for these nodes)
        self.metadata = True
        # whether a tensor among those sent lost bytes to the walk's unknown-field mark (LightModel.stripped_tensors)
        self.stripped = True

    def streams(self, buf: Buffer, start: int, end: int) -> bool:
        """Whether the main graph at `start`:`end` (its first occurrence decides) has over `least` nodes. Its
        fields are stepped over by their tags and lengths; anything unusual is left to the walk, unstreamed."""
        if self.decided is None:
            nodes, pos = 0, start
            try:
                while pos < end and nodes <= self.least:
                    key, pos = _varint(buf, pos, end)
                    if key & 7 != 2:
                        break
                    length, pos = _varint(buf, pos, end)
                    pos += length
                    nodes += key == _NODE_FIELD_KEY
            except _Malformed:
                pass
            self.decided = nodes > self.least
        return self.decided

    def walked(self) -> bool:
        """Count one more node walked; whether the nodes so far go now."""
        self.walked_nodes += 1
        if self.walked_nodes < self.next:
            return False
        self.next = self.walked_nodes + self.every
        return True


class _Writer:
    """Walks messages and appends the light copy: verbatim runs of the source plus rewritten parts."""

    def __init__(self, buf: Buffer, nonce: bytes, tally: Tally) -> None:
        self.buf = buf
        self.tally = tally
        # slices of the parts: views of a local buffer, bytes fetched from a remote one
        self.view: memoryview | RangedBuffer = buf if isinstance(buf, RangedBuffer) else memoryview(buf)
        self.nonce = nonce
        self.out: list[bytes | memoryview] = []
        self.run_start = -1
        self.run_end = -1
        self.size = 0
        self.fields = 0
        self.stripped_tensors = 0
        self.stripped_bytes = 0
        self.metadata = False  # a node's metadata entry kept, or a graph's metadata_props (LightModel.metadata)
        self.chunk_metadata = False  # the same since the last send (NodeStream.metadata)
        self.sent_stripped = 0  # self.stripped_tensors at the last send (NodeStream.stripped)
        self.marked = 0  # tensors whose raw_data the walk left out, their size in their doc_string (float_raw)
        self.nonce_hex = nonce.hex().encode()
        self.known_types: dict[bytes, tuple[int, int]] = {}  # a type's bytes -> what inside() found, fields read
        # The main graph's nodes, written to a list of their own when they are sent on as they are walked (NodeStream)
        self.stream: NodeStream | None = None
        self.nodes: list[bytes | memoryview] = []
        self.other: list[bytes | memoryview] = self.nodes  # the list not being written to
        self.diverted = 0  # bytes written to self.nodes: not in the main graph's length
        self.mark = 0  # self.size when the node list was last switched to or sent

    # -- output

    def clear(self) -> None:
        """Drop every part (views into the buffer among them), so that it can be closed."""
        for parts in (self.out, self.other, self.nodes):
            parts.clear()

    def copy(self, start: int, end: int) -> None:
        if start == self.run_end:
            self.run_end = end
        else:
            self.flush()
            self.run_start, self.run_end = start, end
        self.size += end - start

    def emit(self, data: bytes) -> None:
        self.flush()
        self.out.append(data)
        self.size += len(data)

    def flush(self) -> None:
        if self.run_end > self.run_start:
            self.out.append(self.view[self.run_start : self.run_end])
        self.run_start = self.run_end = -1

    # -- walking

    def skip_group(self, number: int, pos: int, end: int, depth: int) -> int:
        """Position after the end-group tag matching `number` (groups are legal, if unused by ONNX)."""
        buf = self.buf
        while pos < end:
            key, pos = _varint(buf, pos, end)
            self.count_field(pos)
            pos = self.skip_value(key, pos, end, depth + 1)
            if key & 7 == 4:
                if key >> 3 != number:
                    raise _Malformed("mismatched end of group", pos)
                return pos
        raise _Malformed("group without an end", pos)

    def skip_value(self, key: int, pos: int, end: int, depth: int) -> int:
        wire_type = key & 7
        if key >> 3 == 0 or key >> 3 > 0x1FFFFFFF:
            raise _Malformed("invalid field number", pos)
        if wire_type == 0:
            _, pos = _varint(self.buf, pos, end)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = _varint(self.buf, pos, end)
            pos += length
        elif wire_type == 5:
            pos += 4
        elif wire_type == 3:
            if depth > MAX_DEPTH:
                raise _Malformed(f"nested deeper than {MAX_DEPTH} levels", pos)
            pos = self.skip_group(key >> 3, pos, end, depth)
        elif wire_type == 4:
            return pos  # the caller checks it closes its group
        else:
            raise _Malformed(f"invalid wire type {wire_type}", pos)
        if pos > end:
            raise _Malformed("field runs past the end of its message", end)
        return pos

    def count_field(self, pos: int) -> None:
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise _Malformed(f"more than {MAX_FIELDS:,} fields", pos)

    def message(self, kind: int, start: int, end: int, depth: int, new_graph: bool = True) -> None:
        if depth > MAX_DEPTH:
            raise _Malformed(f"nested deeper than {MAX_DEPTH} levels", start)
        if kind == _TENSOR:
            self.tensor(start, end)
            return
        if kind == _GRAPH and new_graph:
            self.tally.add_graph()
        elif kind == _FUNCTION:
            self.tally.add_graph("graphs and functions")
        children = _CHILD_KEYS[kind]
        dropped = _DROP_KEYS.get(kind, frozenset())
        counted_key = _COUNTED_KEY.get(kind, -1)
        node_key = counted_key if kind == _GRAPH or kind == _FUNCTION else -1
        metadata_key = _NODE_METADATA_KEY if kind == _NODE else -1
        kept_metadata_key = metadata_key if kind == _NODE else _GRAPH_METADATA_KEY if kind == _GRAPH else -1
        counted, room = 0, self.room(kind)
        singular_key, singular_seen = _SINGULAR_GRAPH_KEY.get(kind, -1), False
        large = end - start > KEEP_BYTES
        only = None if large else _ENTRY_KEYS.get(kind)  # a small node or attribute: its entries only
        counts_fields = kind in _FIELDS_COUNTED or only is not None or (large and kind in _FIELDS_COUNTED_LARGE)
        fields_room = self.tally.max_fields - self.tally.fields if counts_fields else _UNCOUNTED
        # numbers (_INSIDE): packed ones counted here; one a tag too where fields are not all counted
        packed_keys = _PACKED_KEYS.get(kind, frozenset())
        number_keys = _NUMBER_KEYS.get(kind, frozenset()) if only is not None or not counts_fields else frozenset()
        buf = self.buf
        pos = run = start  # run: where the verbatim bytes not yet copied begin
        fields = structural = fields_added = 0
        diverting = kind == _GRAPH and depth == 1 and self.stream is not None and self.stream.streams(buf, start, end)
        in_nodes = False
        # Most fields are copied as they are: the loop only finds where each ends, and copies a
        # whole run of them at once (200k nodes of a graph: one copy, not 200k).
        while pos < end:
            field_start = pos
            key = buf[pos]  # most tags and lengths are one byte: read those inline
            pos += 1
            if key >= 0x80:
                key, pos = _varint(buf, pos - 1, end)
            tag_end = pos
            fields += 1
            # to the node list and back, between fields: the main graph's nodes and initializers go there
            if diverting and (key == counted_key or key == _INITIALIZER_KEY) != in_nodes:
                run = self.switch(run, field_start)
                in_nodes = not in_nodes
            if key != counted_key if only is None else key in only:  # nodes and inputs have limits of their own
                structural += 1
                if structural > fields_room:
                    self.tally.add_fields(structural - fields_added)  # raises: over --max-nodes' structure fields
            if key & 7 != 2:
                if key & 7 == 4:
                    raise _Malformed("end of group outside a group", pos)
                pos = self.skip_value(key, pos, end, depth)
                if key in number_keys:
                    self.tally.add_fields(1)  # a large sparse tensor's dims, as _Writer.inside counts them
                    fields_room -= 1
                continue
            if pos >= end:
                raise _Malformed("truncated length", pos)
            length = buf[pos]
            pos += 1
            if length >= 0x80:  # two bytes inline too (a node of 128 B to 16 KiB)
                if pos < end and buf[pos] < 0x80:
                    length = (length & 0x7F) | (buf[pos] << 7)
                    pos += 1
                else:
                    length, pos = _varint(buf, pos - 1, end)
            value_end = pos + length
            if value_end > end:
                raise _Malformed("field runs past the end of its message", field_start)
            if key < 8 or key > _MAX_KEY:
                raise _Malformed("invalid field number", field_start)
            if key == counted_key:
                counted += 1
                if counted > room:
                    self.count(kind, counted)  # raises: over --max-nodes, before anything is parsed
                # a graph's or function's plain node (plain_parts, the most common field of all): copied here
                if key == node_key and length <= KEEP_BYTES and (drops := self.plain_node(pos, value_end)) is not None:
                    if drops:
                        run = self.copy_without(run, tag_end, pos, value_end, drops)
                    pos = value_end
                    if in_nodes and self.stream.walked():  # type: ignore[union-attr]  # in_nodes: a stream
                        run = self.send(run, pos)
                    continue
            elif key == _INITIALIZER_KEY and diverting:  # streamed: counted here, as the reader would count them all
                self.tally.add_tensors(1)  # before it builds one (StreamedMain.feed builds them as they come)
            if key in dropped or (key == metadata_key and _unread_entry(buf, pos, value_end)):
                self.copy(run, field_start)
                run = value_end
            elif key not in children:
                if key == kept_metadata_key:
                    self.metadata = self.chunk_metadata = True
                if key in packed_keys:  # a large attribute's ints, sparse tensor's dims
                    numbers = _count_varints(buf, pos, value_end)
                    self.tally.add_fields(numbers)
                    fields_room -= numbers
            elif not length and children[key] not in _WALKED_WHOLE and children[key] != _NODE and depth < MAX_DEPTH:
                pass  # an empty child, copied as it is: nothing inside to count (999,980 empty initializers in 2 MB)
            elif (
                diverting
                and key == _INITIALIZER_KEY
                and length <= KEEP_BYTES
                and (raw := self.float_raw(pos, value_end)) is not None
            ):  # the streamed main graph's float initializer: copied without its raw_data, as inside() counts it
                if raw[3]:
                    self.tally.add_fields(raw[3])
                    fields_room -= raw[3]
                self.copy(run, field_start)
                body = bytes(buf[pos : raw[0]]) + bytes(buf[raw[1] : value_end]) + self.doc_mark(raw[2])  # small
                self.emit(_INITIALIZER_TAG + _encode_varint(len(body)) + body)
                run = value_end
            elif (drops := self.plain_parts(children[key], length, pos, value_end)) is not None:
                # a child copied (whole, or without what plain_parts leaves out): its entries counted now, so a
                # bomb of them stops here (a plain node's were, by plain_parts)
                found = self.inside(children[key], pos, value_end, depth + 1) if children[key] != _NODE else 0
                if found:
                    self.tally.add_fields(found)
                    fields_room -= found
                if drops:
                    run = self.copy_without(run, tag_end, pos, value_end, drops)
            else:
                self.count(kind, counted)
                if counts_fields:
                    self.tally.add_fields(structural - fields_added)
                    fields_added = structural
                self.copy(run, tag_end)  # the tag as it was; the length changes
                self.flush()
                slot = len(self.out)
                self.out.append(b"")
                before = self.size - self.diverted
                merged = key == singular_key and singular_seen
                singular_seen = singular_seen or key == singular_key
                self.message(children[key], pos, value_end, depth + 1, not merged)
                self.flush()
                prefix = _encode_varint(self.size - self.diverted - before)
                self.out[slot] = prefix
                self.size += len(prefix)
                run = value_end
                counted, room = 0, self.room(kind)
                if counts_fields:
                    fields_room = structural + self.tally.max_fields - self.tally.fields
            pos = value_end
            if in_nodes and self.stream.walked():  # type: ignore[union-attr]  # in_nodes: a stream
                run = self.send(run, pos)
        self.count(kind, counted)
        if counts_fields:
            self.tally.add_fields(structural - fields_added)
        if in_nodes:
            run = self.switch(run, pos)
        self.copy(run, pos)
        self.fields += fields
        if self.fields > MAX_FIELDS:
            raise _Malformed(f"more than {MAX_FIELDS:,} fields", pos)

    def switch(self, run: int, pos: int) -> int:
        """Write the verbatim run up to `pos` to the list being written, and write to the other one from here
        (the main graph's nodes, or the rest of the copy)."""
        self.copy(run, pos)
        self.flush()
        if self.out is self.nodes:
            self.diverted += self.size - self.mark
        else:
            self.mark = self.size
        self.out, self.other = self.other, self.out
        return pos

    def send(self, run: int, pos: int) -> int:
        """Hand the main graph's nodes walked so far (up to `pos`) to the stream, and start a new list of them."""
        self.copy(run, pos)
        self.flush()
        self.diverted += self.size - self.mark
        self.mark = self.size
        self.stream.metadata, self.chunk_metadata = self.chunk_metadata, False  # type: ignore[union-attr]
        self.stream.stripped = self.stripped_tensors != self.sent_stripped  # type: ignore[union-attr]
        self.sent_stripped = self.stripped_tensors
        self.stream.send(self.nonce, self.nodes)  # type: ignore[union-attr]  # sent only with a stream
        self.nodes = self.out = []
        return pos

    def plain_parts(self, kind: int, length: int, start: int, end: int) -> list[tuple[int, int]] | None:
        """None for a child message to walk rather than copy: one that may hold weight bytes past KEEP_BYTES,
        every graph, function, training info and node (their nodes, inputs and entries are counted, training
        graphs dropped) but a plain one (plain_node), and an attribute that may hold a graph or entries. Else what
        to leave out of it as it is copied (plain_node): mostly nothing."""
        if kind in _COUNTED_ONLY:
            return []  # counted inside, never walked
        if length > KEEP_BYTES or kind in _WALKED_WHOLE:
            return None
        if kind == _NODE:
            return self.plain_node(start, end)
        return None if kind == _ATTR and self.attribute_has_entries(start, end) else []

    def copy_without(self, run: int, tag_end: int, start: int, end: int, drops: list[tuple[int, int]]) -> int:
        """Copy a child message from `start` to `end` but the `drops` spans (in order), after the verbatim run
        up to its tag; its length changes. Where the next run begins."""
        self.copy(run, tag_end)
        self.flush()
        out, view = self.out, self.view
        slot = len(out)
        out.append(b"")  # the new length, once the kept parts are known
        kept = 0
        for begin, stop in drops:
            if begin > start:
                out.append(view[start:begin])
                kept += begin - start
            start = stop
        kept += end - start
        prefix = _encode_varint(kept)
        out[slot] = prefix
        self.size += len(prefix) + kept
        self.run_start, self.run_end = start, end  # the rest stays a run, for what follows to join
        return end

    def float_raw(self, start: int, end: int) -> tuple[int, int, int, int] | None:
        """For a tensor at `start`:`end` holding nothing but dims (at most 16, one a tag), a floating-point data_type,
        a name and one raw_data of at least _MARKED_RAW_BYTES, each with a tag of one byte and a length or value of
        at most two: the raw_data field's span, its bytes, and the dims (what inside() would count, as it adds the
        fields to self.fields). No reader of the view's initializers needs those bytes, only their count
        (LightModel.sizes, from doc_mark). None for any other tensor (nothing counted): inside() reads it as before."""
        buf = self.buf
        pos = start
        raw: tuple[int, int, int] | None = None
        dtype = dims = plain = 0
        while pos < end:
            key = buf[pos]
            if pos + 1 >= end:
                return None
            number = buf[pos + 1]  # a varint's value or a length, of one or two bytes
            if number < 0x80:
                value = pos + 2
            elif pos + 2 < end and buf[pos + 2] < 0x80:
                number, value = (number & 0x7F) | (buf[pos + 2] << 7), pos + 3
            else:
                return None
            if key == _DIM_KEY:
                dims += 1
                pos = value
                continue
            plain += 1
            if key == _DATA_TYPE_KEY:
                dtype, pos = number, value
            elif key == _TENSOR_NAME_KEY:
                pos = value + number
            elif key == _RAW_DATA_KEY and raw is None:  # written twice: protobuf keeps the last; left to inside()
                raw = (pos, value + number, number)
                pos = value + number
            else:
                return None
        if pos != end or raw is None or raw[2] < _MARKED_RAW_BYTES or dtype not in _FLOAT_DTYPES:
            return None
        if dims > 16 or plain > 8:  # inside() would count no plain field past _MOST_PLAIN_FIELDS either
            return None
        self.fields += dims + plain
        return raw[0], raw[1], raw[2], dims

    def doc_mark(self, raw_bytes: int) -> bytes:
        """A tensor's doc_string saying how many raw_data bytes the walk left out of it (float_raw): the walk's
        nonce in hex, then the count (LightModel.sizes reads it)."""
        self.marked += 1
        text = b"%s%d" % (self.nonce_hex, raw_bytes)
        return _DOC_MARK_TAG + _ONE_BYTE[len(text)] + text  # 16 + at most 20 digits: one byte of length

    def attribute_has_entries(self, start: int, end: int) -> bool:
        buf = self.buf
        if isinstance(buf, RangedBuffer):
            data = buf[start:end]
            return _ATTR_ENTRY_BYTE.search(data) is not None and not _tags_plain(data, 0, len(data))
        return _ATTR_ENTRY_BYTE.search(buf, start, end) is not None and not _tags_plain(buf, start, end)

    def attribute_holds_inside(self, start: int, end: int) -> bool:
        buf = self.buf
        if isinstance(buf, RangedBuffer):
            return _ATTR_INSIDE_BYTE.search(buf[start:end]) is not None
        return _ATTR_INSIDE_BYTE.search(buf, start, end) is not None

    def inside(self, kind: int, start: int, end: int, depth: int) -> int:
        """What a message copied whole holds that counts against the structure's fields (_INSIDE): its entries,
        dims and the same in the messages it holds, and its plain fields past _MOST_PLAIN_FIELDS. Reads tags and
        lengths only; rejects what protobuf would (a bad field number or wire type, a field past its end)."""
        if depth > MAX_DEPTH:
            raise _Malformed(f"nested deeper than {MAX_DEPTH} levels", start)
        entry_keys, held, _ = _INSIDE[kind]
        packed_keys, number_keys = _PACKED_KEYS[kind], _NUMBER_KEYS[kind]
        buf = self.buf
        pos = start
        found = plain = 0
        room = self.tally.max_fields - self.tally.fields + _MOST_PLAIN_FIELDS
        while pos < end:
            if found + plain > room:  # over the limit already: stop before the rest is read
                self.tally.add_fields(found + max(0, plain - _MOST_PLAIN_FIELDS))
            field_start = pos
            key = buf[pos]  # tags, varints and lengths of one byte read inline: most of them
            if 8 <= key < 0x80:
                pos += 1
            else:
                key, pos = _varint(buf, pos, end)
                if key >> 3 == 0 or key > _MAX_KEY:
                    raise _Malformed("invalid field number", field_start)
            wire_type = key & 7
            if wire_type == 0 and pos < end and buf[pos] < 0x80:
                pos += 1
                if key in number_keys:
                    found += 1
                else:
                    plain += 1
                continue
            if wire_type != 2:
                if wire_type == 4:
                    raise _Malformed("end of group outside a group", pos)
                pos = self.skip_value(key, pos, end, depth)
                found, plain = (found + 1, plain) if key in number_keys else (found, plain + 1)
                continue
            if pos >= end:
                raise _Malformed("truncated length", pos)
            length = buf[pos]
            if length < 0x80:
                pos += 1
            elif pos + 1 < end and buf[pos + 1] < 0x80:  # two bytes inline too (a small tensor's raw_data)
                length = (length & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            else:
                length, pos = _varint(buf, pos, end)
            value_end = pos + length
            if value_end > end:
                raise _Malformed("field runs past the end of its message", field_start)
            if key in entry_keys:
                found += 1
            elif key in packed_keys:
                found += _count_varints(buf, pos, value_end)
            else:
                plain += 1
            child = held.get(key)
            if child is not None:
                if child == _TYPE and length <= _KNOWN_TYPE_BYTES and depth < MAX_DEPTH - _KNOWN_TYPE_BYTES:
                    found += self.known_type(pos, value_end, depth + 1)
                else:
                    found += self.inside(child, pos, value_end, depth + 1)
            pos = value_end
        self.fields += found + plain
        return found + max(0, plain - _MOST_PLAIN_FIELDS)

    def known_type(self, start: int, end: int, depth: int) -> int:
        """inside() of a small type, read once per distinct bytes: a graph's value infos share a few types (23.7k
        value infos, ~100 types in a 40k-node Llama export). What a type holds is nested at most a level per 2
        bytes, so read at any depth up to MAX_DEPTH - _KNOWN_TYPE_BYTES it is never too deep."""
        data = bytes(self.buf[start:end])
        known = self.known_types.get(data)
        if known is None:
            before = self.fields
            found = self.inside(_TYPE, start, end, depth)
            known = (found, self.fields - before)
            if len(self.known_types) < _KNOWN_TYPES:
                self.known_types[data] = known
            return found
        self.fields += known[1]
        return known[0]

    def plain_node(self, start: int, end: int) -> list[tuple[int, int]] | None:
        """Count a small node's inputs and entries as the walk would, and say whether it can be copied rather
        than walked: the spans of its doc string and unread metadata entries (_unread_entry) to leave out, mostly
        none; None (nothing counted) for one to walk: an attribute that may hold a graph or entries, or anything
        unusual (a tag over one byte, a length over two, another wire type). Most nodes are plain, and copied as
        one run with their graph's other nodes; a dynamo export's are copied without their stack traces."""
        buf = self.buf
        pos = start
        inputs = entries = fields = 0
        drops: list[tuple[int, int]] = []
        actions, unread = _NODE_FIELD_ACTIONS, _unread_entry
        while pos < end:  # pos: where the field begins
            action = actions[buf[pos]]  # what its tag says (one byte, length-delimited; else _WALK)
            if not action or pos + 1 >= end:
                return None
            length = buf[pos + 1]
            if length < 0x80:
                value_start = pos + 2
            else:  # two bytes (up to 16 KiB; the node is at most KEEP_BYTES)
                if pos + 2 >= end or buf[pos + 2] >= 0x80:
                    return None
                length = (length & 0x7F) | (buf[pos + 2] << 7)
                value_start = pos + 3
            fields += 1
            value_end = value_start + length
            if value_end > end:
                return None
            if action == _INPUT:  # the most common first: inputs, then a name or op type, then outputs
                inputs += 1
            elif action == _PLAIN:
                pass
            elif action == _ENTRY:
                entries += 1
            elif action == _METADATA:
                if not unread(buf, value_start, value_end):
                    self.metadata = self.chunk_metadata = True
                elif drops and drops[-1][1] == pos:  # next to the last one: one span
                    drops[-1] = (drops[-1][0], value_end)
                else:
                    drops.append((pos, value_end))
                entries += 1
            elif action == _ATTRIBUTE:
                if self.attribute_has_entries(value_start, value_end):
                    return None
                if self.attribute_holds_inside(value_start, value_end):
                    entries += self.inside(_ATTR, value_start, value_end, 1)
                entries += 1
            elif action == _DEVICE:
                entries += self.inside(_NODE_DEVICE, value_start, value_end, 1) + 1
            elif action == _DOC:
                if drops and drops[-1][1] == pos:
                    drops[-1] = (drops[-1][0], value_end)
                else:
                    drops.append((pos, value_end))
            pos = value_end
        self.tally.add_inputs(inputs)
        self.tally.add_fields(entries)
        self.fields += fields
        return drops

    def room(self, kind: int) -> int:
        """How many more of what `kind` counts (nodes or node inputs) the tally admits."""
        tally = self.tally
        if kind == _NODE:
            return tally.max_inputs - tally.inputs
        return tally.max_nodes - tally.nodes

    def count(self, kind: int, counted: int) -> None:
        if not counted:
            return
        if kind == _NODE:
            self.tally.add_inputs(counted)
        else:
            self.tally.add_nodes(counted)

    def tensor(self, start: int, end: int) -> None:
        buf = self.buf
        pos = start
        last_raw: tuple[int, int] | None = None
        typed = 0
        kept = 0
        dropped = False
        found, room = 0, self.tally.max_fields - self.tally.fields  # entries and dims, as _Writer.inside counts
        while pos < end:
            if found > room:
                self.tally.add_fields(found)  # raises: over the limit, before the rest is read
            field_start = pos
            key, pos = _varint(buf, pos, end)
            self.count_field(pos)
            number, wire_type = key >> 3, key & 7
            if number == 0 or number > 0x1FFFFFFF:
                raise _Malformed("invalid field number", field_start)
            if wire_type == 4:
                raise _Malformed("end of group outside a group", pos)
            value_start = pos
            if wire_type == 2:
                length, value_start = _varint(buf, pos, end)
                pos = value_start + length
                if pos > end:
                    raise _Malformed("field runs past the end of its message", field_start)
            else:
                pos = self.skip_value(key, pos, end, 0)
            if number == _TENSOR_DIMS:
                found += self.typed_bytes((1, 0, True), wire_type, value_start, pos)
            elif number in _TENSOR_ENTRIES and wire_type == 2:
                found += 1
            if number == _RAW_DATA and wire_type == 2:
                last_raw = (value_start, pos)  # protobuf keeps the last occurrence
                continue
            spec = _TYPED.get(number)
            if spec is not None and wire_type in (2, spec[1]):
                size = self.typed_bytes(spec, wire_type, value_start, pos)
                typed += size
                found += number == _STRING_DATA  # a string is an entry, kept or not (as the data map counts it)
                if kept + (pos - field_start) <= KEEP_BYTES:
                    kept += pos - field_start
                    self.copy(field_start, pos)
                    if spec[2]:
                        found += size // spec[0]  # varint numbers kept, each decoded into 8 bytes (_INSIDE)
                else:
                    dropped = True
                continue
            if (number == _DOC_STRING[_TENSOR] or number == MARK_FIELD) and wire_type == 2:
                continue  # a forged or stale mark is dropped with the doc string
            self.copy(field_start, pos)
        self.tally.add_fields(found)
        raw_len = None
        if last_raw is not None:
            raw_start, raw_end = last_raw
            raw_len = raw_end - raw_start
            if raw_len <= KEEP_BYTES:
                self.emit(bytes((_RAW_DATA << 3 | 2,)) + _encode_varint(raw_len))
                self.copy(raw_start, raw_end)
            else:
                self.emit(bytes((_RAW_DATA << 3 | 2, 0)))  # empty, so no earlier raw_data wins
                dropped = True
        if dropped:
            self.stripped_tensors += 1
            self.stripped_bytes += max(raw_len or 0, typed)
            mark = self.nonce + _encode_varint(0 if raw_len is None else raw_len + 1) + _encode_varint(typed)
            self.emit(_MARK_TAG + _encode_varint(len(mark)) + mark)

    def typed_bytes(self, spec: tuple[int, int, bool], wire_type: int, start: int, end: int) -> int:
        width, single_type, varints = spec
        if width == 0:  # string_data: one string per occurrence
            return end - start
        if wire_type != 2:
            return width
        if varints:
            return width * _count_varints(self.buf, start, end)
        if (end - start) % width:
            raise _Malformed("packed field length is not a multiple of its element size", start)
        return end - start


def _tags_plain(buf: Buffer | bytes, start: int, end: int) -> bool:
    """Whether the attribute at `start`:`end` is well formed field by field and holds no field numbered as a graph
    or an entry (_ATTR_WALKED_NUMBERS): read tag by tag, each value skipped by its length. Anything unusual (a group,
    a bad wire type or field number, a field past the end, packed floats or ints protobuf would reject) is False: the
    walk then meets it, as before."""
    pos = start
    try:
        while pos < end:
            key = buf[pos]
            if key < 0x80:
                pos += 1
            else:
                key, pos = _varint(buf, pos, end)
            if key >> 3 in _ATTR_WALKED_NUMBERS or key < 8 or key > _MAX_KEY:
                return False
            wire_type = key & 7
            if wire_type == 2:
                length, pos = _varint(buf, pos, end)
                if pos + length > end:
                    return False
                if key == _PACKED_FLOATS and length % 4:
                    return False  # not a whole number of floats: protobuf rejects the attribute
                if key == _PACKED_INTS and length and buf[pos + length - 1] >= 0x80:
                    return False  # the last int goes on past the field
                pos += length
            elif wire_type == 0:
                _, pos = _varint(buf, pos, end)
            elif wire_type == 5:
                pos += 4
            elif wire_type == 1:
                pos += 8
            else:
                return False
    except _Malformed:
        return False
    return pos == end


def _unread_entry(buf: Buffer, start: int, end: int) -> bool:
    """Whether a node's metadata entry is one to drop: its key (the last written, as protobuf keeps) is not in
    NODE_METADATA_KEPT. An entry with anything but well-formed key and value fields is kept, for protobuf to
    judge as it did before."""
    if end - start >= 4 and buf[start] == _ENTRY_KEY and (key_length := buf[start + 1]) < 0x80:
        # torch's form, read inline: one key, then one value, their lengths of one byte (the value's up to two)
        key_end = start + 2 + key_length
        if key_end + 1 < end and buf[key_end] == _ENTRY_VALUE:
            length, value = buf[key_end + 1], key_end + 2
            if length >= 0x80 and value < end and buf[value] < 0x80:
                length, value = (length & 0x7F) | (buf[value] << 7), value + 1
            if value + length == end and buf[value - 1] < 0x80:
                if key_length not in _KEPT_LENGTHS:  # no kept key is this long: not read (most of torch's entries)
                    return True
                key = bytes(buf[start + 2 : key_end])
                if key == _FX_NODE:  # read only for what _FX_NODE_READ finds
                    if isinstance(buf, RangedBuffer):
                        return _FX_NODE_READ.search(buf[value:end]) is None
                    return _FX_NODE_READ.search(buf, value, end) is None
                return key not in _KEPT_METADATA
    pos, key = start, b""
    while pos < end:
        tag = buf[pos]
        if tag != _ENTRY_KEY and tag != _ENTRY_VALUE:
            return False
        try:
            length, pos = _varint(buf, pos + 1, end)
        except _Malformed:
            return False
        if pos + length > end:
            return False
        if tag == _ENTRY_KEY:
            key = bytes(buf[pos : pos + length])
        pos += length
    return key not in _KEPT_METADATA


def strip_weights(buf: Buffer, max_nodes: int = MAX_NODES) -> LightModel:
    """The light copy of the ModelProto in `buf` (bytes or an mmap). Raises AuditError for bytes
    that are not a well-formed protobuf message, with the offset where reading stopped, and
    GraphTooLarge for a graph over `max_nodes` (io/budget.py)."""
    light, parts = strip_weights_parts(buf, max_nodes)
    try:
        light.data = b"".join(parts)
    finally:
        parts.clear()  # the views into `buf` go, so it can be closed
    return light


def strip_weights_streamed(
    buf: Buffer, stream: NodeStream, max_nodes: int = MAX_NODES
) -> tuple[LightModel, list[bytes | memoryview], list[bytes | memoryview]]:
    """strip_weights_parts with the main graph's nodes and initializers apart: sent to `stream` as they are walked,
    those after the last send returned apart. The copy (the second list) then holds the main graph without them; a
    GraphProto of them (the third list, after whatever was sent, joined) merged into it (as protobuf merges a graph
    field written twice) is the light copy strip_weights_parts gives."""
    return _strip(buf, max_nodes, stream)


def strip_weights_parts(buf: Buffer, max_nodes: int = MAX_NODES) -> tuple[LightModel, list[bytes | memoryview]]:
    """strip_weights without joining the copy: its parts in order (LightModel.data stays empty), some
    of them views into `buf`, for a caller that writes them out and so need not hold the copy at once.
    Drop the parts before closing `buf`."""
    light, parts, _ = _strip(buf, max_nodes, None)
    return light, parts


def _strip(
    buf: Buffer, max_nodes: int, stream: NodeStream | None
) -> tuple[LightModel, list[bytes | memoryview], list[bytes | memoryview]]:
    nonce = os.urandom(8)  # secrets.token_bytes is this; secrets would import random, hmac, hashlib
    writer = _Writer(buf, nonce, Tally(max_nodes))
    writer.stream = stream
    try:
        writer.message(_MODEL, 0, len(buf), 0)
        writer.flush()
        if stream is not None:
            stream.metadata = writer.chunk_metadata  # of the nodes after the last send, and of the rest since
        if writer.size > MAX_LIGHT_BYTES:
            raise _Malformed(f"structure alone is {writer.size / 2**30:.1f} GiB", len(buf))
    except _Malformed as exc:
        writer.clear()
        raise AuditError(f"not an ONNX model (malformed protobuf: {exc})") from None
    except RecursionError:
        writer.clear()
        raise AuditError("not an ONNX model (nesting too deep to read)") from None
    except GraphTooLarge:
        writer.clear()
        raise
    finally:
        writer.view.release()  # the parts keep what they view alive on their own
    light = LightModel(b"", nonce, writer.stripped_tensors, writer.stripped_bytes, writer.metadata, writer.marked)
    return light, writer.out, writer.nodes
