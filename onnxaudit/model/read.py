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
from onnxaudit.io.isolate import IsolatedFailure, run_isolated
from onnxaudit.io.onnxcore import (
    ModelProto,
    TensorProto,
)
from onnxaudit.io.ranged import FetchRefused, RangedBuffer
from onnxaudit.io.remote import RemoteRead, is_url, open_ranged
from onnxaudit.io.safeopen import open_model
from onnxaudit.io.wire import LightModel, strip_weights_parts
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


def read_without_weights(
    path: Path | str,
    ranged: RangedBuffer | None = None,
    max_nodes: int = MAX_NODES,
    meanwhile: Callable[[], object] | None = None,
) -> LightRead:
    """The wire reader: map the file, copy its structure without weight bytes (walked in a forked
    child, see _strip_in_child), parse that copy. Weight bytes are never read, whatever the size, and a
    graph over `max_nodes` (io/budget.py) is refused by the walk, before protobuf parses it.
    Also says whether the copy may hold torch module scopes. A URL is read by ranges (_read_remote), through
    `ranged` when the caller holds the file open already (check: its blocks are fetched once for both walks).
    `meanwhile`: the caller's own work, done while the forked walk runs (isolate.run_isolated)."""
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
        light = _strip_in_child(mapped, str(path), max_nodes, meanwhile)
    finally:
        mapped.close()
    model = parse_model(light.data, str(path))
    scoped = may_hold_module_scopes(light.data)
    light.data = b""  # parsed: the copy is not needed while the view is built (sizes reads the model)
    return LightRead(model, size, light.sizes, scoped)


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
    scoped = may_hold_module_scopes(light.data)
    light.data = b""
    fetched = RemoteRead(url, len(buf), buf.fetched, buf.requests)
    return LightRead(model, len(buf), light.sizes, scoped, fetched, buf)


def _strip_in_child(
    mapped: mmap.mmap, name: str, max_nodes: int = MAX_NODES, meanwhile: Callable[[], object] | None = None
) -> LightModel:
    """strip_weights over the mapped file, in a forked child: if another process truncates the file
    during the walk, touching a vanished page raises SIGBUS, which would kill us without a word."""

    def walk() -> tuple[bytes | memoryview, ...]:
        try:
            light, parts = strip_weights_parts(mapped, max_nodes)
        except AuditError as exc:
            raise _StripRefused(str(exc)) from None
        # the parts go to the pipe one by one: the copy is never joined here
        return (_STRIP_HEADER.pack(light.nonce, light.stripped_tensors, light.stripped_bytes), *parts)

    try:
        answer = run_isolated(walk, timeout=STRIP_TIMEOUT, meanwhile=meanwhile)
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
    return LightModel(data, nonce, stripped_tensors, stripped_bytes)


# what the strip child sends before the light copy: the nonce, then stripped tensors and bytes
_STRIP_HEADER = struct.Struct("<8sQQ")


class _StripRefused(Exception):
    """strip_weights' own one-line refusal, told apart from a crash once it is back in the parent."""

    MARK = "refused: "

    def __init__(self, message: str) -> None:
        super().__init__(self.MARK + message)
