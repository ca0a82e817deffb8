"""Is a stored weight another stored weight again (transposed), or a value computed from it (its
reciprocal)? Settled by values at sampled positions.

The framework view pairs tensors shaped like a transposed copy of a named weight (a tied output head
folded at export: `onnx::MatMul_803` beside `embed_tokens.weight`), or like a shared module's weight
stored again for another call, or a float tensor beside the one whose reciprocal it may be (a Snake's
1 / alpha folded at export). Names and shapes cannot settle such a pair; a few values can: unrelated
matrices differ at once, a copy agrees everywhere. Only data embedded in the model file is read, one
element at a time by pread at the sampled positions (over a URL, one ranged read each, for a bounded number
of pairs); external data files are never opened, and a pair stored there (or in typed fields) stays undecided.
"""

from __future__ import annotations

import functools
import os
import random
import struct
from collections.abc import Callable
from pathlib import Path

from onnxaudit.errors import AuditError
from onnxaudit.io.budget import MAX_NODES
from onnxaudit.io.datamap import MAIN, FileMap, TensorRecord, map_file
from onnxaudit.io.dims import byte_size, element_count
from onnxaudit.io.ranged import FetchRefused, RangedBuffer, ReadAt
from onnxaudit.io.remote import RemoteFile, RemoteRead, is_url, open_ranged
from onnxaudit.model.read import open_model_file

SAMPLES = 64  # element pairs compared: unrelated matrices differ at the first, a copy agrees at all
# pairs settled over a URL: each costs up to 2 x SAMPLES ranged reads of one element (round trips, in
# order), so a model with many candidate pairs is not an unbounded number of requests; the rest undecided
REMOTE_PAIRS = 8


Key = tuple[str, str]  # (graph scope, tensor name), as model.view.ModelView and datamap give them


def settle_copies(
    path: Path | str,
    transposed: dict[str, str],
    same_layout: dict[str, str],
    scoped: dict[Key, Key] | None = None,
    fetched: RemoteRead | None = None,
    max_nodes: int = MAX_NODES,
    cached: RangedBuffer | None = None,
) -> dict[str, bool]:
    """For each `copy -> original` pair of main-graph initializers (`transposed`: the copy holds the
    original transposed; `same_layout`: in its own layout, a shared module's weight folded once per
    call), and of tensors stored anywhere in the file (`scoped`, same layout: one weight stored in both
    branches of an If): True when they agree at every sampled position (and the samples are not all one
    value), False at the first difference. Pairs that cannot be read (external or typed data, a file
    changed meanwhile) are left out: undecided. One walk of the file finds every pair's bytes. Scoped
    pairs are answered under their copy's name. A URL (`fetched`: what reading it has cost so far, which
    this adds to; `cached`: the blocks reading it fetched) is read by ranges, its first REMOTE_PAIRS pairs
    only (_settle_url). `max_nodes`: the limit the view was read under, kept by this walk of the same file."""
    asked = [((MAIN, copy), (MAIN, original), TRANSPOSED) for copy, original in transposed.items()]
    asked += [((MAIN, copy), (MAIN, original), SAME) for copy, original in same_layout.items()]
    asked += [(copy_key, original_key, SAME) for copy_key, original_key in (scoped or {}).items()]
    settled = settle_pairs(path, asked, fetched, max_nodes, cached)
    return {copy[1]: verdict for (copy, _), verdict in settled.items()}


TRANSPOSED = "transposed"  # the copy holds the original's 2-D matrix transposed
SAME = "same"  # the same elements in the same order, whatever the dims
RECIPROCAL = "reciprocal"  # each element 1 / the original's (floats, within rounding)

Pair = tuple[Key, Key, str]  # copy, original, how the copy would hold the original (TRANSPOSED, SAME, RECIPROCAL)


def settle_pairs(
    path: Path | str,
    asked: list[Pair],
    fetched: RemoteRead | None = None,
    max_nodes: int = MAX_NODES,
    cached: RangedBuffer | None = None,
) -> dict[tuple[Key, Key], bool]:
    """settle_copies for pairs asked one by one, a copy with several candidate originals among them:
    (copy, original) -> True when the copy holds the original as its relation says at every sampled
    position, False at the first difference; pairs that cannot be read are left out (undecided)."""
    if not asked:
        return {}
    if is_url(path):
        return _settle_url(str(path), asked, fetched, max_nodes, cached)
    try:
        fd, size = open_model_file(Path(path))
    except (OSError, AuditError):
        return {}
    try:
        files = map_file(fd, size, str(path), max_nodes)
        return _verdicts(functools.partial(_element, fd), files, asked)
    except (OSError, AuditError):
        return {}
    finally:
        os.close(fd)


def _verdicts(read: ReadAt, files: FileMap, asked: list[Pair]) -> dict[tuple[Key, Key], bool]:
    verdicts = {}
    for copy, original, relation in asked:
        verdict = _compare(read, files, copy, original, relation)
        if verdict is not None:
            verdicts[(copy, original)] = verdict
    return verdicts


