"""Is a stored weight another stored weight again (transposed)? Settled by values at sampled positions.

The framework view pairs tensors shaped like a transposed copy of a named weight (a tied output head
folded at export: `onnx::MatMul_803` beside `embed_tokens.weight`), or like a shared module's weight
stored again for another call. Names and shapes cannot settle such a pair; a few values can: unrelated
matrices differ at once, a copy agrees everywhere. Only data embedded in the model file is read, one
element at a time by pread at the sampled positions; external data files are never opened, and a pair
stored there (or in typed fields) stays undecided.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from onnxaudit.errors import AuditError
from onnxaudit.io.datamap import MAIN, FileMap, TensorRecord, map_file
from onnxaudit.io.dims import byte_size, element_count
from onnxaudit.io.remote import is_url
from onnxaudit.model.read import open_model_file

SAMPLES = 64  # element pairs compared: unrelated matrices differ at the first, a copy agrees at all


Key = tuple[str, str]  # (graph scope, tensor name), as model.view.ModelView and datamap give them


def settle_copies(
    path: Path | str, transposed: dict[str, str], same_layout: dict[str, str], scoped: dict[Key, Key] | None = None
) -> dict[str, bool]:
    """For each `copy -> original` pair of main-graph initializers (`transposed`: the copy holds the
    original transposed; `same_layout`: in its own layout, a shared module's weight folded once per
    call), and of tensors stored anywhere in the file (`scoped`, same layout: one weight stored in both
    branches of an If): True when they agree at every sampled position (and the samples are not all one
    value), False at the first difference. Pairs that cannot be read (external or typed data, a file
    changed meanwhile) are left out: undecided. One walk of the file finds every pair's bytes. Scoped
    pairs are answered under their copy's name."""
    scoped = scoped or {}
    if not transposed and not same_layout and not scoped or is_url(path):
        return {}  # a URL's weights are never fetched: its pairs stay undecided
    try:
        fd, size = open_model_file(Path(path))
    except (OSError, AuditError):
        return {}
    try:
        files = map_file(fd, size, str(path))
        verdicts = {}
        for pairs, flipped in ((transposed, True), (same_layout, False)):
            for copy, original in pairs.items():
                verdict = _compare(fd, files, (MAIN, copy), (MAIN, original), flipped)
                if verdict is not None:
                    verdicts[copy] = verdict
        for copy_key, original_key in scoped.items():
            verdict = _compare(fd, files, copy_key, original_key, False)
            if verdict is not None:
                verdicts[copy_key[1]] = verdict
        return verdicts
    except (OSError, AuditError):
        return {}
    finally:
        os.close(fd)


def _compare(fd: int, files: FileMap, copy: Key, original: Key, transposed: bool) -> bool | None:
    a, b = files.tensors.get(original), files.tensors.get(copy)
    if a is None or b is None or a.dtype != b.dtype or not a.dims or (transposed and len(a.dims) != 2):
        return None
    # a same-layout pair of any rank is compared as rows of its last dim
    rows, cols = (a.dims[0], a.dims[1]) if transposed else (element_count(a.dims[:-1]), a.dims[-1])
    item = byte_size(a.dtype, 1)
    layout = (cols, rows) if transposed else tuple(a.dims)
    if item is None or byte_size(a.dtype, 8) != 8 * item or tuple(b.dims or ()) != layout:
        return None  # elements that are not whole bytes, or not the layout asked about
    if not (_embedded(a, rows * cols * item) and _embedded(b, rows * cols * item)):
        return None
    picks = random.Random(rows * 1_000_003 + cols).sample(range(rows * cols), min(SAMPLES, rows * cols))
    seen = set()
    for flat in sorted(picks):
        i, j = divmod(flat, cols)
        value = _element(fd, a.raw[0] + flat * item, item)  # type: ignore[index]
        at = (j * rows + i) if transposed else flat
        if value != _element(fd, b.raw[0] + at * item, item):  # type: ignore[index]
            return False
        seen.add(value)
    return True if len(seen) > 1 else None  # one value everywhere (zeros, ones): no evidence either way


def _embedded(record: TensorRecord, length: int) -> bool:
    return not record.is_external and record.raw is not None and record.raw[1] - record.raw[0] == length


def _element(fd: int, offset: int, item: int) -> bytes:
    data = os.pread(fd, item, offset)
    if len(data) != item:
        raise OSError("the file changed while being read")
    return data
