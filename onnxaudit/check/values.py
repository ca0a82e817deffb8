"""Value rules, from one bounded scan per parameter tensor: NaN/Inf (OA101), BatchNormalization variance
(OA102, OA103), all-zero weights (OA104), contents stored twice (OA105), and what was not scanned (OA308).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from onnxaudit.check.data import FileCheck
from onnxaudit.check.rules import Finding, finding
from onnxaudit.count.roles import RoleTable
from onnxaudit.io.datamap import FileMap
from onnxaudit.io.dims import byte_size, dtype_name
from onnxaudit.io.external import Extent
from onnxaudit.io.text import as_text, key, quoted
from onnxaudit.io.weights import Stats, digest, scan, transposed_equal
from onnxaudit.model.load import ModelView, Tensor

SCANNED_CATEGORIES = frozenset({"parameter", "statistic"})
ZERO_ROLES = frozenset({"weight", "embedding", "rnn_W", "rnn_R", "bn_gamma", "norm_scale"})
MIN_DUPLICATE = 16  # smaller tensors repeat by chance (a 1-element bias, a fresh BN's ones)
BN_GAIN_LIMIT = 100.0  # 1/sqrt(var + eps) above this turns noise into saturation
STD_DOMAINS = ("", "ai.onnx")


@dataclass
class ScanTotals:
    tensors: int = 0
    bytes: int = 0
    holes: int = 0  # bytes of sparse holes, known zero without reading
    not_scanned: int = 0


@dataclass
class _Target:
    key: tuple[str, str]
    tensor: Tensor
    role: str
    extent: Extent
    order: int


def value_findings(
    view: ModelView, roles: RoleTable, files: FileMap, data: FileCheck
) -> tuple[list[Finding], ScanTotals]:
    totals = ScanTotals()
    targets: list[_Target] = []
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
        else:
            targets.append(_Target(k, tensor, entry.role, extent, order))
    stats = _scan_all(targets, totals)
    findings: list[Finding] = []
    for target in targets:
        findings += _tensor_rules(target, stats[target.key])
    findings += _bn_rules(view, stats)
    findings += _duplicates(targets, stats)
    totals.not_scanned = len(skipped)
    if skipped:
        shown = ", ".join(f"{quoted(name)} ({why})" for name, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        message = f"{len(skipped)} parameter tensors not scanned for values: {shown}{more}"
        findings.append(finding("OA308", message, "model"))
    return findings, totals


def _scan_all(targets: list[_Target], totals: ScanTotals) -> dict[tuple[str, str], Stats]:
    results: dict[tuple[str, str], Stats] = {}
    for t in targets:
        result = scan(t.extent, t.tensor.dtype, _count(t.tensor))
        results[t.key] = result
        totals.tensors += 1
        totals.bytes += t.extent.length
        totals.holes += result.holes
    return results


def _count(tensor: Tensor) -> int:
    return math.prod(tensor.dims or ())


def _tensor_rules(target: _Target, stats: Stats) -> list[Finding]:
    name, scope = as_text(target.tensor.name), target.tensor.scope
    out: list[Finding] = []
    if stats.nan or stats.inf:
        parts = [f"{n:,} {label}" for n, label in ((stats.nan, "NaN"), (stats.inf, "Inf")) if n]
        message = f"{target.role} {quoted(name)} holds {' and '.join(parts)} among {stats.count:,} values"
        out.append(finding("OA101", message, "tensor", name, scope))
    if target.role in ZERO_ROLES and stats.all_zero:
        message = f"{target.role} {quoted(name)} is all zeros ({stats.count:,} values): the layer outputs nothing"
        out.append(finding("OA104", message, "tensor", name, scope))
    return out


def _bn_rules(view: ModelView, stats: dict[tuple[str, str], Stats]) -> list[Finding]:
    out: list[Finding] = []
    for node in view.all_nodes():
        if node.op_type != "BatchNormalization" or node.domain not in STD_DOMAINS or len(node.inputs) < 5:
            continue
        var = view.lookup(node.scope, node.inputs[4]) if node.inputs[4] else None
        found = stats.get(key(*var.key)) if var is not None else None
        if found is None or found.minimum is None:
            continue
        eps = node.attrs.get("epsilon", 1e-5)
        eps = float(eps) if isinstance(eps, (int, float)) else 1e-5
        label, var_name = as_text(node.label), quoted(var.name)
        if found.negative or found.minimum + eps <= 0:
            if found.negative:
                detail = f"has {found.negative:,} negative values (min {found.minimum:g})"
            else:
                detail = f"reaches var + epsilon = {found.minimum + eps:g} (epsilon {eps:g}): division by zero"
            message = f"BatchNormalization {quoted(label)}: variance {var_name} {detail}"
            out.append(finding("OA102", message, "node", label, node.scope))
            continue
        gain = 1.0 / math.sqrt(found.minimum + eps)
        if gain > BN_GAIN_LIMIT:
            message = (
                f"BatchNormalization {quoted(label)}: variance {var_name} min {found.minimum:g} with epsilon "
                f"{eps:g} scales a channel by {gain:,.0f}x"
            )
            out.append(finding("OA103", message, "node", label, node.scope))
    return out


def _duplicates(targets: list[_Target], stats: dict[tuple[str, str], Stats]) -> list[Finding]:
    """Identical contents: tensors whose byte length and value statistics agree are hashed (a second
    read, rarely needed: real weights differ in min/max), equal digests are copies. Then transposed
    copies among the distinct contents."""
    out: list[Finding] = []
    alike: dict[tuple[object, ...], list[_Target]] = defaultdict(list)
    for t in targets:
        s = stats[t.key]
        if _count(t.tensor) >= MIN_DUPLICATE and not s.uniform:
            alike[(t.tensor.dtype, t.extent.length, *_summary(s, t.tensor.dtype))].append(t)
    by_digest: dict[tuple[int, str], list[_Target]] = defaultdict(list)
    for group in alike.values():
        if len(group) > 1:
            for t in group:
                by_digest[(t.tensor.dtype, digest(t.extent))].append(t)
    copies: set[tuple[str, str]] = set()
    for group in by_digest.values():
        first = group[0]
        for other in group[1:]:
            copies.add(other.key)
            message = (
                f"{quoted(other.tensor.name)} holds the same {_count(other.tensor):,} "
                f"{dtype_name(other.tensor.dtype)} values as {quoted(first.tensor.name)} (stored twice)"
            )
            out.append(finding("OA105", message, "tensor", as_text(other.tensor.name), other.tensor.scope))
    distinct = [t for t in targets if t.key not in copies]
    out += _transposed(distinct, stats, budget=sum(t.extent.length for t in targets) + (64 << 20))
    return out


def _transposed(targets: list[_Target], stats: dict[tuple[str, str], Stats], budget: int) -> list[Finding]:
    """Pairs (r x c, c x r) with equal value statistics, compared exactly; each tensor is matched at most
    once, and full comparisons stop after `budget` bytes (a model built to make them slow says so)."""
    out: list[Finding] = []
    by_shape: dict[tuple[int, int, int], list[_Target]] = defaultdict(list)
    for t in targets:
        dims = t.tensor.dims or ()
        if len(dims) == 2 and dims[0] > 1 and dims[1] > 1 and _count(t.tensor) >= MIN_DUPLICATE:
            by_shape[(t.tensor.dtype, dims[0], dims[1])].append(t)
    matched: set[tuple[str, str]] = set()
    skipped = 0
    for (dtype, rows, cols), group in sorted(by_shape.items(), key=lambda item: item[0]):
        item = byte_size(dtype, 1)
        if item is None or byte_size(dtype, 8) != 8 * item:
            continue  # packed sub-byte types: elements are not whole bytes
        for a in group:
            for b in by_shape.get((dtype, cols, rows), []):
                if b.order <= a.order or b.key in matched or a.key in matched:
                    continue
                sa, sb = stats[a.key], stats[b.key]
                if sa.uniform or _summary(sa, dtype) != _summary(sb, dtype):
                    continue
                if budget < a.extent.length:
                    skipped += 1
                    continue
                budget -= a.extent.length
                if transposed_equal(a.extent, (rows, cols), b.extent, item):
                    matched.add(b.key)
                    message = (
                        f"{quoted(b.tensor.name)} ({cols}x{rows}) is {quoted(a.tensor.name)} ({rows}x{cols}) "
                        "transposed: the same weights stored twice"
                    )
                    out.append(finding("OA105", message, "tensor", as_text(b.tensor.name), b.tensor.scope))
    if skipped:
        message = f"{skipped} candidate pairs not compared for transposed copies (comparison budget spent)"
        out.append(finding("OA308", message, "model"))
    return out


def _summary(s: Stats, dtype: int) -> tuple[object, ...]:
    """Statistics a transposed copy shares exactly with its original (a cheap filter before comparing)."""
    if not s.decoded:
        return (s.count,)
    return (s.count, s.nan, s.inf, s.negative, s.minimum, s.maximum)
