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

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from onnxaudit.diff.names import layer_key, tensor_module
from onnxaudit.diff.quant import float_ops
from onnxaudit.report.build import Report, Row, TensorRow

BY_NAME, BY_STRUCTURE = "name", "structure"


@dataclass(slots=True)  # 500,000 of them for two files at the node limit: no __dict__ each
class Entry:
    """One layer row of one file, with what alignment looks at."""

    index: int
    row: Row
    tensors: list[TensorRow]  # the counted tensors, in the row's order
    keys: list[str] = field(default_factory=list)  # the most telling first
    ops: tuple[str, ...] = ()
    dims: tuple[tuple[int, ...], ...] = ()
    weight_dims: tuple[tuple[int, ...], ...] = ()


@dataclass(slots=True)
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
        ops = float_ops(row.ops) or float_ops(row.all_ops)
        if not tensors:  # most rows of a large graph: a name and ops to align by, nothing else
            own = layer_key(row.name)
            out.append(Entry(i, row, tensors, [own] if own else [], ops))
            continue
        entry = Entry(i, row, tensors, _keys(row, tensors), ops)
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
        # NEW's free entries by key, in graph order, each list with the index of its first entry still free: an
        # entry once taken stays taken, so no list is scanned twice (250k rows of one name were 250k^2 steps)
        if not free_old or not free_new:
            return  # one side all paired: nothing left to pair (a file against itself, after the first pass)
        waiting: dict[Hashable, tuple[list[Entry], list[int]]] = {}
        for e in new:
            if e.index in free_new:
                for k in key_of(e):
                    for bucket in _buckets(k, e, how):
                        bucket_list = waiting.get(bucket)
                        if bucket_list is None:
                            waiting[bucket] = ([e], [0])
                        else:
                            bucket_list[0].append(e)
        for o in old:
            if o.index not in free_old:
                continue
            for k in key_of(o):
                found = _first_free([waiting.get(b) for b in _buckets(k, o, how)], free_new)
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


def _buckets(key: Hashable, entry: Entry, how: str) -> list[Hashable]:
    """Where an entry waits, or is looked for, under `key`. A name pairs rows only when both hold weights or
    neither does (onnxruntime names a fused conv after the Relu it absorbed), and rows with weights only when
    they share an op (a BN's name on the conv it was folded into is not the BN): by name, a row without weights
    waits under its key, one with weights under its key and each of its ops."""
    if how != BY_NAME:
        return [key]
    if not entry.tensors:
        return [(key, None)]
    return [(key, op) for op in dict.fromkeys(entry.ops)]


def _first_free(lists: list[tuple[list[Entry], list[int]] | None], free: dict[int, Entry]) -> Entry | None:
    """The first entry in graph order still free among the waiting lists (their heads moved past taken ones)."""
    best: Entry | None = None
    for found in lists:
        if found is None:
            continue
        entries, head = found
        while head[0] < len(entries) and entries[head[0]].index not in free:
            head[0] += 1
        if head[0] < len(entries) and (best is None or entries[head[0]].index < best.index):
            best = entries[head[0]]
    return best


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