def _settle_url(
    url: str, asked: list[Pair], fetched: RemoteRead | None, max_nodes: int, cached: RangedBuffer | None
) -> dict[tuple[Key, Key], bool]:
    """settle_copies for a model at a URL: its structure walked again by ranges (the data map gives each
    tensor's offset; over the blocks the first walk cached, when the file opened again has the same size),
    then each sampled element one ranged read of its own bytes (2 x SAMPLES reads a pair, in order, stopping
    at the first difference). Bounded: the first REMOTE_PAIRS pairs only, the others stay undecided. Every
    byte fetched is added to `fetched`."""
    try:
        if cached is None:
            remote, buf = open_ranged(url)
        else:
            remote, buf = RemoteFile(url), cached
            if remote.size != len(cached):
                remote.close()
                return {}  # the file changed since it was read: no pair settled on another file's bytes
            buf.rebind(remote.read_at)
    except AuditError:
        return {}
    before = (0, 0) if cached is None else (buf.fetched, buf.requests)  # a fresh buffer's probe counts too
    elements = _Counted(remote.read_at)
    try:
        files = map_file(buf, remote.size, url, max_nodes)
        return _verdicts(elements.read, files, asked[:REMOTE_PAIRS])
    except (FetchRefused, AuditError):
        return {}
    finally:
        remote.close()
        if fetched is not None:
            again = buf.fetched - before[0] + elements.fetched
            fetched.fetched_bytes += again
            fetched.requests += buf.requests - before[1] + elements.requests
            fetched.sampled_bytes += again


class _Counted:
    def __init__(self, read_at: ReadAt) -> None:
        self._read_at = read_at
        self.fetched = 0
        self.requests = 0

    def read(self, offset: int, length: int) -> bytes:
        data = self._read_at(offset, length)
        self.requests += 1
        self.fetched += len(data)
        if len(data) != length:
            raise FetchRefused(f"asked for {length} bytes at offset {offset:,}, got {len(data)}")
        return data


def _compare(read: ReadAt, files: FileMap, copy: Key, original: Key, relation: str) -> bool | None:
    a, b = files.tensors.get(original), files.tensors.get(copy)
    transposed = relation == TRANSPOSED
    if a is None or b is None or a.dtype != b.dtype or not a.dims or (transposed and len(a.dims) != 2):
        return None
    # a same-layout pair of any rank is compared as rows of its last dim
    rows, cols = (a.dims[0], a.dims[1]) if transposed else (element_count(a.dims[:-1]), a.dims[-1])
    item = byte_size(a.dtype, 1)
    # a same-layout copy may be reshaped (`W.view(out, -1)`): the same elements in the same order
    fits = tuple(b.dims or ()) == (cols, rows) if transposed else element_count(b.dims or ()) == rows * cols
    if item is None or byte_size(a.dtype, 8) != 8 * item or not fits:
        return None  # elements that are not whole bytes, or not the layout asked about
    if not (_embedded(a, rows * cols * item) and _embedded(b, rows * cols * item)):
        return None
    agree = _agree(relation, a.dtype)
    if agree is None:
        return None  # a reciprocal of no float type this reads
    picks = random.Random(rows * 1_000_003 + cols).sample(range(rows * cols), min(SAMPLES, rows * cols))
    seen = set()
    for flat in sorted(picks):
        i, j = divmod(flat, cols)
        value = read(a.raw[0] + flat * item, item)  # type: ignore[index]
        at = (j * rows + i) if transposed else flat
        if not agree(value, read(b.raw[0] + at * item, item)):  # type: ignore[index]
            return False
        seen.add(value)
    return True if len(seen) > 1 else None  # one value everywhere (zeros, ones): no evidence either way


# float dtypes a reciprocal is read in (struct format), and how far apart x * (1 / x) may be from 1 after
# rounding the reciprocal to the type (and an epsilon an exporter added before dividing: 1 / (alpha + 1e-9))
_FLOATS = {1: ("<f", 1e-5), 11: ("<d", 1e-5), 10: ("<e", 2e-3)}  # FLOAT, DOUBLE, FLOAT16


def _agree(relation: str, dtype: int) -> Callable[[bytes, bytes], bool] | None:
    if relation != RECIPROCAL:
        return bytes.__eq__
    if dtype not in _FLOATS:
        return None
    fmt, tolerance = _FLOATS[dtype]

    def reciprocal(original: bytes, copy: bytes) -> bool:
        x: float = struct.unpack(fmt, original)[0]
        y: float = struct.unpack(fmt, copy)[0]
        return x != 0 and abs(x * y - 1.0) <= tolerance  # a NaN fails too

    return reciprocal


def _embedded(record: TensorRecord, length: int) -> bool:
    return not record.is_external and record.raw is not None and record.raw[1] - record.raw[0] == length


def _element(fd: int, offset: int, item: int) -> bytes:
    """One element of a local file, by pread."""
    data = os.pread(fd, item, offset)
    if len(data) != item:
        raise OSError("the file changed while being read")
    return data
