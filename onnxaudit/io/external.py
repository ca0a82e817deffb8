"""External data, validated before a single byte of it is read.

A location must name a regular file inside the model's folder: relative, no '..', no symlink anywhere
on the way, not a hard link with other names (st_nlink > 1: the same file could be reached from
outside), not a FIFO or device (which are never opened). Offset and length must be plain integers
inside the file, and length must equal dims x item size. Each file is opened once through
`safeopen.open_beneath`, and the descriptor is what later reads use, so the file checked is the
file read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from onnxaudit.errors import AuditError
from onnxaudit.io import remote
from onnxaudit.io.datamap import TensorRecord
from onnxaudit.io.dims import byte_size
from onnxaudit.io.ranged import RangedBuffer
from onnxaudit.io.safeopen import Refused, open_beneath, open_dir, relative_parts

_INTEGER = re.compile(r"[0-9]{1,20}")
KNOWN_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})


@dataclass(frozen=True)
class Extent:
    """Bytes of one tensor: a descriptor (or a remote file's RangedBuffer) and a byte range already checked
    to lie inside its file. fd None: bytes at a URL that are never fetched (a remote model's external data)."""

    fd: int | RangedBuffer | None
    offset: int
    length: int


@dataclass(frozen=True)
class Problem:
    """Why a tensor's external data cannot be used. kind: location | range | length."""

    kind: str
    message: str


@dataclass
class ExternalFiles:
    """The external data files a model names, each opened at most once; close() releases them."""

    folder: Path
    _dir_fd: int | None = None
    _opened: dict[tuple[str, ...], int | Problem] = field(default_factory=dict)
    _sizes: dict[int, int] = field(default_factory=dict)

    def __enter__(self) -> ExternalFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._opened.values():
            if isinstance(fd, int):
                os.close(fd)
        self._opened.clear()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def resolve(self, record: TensorRecord, elements: int | None) -> Extent | Problem:
        """Where `record`'s bytes are, or the first reason they may not be read."""
        entries: dict[str, str] = {}
        for key, value in record.external:
            if key in entries and key in KNOWN_KEYS:
                return Problem("location", f"external data names {key!r} twice")
            entries[key] = value
        location = entries.get("location", "")
        located = self._locate(location)
        if isinstance(located, Problem):
            return Problem(located.kind, f"external data location {location!r}: {located.message}")
        opened, size = located
        offset = _integer(entries, "offset")
        if isinstance(offset, str):
            return Problem("range", f"external data offset {offset!r} is not a whole number")
        length = _integer(entries, "length")
        if isinstance(length, str):
            return Problem("range", f"external data length {length!r} is not a whole number")
        if offset is None:
            offset = 0
        if offset > size:
            return Problem("range", f"external data offset {offset:,} is past the end of {location!r} ({size:,} bytes)")
        if length is None:
            length = size - offset  # onnx's rule: the rest of the file
        if offset + length > size:
            return Problem(
                "range",
                f"external data {offset:,}+{length:,} runs past the end of {location!r} ({size:,} bytes)",
            )
        expected = byte_size(record.dtype, elements) if elements is not None else None
        if expected is not None and length != expected:
            return Problem("length", f"external data length {length:,} bytes, dims need {expected:,}")
        return Extent(opened, offset, length)

    def _locate(self, location: str) -> tuple[int | None, int] | Problem:
        """The open file `location` names and its size, or why it may not be used."""
        try:
            parts = relative_parts(location)
        except Refused as exc:
            return Problem("location", str(exc))
        opened = self._open(tuple(parts))
        return opened if isinstance(opened, Problem) else (opened, self._sizes[opened])

    def _open(self, parts: tuple[str, ...]) -> int | Problem:
        if parts in self._opened:
            return self._opened[parts]
        try:
            if self._dir_fd is None:
                self._dir_fd = open_dir(self.folder)
            opened = open_beneath(self._dir_fd, list(parts))
        except Refused as exc:
            result: int | Problem = Problem("location", str(exc))
        except OSError as exc:
            result = Problem("location", f"model folder cannot be opened ({exc.strerror})")
        else:
            result = opened.fd
            self._sizes[opened.fd] = opened.size
        self._opened[parts] = result
        return result


def _integer(entries: dict[str, str], key: str) -> int | str | None:
    """The entry as an int, its text when it is not a plain non-negative integer, or None when absent."""
    if key not in entries:
        return None
    text = entries[key]
    return int(text) if _INTEGER.fullmatch(text) else text


class RemoteExternal(ExternalFiles):
    """External data of a model at a URL, for check's file pass: each location must stay under the model's
    prefix (external_url), and its file's size is asked for once (one request, no byte of it read) so offsets and
    lengths are checked as for a local file. The bytes are never fetched: extents carry fd None."""

    def __init__(self, model_url: str) -> None:
        super().__init__(Path(os.devnull))  # no folder is opened: _locate below never calls _open
        self.model_url = model_url
        self._remote: dict[str, int | Problem] = {}
        self.requests = 0

    def _locate(self, location: str) -> tuple[int | None, int] | Problem:
        address = remote.external_url(self.model_url, location)
        if isinstance(address, Problem):
            return address
        if address not in self._remote and len(self._remote) >= remote.MAX_EXTERNAL_FILES:
            return Problem("location", f"not checked: over {remote.MAX_EXTERNAL_FILES:,} external data files at a URL")
        if address not in self._remote:
            self.requests += 1
            try:
                opened = remote.RemoteFile(address)
            except AuditError as exc:
                why = str(exc).removeprefix(f"{address}: ")
                self._remote[address] = Problem("location", f"{why} ({address})")
            else:
                self._remote[address] = opened.size
                opened.close()
        size = self._remote[address]
        return size if isinstance(size, Problem) else (None, size)
