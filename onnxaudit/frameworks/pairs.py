"""Stored tensors that may be another parameter stored again (tied, per call, per branch), settled by values."""

from __future__ import annotations

import re

from onnxaudit.count.layers import Layer, path_from_tensor_name
from onnxaudit.count.roles import Use
from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.frameworks.common import counted
from onnxaudit.frameworks.doubts import ONE_PRODUCT_OPS, measured_only
from onnxaudit.model.exporters import called_again
from onnxaudit.model.ops import CHANNEL_PRODUCTS, LAYOUT_OR_PLUMBING
from onnxaudit.model.view import MAIN, Graph, ModelView, Node

Key = tuple[str, str]  # (graph scope, tensor name)


def tied_transposed_copy(table: ParamTable, folded: list[ParamTensor]) -> dict[str, str]:
    """Anonymous constant-folded weights shaped like a transposed copy of a stored, named weight: one
    parameter stored twice, once transposed. Tied embeddings and output heads (pytorch/pytorch#108342),
    or a parameter a module reads both as `x @ w` and `h @ w.T` (dynamo names the fold `t`). Values are
    not compared here. A copy of a square weight is only looked for beside an embedding table. `folded`:
    the table's weights and embedding tables under a name of _FOLDED_OR_VAL_NAME (folded_weights)."""
    if not folded:
        return {}  # no folded weight, no copy: no 38k weights grouped by dims at 200k nodes
    # by transposed dims, not dtype: a quantized head and its embedding table may be stored in two int types
    by_dims: dict[tuple[int, ...], list[ParamTensor]] = {}
    for t in table.tensors:
        if t.role in _TIED_ROLES and t.dims and len(t.dims) == 2:
            by_dims.setdefault(t.dims, []).append(t)
    pairs: dict[str, str] = {}
    for (d0, d1), group in by_dims.items():
        # folded names first (a dotted state_dict key is ruled out without a regex), then their originals
        copies = [t for t in group if t.role == "weight" and _folded_name(t.name, _FOLDED_OR_VAL_NAME)]
        originals = [o for o in by_dims.get((d1, d0), ()) if o.role == "embedding" or d0 != d1] if copies else []
        originals = [o for o in originals if not _folded_name(o.name) and not _position_table(o)]
        for t in copies if originals else ():
            original = next((o for o in originals if o.name != t.name), None)
            if original is not None and (original.role == "embedding" or _folded_name(t.name)):
                pairs[t.name] = original.name
        if d0 == d1:  # a square weight: its own module's weight, read as stored by another call
            pairs.update(_same_module_copies(group, pairs))
    return pairs


_TIED_ROLES = ("weight", "embedding")


def folded_weights(table: ParamTable) -> list[ParamTensor]:
    """The weights and embedding tables under a name exporters give a value they folded (_FOLDED_OR_VAL_NAME),
    in table order: the only copies tied_transposed_copy and reshaped_copies can find, looked for in one
    pass over the table (48k tensors at 200k nodes, most under state_dict keys)."""
    return [t for t in table.tensors if t.role in _TIED_ROLES and _folded_name(t.name, _FOLDED_OR_VAL_NAME)]


def _same_module_copies(group: list[ParamTensor], pairs: dict[str, str]) -> dict[str, str]:
    """A module called twice (a Linear on a 2-D and a 3-D input): one call reads its state_dict weight as
    stored (Gemm, transB), the other a transposed copy constant folding made (`onnx::MatMul_13`, dynamo's
    `val_3`), both in the module's scope (`/fc/Gemm`, `/fc_1/MatMul`). Values then settle the pair."""
    copies = [t for t in group if t.name not in pairs and _folded_name(t.name, _FOLDED_OR_VAL_NAME)]
    if not copies:  # no fold among them (a 200k-node graph's 21k square weights): no owner to look up
        return {}
    named: dict[str, str] = {}
    for o in group:
        if o.name.endswith(".weight") and not _folded_name(o.name) and (owner := _owner(o)):
            named.setdefault(owner, o.name)
    found = {}
    originals = set(named.values())  # a set: `in named.values()` made this loop quadratic (4.1 s at 200k nodes)
    for t in copies:
        if t.name not in originals:
            original = named.get(_owner(t))
            if original is not None:
                found[t.name] = original
    return found


