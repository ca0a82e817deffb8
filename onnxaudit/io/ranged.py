"""A file read by byte ranges, for the wire walk: what an mmap gives a local file, a remote one gets here.

`RangedBuffer` answers `buf[i]`, `buf[a:b]` and `len(buf)` from blocks fetched on demand through a
`read_at(offset, length)` function and kept in a small cache. A slice over several missing blocks is one
fetch (the misses coalesced into one range), so a walk over the structure costs a request per region it
touches, and the bytes between (a tensor's raw_data, skipped by its length) are never asked for.
Every fetch is counted: `fetched` bytes in `requests` ranges, for the report. `max_fetch` bounds the total,
so a structure that touches the whole file still stops short of downloading it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import overload

# small enough that a block at a tensor's edge reads little of its data, big enough to batch fields: on the
# fixtures, 16 KiB fetched 44% of yolov8_tiny (1.5 MB, many small weights) in 40 reads, 64 KiB 78% in 18
BLOCK = 1 << 14
MAX_CACHED_BLOCKS = 4096  # 64 MiB held at most; the walk moves forward, older blocks go first


class FetchRefused(Exception):
    """A read the source would not (or must not) serve; ``str(err)`` is the reason in a few words."""


ReadAt = Callable[[int, int], bytes]


class RangedBuffer:
    def __init__(self, read_at: ReadAt, size: int, max_fetch: int | None = None, block: int = BLOCK) -> None:
        self._read_at = read_at
        self._size = size
        self._block = block
        self._max_fetch = max_fetch
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.fetched = 0
        self.requests = 0

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> bytes: ...
    def __getitem__(self, index: int | slice) -> int | bytes:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._size)
            if step != 1:
                raise ValueError("RangedBuffer slices have step 1")
            return self.read(start, max(0, stop - start))
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError("RangedBuffer index out of range")
        block = self._blocks(index // self._block, index // self._block + 1)[0]
        return block[index % self._block]

    def read(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (clipped at the end), from cached blocks and one fetch of the missing ones."""
        end = min(self._size, offset + length)
        if end <= offset:
            return b""
        first, last = offset // self._block, (end - 1) // self._block + 1
        data = b"".join(self._blocks(first, last))
        skip = offset - first * self._block
        return data[skip : skip + end - offset]

    def rebind(self, read_at: ReadAt) -> None:
        """Read the blocks not cached yet through `read_at`: the same file opened again (its size checked by
        the caller), so a later walk reuses what an earlier one fetched."""
        self._read_at = read_at

    def pread(self, length: int, offset: int) -> bytes:
        """os.pread's order of arguments, for the readers that take a descriptor or a RangedBuffer."""
        return self.read(offset, length)

    def span(self, offset: int, length: int) -> int:
        """Bytes that reading `length` from `offset` fetches at most: the whole blocks it touches."""
        if length <= 0:
            return 0
        first, last = offset // self._block, (offset + length - 1) // self._block + 1
        return min(self._size, last * self._block) - first * self._block

    def release(self) -> None:
        """What memoryview.release is to the wire walk: nothing is held beyond the cache."""

    def _blocks(self, first: int, last: int) -> list[bytes]:
        missing = [b for b in range(first, last) if b not in self._cache]
        if missing:
            self._fetch(missing[0], missing[-1] + 1)  # one range over the gap, even past cached blocks inside it
        out = []
        for b in range(first, last):
            self._cache.move_to_end(b)
            out.append(self._cache[b])
        while len(self._cache) > MAX_CACHED_BLOCKS:
            self._cache.popitem(last=False)
        return out

    def _fetch(self, first: int, last: int) -> None:
        start = first * self._block
        length = min(self._size, last * self._block) - start
        if self._max_fetch is not None and self.fetched + length > self._max_fetch:
            raise FetchRefused(
                f"reading the structure would fetch over {self._max_fetch:,} bytes (the limit); "
                "the structure is too large or the file is not laid out as ONNX files are"
            )
        data = self._read_at(start, length)
        self.requests += 1
        self.fetched += len(data)
        if len(data) != length:
            raise FetchRefused(f"asked for {length:,} bytes at offset {start:,}, got {len(data):,}")
        for i, b in enumerate(range(first, last)):
            self._cache[b] = data[i * self._block : (i + 1) * self._block]
