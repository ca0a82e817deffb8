"""Sizes for the free dims of a model's inputs, chosen from the graph itself (no onnxruntime).

Every input dim that is symbolic, unnamed, '?' or negative (-1: an exporter's "any") gets a size and a
reason, in this order:
- a hint the file gives (Ultralytics' `imgsz` and similar metadata_props);
- batch-like (named like a batch, tf2onnx's `unk__N`, or axis 0) -> 1, and the batch axis of a
  recurrent state laid out as (layers, batch, hidden) -> 1;
- spatial (the axis reaches a Conv/Pool window): the smallest multiple of the strides the axis goes
  through (their product along the deepest path) for which every Conv/Pool output is at least 1;
- anything else is sequence-like: a short length.
`choose_sizes(view)` is what the shape run (`onnxaudit shapes`, `summary --run-shapes`) and the cost
figures bind free dims with; each choice keeps the next sizes worth trying when a run rejects it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from onnxaudit.model.view import ModelView, Node, ValueInfo

BATCH_NAMES = frozenset({"n", "b", "bs", "batch", "batch_size", "batchsize", "nbatch", "num_batch", "batch_dim"})
_GENERATED = re.compile(r"^unk__\d+$")  # tf2onnx's and onnx's names for unknown dims
SEQUENCE_LENGTH = 8  # short enough for any positional table, long enough to be a sequence
MAX_SPATIAL = 4096  # no candidate above this: a model that needs more is given its size by --dim
RETRY_CANDIDATES = 3  # sizes kept to try after the first, per dim
MAX_NODE_VISITS = 2_000_000  # the spatial search's budget, in nodes walked (deterministic, unlike a clock)
# Metadata keys exporters put an image size in (Ultralytics: imgsz '[640, 640]').
_HINT_KEYS = re.compile(r"^(imgsz|img_?size|image_?size|input_?size|input_?shape|resolution)$", re.IGNORECASE)

_WINDOW_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool", "ConvTranspose"})
# ops whose output keeps the first input's axes as they are (elementwise, normalizations, casts)
_SAME_AXES = frozenset(
    "Relu LeakyRelu PRelu Sigmoid HardSigmoid HardSwish Tanh Clip Elu Selu Gelu Mish Softplus Softsign Exp Log "
    "Abs Neg Sqrt Reciprocal Floor Ceil Round Erf Not Identity Cast CastLike Dropout BatchNormalization "
    "InstanceNormalization LRN Add Sub Mul Div Pow Max Min Sum Mean Where Equal Less Greater And Or "
    "QuantizeLinear DequantizeLinear Concat Softmax LogSoftmax".split()
)

# per axis of a value: the free input dim it still is (input, axis), its size there, and the strides' product so far
Entry = tuple[tuple[str, int], int, Fraction] | None
Row = list[Entry]


def free_dim(dim: int | str | None) -> bool:
    """Whether a declared dim needs a size: symbolic, unnamed, '?' or negative."""
    return not isinstance(dim, int) or dim < 0


def named(dim: int | str | None) -> str | None:
    """The dim's name when it is a real one ('?' and empty are no name: each such axis is its own)."""
    return dim if isinstance(dim, str) and dim not in ("", "?") else None


def batch_like(name: str) -> bool:
    lowered = name.lower()
    return lowered in BATCH_NAMES or "batch" in lowered or bool(_GENERATED.match(name))


@dataclass(frozen=True)
class DimChoice:
    """One free input dim and the size chosen for it."""

    input: str
    axis: int
    name: str | None  # the dim's name; None when unnamed, '?' or negative (bound by position)
    value: int
    kind: str  # hint | batch | state | spatial | sequence
    reason: str
    retry: tuple[int, ...] = ()  # the next sizes worth trying if a run rejects `value`

    @property
    def label(self) -> str:
        """How the dim is written on the command line: NAME, or INPUT:AXIS."""
        return self.name if self.name is not None else f"{self.input}:{self.axis}"


@dataclass
class _Walk:
    """What following the free axes through the graph found: which reach a window, and how far down."""

    factor: dict[tuple[str, int], Fraction] = field(default_factory=dict)  # deepest stride product
    too_small: set[tuple[str, int]] = field(default_factory=set)  # a window's output was < 1 on this axis
    windows: dict[tuple[str, int], str] = field(default_factory=dict)  # the first window op reached


def _ints(view: ModelView, node: Node, attr: str, slot: int) -> tuple[int, ...] | None:
    """An int-list attribute, or (newer opsets) the same list as a small constant input."""
    value = node.attrs.get(attr)
    if isinstance(value, tuple):
        return tuple(int(v) for v in value)
    if len(node.inputs) > slot and node.inputs[slot]:
        tensor = view.lookup(node.scope, node.inputs[slot])
        if tensor is not None and tensor.values is not None:
            return tensor.values
    return None


