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

from onnxaudit.io.external import Extent
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.io.ranged import FetchRefused, RangedBuffer

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
    """What one pass over a tensor found. min/max ignore NaN and Inf; None when no finite numbers."""

    count: int
    nan: int = 0
    inf: int = 0
    minimum: float | None = None
    maximum: float | None = None
    negative: int = 0
    holes: int = 0  # bytes known to be zero without reading them
    decoded: bool = False  # values were read as numbers (float or integer dtypes)

    @property
    def uniform(self) -> bool:
        return self.nan == 0 and self.inf == 0 and self.minimum is not None and self.minimum == self.maximum

    @property
    def all_zero(self) -> bool:
        return self.count > 0 and self.uniform and self.minimum == 0


# Linux and the BSDs tell holes from data; elsewhere every chunk is read.
_HOLES = hasattr(os, "SEEK_DATA")


def chunks(extent: Extent) -> Iterator[bytes | int]:
    """The extent's bytes in order: a bytes object per chunk read, or an int (its length) for a chunk
    that lies in a hole and is all zeros."""
    pos, end = extent.offset, extent.offset + extent.length
    while pos < end:
        size = min(CHUNK, end - pos)
        if _HOLES and isinstance(extent.fd, int):
            try:
                data_at = os.lseek(extent.fd, pos, os.SEEK_DATA)
            except OSError as exc:
                data_at = end if exc.errno == errno.ENXIO else pos  # ENXIO: only a hole from here on
            if data_at >= pos + size:
                yield size
                pos += size
                continue
        yield read_bytes(extent.fd, pos, size)
        pos += size


def _values(data: bytes, kind: str) -> np.ndarray:
    if kind == "bf16":
        bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.frombuffer(data, dtype=kind)


def scan(extent: Extent, dtype: int, count: int) -> Stats:
    """Statistics of a tensor's values (floats and integers); other dtypes only get their holes counted.
    Most chunks are all finite: then min and max are two reductions and nothing else is counted."""
    kind = FLOATS.get(dtype) or INTEGERS.get(dtype)
    stats = Stats(count, decoded=kind is not None)
    lows: list[float] = []
    highs: list[float] = []
    for piece in chunks(extent):
        if isinstance(piece, int):
            stats.holes += piece
            lows.append(0.0)
            highs.append(0.0)
            continue
        if kind is None:
            continue
        values = _values(piece, kind)
        if values.size == 0:
            continue
        if kind in FLOATS.values():
            finite = np.isfinite(values)
            if not finite.all():
                nans = int(np.count_nonzero(np.isnan(values)))
                stats.nan += nans
                stats.inf += int(values.size - np.count_nonzero(finite)) - nans
                values = values[finite]
                if values.size == 0:
                    continue
        low, high = values.min(), values.max()
        lows.append(float(low))
        highs.append(float(high))
        if low < 0:
            stats.negative += int(np.count_nonzero(values < 0))
    if lows and kind is not None:
        stats.minimum, stats.maximum = min(lows), max(highs)
    return stats


def digest(extent: Extent) -> str:
    """A hash of per-chunk hashes with chunk boundaries fixed at the tensor's start, so the same content
    gives the same digest whether it is embedded, external or sparse (a hole hashes as its zeros)."""
    outer = hashlib.sha256()
    zero_digests: dict[int, bytes] = {}
    for piece in chunks(extent):
        if isinstance(piece, int):
            if piece not in zero_digests:
                zero_digests[piece] = hashlib.sha256(bytes(piece)).digest()
            outer.update(zero_digests[piece])
        else:
            outer.update(hashlib.sha256(piece).digest())
    return outer.hexdigest()


SAMPLES = 16  # element pairs compared before a full comparison: unrelated matrices differ at once
_UINT = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}


def transposed_equal(a: Extent, a_dims: tuple[int, int], b: Extent, item: int) -> bool | None:
    """Whether b holds a's (rows x cols) matrix transposed. A few sampled elements first, then exactly,
    block by block: a's rows i0..i1 against b's columns i0..i1 (one pread per row of b), stopping at
    the first difference. None when the elements are not whole bytes or a row does not fit a chunk."""
    rows, cols = a_dims
    kind = _UINT.get(item)
    if rows * cols * item != a.length or a.length != b.length:
        return False
    if kind is None or cols * item > CHUNK:
        return None
    picks = np.random.default_rng(rows * 1_000_003 + cols).integers(0, rows * cols, size=SAMPLES)
    for flat in sorted(set(int(p) for p in picks)):
        i, j = divmod(flat, cols)
        if read_bytes(a.fd, a.offset + flat * item, item) != read_bytes(b.fd, b.offset + (j * rows + i) * item, item):
            return False
    block = max(1, CHUNK // (cols * item))
    for i0 in range(0, rows, block):
        i1 = min(rows, i0 + block)
        a_block = np.frombuffer(read_bytes(a.fd, a.offset + i0 * cols * item, (i1 - i0) * cols * item), dtype=kind)
        width = (i1 - i0) * item
        b_rows = b"".join(read_bytes(b.fd, b.offset + (j * rows + i0) * item, width) for j in range(cols))
        b_block = np.frombuffer(b_rows, dtype=kind).reshape(cols, i1 - i0)
        if not np.array_equal(a_block.reshape(i1 - i0, cols), b_block.T):
            return False
    return True


def read_bytes(fd: int | RangedBuffer | None, offset: int, length: int) -> bytes:
    """`length` bytes at `offset` of a file (pread) or of a remote file (its RangedBuffer, by ranges)."""
    if fd is None:
        raise ScanError("bytes at a URL that are not fetched")
    if isinstance(fd, int):
        data = os.pread(fd, length, offset)
    else:
        try:
            data = fd.pread(length, offset)
        except FetchRefused as exc:
            raise ScanError(str(exc)) from None
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