def _owner(t: ParamTensor) -> str:
    """The module whose call reads `t` (a later call `fc_1` as `fc`), from dynamo's scopes or the node's
    name; "" when its readers are not one module's."""
    owners = set()
    for use in t.uses:
        node = use.node
        scope = node.module_scopes[-2] if len(node.module_scopes) >= 2 else node.name.rpartition("/")[0]
        owners.add(called_again(scope) or scope)
    return owners.pop() if len(owners) == 1 else ""


# names exporters give a weight they computed (here: transposed) at export: torch.onnx (TorchScript)
# `onnx::MatMul_12` or a bare number, onnxruntime's folding `/lm_head/Transpose_output_0`, dynamo the
# op it folded (`t`, `transpose_1`, `permute`)
_FOLDED_NAME = re.compile(r"onnx::.+|\d+|(.*/)?Transpose_output_\d+|(t|transpose|permute)(_\d+)?")


# dynamo's `val_12` too: its Linear weights are all such folds (of parameters the file does not store
# under their own name), so only an embedding table, which a Gather reads as stored, is matched with one;
# likewise tf2onnx's `const_fold_opt__14` (every transposed kernel it folds is named so)
_FOLDED_OR_VAL_NAME = re.compile(_FOLDED_NAME.pattern + r"|val_\d+|const_fold_opt__\d+")


def named_transposed_copies(table: ParamTable) -> dict[str, str]:
    """Hugging Face Optimum writes a tied output head as `Transpose(<table>)` named `<table>_transposed`
    (GPT-2's `transformer.wte.weight_transposed`), which onnxruntime's optimizer folds into a stored
    tensor of that name: the name and the reversed dims say which stored tensor it is a copy of.
    Copy name -> original name."""
    suffix = "_transposed"
    copies = [t for t in table.tensors if t.name.endswith(suffix) and t.dims and len(t.dims) == 2]
    if not copies:
        return {}
    dims = {t.name: t.dims for t in table.tensors if t.category == "parameter"}
    found = {}
    for t in copies:
        original = t.name[: -len(suffix)]
        if t.category == "parameter" and t.dims is not None and dims.get(original) == t.dims[::-1]:
            found[t.name] = original
    return found


def _folded_name(name: str, pattern: re.Pattern[str] = _FOLDED_NAME) -> bool:
    # a state_dict key (dotted, no slash) is no fold: no regex for the common case (48k weights at 200k nodes)
    return not ("." in name and "/" not in name) and pattern.fullmatch(name) is not None


def later_call_copies(layers: list[Layer]) -> dict[str, tuple[str, str]]:
    """torch.onnx (legacy) scopes a module's later calls `X_1`, `X_2`; a simplifier (onnxslim) then
    folds the weight's transpose once per call and stores it under the call's name
    (`.../query_1/Transpose_output_0`): an anonymous weight of `X_n` shaped like a weight of X may be
    X's. Copy name -> (the weight it may be a copy of, why)."""
    by_name: dict[str, Layer] | None = None
    found = {}
    for layer in layers:
        name = layer.name
        if not name[-1:].isdigit() or (base := called_again(name)) is None:
            continue
        by_name = by_name or {la.name: la for la in layers}
        first = by_name.get(base)
        if first is None:
            continue
        shapes = {(t.dtype, t.dims): t.name for t in first.tensors if t.role == "weight" and t.dims}
        for t in layer.tensors:
            key = (t.dtype, t.dims)
            if t.role == "weight" and key in shapes and path_from_tensor_name(t.name) is None:
                found[t.name] = (
                    shapes[key],
                    f"{shapes[key]} of {first.name} stored again for a later call of that module: counted once "
                    "at least, as stored at most (values not compared)",
                )
    return found


def per_call_copies(layer: Layer, tensors: list[ParamTensor]) -> dict[str, tuple[str, str]]:
    """torch.onnx (dynamo) folds a shared module's weight transpose once per call (ALBERT's shared
    layers): a Linear called k times holds k anonymous weights of one shape, one per product. Copy
    name -> (what it may be a copy of: the first of its shape, why)."""
    weights = [t for t in tensors if t.role == "weight" and t.dims]
    if len(weights) < 2:  # most layers: one weight
        return {}
    if any(n.op_type not in ONE_PRODUCT_OPS and n.op_type not in LAYOUT_OR_PLUMBING for n in layer.nodes):
        return {}
    first: dict[tuple[object, ...], ParamTensor] = {}
    found = {}
    for t in weights:
        if path_from_tensor_name(t.name) is not None or len(t.uses) != 1:
            continue  # a state_dict key names a parameter of its own
        key = (t.dtype, t.dims)
        if key in first:
            found[t.name] = (
                first[key].name,
                f"{first[key].name} stored again for another call of this module: counted once at least, "
                "as stored at most (values not compared)",
            )
        else:
            first[key] = t
    return found


