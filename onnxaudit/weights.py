"""Bounded scans of weight bytes: value statistics, content digests, transposed-copy comparison.

Data is read with pread in CHUNK-sized pieces, so memory stays at a few chunks whatever the tensor
size. A chunk lying wholly in a hole of a sparse file is known to be zeros without reading it
(SEEK_DATA), so a multi-GiB sparse tensor costs nothing. A short read means the file changed under
us: ScanError, never a crash.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from onnxaudit.external import Extent

CHUNK = 1 << 24  # a multiple of every item size

# dtype -> how to read values: a numpy dtype, or "bf16" for bfloat16 widened to float32.
FLOATS: dict[int, str] = {
    TensorProto.FLOAT: "<f4",
    TensorProto.DOUBLE: "<f8",
    TensorProto.FLOAT16: "<f2",
    TensorProto.BFLOAT16: "bf16",
}
INTEGERS: dict[int, str] = {
    TensorProto.INT8: "<i1",
    TensorProto.UINT8: "<u1",
    TensorProto.INT16: "<i2",
    TensorProto.UINT16: "<u2",
    TensorProto.INT32: "<i4",
    TensorProto.UINT32: "<u4",
    TensorProto.INT64: "<i8",
    TensorProto.UINT64: "<u8",
}


class ScanError(Exception):
    pass


@dataclass
class Stats:
    """What one pass over a tensor found. min/max ignore NaN; None when there are no numbers."""

    count: int
    nan: int = 0
    inf: int = 0
    zeros: int = 0
    minimum: float | None = None
    maximum: float | None = None
    negative: int = 0
    digest: str | None = None
    holes: int = 0  # bytes known to be zero without reading them

    @property
    def uniform(self) -> bool:
        return self.nan == 0 and self.minimum is not None and self.minimum == self.maximum


# Linux and the BSDs tell holes from data; elsewhere every chunk is read.
_HOLES = hasattr(os, "SEEK_DATA")


def chunks(extent: Extent) -> Iterator[bytes | int]:
    """The extent's bytes in order: a bytes object per chunk read, or an int (its length) for a chunk
    that lies in a hole and is all zeros."""
    pos, end = extent.offset, extent.offset + extent.length
    while pos < end:
        size = min(CHUNK, end - pos)
        if _HOLES:
            try:
                data_at = os.lseek(extent.fd, pos, os.SEEK_DATA)
            except OSError as exc:
                data_at = end if exc.errno == errno.ENXIO else pos  # ENXIO: only a hole from here on
            if data_at >= pos + size:
                yield size
                pos += size
                continue
        data = os.pread(extent.fd, size, pos)
        if len(data) != size:
            raise ScanError("the file changed while being read")
        yield data
        pos += size


def _values(data: bytes, kind: str) -> np.ndarray:
    if kind == "bf16":
        bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.frombuffer(data, dtype=kind)


def scan(extent: Extent, dtype: int, count: int, want_digest: bool = False) -> Stats:
    """Statistics of a tensor's values (floats and integers), and its digest when asked for.

    The digest is a hash of per-chunk digests with chunk boundaries fixed relative to the tensor's
    start, so the same content gives the same digest whether it is embedded, external or sparse."""
    kind = FLOATS.get(dtype) or INTEGERS.get(dtype)
    stats = Stats(count)
    outer = hashlib.blake2b(digest_size=32) if want_digest else None
    zero_digests: dict[int, bytes] = {}
    lows: list[float] = []
    highs: list[float] = []
    for piece in chunks(extent):
        if isinstance(piece, int):
            stats.holes += piece
            if outer is not None:
                if piece not in zero_digests:
                    zero_digests[piece] = hashlib.blake2b(bytes(piece), digest_size=32).digest()
                outer.update(zero_digests[piece])
            if kind is not None:
                item = np.dtype("<u2" if kind == "bf16" else kind).itemsize
                stats.zeros += piece // item
                lows.append(0.0)
                highs.append(0.0)
            continue
        if outer is not None:
            outer.update(hashlib.blake2b(piece, digest_size=32).digest())
        if kind is None:
            continue
        values = _values(piece, kind)
        if values.size == 0:
            continue
        stats.zeros += int(np.count_nonzero(values == 0))
        if kind in INTEGERS.values():
            lows.append(float(values.min()))
            highs.append(float(values.max()))
            stats.negative += int(np.count_nonzero(values < 0))
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            nan = np.isnan(values)
            nans = int(np.count_nonzero(nan))
            finite_or_inf = values[~nan] if nans else values
            stats.nan += nans
            stats.inf += int(np.count_nonzero(np.isinf(finite_or_inf)))
            stats.negative += int(np.count_nonzero(finite_or_inf < 0))
            if finite_or_inf.size:
                lows.append(float(finite_or_inf.min()))
                highs.append(float(finite_or_inf.max()))
    if lows:
        stats.minimum, stats.maximum = min(lows), max(highs)
    if outer is not None:
        stats.digest = outer.hexdigest()
    return stats


def transposed_equal(a: Extent, a_dims: tuple[int, int], b: Extent, item: int) -> bool | None:
    """Whether b holds a's (rows x cols) matrix transposed, compared exactly block by block: a's rows
    i0..i1 against b's columns i0..i1 (one pread per row of b). Stops at the first difference.
    None when a row does not fit in a chunk (not compared)."""
    rows, cols = a_dims
    if rows * cols * item != a.length or a.length != b.length:
        return False
    if cols * item > CHUNK:
        return None
    block = max(1, CHUNK // max(1, cols * item))
    for i0 in range(0, rows, block):
        i1 = min(rows, i0 + block)
        a_block = _read(a.fd, a.offset + i0 * cols * item, (i1 - i0) * cols * item)
        a_t = np.frombuffer(a_block, dtype=f"V{item}").reshape(i1 - i0, cols).T
        width = (i1 - i0) * item
        b_block = bytearray(cols * width)
        for j in range(cols):
            b_block[j * width : (j + 1) * width] = _read(b.fd, b.offset + (j * rows + i0) * item, width)
        if np.ascontiguousarray(a_t).tobytes() != bytes(b_block):
            return False
    return True


def _read(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise ScanError("the file changed while being read")
    return data


def count_varints(extent: Extent) -> int:
    """Elements of a packed varint field: the bytes that end a varint (high bit clear)."""
    total = 0
    for piece in chunks(extent):
        if isinstance(piece, int):
            total += piece  # zero bytes each end a varint
        else:
            total += int(np.count_nonzero(np.frombuffer(piece, dtype=np.uint8) < 0x80))
    return total
