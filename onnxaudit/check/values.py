"""The value scan the OA1xx rules read: which parameter tensors can be read, one bounded scan of each
(NaN/Inf counts, min/max, zeros), and why the others were not scanned. Runs only when a selected rule
needs values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onnxaudit.check.data import FileCheck
from onnxaudit.count.roles import RoleTable
from onnxaudit.io.datamap import FileMap
from onnxaudit.io.external import Extent
from onnxaudit.io.ranged import RangedBuffer
from onnxaudit.io.text import as_text, key
from onnxaudit.io.weights import Stats, scan
from onnxaudit.model.view import Tensor

if TYPE_CHECKING:
    from onnxaudit.check.copies import Copies

SCANNED_CATEGORIES = frozenset({"parameter", "statistic"})


@dataclass
class ScanTotals:
    tensors: int = 0
    bytes: int = 0
    holes: int = 0  # bytes of sparse holes, known zero without reading
    not_scanned: int = 0


@dataclass
class Target:
    key: tuple[str, str]
    tensor: Tensor
    role: str
    extent: Extent
    order: int

    @property
    def count(self) -> int:
        return math.prod(self.tensor.dims or ())


@dataclass
class ValueScan:
    targets: list[Target]
    stats: dict[tuple[str, str], Stats]
    skipped: list[tuple[str, str]]  # (name, why) of parameter tensors not scanned
    totals: ScanTotals
    copies: Copies | None = field(default=None)  # filled by the first rule that searches for copies


def scan_values(roles: RoleTable, files: FileMap, data: FileCheck, budget: int | None = None) -> ValueScan:
    """Plan from the role table and the file pass's extents, then scan every readable target once.
    `budget`: bytes a model at a URL may fetch (each tensor costs the whole blocks it touches); the
    tensors past it are not scanned, each said."""
    spent = 0
    targets: list[Target] = []
    skipped: list[tuple[str, str]] = []
    for order, entry in enumerate(roles.tensors):
        tensor = entry.tensor
        if entry.category not in SCANNED_CATEGORIES or tensor.storage == "none":
            continue
        k = key(*tensor.key)
        record = files.tensors.get(k)
        extent = data.extents.get(k)
        if record is None or record.dtype != tensor.dtype or record.dims != tensor.dims:
            skipped.append((as_text(tensor.name), "its bytes could not be located"))
        elif extent is None:
            if k not in data.reported:  # an error finding already says why
                skipped.append((as_text(tensor.name), data.unreadable.get(k, "not readable")))
        elif budget is not None and spent + _cost(extent) > budget:
            skipped.append((as_text(tensor.name), f"over the --fetch-values budget ({budget:,} bytes)"))
        else:
            spent += _cost(extent) if budget is not None else 0
            targets.append(Target(k, tensor, entry.role, extent, order))
    totals = ScanTotals(not_scanned=len(skipped))
    stats: dict[tuple[str, str], Stats] = {}
    for t in targets:
        result = scan(t.extent, t.tensor.dtype, t.count)
        stats[t.key] = result
        totals.tensors += 1
        totals.bytes += t.extent.length
        totals.holes += result.holes
    return ValueScan(targets, stats, skipped, totals)


def _cost(extent: Extent) -> int:
    """Bytes scanning `extent` fetches at most: its length from a file, whole blocks from a URL."""
    return extent.fd.span(extent.offset, extent.length) if isinstance(extent.fd, RangedBuffer) else extent.length