def reshaped_copies(table: ParamTable, folded: list[ParamTensor]) -> dict[str, tuple[str, str]]:
    """torch.onnx's constant folding stores `W.view(out, -1)` of a parameter that is also read as stored
    (spectral_norm's sigma = u . W v beside W / sigma): an anonymous folded weight with a state_dict
    weight's element count and first dim, in other dims, may be that weight again in its own layout.
    Copy name -> (the weight it may be, why). `folded`: as for tied_transposed_copy (a superset of the
    names looked for here)."""
    copies = [t for t in folded if t.role == "weight" and t.dims and len(t.dims) > 1 and _folded_name(t.name)]
    if not copies:  # no folded weight (a 200k-node graph's 38k state_dict keys): no originals to group
        return {}
    named: dict[tuple[object, ...], list[ParamTensor]] = {}
    for t in table.tensors:
        if t.category == "parameter" and t.dims and len(t.dims) > 1 and "." in t.name and not _folded_name(t.name):
            named.setdefault((t.dtype, t.count, t.dims[0]), []).append(t)
    found: dict[str, tuple[str, str]] = {}
    for t in copies if named else ():
        dims = t.dims or ()
        original = next((o for o in named.get((t.dtype, t.count, dims[0]), ()) if o.dims != dims), None)
        if original is not None:
            found[t.name] = (
                original.name,
                f"{original.name} reshaped at export ({'x'.join(map(str, dims))}), read as stored too: counted "
                "once at least, as stored at most (values not compared)",
            )
    return found


def _position_table(t: ParamTensor) -> bool:
    """An EmbedLayerNormalization position or segment table (inputs 3, 4): never tied to an output head,
    so a square hidden x hidden weight matching its shape is no copy of it."""
    return bool(t.uses) and all(u.node.op_type == "EmbedLayerNormalization" and u.slot in (3, 4) for u in t.uses)


_COMPARE_MAX_NODES = 20_000


