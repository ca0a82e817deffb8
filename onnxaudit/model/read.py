"""Reading a model file safely: open it, parse it with protobuf, or copy its structure without weight bytes.

The wire reader (read_without_weights) never reads a weight byte and has no 2 GiB limit; its walk runs in a
forked child so that a file truncated under it costs an error line, not the process.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from onnxaudit.errors import AuditError
from onnxaudit.io.budget import MAX_NODES
from onnxaudit.io.isolate import IsolatedFailure, run_isolated, send_frame
from onnxaudit.io.onnxcore import (
    ModelProto,
    TensorProto,
)
from onnxaudit.io.ranged import FetchRefused, RangedBuffer
from onnxaudit.io.remote import RemoteRead, is_url, open_ranged
from onnxaudit.io.safeopen import open_model
from onnxaudit.io.text import nodes_as_text
from onnxaudit.io.wire import LightModel, NodeStream, encode_varint, strip_weights_parts, strip_weights_streamed
from onnxaudit.model.metadata import may_hold_module_scopes

# protobuf cannot parse a message over 2 GiB; such files need the wire reader.
MAX_MODEL_BYTES = 2**31 - 1
# the structure walk takes ~1 us a field; wire.MAX_FIELDS of them stay far below this
STRIP_TIMEOUT = 300.0


# A reader that left weight bytes out of the ModelProto says how many the file held for a tensor:
# (stored bytes, raw_data bytes), or None when the TensorProto is complete.
SizeHook = Callable[[TensorProto], "tuple[int, int] | None"]


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


def parse_model(data: bytes | memoryview, name: str) -> ModelProto:
    model = ModelProto()
    try:
        model.ParseFromString(data)  # type: ignore[arg-type]  # any buffer parses; the stub says bytes
    except Exception as exc:  # protobuf raises DecodeError, RecursionError, ValueError...
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditError(f"{name}: not an ONNX model (protobuf parse failed: {detail})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise AuditError(f"{name}: not an ONNX model (no graph or no IR version)")
    return model


class LightRead(NamedTuple):
    """What read_without_weights gives: the model without weight bytes, the file's size, how many bytes each
    stripped tensor held, and whether a node may carry torch's module scopes (metadata.may_hold_module_scopes).
    `remote`: what reading a URL fetched (None for a local file), `ranged` its cached blocks."""

    model: ModelProto
    file_bytes: int
    sizes: SizeHook
    may_hold_scopes: bool
    remote: RemoteRead | None = None
    ranged: RangedBuffer | None = None  # a URL's blocks fetched by the walk, kept for a later one (copies.py)
    streamed: bool = False  # the main graph's nodes and initializers went to NodeChunks.feed: `model` holds none


class NodeChunks:
    """The main graph's nodes and initializers of a model with more than `least` nodes, handed to `feed` while the
    walk goes on (wire.strip_weights_streamed, in the walk's child): every `every` of them, each time as (the walk's
    nonce, their fields as a GraphProto writes them, whether they may hold metadata a stage reads:
    NodeStream.metadata, whether every name of its nodes is valid UTF-8, as the child found (io/text.nodes_as_text),
    or None: not looked at, whether a tensor in it may have lost bytes to the walk's mark: NodeStream.stripped).
    `feed` says False when it gave up on one (it cannot read it): the rest are only kept, and the whole light copy is
    parsed as for any model. Each chunk is kept until the walk ends."""

    def __init__(
        self, feed: Callable[[bytes, memoryview, bool, bool | None, bool], bool], least: int, every: int = 4096
    ) -> None:
        self.feed, self.least, self.every = feed, least, every
        self.chunks: list[memoryview] = []
        self.fed = True

    def take(self, frame: bytearray | memoryview | bytes) -> None:
        data = memoryview(frame)[9:]
        self.chunks.append(data)
        if self.fed:
            flags = frame[8]  # the chunk's flags byte: _METADATA, _TEXT_LOOKED, _TEXT, _UNSTRIPPED
            text = flags & _TEXT != 0 if flags & _TEXT_LOOKED else None
            self.fed = self.feed(bytes(frame[:8]), data, flags & _METADATA != 0, text, not flags & _UNSTRIPPED)


def read_without_weights(
    path: Path | str,
    ranged: RangedBuffer | None = None,
    max_nodes: int = MAX_NODES,
    meanwhile: Callable[[], object] | None = None,
    chunks: NodeChunks | None = None,
) -> LightRead:
    """The wire reader: map the file, copy its structure without weight bytes (walked in a forked
    child, see _strip_in_child), parse that copy. Weight bytes are never read, whatever the size, and a
    graph over `max_nodes` (io/budget.py) is refused by the walk, before protobuf parses it.
    Also says whether the copy may hold torch module scopes. A URL is read by ranges (_read_remote), through
    `ranged` when the caller holds the file open already (check: its blocks are fetched once for both walks).
    `meanwhile`: the caller's own work, done while the forked walk runs (isolate.run_isolated). `chunks`: where
    the main graph's nodes and initializers go while the walk runs, when there are more than chunks.least nodes (then
    `model` holds the rest, LightRead.streamed)."""
    if is_url(path):
        if meanwhile is not None:
            meanwhile()
        return _read_remote(str(path), ranged, max_nodes)
    path = Path(path)
    fd, size = open_model_file(path)
    try:
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise AuditError(f"{path}: cannot map the file ({exc})") from None
    finally:
        os.close(fd)
    try:
        light = _strip_in_child(mapped, str(path), max_nodes, meanwhile, chunks)
    finally:
        mapped.close()
    model = parse_model(light.data, str(path))
    scoped = light.metadata and may_hold_module_scopes(light.data)
    light.data = b""  # parsed: the copy is not needed while the view is built (sizes reads the model)
    streamed = chunks is not None and bool(chunks.chunks)  # fed: the others were put back in the copy
    if chunks is not None:
        chunks.chunks.clear()
    return LightRead(model, size, light.sizes, scoped, streamed=streamed)


def _read_remote(url: str, ranged: RangedBuffer | None = None, max_nodes: int = MAX_NODES) -> LightRead:
    """read_without_weights for a URL: the same walk over a RangedBuffer, in this process (no page of a
    mapping can vanish under it; the requests carry their own timeouts)."""
    remote, buf = open_ranged(url) if ranged is None else (None, ranged)
    try:
        light, parts = strip_weights_parts(buf, max_nodes)
        light.data = b"".join(parts)
        parts.clear()
    except AuditError as exc:
        raise AuditError(f"{url}: {exc}") from None
    except FetchRefused as exc:
        raise AuditError(f"{url}: {exc}") from None
    finally:
        if remote is not None:
            remote.close()
    model = parse_model(light.data, url)
    scoped = light.metadata and may_hold_module_scopes(light.data)
    light.data = b""
    fetched = RemoteRead(url, len(buf), buf.fetched, buf.requests)
    return LightRead(model, len(buf), light.sizes, scoped, fetched, buf)


def _strip_in_child(
    mapped: mmap.mmap,
    name: str,
    max_nodes: int = MAX_NODES,
    meanwhile: Callable[[], object] | None = None,
    chunks: NodeChunks | None = None,
) -> LightModel:
    """strip_weights over the mapped file, in a forked child: if another process truncates the file
    during the walk, touching a vanished page raises SIGBUS, which would kill us without a word. With `chunks`,
    the main graph's nodes and initializers (over chunks.least nodes) are sent as they are walked (NodeChunks); the data
    then holds the light copy without them, or with them all (as protobuf merges a graph written twice) when none was
    sent or chunks.feed gave up."""

    def walk() -> tuple[bytes | memoryview, ...]:
        def send(nonce: bytes, parts: list[bytes | memoryview]) -> None:
            nodes = b"".join(parts)  # their names checked here, beside the parent building the nodes sent before
            flags = _TEXT_LOOKED | (_METADATA if stream.metadata else 0) | (_TEXT if nodes_as_text(nodes) else 0)
            flags |= 0 if stream.stripped else _UNSTRIPPED
            send_frame([nonce, bytes((flags,)), nodes], later=True)  # the walk goes on meanwhile

        tail_metadata = True
        try:
            if chunks is None:
                light, parts = strip_weights_parts(mapped, max_nodes)
                nodes: list[bytes | memoryview] = []
            else:
                stream = NodeStream(send, chunks.least, chunks.every)
                light, parts, nodes = strip_weights_streamed(mapped, stream, max_nodes)
                tail_metadata = stream.metadata
        except AuditError as exc:
            raise _StripRefused(str(exc)) from None
        # the parts go to the pipe one by one: the copy is never joined here
        header = _STRIP_HEADER.pack(
            light.nonce, light.stripped_tensors, light.stripped_bytes, sum(map(len, nodes)), light.metadata,
            light.marked, tail_metadata,
        )  # fmt: skip
        return (header, *parts, *nodes)

    try:
        answer = run_isolated(
            walk, timeout=STRIP_TIMEOUT, meanwhile=meanwhile, frames=None if chunks is None else chunks.take
        )
    except IsolatedFailure as exc:
        reason = str(exc)
        if reason.startswith(_StripRefused.MARK):
            raise AuditError(f"{name}: {reason[len(_StripRefused.MARK) :]}") from None
        if "SIGBUS" in reason:
            raise AuditError(
                f"{name}: the file changed while it was read (SIGBUS: truncated by another process?)"
            ) from None
        raise AuditError(f"{name}: reading the structure failed: {reason}") from None
    nonce, stripped_tensors, stripped_bytes, last, metadata, marked, tail_metadata = _STRIP_HEADER.unpack_from(answer)
    data = memoryview(answer)[_STRIP_HEADER.size :]  # parsed, never copied
    if chunks is not None:
        if chunks.chunks and last:
            flags = _METADATA if tail_metadata else 0  # names not looked at; its tensors may have lost bytes
            chunks.take(nonce + bytes((flags,)) + data[len(data) - last :])  # the nodes after the last sent
        if last and not chunks.chunks or chunks.chunks and not chunks.fed:  # every node back in the copy
            nodes = [*chunks.chunks] if chunks.chunks else [data[len(data) - last :]]
            graph = b"\x3a" + encode_varint(sum(map(len, nodes)))  # ModelProto.graph, merged into the first
            data = memoryview(b"".join([data[: len(data) - last], graph, *nodes]))
            chunks.chunks.clear()
        else:
            data = data[: len(data) - last]
    return LightModel(data, nonce, stripped_tensors, stripped_bytes, metadata, marked)


# what the strip child sends before the light copy: the nonce, stripped tensors and bytes, the byte length of
# the main graph's nodes after it (strip_weights_streamed's third list; 0 without chunks), LightModel.metadata and
# LightModel.marked, and NodeStream.metadata of the nodes after the last chunk
_STRIP_HEADER = struct.Struct("<8sQQQ?Q?")
# a chunk's frame: the nonce, a byte of flags, the nodes. The flags:
_METADATA = 1  # its nodes may hold metadata a stage reads (NodeStream.metadata)
_TEXT = 2  # each of their names is valid UTF-8 (io/text.nodes_as_text), when _TEXT_LOOKED
_TEXT_LOOKED = 4  # the child looked at their names
_UNSTRIPPED = 8  # no tensor of it lost bytes to the walk's unknown-field mark (NodeStream.stripped)


class _StripRefused(Exception):
    """strip_weights' own one-line refusal, told apart from a crash once it is back in the parent."""

    MARK = "refused: "

    def __init__(self, message: str) -> None:
        super().__init__(self.MARK + message)
