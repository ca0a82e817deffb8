"""Rules on the graph's structure: one name defined twice (OA205), references to nothing (OA207), cycles
(OA208), local functions that call themselves (OA209)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from onnxaudit.check.context import CheckContext
from onnxaudit.check.registry import Hit, Rule
from onnxaudit.io.text import as_text, quoted
from onnxaudit.model.view import Graph, ModelView

SHOWN_NODES = 3


def _duplicate_names(ctx: CheckContext) -> Iterator[Hit]:
    view, initializers = ctx.view, ctx.files.initializer_names
    for scope, names in sorted(initializers.items()):
        for name, n in sorted(Counter(names).items()):
            if n > 1:
                yield Hit(f"initializer {quoted(name)} is defined {n} times", "tensor", name, scope)
    for scope, graph in view.graphs.items():
        inits = set(initializers.get(scope, ()))
        inputs = Counter(as_text(v.name) for v in graph.inputs)
        for name, n in sorted(inputs.items()):
            if n > 1:
                yield Hit(f"graph input {quoted(name)} is listed {n} times", "tensor", name, scope)
        producers: dict[str, str] = {}
        for node in graph.nodes:
            for raw in node.outputs:
                name = as_text(raw)
                if not name:
                    continue
                label = as_text(node.label)
                if name in producers:
                    message = f"value {quoted(name)} is written by both {quoted(producers[name])} and {quoted(label)}"
                    yield Hit(message, "node", label, scope)
                elif name in inits or name in inputs:
                    what = "an initializer" if name in inits else "a graph input"
                    message = f"node {quoted(label)} writes {quoted(name)}, which is already {what}"
                    yield Hit(message, "node", label, scope)
                producers.setdefault(name, label)


def _visible(view: ModelView) -> dict[str, set[str]]:
    """Names each graph defines itself: inputs, stored tensors, node outputs."""
    names: dict[str, set[str]] = {}
    for scope, graph in view.graphs.items():
        own = {as_text(v.name) for v in graph.inputs} | {as_text(t.name) for t in graph.tensors.values()}
        own |= {as_text(o) for node in graph.nodes for o in node.outputs if o}
        names[scope] = own
    return names


def _dangling(ctx: CheckContext) -> Iterator[Hit]:
    view = ctx.view
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
                    yield Hit(message, "node", label, scope)
        for raw in graph.outputs:
            name = as_text(raw)
            if name and not resolves(graph, name):
                yield Hit(f"graph output {quoted(name)} is produced by nothing", "tensor", name, scope)


def _cycles(ctx: CheckContext) -> Iterator[Hit]:
    """Kahn's algorithm per graph: nodes never freed depend on each other in a cycle."""
    for scope, graph in ctx.view.graphs.items():
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
            shown = ", ".join(quoted(as_text(n.label)) for n in stuck[:SHOWN_NODES])
            more = f" and {len(stuck) - SHOWN_NODES} more" if len(stuck) > SHOWN_NODES else ""
            message = f"{len(stuck)} nodes depend on each other in a cycle: {shown}{more}"
            yield Hit(message, "node", as_text(stuck[0].label), scope)


def _recursion(ctx: CheckContext) -> Iterator[Hit]:
    view = ctx.view
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for fkey, fscope in view.functions.items():
        called: set[tuple[str, str]] = set()
        for scope, graph in view.graphs.items():
            if scope == fscope or scope.startswith(fscope + "/"):
                called |= {(n.domain, n.op_type) for n in graph.nodes if (n.domain, n.op_type) in view.functions}
        calls[fkey] = called
    for fkey in sorted(calls):
        seen: set[tuple[str, str]] = set()
        stack = list(calls[fkey])
        while stack:
            current = stack.pop()
            if current == fkey:
                name = f"{as_text(fkey[0])}.{as_text(fkey[1])}"
                how = "" if fkey in calls[fkey] else " through others"
                yield Hit(f"local function {quoted(name)} calls itself{how}", "function", name)
                break
            if current not in seen:
                seen.add(current)
                stack.extend(calls.get(current, ()))


DUPLICATE_NAME = Rule(
    "OA205",
    "duplicate-name",
    "error",
    "view",
    summary="an initializer defined twice, a value written by two nodes, or over an initializer or input",
    docs=(
        "ONNX requires every value name to be defined once (static single assignment). With two definitions, "
        "which one a runtime uses is up to the runtime: onnxruntime refuses the file, other tools silently take "
        "the first or the last. Usually a hand edit or a merge of two graphs; rename one of them."
    ),
    emit=_duplicate_names,
)
DANGLING = Rule(
    "OA207",
    "dangling-input",
    "error",
    "view",
    summary="a node input or graph output that refers to nothing",
    docs=(
        "A node reads, or the graph outputs, a name that no input, initializer or node defines in that graph or "
        "an enclosing one. No runtime loads the file. A pruning tool or a hand edit removed the producer."
    ),
    emit=_dangling,
)
CYCLE = Rule(
    "OA208",
    "graph-cycle",
    "error",
    "view",
    summary="nodes that depend on each other in a cycle",
    docs=(
        "ONNX graphs must be acyclic (loops are expressed with Loop and Scan). Nodes that wait on each other can "
        "never run; no runtime loads the file. The message names the first nodes of the cycle."
    ),
    emit=_cycles,
)
RECURSION = Rule(
    "OA209",
    "recursive-function",
    "error",
    "view",
    summary="a local function calling itself, directly or through others",
    docs=(
        "ONNX local functions must not be recursive: inlining one never ends, and onnx's checker and runtimes "
        "refuse it (or recurse until they crash). The file was built by hand or by a broken tool."
    ),
    emit=_recursion,
)

RULES = (DUPLICATE_NAME, DANGLING, CYCLE, RECURSION)
