"""Map onnxruntime's profile back to the file's main-graph values (`onnxaudit shapes --method profile`).

With profiling on, onnxruntime records one "kernel_time" event per executed node with the type and
shape of every tensor the node read and wrote, and frees each value as soon as its last consumer ran.
This module turns those events into the same observations the all-outputs run gives:
{value: {"shape": [...], "type": "tensor(float)"}}.

How an event is tied to a node of the file (onnxruntime 1.17-1.32 behave alike):
- the event is named "<node name>_kernel_time", or "<OpType>_<index>_kernel_time" for an unnamed node,
  and carries the node's index ("node_index"); onnxruntime numbers the main graph's nodes in file order
  after turning every Constant node into an initializer, so index = position among non-Constant nodes;
- If/Loop/Scan bodies record their own events (their own names and indices, which can coincide with a
  main node's), always inside the time span of the main-graph node that ran them; main-graph nodes run
  once each, one after the other. An event is a main node's when its name, op and index match and it
  lies inside no control-flow node's span; a node with no such event, or more than one, is not observed.
- a node's outputs (inputs) list only the tensors that exist, in order: missing optional values and
  non-tensor values (sequences, maps) are left out.
A value is read from, in order: the run's own results (graph outputs), the event of the node that
produced it, the event of the first node that consumed it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from onnxaudit.io.onnxcore import TensorProto

if TYPE_CHECKING:
    from onnxaudit.model.view import ModelView, Node

# onnxruntime's InsertCastTransformer: ops without a float16 kernel run in float32 between these Casts
PRECISION_CAST = "InsertedPrecisionFreeCast_"
_HALF_TYPES: dict[int, str] = {TensorProto.FLOAT16: "tensor(float16)", TensorProto.BFLOAT16: "tensor(bfloat16)"}
_CONTROL_CHARS = frozenset(chr(c) for c in range(0x20)) | {'"', "\\", "\x7f"}
_SHOWN = 5

# A tensor as the child recorded it: [element type, dims] (None where the profile's entry was malformed)
Recorded = Sequence[Any]
# What is known of one value, as the all-outputs run reports it: {"shape": [...], "type": "tensor(float)"}
# or {"kind": "sequence"} (JSON from the child)
Observed = dict[str, Any]


class Event(NamedTuple):
    """One kernel_time event as the child keeps it: outputs/inputs are [type, dims] pairs (None if malformed)."""

    name: str
    op: str
    node_index: int  # -1 when onnxruntime did not record one
    ts: int
    dur: int
    outputs: Sequence[Recorded | None]
    inputs: Sequence[Recorded | None]

    @property
    def end(self) -> int:
        return self.ts + self.dur


@dataclass
class ProfileObservation:
    values: dict[str, Observed] = field(default_factory=dict)
    limits: list[str] = field(default_factory=list)


def event_names(view: ModelView) -> list[tuple[Node, str, int]]:
    """(node, the name onnxruntime gives its event, its onnxruntime index) for every main-graph node
    that runs as a kernel (Constant nodes become initializers and record nothing)."""
    expected = []
    index = 0
    for node in view.main.nodes:
        if node.op_type == "Constant":  # onnxruntime drops them whatever their domain
            continue
        expected.append((node, node.name or f"{node.op_type}_{index}", index))
        index += 1
    return expected


def unsafe_names(view: ModelView) -> list[str]:
    """Node (and function) names an older onnxruntime writes into its profile unescaped: quotes,
    backslashes, control characters, invalid UTF-8. A profile holding them cannot be trusted."""
    names = [n.name for n in view.all_nodes()] + [name for _, name in view.functions]
    return [name for name in names if any(c in _CONTROL_CHARS or "\ud800" <= c <= "\udfff" for c in name)]


def events_from_child(records: list[object]) -> list[Event]:
    """The child's compact records [name, op, index, ts, dur, outputs, inputs] as Events (the child
    checked every field's type; anything else is dropped, never trusted)."""
    events = []
    for rec in records:
        if type(rec) is list and len(rec) == 7 and all(type(x) is int for x in rec[2:5]):
            events.append(Event._make(rec))
    return events


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined (spans that merely touch stay apart)."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _inside(event: Event, spans: list[tuple[int, int]], starts: list[int], control_flow: bool) -> bool:
    """Whether `event` lies inside a control-flow node's span (for a control-flow node's own event:
    strictly inside a bigger one). Timestamps are whole microseconds, so a 0 us node at the very edge
    of a span counts as inside: not observed, never misattributed."""
    k = bisect_right(starts, event.ts) - 1
    while k >= 0:
        start, end = spans[k]
        if event.end <= end:
            return not (control_flow and (start, end) == (event.ts, event.end))
        if end < event.ts:  # merged spans are disjoint and sorted: no earlier one can reach
            return False
        k -= 1
    return False


def _pairs(
    names: Sequence[str], recorded: Sequence[Recorded | None], kinds: dict[str, str]
) -> list[tuple[str, Recorded]] | None:
    """Tie recorded tensors to a node's value names: onnxruntime skips missing and non-tensor values."""
    if len(names) == len(recorded) and all(names) and all(recorded):
        # nearly every node: one tensor per named value (the test leaves every item in)
        return [(name, item) for name, item in zip(names, recorded, strict=True) if item]
    present = [n for n in names if n]
    if len(recorded) != len(present):
        present = [n for n in present if n not in kinds]  # known sequences, maps, optionals
        if len(recorded) != len(present):
            return None
    return [(name, item) for name, item in zip(present, recorded, strict=True) if item is not None]