def possible_copies(
    view: ModelView, table: ParamTable, layers: list[Layer], origin: str, op_types: frozenset[str]
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Stored tensors that may be another parameter stored again: a transposed copy of a tied weight,
    a shared module's weight stored once per call, a fusion's leftover, a copy read only for its shape,
    a reciprocal folded at export. Where both are embedded in the file, sampled values settle a pair
    (copies.py): a copy is known, another weight is no copy. Returns the doubts left (copy name -> why)
    and the known copies (copy -> (original, how)). `op_types`: the file's, subgraphs included (no copy
    read only for its shape in a file without a Shape, no reciprocal without a Mul)."""
    folded = folded_weights(table)
    transposed = tied_transposed_copy(table, folded)
    calls: dict[str, tuple[str, str]] = {}
    if origin == "pytorch":
        calls = {**reshaped_copies(table, folded), **later_call_copies(layers)}
        for layer in layers:
            if len(layer.tensors) > 1 and sum(t.role == "weight" for t in layer.tensors) > 1:  # most: one weight
                calls.update(per_call_copies(layer, counted(layer.tensors)))
    # one question per copy: a transposed copy is asked as such, not again in its own layout
    calls = {copy: call for copy, call in calls.items() if copy not in transposed}
    branches = branch_copies(view, table)
    derived = [
        *(shape_only_copies(table) if "Shape" in op_types else ()),
        *(reciprocal_pairs(table, view.main) if "Mul" in op_types else ()),
    ]
    settled: dict[tuple[Key, Key], bool] = {}
    samples = 0
    # datamap imports all of onnx and walks the whole structure again (~1.6 s at 200k nodes): only for
    # files with such a pair, and not for the largest graphs, whose pairs stay "values not compared"
    if (transposed or calls or branches or derived) and len(view.main.nodes) <= _COMPARE_MAX_NODES:
        from onnxaudit.frameworks.copies import SAME, SAMPLES, TRANSPOSED, settle_pairs

        asked = [((MAIN, copy), (MAIN, first), TRANSPOSED) for copy, first in transposed.items()]
        asked += [((MAIN, copy), (MAIN, first), SAME) for copy, (first, _) in calls.items()]
        asked += [(copy, first, SAME) for copy, (first, _) in branches.items()]
        asked += [((MAIN, copy), (MAIN, first), relation) for copy, first, relation in derived]
        settled = settle_pairs(view.path, asked, view.remote, view.max_nodes, view.ranged)
        samples = SAMPLES
    same = {copy[1]: verdict for (copy, _), verdict in settled.items()}
    doubts = {
        copy: f"a transposed copy of tied {first}: counted once at least, twice at most (values not compared)"
        for copy, first in transposed.items()
        if copy not in same
    }
    doubts.update((copy, why) for copy, (_, why) in calls.items() if copy not in same)
    if "com.microsoft" in view.opsets:  # onnxruntime's fusions: the only known source of such leftovers
        doubts.update(measured_only(view, table))
    known = {
        copy: (first, "stored again, transposed (its name says so)")
        for copy, first in named_transposed_copies(table).items()
    }
    equal = f"values equal at {samples} sampled positions"
    known.update(
        (copy, (first, f"stored again, transposed ({equal})")) for copy, first in transposed.items() if same.get(copy)
    )
    known.update(
        (copy, (first, f"stored again {'reshaped' if 'reshaped' in why else 'for another call'} ({equal})"))
        for copy, (first, why) in calls.items()
        if same.get(copy)
    )
    known.update(
        (copy[1], (first[1], f"stored again in the other branch of If {owner} ({equal})"))
        for copy, (first, owner) in branches.items()
        if same.get(copy[1])
    )
    sizes = {t.name: t.count or 0 for t in table.tensors} if derived else {}
    for copy, first, relation in derived:
        if copy not in known and settled.get(((MAIN, copy), (MAIN, first))):
            at = f"{samples} sampled positions" if sizes[copy] > samples else f"all {sizes[copy]} positions"
            known[copy] = (first, _DERIVED_HOW[relation].format(at=at, first=first))
    return doubts, known


_DERIVED_HOW = {
    "same": "stored again, read only for its shape by Shape (values equal at {at})",
    "reciprocal": "stored again as its reciprocal (1 / {first} at {at}, within float rounding)",
}
_SHAPE_ONLY_CANDIDATES = 8  # weights of the copy's dtype and size compared with it at most
_RECIPROCAL_GROUP = 8  # tensors of one dtype and dims paired with each other at most
_RECIPROCAL_PAIRS = 32  # pairs asked in a file at most


def shape_only_copies(table: ParamTable) -> list[tuple[str, str, str]]:
    """Float tensors a graph reads only for their shape (every use goes through Shape first: tf2onnx's
    einsum rewrite keeps a layer's kernel so, beside the copy it folded for the Gemm): each asked against
    the weights of its dtype and size, elements in the same order. (copy, candidate, "same")."""
    copies = [
        t
        for t in table.tensors
        if t.uses and t.count and t.category in ("parameter", "unclassified") and all(_shape_read(u) for u in t.uses)
    ]
    if not copies:
        return []
    weights: dict[tuple[str, int], list[str]] = {}
    skipped = {t.name for t in copies}
    for t in table.tensors:
        if t.category == "parameter" and t.count and t.name not in skipped:
            weights.setdefault((t.dtype, t.count), []).append(t.name)
    return [
        (t.name, first, "same")
        for t in copies
        for first in weights.get((t.dtype, t.count or 0), [])[:_SHAPE_ONLY_CANDIDATES]
    ]


def _shape_read(use: Use) -> bool:
    return use.via[:1] == ("Shape",) if use.via else use.node.op_type == "Shape"


def reciprocal_pairs(table: ParamTable, graph: Graph) -> list[tuple[str, str, str]]:
    """Float tensors of unknown role with the same dtype and dims, several elements each, that scale
    values a few elementwise steps apart: one may be the other's reciprocal folded at export (a Snake's
    x + 1 / alpha * sin(alpha * x)^2 after a simplifier's constant folding, with no graph signature to say
    so). The one an exporter named (`/Mul_output_0`) is asked as the copy of the other.
    (copy, original, "reciprocal"). The graph's readers are built only for a file with such a group
    (no other stage of a summary needs them: ~0.1 s at 200k nodes)."""
    groups: dict[tuple[str, tuple[int, ...]], list[ParamTensor]] = {}
    for t in table.tensors:
        if t.category == "unclassified" and t.dims and (t.count or 0) > 1 and _scales(t):
            groups.setdefault((t.dtype, t.dims), []).append(t)
    pairs = []
    for group in groups.values():
        if not 1 < len(group) <= _RECIPROCAL_GROUP:
            continue
        readers = graph.readers
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if not (_reaches(a, b, readers) or _reaches(b, a, readers)):
                    continue
                copy, original = (a, b) if _exporter_named(a) and not _exporter_named(b) else (b, a)
                pairs.append((copy.name, original.name, "reciprocal"))
    return pairs[:_RECIPROCAL_PAIRS]


_RECIPROCAL_HOPS = 4  # elementwise steps from the product by one to the product by the other at most


def _reaches(a: ParamTensor, b: ParamTensor, readers: dict[str, list[Node]]) -> bool:
    """What a Mul by `a` computes reaches a Mul by `b` in a few steps, through no matrix product or conv."""
    targets = {u.node.index for u in b.uses}
    frontier = [u.node for u in a.uses]
    for _ in range(_RECIPROCAL_HOPS):
        frontier = [r for node in frontier for out in node.outputs if out for r in readers.get(out, ())]
        if any(node.index in targets for node in frontier):
            return True
        frontier = [node for node in frontier if node.op_type not in CHANNEL_PRODUCTS]
    return False


def _scales(t: ParamTensor) -> bool:
    """A float tensor every node reading it multiplies by it (a Snake's alpha, and its 1 / alpha); not a
    Normalization's mean (Sub) beside its 1 / std (Mul), so such a file walks its data no more."""
    return t.dtype.startswith("float") and all(u.node.op_type == "Mul" and not u.via for u in t.uses)


def _exporter_named(t: ParamTensor) -> bool:
    """A name an exporter or simplifier gave a value it computed (`/Mul_output_0`, `onnx::Mul_7`, a
    Constant node's output), not a module's tensor (`alpha`, `blocks.0.gamma`)."""
    return t.origin == "constant" or "/" in t.name or "::" in t.name or _folded_name(t.name, _FOLDED_OR_VAL_NAME)


def branch_copies(view: ModelView, table: ParamTable) -> dict[tuple[str, str], tuple[tuple[str, str], str]]:
    """Weights of one module stored in both branches of an If (Silero VAD v4: its decoder LSTM folded
    once per branch by torch.onnx): for each tensor of the else branch, the first unpaired tensor of the
    then branch with its dtype and dims. Values decide (copies.py); names cannot. Copy (scope, name) ->
    ((scope, name) of the candidate original, the If's label)."""
    if len(view.graphs) == 1:  # no bodies (a 200k-node graph: no walk over its 48k tensors)
        return {}
    stored: dict[str, list[ParamTensor]] = {}
    for t in table.tensors:
        if t.scope != MAIN and t.dims and t.category in ("parameter", "statistic"):
            stored.setdefault(t.scope, []).append(t)
    if not stored:
        return {}
    children: dict[str, list[str]] = {}
    for scope, graph in view.graphs.items():
        if graph.parent is not None:
            children.setdefault(graph.parent, []).append(scope)

    pairs: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
    for node in view.all_nodes():
        if node.op_type != "If" or len(node.subgraphs) != 2:
            continue
        then, other = _held(node.subgraphs[0], stored, children), _held(node.subgraphs[1], stored, children)
        if not then or not other:
            continue
        for first, t in _pair_by_shape(then, other):
            pairs[(t.scope, t.name)] = ((first.scope, first.name), node.label)
    return pairs


def _pair_by_shape(then: list[ParamTensor], other: list[ParamTensor]) -> list[tuple[ParamTensor, ParamTensor]]:
    """Each tensor of `other` after the first unpaired tensor of `then` with its dtype and dims."""
    free: dict[tuple[str, tuple[int, ...] | None], list[ParamTensor]] = {}
    for t in then:
        free.setdefault((t.dtype, t.dims), []).append(t)
    found = []
    for t in other:
        candidates = free.get((t.dtype, t.dims))
        if candidates:
            found.append((candidates.pop(0), t))
    return found


def _held(branch: str, stored: dict[str, list[ParamTensor]], children: dict[str, list[str]]) -> list[ParamTensor]:
    """The tensors stored in `branch` or in a body nested in it."""
    found: list[ParamTensor] = []
    todo, seen = [branch], set()
    while todo:
        scope = todo.pop()
        if scope not in seen:
            seen.add(scope)
            found += stored.get(scope, ())
            todo += children.get(scope, ())
    return found
