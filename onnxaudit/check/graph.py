"""Graph rules, from the model view and its role table: BatchNormalization misuse (OA201, OA202), stored
data nobody uses or anybody can replace (OA203, OA204), names defined twice (OA205), unknown roles
(OA206), references to nothing (OA207), cycles (OA208), recursive functions (OA209), custom domains
(OA210), float64 weights (OA211), ops a standard domain does not define (OA213), and versions newer than
the installed onnx (OA305, OA306).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from functools import lru_cache

import onnx

from onnxaudit.check.rules import Finding, finding
from onnxaudit.count.normaxis import channel_axis_findings
from onnxaudit.count.roles import RoleTable
from onnxaudit.count.table import param_table
from onnxaudit.io.datamap import FileMap
from onnxaudit.io.dims import dtype_name
from onnxaudit.io.text import as_text, quoted
from onnxaudit.model.load import Graph, ModelView, Node
from onnxaudit.model.ops import SLOT_NAMES

STD_DOMAINS = frozenset({"", "ai.onnx"})
KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training", "ai.onnx.training"}
)
ORT_DOMAINS = frozenset({"com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc", "com.microsoft.experimental"})


@lru_cache(maxsize=1)
def known_opsets() -> dict[str, int]:
    """The newest opset of each standard domain the installed onnx has schemas for."""
    newest: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domain = schema.domain or "ai.onnx"
        newest[domain] = max(newest.get(domain, 0), schema.since_version)
    newest["ai.onnx"] = max(newest.get("ai.onnx", 0), onnx.defs.onnx_opset_version())
    return newest


def graph_findings(view: ModelView, roles: RoleTable, files: FileMap | None) -> list[Finding]:
    out: list[Finding] = []
    out += _versions(view)
    out += _batchnorm(view)
    out += _roles(view, roles)
    out += _duplicate_names(view, files)
    out += _dangling(view)
    out += _cycles(view)
    out += _recursion(view)
    out += _domains(view)
    out += _unknown_ops(view)
    out += _channel_axis(view, roles)
    return out


def _channel_axis(view: ModelView, roles: RoleTable) -> list[Finding]:
    """Keras BatchNormalization(axis=-3) on NHWC data normalizes rows, not channels (seed_cnn_axis_typo)."""
    return [finding("OA212", f.message, "node", f.node) for f in channel_axis_findings(view, param_table(roles))]


def _versions(view: ModelView) -> list[Finding]:
    out: list[Finding] = []
    if view.ir_version > onnx.IR_VERSION:
        message = f"IR version {view.ir_version} is newer than onnx {onnx.__version__} knows (IR {onnx.IR_VERSION})"
        out.append(finding("OA305", message, "model"))
    known = known_opsets()
    for domain, version in sorted(view.opsets.items()):
        domain = as_text(domain)
        if domain not in known:
            continue
        if version > known[domain]:
            message = f"opset {domain} {version} is newer than onnx {onnx.__version__} knows ({known[domain]})"
            out.append(finding("OA306", message, "model", domain))
        elif version < 1:
            out.append(finding("OA306", f"opset {domain} {version} is not a valid version", "model", domain))
    return out


def _batchnorm(view: ModelView) -> list[Finding]:
    out: list[Finding] = []
    opset = view.opsets.get("ai.onnx")
    for node in view.all_nodes():
        if node.op_type != "BatchNormalization" or node.domain not in STD_DOMAINS:
            continue
        label = as_text(node.label)
        training = node.attrs.get("training_mode") == 1
        extra = [o for o in node.outputs[1:] if o]
        legacy = opset is not None and opset < 7 and node.attrs.get("is_test", 0) == 0
        if training or extra or legacy:
            why = "training_mode=1" if training else f"{len(extra)} training outputs" if extra else "is_test=0"
            message = (
                f"BatchNormalization {quoted(label)} runs in training mode ({why}): batch statistics, not stored ones"
            )
            out.append(finding("OA201", message, "node", label, node.scope))
        present = [name for name in node.inputs if name]
        slots = SLOT_NAMES["BatchNormalization"]
        if len(node.inputs) != 5 or len(present) != 5:
            message = f"BatchNormalization {quoted(label)} has {len(present)} inputs; it needs 5 ({', '.join(slots)})"
            out.append(finding("OA202", message, "node", label, node.scope))
            continue
        sizes = {}
        for slot, name in zip(slots[1:], node.inputs[1:], strict=True):
            tensor = view.lookup(node.scope, name)
            if tensor is not None and tensor.dims is not None:
                sizes[slot] = tensor.dims
        shapes = set(sizes.values())
        spatial = node.attrs.get("spatial", 1) != 0
        channels = _channels(view, node)
        if len(shapes) > 1 or (spatial and any(len(d) != 1 for d in shapes)):
            shown = ", ".join(f"{slot} {'x'.join(map(str, d)) or 'scalar'}" for slot, d in sizes.items())
            message = f"BatchNormalization {quoted(label)}: parameter shapes disagree ({shown})"
            out.append(finding("OA202", message, "node", label, node.scope))
        elif spatial and channels is not None and shapes and next(iter(shapes)) != (channels,):
            size = next(iter(shapes))[0]
            message = f"BatchNormalization {quoted(label)}: input has {channels} channels, its parameters {size}"
            out.append(finding("OA202", message, "node", label, node.scope))
    return out


def _channels(view: ModelView, node: Node) -> int | None:
    if node.scope != "main":
        return None
    info = view.value_shapes.get(node.inputs[0])
    if info is None or info.shape is None or len(info.shape) < 2:
        return None
    dim = info.shape[1]
    return dim if isinstance(dim, int) else None


def _roles(view: ModelView, roles: RoleTable) -> list[Finding]:
    out: list[Finding] = []
    for entry in roles.tensors:
        tensor = entry.tensor
        name, scope = as_text(tensor.name), tensor.scope
        dims = "x".join(map(str, tensor.dims)) if tensor.dims else "scalar" if tensor.dims == () else "?"
        kind = "Constant" if tensor.origin == "constant" else "initializer"
        if entry.role == "unused" and tensor.storage != "none":
            message = f"{kind} {quoted(name)} ({dims}) is consumed by no node"
            literal = tensor.dims is not None and math.prod(tensor.dims) <= 1  # a dead scalar wastes nothing
            out.append(finding("OA203", message, "tensor", name, scope, "info" if literal else ""))
        if tensor.also_graph_input:
            old = view.ir_version < 4
            why = " (IR < 4 lists every initializer as an input)" if old else ""
            message = f"initializer {quoted(name)} is also a graph input: a caller can replace it{why}"
            out.append(finding("OA204", message, "tensor", name, scope, "info" if old else ""))
        if entry.category == "unclassified":
            users = sorted({f"{u.node.op_type} {as_text(u.node.label)}" for u in entry.uses})[:3]
            message = f"{quoted(name)} ({dims}) has no known role; consumed by {', '.join(users) or 'a graph output'}"
            out.append(finding("OA206", message, "tensor", name, scope))
        if entry.category in ("parameter", "statistic") and dtype_name(tensor.dtype) == "float64":
            message = f"{entry.role} {quoted(name)} ({dims}) is stored as float64: twice the bytes of float32"
            out.append(finding("OA211", message, "tensor", name, scope))
    return out


def _duplicate_names(view: ModelView, files: FileMap | None) -> list[Finding]:
    out: list[Finding] = []
    initializers = files.initializer_names if files is not None else {}
    for scope, names in sorted(initializers.items()):
        for name, n in sorted(Counter(names).items()):
            if n > 1:
                out.append(finding("OA205", f"initializer {quoted(name)} is defined {n} times", "tensor", name, scope))
    for scope, graph in view.graphs.items():
        inits = set(initializers.get(scope, ()))
        inputs = Counter(as_text(v.name) for v in graph.inputs)
        for name, n in sorted(inputs.items()):
            if n > 1:
                out.append(finding("OA205", f"graph input {quoted(name)} is listed {n} times", "tensor", name, scope))
        producers: dict[str, str] = {}
        for node in graph.nodes:
            for raw in node.outputs:
                name = as_text(raw)
                if not name:
                    continue
                label = as_text(node.label)
                if name in producers:
                    message = f"value {quoted(name)} is written by both {quoted(producers[name])} and {quoted(label)}"
                    out.append(finding("OA205", message, "node", label, scope))
                elif name in inits or name in inputs:
                    what = "an initializer" if name in inits else "a graph input"
                    message = f"node {quoted(label)} writes {quoted(name)}, which is already {what}"
                    out.append(finding("OA205", message, "node", label, scope))
                producers.setdefault(name, label)
    return out


def _visible(view: ModelView) -> dict[str, set[str]]:
    """Names each graph defines itself: inputs, stored tensors, node outputs."""
    names: dict[str, set[str]] = {}
    for scope, graph in view.graphs.items():
        own = {as_text(v.name) for v in graph.inputs} | {as_text(t.name) for t in graph.tensors.values()}
        own |= {as_text(o) for node in graph.nodes for o in node.outputs if o}
        names[scope] = own
    return names


def _dangling(view: ModelView) -> list[Finding]:
    out: list[Finding] = []
    defined = _visible(view)

    def resolves(graph: Graph, name: str) -> bool:
        current: str | None = graph.scope
        while current is not None:
            if name in defined[current]:
                return True
            current = view.graphs[current].parent
        return False

    for scope, graph in view.graphs.items():
        for node in graph.nodes:
            for slot, raw in enumerate(node.inputs):
                name = as_text(raw)
                if name and not resolves(graph, name):
                    label = as_text(node.label)
                    message = f"{node.op_type} {quoted(label)} input {slot} {quoted(name)} refers to nothing"
                    out.append(finding("OA207", message, "node", label, scope))
        for raw in graph.outputs:
            name = as_text(raw)
            if name and not resolves(graph, name):
                out.append(
                    finding("OA207", f"graph output {quoted(name)} is produced by nothing", "tensor", name, scope)
                )
    return out


def _cycles(view: ModelView) -> list[Finding]:
    """Kahn's algorithm per graph: nodes never freed depend on each other in a cycle."""
    out: list[Finding] = []
    for scope, graph in view.graphs.items():
        producer: dict[str, int] = {}
        for i, node in enumerate(graph.nodes):
            for o in node.outputs:
                if o:
                    producer.setdefault(as_text(o), i)
        waiting = [0] * len(graph.nodes)
        users: dict[int, list[int]] = defaultdict(list)
        for i, node in enumerate(graph.nodes):
            for raw in set(node.inputs):
                j = producer.get(as_text(raw)) if raw else None
                if j is not None:
                    waiting[i] += 1
                    users[j].append(i)
        ready = [i for i, n in enumerate(waiting) if n == 0]
        while ready:
            i = ready.pop()
            for k in users[i]:
                waiting[k] -= 1
                if waiting[k] == 0:
                    ready.append(k)
        stuck = [graph.nodes[i] for i, n in enumerate(waiting) if n > 0]
        if stuck:
            shown = ", ".join(quoted(as_text(n.label)) for n in stuck[:3])
            more = f" and {len(stuck) - 3} more" if len(stuck) > 3 else ""
            message = f"{len(stuck)} nodes depend on each other in a cycle: {shown}{more}"
            out.append(finding("OA208", message, "node", as_text(stuck[0].label), scope))
    return out


