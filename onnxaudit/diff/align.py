"""Pair the layers of two Reports: by name first, then by structure.

Names: a layer's weights name their module in most exports (`conv0.weight`), even where the node
scope names another (dynamo puts a conv with a fused BN under the BN's scope), so a row is known
first by the module its named weights give, then by its own name; both with exporter decorations
stripped (names.py). Rows still unpaired are paired by structure: the same ops (a quantized op
counted as its float op) and the same weight shapes, then the same ops and weight (not bias) shapes,
then the same weight shapes alone, then (for
rows without weights) the same ops, each in graph order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from onnxaudit.diff.names import layer_key, tensor_module
from onnxaudit.diff.quant import float_ops
from onnxaudit.report.build import Report, Row, TensorRow

BY_NAME, BY_STRUCTURE = "name", "structure"


@dataclass
class Entry:
    """One layer row of one file, with what alignment looks at."""

    index: int
    row: Row
    tensors: list[TensorRow]  # the counted tensors, in the row's order
    keys: list[str] = field(default_factory=list)  # the most telling first
    ops: tuple[str, ...] = ()
    dims: tuple[tuple[int, ...], ...] = ()
    weight_dims: tuple[tuple[int, ...], ...] = ()


@dataclass
class Pair:
    old: Entry | None
    new: Entry | None
    matched_by: str | None


def entries(report: Report) -> list[Entry]:
    by_name: dict[str, TensorRow] = {}
    for t in report.tensors:
        by_name.setdefault(t.name, t)
    out = []
    for i, row in enumerate(report.rows):
        tensors = [by_name[n] for n in row.tensors if n in by_name]
        entry = Entry(i, row, tensors, _keys(row, tensors), tuple(float_ops(row.ops) or float_ops(row.all_ops)))
        entry.dims = _dims(tensors)
        entry.weight_dims = _dims([t for t in tensors if t.role == "weight"])
        out.append(entry)
    return out


def _dims(tensors: list[TensorRow]) -> tuple[tuple[int, ...], ...]:
    return tuple(sorted(tuple(t.dims) if t.dims is not None else (-1,) for t in tensors))


def _keys(row: Row, tensors: list[TensorRow]) -> list[str]:
    # onnxruntime's ConvBnFusion_* names the BN folded away, not the conv that now holds the tensor
    named = [t for t in tensors if not t.name.startswith("ConvBnFusion")]
    weights = [t for t in named if t.role == "weight"] or named
    modules = [m for t in weights if (m := tensor_module(t.name))]
    others = [m for t in named if (m := tensor_module(t.name))]
    own = layer_key(row.name)
    keys = [m.casefold() for m in modules[:1]] + ([own] if own else []) + [m.casefold() for m in others]
    return list(dict.fromkeys(keys))


def align(old: list[Entry], new: list[Entry]) -> list[Pair]:
    """Every entry of both sides once: paired, or alone. Ordered as OLD's rows, NEW's unpaired rows
    after the row they follow in NEW."""
    pairs: dict[int, Pair] = {}  # by old index
    free_new = {e.index: e for e in new}
    free_old = {e.index: e for e in old}

    def take(key_of: Callable[[Entry], Sequence[Hashable]], how: str) -> None:
        waiting: dict[Hashable, list[Entry]] = defaultdict(list)
        for e in new:
            if e.index in free_new:
                for k in key_of(e):
                    waiting[k].append(e)
        for o in old:
            if o.index not in free_old:
                continue
            for k in key_of(o):
                found = next((n for n in waiting.get(k, ()) if n.index in free_new and _may_pair(o, n, how)), None)
                if found is not None:
                    pairs[o.index] = Pair(o, found, how)
                    del free_old[o.index], free_new[found.index]
                    break

    take(lambda e: e.keys[:1], BY_NAME)
    take(lambda e: e.keys, BY_NAME)
    take(lambda e: [("ops+dims", e.ops, e.dims)], BY_STRUCTURE)
    take(lambda e: [("ops+weights", e.ops, e.weight_dims)] if e.weight_dims else [], BY_STRUCTURE)
    take(lambda e: [("dims", e.dims)] if e.tensors else [], BY_STRUCTURE)
    take(lambda e: [("ops", e.ops)] if not e.tensors else [], BY_STRUCTURE)
    return _ordered(old, new, pairs, free_new)


def _may_pair(old: Entry, new: Entry, how: str) -> bool:
    """A name pairs rows only when both hold weights or neither does (onnxruntime names a fused conv
    after the Relu it absorbed), and rows with weights only when they share an op (a BN's name on the
    conv it was folded into is not the BN)."""
    if how != BY_NAME:
        return True
    if bool(old.tensors) != bool(new.tensors):
        return False
    return not old.tensors or bool(set(old.ops) & set(new.ops))


def _ordered(old: list[Entry], new: list[Entry], pairs: dict[int, Pair], free_new: dict[int, Entry]) -> list[Pair]:
    placed: list[tuple[tuple[int, int, int], Pair]] = []
    old_of_new = {p.new.index: p.old.index for p in pairs.values() if p.new is not None and p.old is not None}
    for o in old:
        pair = pairs.get(o.index) or Pair(o, None, None)
        placed.append(((o.index, 0, pair.new.index if pair.new else -1), pair))
    after = -1
    for n in new:
        if n.index in old_of_new:
            after = old_of_new[n.index]
        elif n.index in free_new:
            placed.append(((after, 1, n.index), Pair(None, n, None)))
    return [pair for _, pair in sorted(placed, key=lambda item: item[0])]
