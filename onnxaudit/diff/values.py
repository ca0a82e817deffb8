"""Do two aligned tensors hold the same values? Answered from bounded reads of both files.

By default a tensor pair is compared at SAMPLES element positions (the same positions in both, one
pread each), or whole when it is at most SMALL bytes; `full` streams whole tensors in CHUNK-sized
pieces, both files in step, until a byte budget is spent, then falls back to samples. Nothing is
decoded: equal bytes are equal values. Data embedded in the model file and external data that passes
io.external's checks are read; anything else (typed fields, sparse tensors, unusable external
data) is "not compared", with the reason.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from onnxaudit.errors import AuditError
from onnxaudit.io.budget import MAX_NODES
from onnxaudit.io.datamap import FileMap, TensorRecord, map_file
from onnxaudit.io.dims import byte_size, element_count
from onnxaudit.io.external import Extent, ExternalFiles, Problem
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.io.weights import ScanError, chunks, read_bytes
from onnxaudit.model.read import open_model_file

SAMPLES = 64  # positions compared per pair: unrelated or retrained weights differ at the first
SMALL = 4096  # a tensor this small is compared whole: one read, an exact answer
DEFAULT_BUDGET = 256 << 20  # bytes per file that `full` compares before it falls back to samples
ValuesMode = Literal["sample", "full", "none"]
MODES: tuple[ValuesMode, ...] = get_args(ValuesMode)
SAME, DIFFERENT, NOT_COMPARED = "same", "different", "not compared"

_TYPED_FLOATS: dict[int, str] = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data"}

Key = tuple[str, str]  # (graph scope, tensor name), as load.ModelView and datamap give them


@dataclass
class ValueVerdict:
    verdict: str  # same | different | not compared
    how: str  # what was compared ("64 samples", "all 1,024 bytes") or why nothing was


class _File:
    """One model file open for bounded reads: its descriptor, its data map, its external files."""

    def __init__(self, path: Path, max_nodes: int, nodes: bool) -> None:
        self.fd, size = open_model_file(path)
        try:
            self.map: FileMap = map_file(self.fd, size, str(path), max_nodes, nodes)
        except BaseException:
            os.close(self.fd)
            raise
        self.external = ExternalFiles(path.parent)

    def close(self) -> None:
        self.external.close()
        os.close(self.fd)

    def extent(self, key: Key) -> tuple[TensorRecord, Extent] | str:
        record = self.map.tensors.get(key)
        if record is None:
            return "not found in the file"
        if record.origin.startswith("sparse"):
            return "sparse storage"
        if record.dims is None or any(d < 0 for d in record.dims):
            return "invalid dims"
        count = element_count(record.dims)
        expected = byte_size(record.dtype, count)
        if expected is None:
            return "dtype not compared"
        if record.is_external:
            resolved = self.external.resolve(record, count)
            return resolved.message if isinstance(resolved, Problem) else (record, resolved)
        span = record.raw or self._typed_span(record)
        if span is None:
            return "stored in typed fields"
        start, end = span
        if end - start != expected:
            return "stored length does not match its dims"
        return record, Extent(self.fd, start, end - start)

    @staticmethod
    def _typed_span(record: TensorRecord) -> tuple[int, int] | None:
        """float_data / double_data written as one packed field: little-endian IEEE values, the same
        bytes raw_data would hold (onnx-simplifier saves weights so)."""
        name = _TYPED_FLOATS.get(record.dtype)
        typed = record.typed.get(name) if name else None
        if typed is None or not typed.packed or typed.unpacked or len(typed.spans) != 1:
            return None
        return typed.spans[0]


def compare_values(
    old_path: Path,
    new_path: Path,
    pairs: list[tuple[Key, Key]],
    mode: ValuesMode = "sample",
    budget: int = DEFAULT_BUDGET,
    max_nodes: int = MAX_NODES,
    nodes: bool = True,
) -> list[ValueVerdict]:
    """A verdict per (old key, new key) pair, in order; each file's map walked at `max_nodes` (io/budget.py), and
    (`nodes` False) without its nodes, for keys that all name the main graph's initializers."""
    if mode == "none" or not pairs:
        return [ValueVerdict(NOT_COMPARED, "values not asked for") for _ in pairs]
    opened: list[_File] = []
    try:
        opened = [_File(old_path, max_nodes, nodes), _File(new_path, max_nodes, nodes)]
    except (OSError, AuditError) as exc:
        for file in opened:
            file.close()
        return [ValueVerdict(NOT_COMPARED, f"file not readable again ({exc})") for _ in pairs]
    old, new = opened
    left = budget if mode == "full" else 0
    verdicts = []
    try:
        for old_key, new_key in pairs:
            verdict, spent = _pair(old, new, old_key, new_key, left)
            left -= spent
            verdicts.append(verdict)
    finally:
        old.close()
        new.close()
    return verdicts


def _pair(old: _File, new: _File, old_key: Key, new_key: Key, budget: int) -> tuple[ValueVerdict, int]:
    a, b = old.extent(old_key), new.extent(new_key)
    if isinstance(a, str) or isinstance(b, str):
        side, reason = ("OLD", a) if isinstance(a, str) else ("NEW", b)
        return ValueVerdict(NOT_COMPARED, f"{side}: {reason}"), 0
    (ra, ea), (rb, eb) = a, b
    if ra.dtype != rb.dtype or tuple(ra.dims or ()) != tuple(rb.dims or ()):
        return ValueVerdict(NOT_COMPARED, "stored dtype or dims differ"), 0
    try:
        if ea.length <= SMALL:
            return _whole(ea, eb), 0
        if ea.length <= budget:
            return _whole(ea, eb), ea.length
        return _sampled(ea, eb, ra), 0
    except (OSError, ScanError):
        return ValueVerdict(NOT_COMPARED, "the file changed while being read"), 0


def _whole(a: Extent, b: Extent) -> ValueVerdict:
    """Both extents streamed in step (same chunk boundaries), stopping at the first difference."""
    for x, y in zip(chunks(a), chunks(b), strict=True):
        if isinstance(x, int) and isinstance(y, int):
            continue  # both holes: zeros
        if isinstance(x, int) or isinstance(y, int):
            data = y if isinstance(x, int) else x
            same = isinstance(data, bytes) and data.count(0) == len(data)
        else:
            same = x == y
        if not same:
            return ValueVerdict(DIFFERENT, f"compared all {a.length:,} bytes")
    return ValueVerdict(SAME, f"compared all {a.length:,} bytes")


def _sampled(a: Extent, b: Extent, record: TensorRecord) -> ValueVerdict:
    item = byte_size(record.dtype, 1) or 1
    if byte_size(record.dtype, 8) != 8 * item:
        item = 1  # elements smaller than a byte (int4): compare whole bytes
    units = a.length // item
    picks = sorted(random.Random(units).sample(range(units), min(SAMPLES, units)))
    for at in picks:
        if _read(a, at * item, item) != _read(b, at * item, item):
            return ValueVerdict(DIFFERENT, f"differ at sampled position {at:,}")
    return ValueVerdict(SAME, f"{len(picks)} sampled positions")


def _read(extent: Extent, at: int, length: int) -> bytes:
    return read_bytes(extent.fd, extent.offset + at, length)