def _recursion(view: ModelView) -> list[Finding]:
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for fkey, fscope in view.functions.items():
        called = set()
        for scope, graph in view.graphs.items():
            if scope == fscope or scope.startswith(fscope + "/"):
                called |= {(n.domain, n.op_type) for n in graph.nodes if (n.domain, n.op_type) in view.functions}
        calls[fkey] = called
    out: list[Finding] = []
    for fkey in sorted(calls):
        seen: set[tuple[str, str]] = set()
        stack = list(calls[fkey])
        while stack:
            current = stack.pop()
            if current == fkey:
                name = f"{as_text(fkey[0])}.{as_text(fkey[1])}"
                message = (
                    f"local function {quoted(name)} calls itself{'' if fkey in calls[fkey] else ' through others'}"
                )
                out.append(finding("OA209", message, "function", name))
                break
            if current not in seen:
                seen.add(current)
                stack.extend(calls.get(current, ()))
    return out


def _domains(view: ModelView) -> list[Finding]:
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    for node in view.all_nodes():
        domain = as_text(node.domain)
        if domain in KNOWN_DOMAINS or (node.domain, node.op_type) in view.functions:
            continue
        ops[domain][as_text(node.op_type)] += 1
    out: list[Finding] = []
    for domain, counter in sorted(ops.items()):
        shown, n = _op_names(counter), sum(counter.values())
        if domain in ORT_DOMAINS:
            message = f"{n} nodes from {quoted(domain)} ({shown}) run on onnxruntime only"
            out.append(finding("OA210", message, "domain", domain, severity="info"))
        else:
            message = f"{n} nodes from custom domain {quoted(domain)} ({shown}) need a runtime that implements them"
            out.append(finding("OA210", message, "domain", domain))
    return out