def _window(node: Node, view: ModelView, axes: int) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """(kernel, strides, dilations, pads begin+end) per spatial axis; None when the kernel is unknown."""
    kernel = node.attrs.get("kernel_shape")
    if not isinstance(kernel, tuple):
        weight = view.lookup(node.scope, node.inputs[3 if node.op_type == "QLinearConv" else 1]) if node.op_type in (
            "Conv", "ConvInteger", "QLinearConv", "ConvTranspose") and len(node.inputs) > 1 else None  # fmt: skip
        if weight is None or weight.dims is None or len(weight.dims) != axes + 2:
            return None
        kernel = weight.dims[2:]
    if len(kernel) != axes:
        return None
    strides = node.attrs.get("strides")
    dilations = node.attrs.get("dilations")
    pads = node.attrs.get("pads")
    stride = list(strides) if isinstance(strides, tuple) and len(strides) == axes else [1] * axes
    dilation = list(dilations) if isinstance(dilations, tuple) and len(dilations) == axes else [1] * axes
    pad = [0] * axes
    if isinstance(pads, tuple) and len(pads) == 2 * axes:
        pad = [int(pads[i]) + int(pads[i + axes]) for i in range(axes)]
    return [int(k) for k in kernel], [int(s) for s in stride], [int(d) for d in dilation], pad