def _record(item: Recorded) -> Observed:
    kind, dims = item
    return {"shape": [int(d) for d in dims], "type": f"tensor({kind})"}


def _names(items: list[str]) -> str:
    shown = ", ".join(repr(n) for n in items[:_SHOWN])
    return shown + (" ..." if len(items) > _SHOWN else "")


def observe(
    view: ModelView,
    wanted: list[str],
    events: list[Event],
    results: dict[str, Observed],
    kinds: dict[str, str],
    file_dtypes: dict[str, int],
    precision_casts: int = 0,
    crowded: set[str] | frozenset[str] = frozenset(),
    complete: bool = True,
) -> ProfileObservation:
    """Observations for the `wanted` main-graph values from the profile `events` and the run's
    `results` (graph outputs). `kinds` names values known not to be tensors, `file_dtypes` gives the
    element type the file states or onnx infers, `crowded` the event names the child saw too often
    to keep, `complete` whether the profile was read to its end."""
    found = ProfileObservation()
    expected = event_names(view)
    by_name: dict[str, list[Event]] = {}
    for event in events:
        by_name.setdefault(event.name, []).append(event)

    # onnxruntime's numbering is checked on the named nodes before unnamed ones rely on it
    numbering_ok = True
    for node, name, index in expected:
        if node.name and name not in crowded:
            own = [e for e in by_name.get(name, ()) if e.op == node.op_type and e.node_index >= 0]
            if len(own) == 1 and own[0].node_index != index:
                numbering_ok = False
                break
    if not numbering_ok:
        found.limits.append(
            "onnxruntime numbered the main graph's nodes differently than expected: "
            "values of unnamed nodes were read only from their consumers and the graph outputs"
        )

    control = [(n, name) for n, name, _ in expected if n.subgraphs]
    spans = _merge([(e.ts, e.end) for n, name in control for e in by_name.get(name, ()) if e.op == n.op_type])
    starts = [s for s, _ in spans]

    node_event: dict[int, Event] = {}
    ambiguous: list[str] = []
    for node, name, index in expected:
        if not node.name and not numbering_ok:
            continue
        candidates = [
            e
            for e in by_name.get(name, ())
            if e.op == node.op_type and (e.node_index < 0 or e.node_index == index or (node.name and not numbering_ok))
        ]
        if spans:
            candidates = [e for e in candidates if not _inside(e, spans, starts, bool(node.subgraphs))]
        if len(candidates) == 1 and name not in crowded:
            node_event[node.index] = candidates[0]
        elif candidates or name in crowded:
            ambiguous.append(node.label)

    wanted_set = set(wanted)
    observed = found.values
    for name in wanted:
        if name in results:
            observed[name] = results[name]
        elif name in kinds:
            observed[name] = {"kind": kinds[name]}
    unpaired: list[str] = []
    for node in view.main.nodes:  # producers first ...
        produced = node_event.get(node.index)
        if produced is None:
            continue
        pairs = _pairs(node.outputs, produced.outputs, kinds)
        if pairs is None:
            unpaired.append(node.label)
            continue
        for value, item in pairs:
            if value in wanted_set and value not in observed:
                observed[value] = _record(item)
    for node in view.main.nodes:  # ... then the first consumer of what is still missing
        consumed = node_event.get(node.index)
        if consumed is None or all(v in observed or v not in wanted_set for v in node.inputs if v):
            continue
        pairs = _pairs(node.inputs, consumed.inputs, kinds)
        for value, item in pairs or ():
            if value in wanted_set and value not in observed:
                observed[value] = _record(item)

    if precision_casts:
        widened = []
        for name, seen in observed.items():
            want = file_dtypes.get(name, 0)
            if name not in results and seen.get("type") == "tensor(float)" and want in _HALF_TYPES:
                seen["type"] = _HALF_TYPES[want]
                widened.append(name)
        if widened:
            found.limits.append(
                f"onnxruntime computed {len(widened)} 16-bit float value(s) in float32 (it put Casts around ops "
                f"without a 16-bit kernel): their shapes are observed, their element type is the file's: "
                f"{_names(widened)}"
            )

    missing = [n for n in wanted if n not in observed]
    if missing:
        why = []
        if ambiguous:
            why.append(f"events of {len(ambiguous)} node(s) could not be told apart ({_names(ambiguous)})")
        if unpaired:
            why.append(f"{len(unpaired)} node(s) recorded fewer tensors than they have outputs ({_names(unpaired)})")
        if not complete:
            why.append("the profile ended early (its file-size limit, or text that is not JSON)")
        reason = "; ".join(why) if why else "their nodes left no event (onnxruntime ran them as its own rewrites)"
        found.limits.append(
            f"{len(missing)} value(s) not in onnxruntime's profile: {_names(missing)} ({reason}); "
            "--method outputs observes every value"
        )
    return found


__all__ = ["Event", "ProfileObservation", "event_names", "events_from_child", "observe", "unsafe_names"]