def _unknown_ops(view: ModelView) -> list[Finding]:
    """Ops in a standard domain that onnx defines no schema for: an exporter's op left unconverted
    (tf2onnx and Keras 3 leave TensorFlow's `StatefulPartitionedCall` in ConvNeXt), which no runtime
    loads, or one a runtime registers there itself (onnxruntime's SimplifiedLayerNormalization)."""
    ops: dict[str, Counter[str]] = defaultdict(Counter)
    for node in view.all_nodes():
        domain = as_text(node.domain)
        if domain not in KNOWN_DOMAINS or (node.domain, node.op_type) in view.functions:
            continue
        op = as_text(node.op_type)
        if not onnx.defs.has(op, "" if domain == "ai.onnx" else domain):
            ops[domain or "ai.onnx"][op] += 1
    out: list[Finding] = []
    for domain, counter in sorted(ops.items()):
        message = (
            f"{sum(counter.values())} nodes of ops that onnx does not define in {quoted(domain)} "
            f"({_op_names(counter)}): only a runtime that "
            "registers them loads the file (onnxruntime does for a few of its fusions; an op an exporter left "
            "unconverted loads nowhere)"
        )
        out.append(finding("OA213", message, "domain", domain))
    return out


def _op_names(counter: Counter[str]) -> str:
    """The first five op names in order, and how many more."""
    shown = ", ".join(op for op, _ in sorted(counter.items())[:5])
    return shown + (f" and {len(counter) - 5} more" if len(counter) > 5 else "")