def _window_out(node: Node, size: int, k: int, s: int, d: int, pad: int) -> int:
    auto = str(node.attrs.get("auto_pad", "NOTSET"))
    if node.op_type == "ConvTranspose":
        return s * (size - 1) + (k - 1) * d + 1 - pad
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return -(-size // s)
    span = size + (0 if auto == "VALID" else pad) - (k - 1) * d - 1
    if node.attrs.get("ceil_mode") == 1:
        return -(-span // s) + 1
    return span // s + 1


def _walk(view: ModelView, sizes: Mapping[tuple[str, int], int], free: list[tuple[str, int]]) -> _Walk:
    """Follow every free input axis through the main graph in order, with `sizes` for each, through ops
    that keep axes (elementwise, Transpose, Pad, Unsqueeze) and into Conv/Pool windows."""
    walk = _Walk()
    tracked: dict[str, Row] = {}
    wanted = set(free)
    for info in view.main.inputs:
        if info.shape is None:
            continue
        axes = [(info.name, a) for a in range(len(info.shape))]
        if any(key in wanted for key in axes):
            tracked[info.name] = [(key, sizes[key], Fraction(1)) if key in wanted else None for key in axes]
    # If/Loop bodies read the outer values by name, so every graph's nodes are followed, in file order
    for node in view.all_nodes():
        ins = [tracked.get(name) for name in node.inputs[:1]]
        first = ins[0] if ins else None
        if node.op_type in _SAME_AXES:
            rows = [tracked[n] for n in node.inputs if n in tracked]
            if not rows:
                continue
            rank = max(len(r) for r in rows)
            merged: Row = [None] * rank
            for row in rows:  # broadcasting aligns axes from the right
                for i, entry in enumerate(row, start=rank - len(row)):
                    current = merged[i]
                    if entry is not None and (current is None or entry[2] > current[2]):
                        merged[i] = entry
            out: Row | None = merged
        elif first is None:
            continue
        elif node.op_type in _WINDOW_OPS:
            out = _through_window(view, node, first, walk)
        elif node.op_type == "Transpose":
            perm = node.attrs.get("perm")
            perm = perm if isinstance(perm, tuple) else tuple(reversed(range(len(first))))
            out = [first[p] for p in perm] if sorted(perm) == list(range(len(first))) else None
        elif node.op_type == "Pad":
            pads = _ints(view, node, "pads", 1)
            out = list(first)
            if pads is not None and len(pads) == 2 * len(first):
                reflect = node.attrs.get("mode") == "reflect"
                for i, entry in enumerate(first):
                    if entry is not None:
                        before, after = pads[i], pads[i + len(first)]
                        if reflect and max(before, after) >= entry[1]:  # reflect needs more than it pads
                            walk.too_small.add(entry[0])
                        out[i] = (entry[0], entry[1] + before + after, entry[2])
        elif node.op_type in ("Unsqueeze", "Squeeze"):
            axes_ = _ints(view, node, "axes", 1)
            out = _unsqueeze(first, axes_, node.op_type == "Unsqueeze")
        else:
            continue
        if out is not None and node.outputs and node.outputs[0]:
            tracked[node.outputs[0]] = out
    return walk


def _unsqueeze(row: Row, axes: tuple[int, ...] | None, add: bool) -> Row | None:
    if axes is None:
        return None
    out = list(row)
    rank = len(row) + (len(axes) if add else -len(axes))
    norm = sorted(a + rank if a < 0 else a for a in axes) if add else sorted(a + len(row) if a < 0 else a for a in axes)
    if add:
        for a in norm:
            if not 0 <= a <= len(out):
                return None
            out.insert(a, None)
        return out
    return [entry for i, entry in enumerate(out) if i not in norm]


def _through_window(view: ModelView, node: Node, row: Row, walk: _Walk) -> Row | None:
    axes = len(row) - 2
    window = _window(node, view, axes) if axes > 0 else None
    if window is None:
        return None
    kernel, strides, dilations, pads = window
    out = list(row)
    for i in range(axes):
        entry = row[i + 2]
        if entry is None:
            continue
        key, size, factor = entry
        walk.windows.setdefault(key, f"{node.op_type} {node.label!r}")
        new = _window_out(node, size, kernel[i], strides[i], dilations[i], pads[i])
        factor = factor / strides[i] if node.op_type == "ConvTranspose" else factor * strides[i]
        walk.factor[key] = max(walk.factor.get(key, Fraction(1)), factor)
        if new < 1:
            walk.too_small.add(key)
            new = 1
        out[i + 2] = (key, new, factor)
    return out


def _hint(view: ModelView) -> tuple[list[int], str] | None:
    """An image size the file's metadata states: ([h, w] or [s], where)."""
    for key, text in view.metadata.items():
        if not _HINT_KEYS.match(key.strip()):
            continue
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        numbers = [value] if isinstance(value, int) else list(value) if isinstance(value, (list, tuple)) else []
        if numbers and all(isinstance(n, int) and 0 < n <= MAX_SPATIAL for n in numbers) and len(numbers) <= 2:
            return [int(n) for n in numbers], f"metadata {key}={text.strip()[:40]}"
    return None


def _state_axis(info: ValueInfo, axis: int) -> bool:
    """The batch axis of a recurrent state laid out as ONNX's RNNs lay it: (layers x directions, batch, hidden)."""
    shape = info.shape or ()
    return len(shape) == 3 and axis == 1 and not free_dim(shape[0]) and not free_dim(shape[2])


# ops an index tensor passes through on its way from Range to a positional table's Gather
_INDEX_PATH = frozenset({"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Add", "Slice", "Tile"})


def sequence_cap(view: ModelView) -> tuple[int, str] | None:
    """The most a sequence can hold by the graph's constants: the smallest positional table indexed by
    a Range (Gather of arange(len)) or sliced to a computed end (table[:, :len]), with its name."""
    graph = view.main
    best: tuple[int, str] | None = None

    def table_size(name: str, axis: int) -> int | None:
        tensor = view.lookup(graph.scope, name)
        if tensor is None or tensor.origin == "graph_input" or tensor.dims is None:
            return None
        axis += len(tensor.dims) if axis < 0 else 0
        return tensor.dims[axis] if 0 <= axis < len(tensor.dims) and tensor.dims[axis] > 0 else None

    for node in graph.nodes:
        found: list[tuple[int | None, str]] = []
        if node.op_type == "Range" and node.outputs:
            stack, seen = [(node.outputs[0], 0)], set()
            while stack:
                value, hops = stack.pop()
                if value in seen or hops > 8:
                    continue
                seen.add(value)
                for reader in graph.readers.get(value, ()):
                    if reader.op_type == "Gather" and reader.inputs[1:2] == (value,):
                        axis = reader.attrs.get("axis", 0)
                        found.append(
                            (table_size(reader.inputs[0], axis if isinstance(axis, int) else 0), reader.inputs[0])
                        )
                    elif reader.op_type in _INDEX_PATH and reader.outputs:
                        stack.append((reader.outputs[0], hops + 1))
        elif node.op_type == "Slice" and len(node.inputs) >= 3 and view.lookup(graph.scope, node.inputs[2]) is None:
            axes = _ints(view, node, "axes", 3)
            for axis in axes if axes is not None else (0,):
                found.append((table_size(node.inputs[0], axis), node.inputs[0]))
        for size, name in found:
            if size is not None and (best is None or size < best[0]):
                best = (size, name)
    return best


def _sequence(view: ModelView, key: tuple[str, int], name: str | None, caps: list[tuple[int, str]]) -> DimChoice:
    """A short length, and longer ones to retry, all within the positional tables the graph holds."""
    if not caps:
        caps.append(sequence_cap(view) or (0, ""))
    cap, table = caps[0]
    if cap <= 0:
        why = "sequence-like: a short length"
        return DimChoice(key[0], key[1], name, SEQUENCE_LENGTH, "sequence", why, (16, 64, 512))
    length = min(SEQUENCE_LENGTH, cap)
    retry = tuple(sorted({n for n in (16, 64, 512, cap) if length < n <= cap}))
    why = f"sequence-like: a short length, within the {cap} positions of {table!r}"
    return DimChoice(key[0], key[1], name, length, "sequence", why, retry)


def choose_sizes(
    view: ModelView,
    bound: Mapping[str, int] | None = None,
    positions: Mapping[tuple[str, int], int] | None = None,
    inputs: list[ValueInfo] | None = None,
) -> list[DimChoice]:
    """A size for every free dim of the model's inputs (or of `inputs`) that `bound` (by name) and
    `positions` (by input and axis) leave free, each with its reason, in input order. A named dim
    appearing on several inputs is chosen once (its first place)."""
    bound = bound or {}
    positions = positions or {}
    if inputs is None:
        inputs = [v for v in view.main.inputs if v.name not in view.main.tensors]
    sizes: dict[tuple[str, int], int] = {}
    free: list[tuple[str, int]] = []
    first_of: dict[str, tuple[str, int]] = {}
    for info in inputs:
        for axis, dim in enumerate(info.shape or ()):
            key = (info.name, axis)
            if not free_dim(dim):
                continue
            name = named(dim)
            if key in positions:
                sizes[key] = positions[key]
            elif name is not None and name in bound:
                sizes[key] = bound[name]
            else:
                free.append(key)
                if name is not None:
                    first_of.setdefault(name, key)
                sizes[key] = 64  # a provisional size for the first walk
    if not free:
        return []
    shapes = {v.name: v for v in inputs}
    walk = _walk(view, sizes, free)
    caps: list[tuple[int, str]] = []  # the positional tables' sizes, found once when a sequence needs them
    hint = _hint(view)
    choices: dict[tuple[str, int], DimChoice | None] = {}  # None: spatial, chosen once the rest are known
    spatial_seen: dict[str, int] = {}
    for key in free:
        info, axis = shapes[key[0]], key[1]
        dim = (info.shape or ())[axis]
        name = named(dim)
        if name is not None and first_of[name] != key:
            continue  # chosen at its first place
        if key in walk.windows:
            order = spatial_seen[key[0]] = spatial_seen.get(key[0], -1) + 1
            if hint is not None:
                numbers, where = hint
                value = numbers[min(order, len(numbers) - 1)]
                choices[key] = DimChoice(key[0], axis, name, value, "hint", f"hint: the {where}", ())
                continue
            choices[key] = None
        elif (name is not None and batch_like(name)) or (axis == 0 and name is None) or axis == 0:
            choices[key] = DimChoice(key[0], axis, name, 1, "batch", "batch-like: 1", ())
        elif _state_axis(info, axis):
            why = "state: the batch axis of a (layers, batch, hidden) state, 1"
            choices[key] = DimChoice(key[0], axis, name, 1, "state", why)
        else:
            choices[key] = _sequence(view, key, name, caps)
    for key, choice in choices.items():
        if choice is not None:
            sizes[key] = choice.value
    _spatial(view, sizes, free, choices, walk)
    return [c for c in choices.values() if c is not None]


def _spatial(
    view: ModelView,
    sizes: dict[tuple[str, int], int],
    free: list[tuple[str, int]],
    choices: dict[tuple[str, int], DimChoice | None],
    walk: _Walk,
) -> None:
    """The smallest multiple of each spatial axis's stride product for which every window output is >= 1."""
    open_keys = [k for k, c in choices.items() if c is None]
    if not open_keys:
        return
    step = {k: max(1, int(walk.factor.get(k, Fraction(1)))) for k in open_keys}
    multiple = dict.fromkeys(open_keys, 1)
    tried = 0
    # each try walks the whole graph (~5-10 us a node): a bounded number of node visits, so a 200k-node
    # graph stops after a few tries (a size still too small is then onnxruntime's to reject, and retried)
    walks = max(2, min(64, MAX_NODE_VISITS // max(1, sum(len(g.nodes) for g in view.graphs.values()))))
    while True:
        for key in open_keys:
            sizes[key] = step[key] * multiple[key]
        result = _walk(view, sizes, free)
        small = [k for k in open_keys if k in result.too_small and sizes[k] + step[k] <= MAX_SPATIAL]
        tried += 1
        if not small or tried >= walks:
            break
        for key in small:
            multiple[key] += 1
    for key in open_keys:
        info = next(v for v in view.main.inputs if v.name == key[0])
        name = named((info.shape or ())[key[1]])
        value, s = sizes[key], step[key]
        retry = tuple(value + s * k for k in range(1, RETRY_CANDIDATES + 1) if value + s * k <= MAX_SPATIAL)
        why = f"spatial (reaches {walk.windows[key]}): smallest size the windows accept"
        why += f", a multiple of the strides' product {s}" if s > 1 else ""
        choices[key] = DimChoice(key[0], key[1], name, value, "spatial", why, retry)
