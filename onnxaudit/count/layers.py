"""Group nodes and counted tensors into the layers/modules the exporter's names still show.

PyTorch leaves state_dict keys on initializers (`layer1.0.bn1.running_mean`) and module scopes on
node names (`/layer1/layer1.0/conv1/Conv`); tf2onnx leaves Keras layer scopes (`model/conv0/BiasAdd`).
Where no name says anything, a node is its own layer.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter, not_

from onnxaudit.count.table import COUNTED_CATEGORIES, ParamTable, ParamTensor
from onnxaudit.io.dims import INTEGER_DTYPES
from onnxaudit.io.onnxcore import TensorProto
from onnxaudit.model.ops import CHANNEL_PRODUCTS
from onnxaudit.model.view import MAIN, Graph, ModelView, Node

# Last component of a state_dict key / variable name that names a tensor, not a module.
TENSOR_SUFFIXES = frozenset(
    {
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked", "gamma", "beta",
        "moving_mean", "moving_variance", "kernel", "scale", "embeddings", "in_proj_weight",
        "in_proj_bias", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "recurrent_kernel",
    }
)  # fmt: skip
_RNN_SUFFIX = re.compile(r"^(weight|bias)_(ih|hh)_l\d+(_reverse)?$")
# PaddlePaddle names a layer's parameters `<layer>_<k>.w_<i>` / `.b_<i>` (`conv2d_0.w_0`, `batch_norm2d_0.w_1`)
_PADDLE_SUFFIX = re.compile(r"^[wb]_\d+$")
# tf2onnx appends `__<n>` / `:0` to generated names.
_GENERATED_SUFFIX = re.compile(r"(__\d+|:\d+)$")


@dataclass(slots=True)  # 70k made at 200k nodes, their lists read by every stage after
class Layer:
    """One row: a module/layer path, its nodes in graph order and the tensors it owns."""

    path: tuple[str, ...]
    name: str
    nodes: list[Node] = field(default_factory=list)
    tensors: list[ParamTensor] = field(default_factory=list)

    @property
    def first_index(self) -> int:
        # the nodes are kept in graph order (group_layers appends them so, roll_up sorts): the first
        # is the smallest, no min over them (framework_view asks once per layer, 50k at 200k nodes)
        return self.nodes[0].index if self.nodes else 1 << 62

    @property
    def op_types(self) -> list[str]:
        """Op types in order; Constant nodes are storage, not operations, and are left out."""
        if len(self.nodes) == 1:  # most layers: no dict to build
            return [self.nodes[0].op_type]
        ops = dict.fromkeys([n.op_type for n in self.nodes])
        if len(ops) > 1:  # a layer of Constants alone still shows them
            ops.pop("Constant", None)
        return list(ops)


def path_from_tensor_name(name: str) -> tuple[str, ...] | None:
    """`layer1.0.bn1.running_mean` -> (layer1, 0, bn1); anything not shaped like a key -> None."""
    head, dot, last = name.rpartition(".")  # a key has a dot: its last part names the tensor
    if not dot or "/" in name:
        return None
    if last in TENSOR_SUFFIXES or _RNN_SUFFIX.match(last) or _PADDLE_SUFFIX.match(last):
        # a key when the module path before that part (a word) is dotted words (`\w`: str.isalnum's
        # characters and `_`), the first starting with an ASCII letter or `_`, as `^[A-Za-z_]\w*(\.\w+)+$`
        # over the name would say: told by str methods in C, no regex (48.6k keys at 200k nodes)
        parts = head.split(".")
        if "" in parts or not head.replace("_", "a").replace(".", "a").isalnum():
            return None
        first = head[0]
        return tuple(parts) if first == "_" or (first.isascii() and first.isalpha()) else None
    return None


def _split_node_name(name: str) -> list[str]:
    return [p for p in name.split("/") if p]


def path_from_node_name(name: str) -> tuple[str, ...] | None:
    """`/layer1/layer1.0/conv1/Conv` -> (layer1, 0, conv1); `model/conv0/BiasAdd` -> (model, conv0)."""
    return _prefix_path(_scope_prefix(name)) or None


def _merge_scope(path: tuple[str, ...], scope: str) -> tuple[str, ...]:
    # torch writes a child of a container with its parent's name (`layer1.0` under `layer1`,
    # `downsample.0` under `downsample`): merge the overlap instead of repeating it
    if "." not in scope:  # one part: a module of its own, even named as its parent (`model.model`)
        return (*path, scope)
    parts = tuple(scope.split("."))
    if parts[0] not in path:  # an overlap of any length starts with it (`layers.3` under `model`: none)
        return path + parts
    overlap = max((k for k in range(1, min(len(path), len(parts)) + 1) if path[-k:] == parts[:k]), default=0)
    return path + parts[overlap:]


# scope prefix (`/layer1/layer1.0/conv1`) -> module path; nodes of one module share their prefix
# (200k nodes, ~70k prefixes), and a prefix's path extends its parent prefix's by one scope.
_PREFIX_PATHS: dict[str, tuple[str, ...]] = {}
_MAX_PREFIXES = 1 << 17


_UNKNOWN_PARENTS = 8  # parent prefixes worked out one from the next at most; deeper, by walking the scopes


def _prefix_path(prefix: str) -> tuple[str, ...]:
    """The module path of the scopes in `prefix` (its non-empty slash-separated parts), () for none: its
    parent prefix's extended by its last scope, a few parents not known yet worked out (and kept for
    their other children) on the way."""
    path = _PREFIX_PATHS.get(prefix)
    if path is not None:
        return path
    parent, _, last = prefix.rpartition("/")
    base = _PREFIX_PATHS.get(parent) if parent else ()
    if base is not None and "." not in last:  # most: a known parent and one plain scope more
        path = (*base, last) if last else base
        if len(_PREFIX_PATHS) >= _MAX_PREFIXES:  # as _remember
            _PREFIX_PATHS.clear()
        _PREFIX_PATHS[prefix] = path
        return path
    unknown = [prefix]  # this prefix and its parents not known yet, the deepest first
    while base is None:
        if len(unknown) == _UNKNOWN_PARENTS:  # walk its scopes
            base = ()
            for scope in parent.split("/"):
                if scope:
                    base = _merge_scope(base, scope)
            _remember(parent, base)
            break
        unknown.append(parent)
        parent = parent.rpartition("/")[0]
        base = _PREFIX_PATHS.get(parent) if parent else ()
    for head in reversed(unknown):
        last = head.rpartition("/")[2]
        if "." in last:
            base = _merge_scope(base, last)
        elif last:  # _merge_scope's one-part case, inlined: one call a prefix fewer (200k nodes: ~70k prefixes)
            base = (*base, last)
        _remember(head, base)
    return base


def _remember(prefix: str, path: tuple[str, ...]) -> None:
    if len(_PREFIX_PATHS) >= _MAX_PREFIXES:
        _PREFIX_PATHS.clear()
    _PREFIX_PATHS[prefix] = path


def _scope_prefix(name: str) -> str:
    """`name` before its last part (the op or tensor itself), without tf2onnx's generated suffix."""
    if ":" in name or "__" in name:  # the only names _GENERATED_SUFFIX can match (not `/layer1/Add_1`)
        name = _GENERATED_SUFFIX.sub("", name)
    return name.rstrip("/").rpartition("/")[0]


def path_from_module_scopes(scopes: tuple[str, ...]) -> tuple[str, ...] | None:
    """Dynamo's name_scopes `['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d_1']`: the last
    module (before the op itself) is the full dotted path."""
    # torch.cond's branches are traced from the root module, named `_export_root`
    modules = [
        s.removeprefix("_export_root.")
        for s in scopes[:-1]
        if s and s != "_export_root" and not s.startswith("_empty_nn_module_stack")
    ]
    return tuple(modules[-1].split(".")) if modules else None


def tf_scopes(name: str) -> list[str]:
    """The name scopes of a slash-separated name, without its last part (the op or tensor itself)."""
    if ";" in name:
        name = tflite_main_part(name)
    return _split_node_name(_scope_prefix(name))


# The TF ops that hold a layer's weights: in a fused name, the part that names the layer
_TFLITE_WEIGHT_OP = re.compile(
    r"/(convolution|Conv2D|Conv3D|conv1d|conv_transpose|conv2d_transpose|depthwise|separable_conv2d|MatMul|"
    r"BiasAdd|Tensordot|[Ee]insum|embedding_lookup)[^/]*$"
)


def tflite_parts(name: str) -> list[str]:
    """The TF ops a TFLite op was fused from, as its location names them: tf2onnx converting a .tflite
    file names a node `model/re_lu/Relu;model/bn0/batchnorm/add_1;model/conv0/BiasAdd;...` (a conv,
    its BN and its activation fused into one op), in no telling order."""
    return name.split(";")


def names_weight_op(part: str) -> bool:
    """Whether a part of a fused TFLite name is a TF op that holds a layer's weights."""
    return _TFLITE_WEIGHT_OP.search(part) is not None


def tflite_main_part(name: str) -> str:
    """The part of a fused name that names the layer holding the weights (the conv, not the BN or the
    ReLU fused into it); else the first part naming a BN's ops, else the first part."""
    parts = tflite_parts(name)
    weights = [part for part in parts if names_weight_op(part)]
    norms = [part for part in parts if "/batchnorm/" in part]
    return (weights or norms or parts)[0]


def _common_root(paths: list[tuple[str, ...]]) -> int:
    """How many leading scopes nearly every TF-style path shares (`StatefulPartitionedCall/model/...`);
    a few stray names (a frozen while-loop's condition graph) do not break the model's root."""
    if len(paths) < 2:
        return 0
    depth = 0
    members = paths
    while True:
        deep = [p for p in members if len(p) > depth + 1]
        if not deep:
            return depth
        top, count = Counter(p[depth] for p in deep).most_common(1)[0]
        if count < 0.8 * len(members) or len({p[depth] for p in deep}) > 1 and count < 0.8 * len(paths):
            return depth
        members = [p for p in deep if p[depth] == top]
        depth += 1


_NON_DATA = INTEGER_DTYPES | {TensorProto.BOOL}
_KERAS3_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class TfNaming:
    """How a tf2onnx file's scopes map to Keras layer names: the shared root scopes to drop
    (`StatefulPartitionedCall/model/...`) and whether Keras 3's re-entered scopes (`conv0_1` for
    layer `conv0`, `functional_1` for the model) need their one suffix stripped."""

    root: tuple[str, ...]
    keras3: bool

    def layer(self, name: str) -> str | None:
        scopes = tuple(tf_scopes(name))
        if len(scopes) <= len(self.root) or scopes[: len(self.root)] != self.root:
            return None
        return self.clean(scopes[len(self.root)])

    def scope(self, name: str) -> str | None:
        """Every scope below the root (`block/expand/bn`): tf_keras allows a slash in a layer's name
        (MobileNetV3's `expanded_conv_9/expand`), which `layer` cuts to its first part."""
        scopes = tuple(tf_scopes(name))
        if len(scopes) <= len(self.root) or scopes[: len(self.root)] != self.root:
            return None
        return "/".join(map(self.clean, scopes[len(self.root) :]))

    def sublayer(self, name: str, level: int, own: bool) -> tuple[tuple[str, ...], str] | None:
        """The scope `level` below the layer's in `name` (`MagikaV2/Dense_0/MatMul`, 1 -> `Dense_0`); for
        a node's own name (`own`) with no scope that deep, the op's name itself without tf2onnx's suffix
        (`MagikaV2/Reshape__47` -> `Reshape`, with the `MagikaV2/Reshape/shape_Concat` computing its target).
        With the scopes above it, which tell two equal names apart."""
        scopes = tuple(tf_scopes(name))
        depth = len(self.root) + level
        if len(scopes) < depth or scopes[: len(self.root)] != self.root:
            return None
        if len(scopes) > depth:
            return scopes[:depth], self.clean(scopes[depth])
        last = _GENERATED_SUFFIX.sub("", name.rstrip("/").rpartition("/")[2]) if own and ";" not in name else ""
        return (scopes, self.clean(last)) if last else None

    def clean(self, scope: str) -> str:
        return _KERAS3_SUFFIX.sub("", scope) if self.keras3 else scope


def tf_naming(view: ModelView) -> TfNaming:
    scoped = [tuple(tf_scopes(n.name)) for n in view.main.nodes]
    known = [p for p in scoped if p]
    strip = _common_root(known)
    root = Counter(p[:strip] for p in known if len(p) > strip).most_common(1)[0][0] if strip else ()
    layers = [p[strip] for p in known if len(p) > strip and p[:strip] == root]
    keras3 = bool(root) and root[-1].endswith("_1") and bool(layers)
    keras3 = keras3 and all(_KERAS3_SUFFIX.search(name) for name in layers)
    return TfNaming(tuple(root), keras3)


def _node_candidates(node: Node, param_names: dict[int, list[str]], readers: dict[str, list[Node]]) -> list[str]:
    """Names that may tell an anonymous node's layer: its weights, then its outputs, then inputs. A node
    holding weights whose output one node reads takes that node's weights' names before its inputs'
    (tf2onnx on a TFLite FullyConnected: an anonymous MatMul, then an Add of the Dense's bias)."""
    weights = param_names.get(node.index, [])
    after = readers.get(node.outputs[0], []) if weights and len(node.outputs) == 1 else []
    # tf2onnx's einsum rewrite (tf_keras's MultiHeadAttention, EinsumDense): an anonymous Gemm or MatMul,
    # reshaped back (Reshape, Squeeze), then the layer's own named bias Add
    for _ in range(_EINSUM_HOPS):
        if len(after) != 1 or after[0].op_type not in _EINSUM_RESHAPES or after[0].index in param_names:
            break
        after = readers.get(after[0].outputs[0], []) if after[0].outputs else []
    then = param_names.get(after[0].index, []) if len(after) == 1 else []
    return [*weights, *node.outputs, *then, *node.inputs]


_EINSUM_RESHAPES = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Transpose"})
_EINSUM_HOPS = 4


_RNN_OPS = frozenset({"LSTM", "GRU", "RNN"})


def _rnn_state_names(graph: Graph) -> dict[int, list[str]]:
    """For an anonymous ONNX LSTM/GRU/RNN that tf2onnx built: the names its initial state comes from
    (`<layer>/zeros`, a few anonymous Unsqueeze/Concat back). Its data input may be the previous
    layer's output (`bilstm/concat` feeding a Bidirectional GRU), so the state tells its layer better."""
    rnns = [n for n in graph.nodes if n.op_type in _RNN_OPS and not tf_scopes(n.name) and len(n.inputs) > 5]
    if not rnns:
        return {}
    producers = graph.producers
    found: dict[int, list[str]] = {}
    for rnn in rnns:
        frontier, names = [name for name in rnn.inputs[5:7] if name], []
        for _ in range(3):  # a few anonymous hops at most
            names += [name for name in frontier if tf_scopes(name)]
            steps = [producers.get(name) for name in frontier if not tf_scopes(name)]
            frontier = [i for p in steps if p is not None for i in p.inputs if i]
        found[rnn.index] = names + [name for name in frontier if tf_scopes(name)]
    return found


def _torch_rows(nodes: list[Node], rows: _Rows) -> tuple[_TorchPaths, list[Node]]:
    """Each node's path from torch's module scopes or name, and the node in its row as it goes (one pass
    over 200k nodes); the nodes without a path, in graph order, are left for later. Only theirs are kept
    by index: a row holds the others (_TorchPaths.of works a node's out again, for the few asked)."""
    paths = _TorchPaths()
    unnamed: list[Node] = []
    layers, firsts = rows.layers, rows.firsts
    get = layers.get
    known = _PREFIX_PATHS
    by_module: dict[str, tuple[str, ...]] = {}  # a node's innermost module scope -> its path
    for n in nodes:
        scopes = n.module_scopes
        if scopes:
            path = by_module.get(scopes[-2] if len(scopes) > 1 else "") or _module_path(scopes, by_module)
        else:  # path_from_node_name, inlined: its prefix and the memo's look-up
            name = n.name
            if ":" in name or "__" in name:  # as _scope_prefix
                name = _GENERATED_SUFFIX.sub("", name)
            prefix, _, last = name.rpartition("/")
            if not last:  # a name ending with "/" (or empty): its trailing slashes dropped first
                prefix = name.rstrip("/").rpartition("/")[0]
            path = known.get(prefix)
            path = (path if path is not None else _prefix_path(prefix)) or None
        if path is None:
            paths[n.index] = None
            unnamed.append(n)
            continue
        layer = get(path)
        if layer is None:  # a new row, made by its first node (layer_for's, inline)
            layer = layers[path] = Layer(path, ".".join(path)) if path[0] != "#node" else rows.layer_for(path, n)
            firsts.append(n.index)
        layer.nodes.append(n)
    _PREFIX_PATHS.clear()  # a cache for this graph's names: ~13 MB at 200k nodes, not kept for the run
    return paths, unnamed


def _torch_node_paths(nodes: list[Node]) -> NodePaths:
    """path_from_module_scopes or path_from_node_name of every node."""
    by_module: dict[str, tuple[str, ...]] = {}
    paths: NodePaths = {}
    for n in nodes:
        scopes = n.module_scopes
        if scopes:
            paths[n.index] = by_module.get(scopes[-2] if len(scopes) > 1 else "") or _module_path(scopes, by_module)
        else:
            paths[n.index] = _prefix_path(_scope_prefix(n.name)) or None
    _PREFIX_PATHS.clear()
    return paths


def _module_path(scopes: tuple[str, ...], by_module: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """path_from_module_scopes, kept by the innermost module scope when that gives it alone (a module's
    nodes share it: worked out once per module, not once per node)."""
    path = path_from_module_scopes(scopes)
    inner = scopes[-2] if len(scopes) > 1 else ""
    if path is not None and _names_module(inner):
        by_module[inner] = path
    return path


def _names_module(scope: str) -> bool:
    """Whether path_from_module_scopes takes `scope` for a module: a node whose last module scope it is
    has its path from it alone."""
    return bool(scope) and scope != "_export_root" and not scope.startswith("_empty_nn_module_stack")


_INDEX = attrgetter("index")
_INPUTS = attrgetter("inputs")


def group_layers(view: ModelView, table: ParamTable) -> list[Layer]:
    """Layers of the main graph in order of their first node; subgraph and function tensors join
    the layer of the node that owns the subgraph or calls the function."""
    main_nodes = view.main.nodes
    in_bodies = _branch_nodes(view) if len(view.graphs) > 1 else []
    torch_style = _torch_style(main_nodes, in_bodies)
    rows = _Rows(main_nodes)
    node_paths: _Paths
    if torch_style:
        node_paths, unnamed = _torch_rows(main_nodes, rows)
        # only a node without a path asks what it reads: no map of every node's parameters when none
        # of those reads anything (a Constant)
        param_names = _param_names(table, {n.index for n in unnamed if n.inputs})
        _keys_for_anonymous(unnamed, node_paths, param_names)
        if in_bodies:  # a module called inside an If or Loop body is a layer of its own, as in torch
            node_paths.update(_torch_node_paths(in_bodies))
    else:
        param_names = _param_names(table)
        node_paths = _Paths(_tf_paths(view, table, param_names))
        unnamed = _tf_rows(main_nodes, node_paths, rows)
    # an op inside an If or Loop body that reads a parameter takes a row of its own, not the If's
    helpers = _attach_helpers(view, node_paths, param_names, unnamed)
    _place_unnamed(rows, unnamed, node_paths)
    # after the main graph's: a branch's module never takes the If's row
    for node in [n for n in in_bodies if node_paths[n.index]] if torch_style else ():
        rows.layer_for(node_paths[node.index], node).nodes.append(node)
    unused = Layer(("#unused",), "(not consumed by any node)")
    in_branch = {n.index for n in in_bodies}
    owner_of_scope = _main_owner_of_scopes(view)
    by_use: dict[int, Layer] = {}  # id -> a layer given a counted tensor by its use, not by its key
    get = rows.layers.get
    for tensor in table.tensors:
        key = path_from_tensor_name(tensor.name)
        named = get(key) if key is not None else None
        if named is None:  # not the layer its state_dict key names (most join that one)
            named = _tensor_row(tensor, key, rows, node_paths, in_branch, owner_of_scope) or unused
            if tensor.category in COUNTED_CATEGORIES:
                by_use[id(named)] = named
        named.tensors.append(tensor)
    if torch_style and by_use:
        _name_by_keys(rows, by_use)
    return _in_row_order(rows, helpers) + ([unused] if unused.tensors else [])


def _tf_rows(main_nodes: list[Node], node_paths: NodePaths, rows: _Rows) -> list[Node]:
    """Each node with a path in its row (as _torch_rows); the nodes without one, in graph order."""
    unnamed = []
    get = rows.layers.get
    for node in main_nodes:
        path = node_paths[node.index]
        if not path:
            unnamed.append(node)
            continue
        layer = get(path)
        if layer is None:
            layer = rows.layer_for(path, node)
            rows.firsts.append(node.index)
        layer.nodes.append(node)
    return unnamed


def _place_unnamed(rows: _Rows, unnamed: list[Node], node_paths: NodePaths) -> None:
    """The nodes that had no path, in the rows of the paths they were given since (_keys_for_anonymous,
    _attach_helpers), else each in a row of its own; in graph order among the row's nodes."""
    get = rows.layers.get
    for node in unnamed:
        path = node_paths[node.index]
        layer = (get(path) if path else None) or rows.layer_for(path, node)
        nodes = layer.nodes
        if not nodes or nodes[-1].index < node.index:
            nodes.append(node)
            continue
        first = nodes[0].index
        insort(nodes, node, key=_INDEX)
        if nodes[0] is node and id(layer) not in rows.moved:  # no longer first: the node that made the row
            at = bisect_left(rows.firsts, first)  # made in graph order: rows.firsts is sorted
            if at < len(rows.firsts) and rows.firsts[at] == first:
                rows.moved[id(layer)] = at


def _in_row_order(rows: _Rows, helpers: set[int]) -> list[Layer]:
    """The rows sorted by _row_order: for the rows made by their first node (the first rows.layers
    holds, unless a row was renamed since), the index kept as they were made. Sorted by that index
    alone when no two rows share one (the names never decide then: no (index, name) pair per row)."""
    layers = list(rows.layers.values())
    made = [] if rows.renamed else rows.firsts
    index = made[: len(layers)]  # a copy: rows.firsts stays as made
    for at in rows.moved.values() if index else ():
        index[at] = _row_order(layers[at], helpers)[0]
    index += [
        nodes[0].index if (nodes := layer.nodes) and nodes[0].index not in helpers else _row_order(layer, helpers)[0]
        for layer in layers[len(index) :]
    ]
    if len(set(index)) == len(index):
        places = sorted(range(len(layers)), key=index.__getitem__)
    else:  # rows at one place (rows of no node: the last place) go by name
        order = list(zip(index, map(_NAME, layers), strict=True))
        places = sorted(range(len(layers)), key=order.__getitem__)
    return list(map(layers.__getitem__, places))


_NAME = attrgetter("name")


def _name_by_keys(rows: _Rows, by_use: dict[int, Layer]) -> None:
    """A torch row whose node scopes dropped a module from its path (timm's MetaFormer: `/norm/...` for
    `head.norm`) takes the path its parameters' state_dict keys name, where every key among its counted
    tensors names that one module, the row's path is that module's path with parts left out, and no row has it.
    Only the rows `by_use` holds (by id) are asked: a row given its counted tensors by their keys has its path.
    They are asked in the order of their first main-graph node, then as made (rows.layers' order, had every
    node been placed in graph order)."""
    made = {id(layer): i for i, layer in enumerate(rows.made)}
    for layer in sorted(by_use.values(), key=lambda la: _made_order(la, made)):
        path = layer.path
        if rows.layers.get(path) is not layer or path[0].startswith("#") or not layer.tensors:
            continue
        keys = {path_from_tensor_name(t.name) for t in layer.tensors if t.category in COUNTED_CATEGORIES}
        keys.discard(None)  # an anonymous tensor (a folded weight) names no module
        key = keys.pop() if len(keys) == 1 else None
        if key is None or key == path or key in rows.layers or not _within(path, key):
            continue
        del rows.layers[path]
        layer.path, layer.name = key, ".".join(key)
        rows.layers[key] = layer
        rows.renamed = True


def _made_order(layer: Layer, made: dict[int, int]) -> tuple[int, int]:
    """Where a row stands in rows.layers had every main node been placed in graph order: the rows of
    main-graph nodes by their first node, then the others as made."""
    nodes = layer.nodes
    if nodes and nodes[0].scope == MAIN:
        return (0, nodes[0].index)
    return (1, made.get(id(layer), -1))


def _within(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    """`short`'s parts appear in `long` in order, `long` ending with `short`'s last part."""
    if len(short) >= len(long) or short[-1] != long[-1]:
        return False
    parts = iter(long)
    return all(part in parts for part in short)


def _param_names(table: ParamTable, among: set[int] | None = None) -> dict[int, list[str]]:
    """Node index -> the names of the counted tensors it reads (of the nodes `among`, when given)."""
    param_names: dict[int, list[str]] = {}
    if among is not None and not among:
        return param_names
    for tensor in table.tensors:
        if tensor.category in COUNTED_CATEGORIES:
            for use in tensor.uses:
                index = use.node.index
                if among is None or index in among:
                    param_names.setdefault(index, []).append(tensor.name)
    return param_names


def _torch_style(main_nodes: list[Node], in_bodies: list[Node]) -> bool:
    """torch.onnx's names (`/scope/Op`) or module scopes, in the main graph or (Optimum's merged
    decoder: one If, torch's names inside) in the bodies."""
    if any(n.name.startswith("/") or n.module_scopes for n in main_nodes):
        return True
    return bool(in_bodies) and any(n.name.startswith("/") or n.module_scopes for n in in_bodies)


NodePaths = dict[int, tuple[str, ...] | None]  # node index -> its layer path (None: none found yet)


class _Paths(NodePaths):
    """Node index -> its layer path; `of` a node: its path (None: none, or a node of no main graph or body)."""

    def of(self, node: Node) -> tuple[str, ...] | None:
        return self.get(node.index)


class _TorchPaths(_Paths):
    """_torch_rows' paths: those of the main graph's nodes without one (and of what they were given since)
    and of the bodies' nodes; a main-graph node's not kept is worked out again from its scopes or name."""

    def of(self, node: Node) -> tuple[str, ...] | None:
        if node.index in self or node.scope != MAIN:
            return self.get(node.index)
        if node.module_scopes:
            return path_from_module_scopes(node.module_scopes)
        return path_from_node_name(node.name)


def _keys_for_anonymous(nodes: list[Node], node_paths: NodePaths, param_names: dict[int, list[str]]) -> None:
    """An anonymous node takes the module of the state_dict keys it consumes."""
    for node in nodes:
        if node_paths[node.index] is None:
            keys = [path_from_tensor_name(name) for name in param_names.get(node.index, [])]
            node_paths[node.index] = next((k for k in keys if k), None)


def _tf_paths(view: ModelView, table: ParamTable, param_names: dict[int, list[str]]) -> NodePaths:
    """Each node's Keras layer from tf2onnx's scopes (or the names of what it reads), then state_dict
    keys where no scope says anything, then the helpers that join the layer they follow."""
    main_nodes = view.main.nodes
    naming = tf_naming(view)
    node_paths: NodePaths = {}
    state_names = _rnn_state_names(view.main)
    readers = view.main.readers
    named: dict[int, str] = {}  # node index -> the name its layer was read from
    for node in main_nodes:
        names = [node.name] if tf_scopes(node.name) else _node_candidates(node, param_names, readers)
        names = state_names.get(node.index, []) + names
        found = ((naming.layer(name), name) for name in names)
        layer, source = next(((f, name) for f, name in found if f), (None, ""))
        node_paths[node.index] = (layer,) if layer else None
        if layer:
            named[node.index] = source
    _keys_for_anonymous(main_nodes, node_paths, param_names)  # no scopes at all (dynamo without metadata)
    if naming.root:
        _join_einsum_rewrites(view.main, node_paths, param_names)
    _join_what_they_follow(view, table, naming, node_paths, param_names)
    _join_lowered_norms(view.main, node_paths, param_names)
    _open_the_container(main_nodes, table, naming, node_paths, named)
    return node_paths


# ops that hold a layer's weights: a model's layers are where they are
_PRODUCTS = CHANNEL_PRODUCTS | _RNN_OPS | {"Einsum", "QGemm", "QLinearMatMul", "MatMulNBits"}
_CONTAINER_SHARE = 0.5  # of the main graph's nodes, in the one layer holding every product
# products in it at least: one layer holds two (a SeparableConv2D's depthwise and pointwise convs, a
# Bidirectional's two RNNs), so a model of that one layer is not opened (an attention layer alone is)
_CONTAINER_PRODUCTS = 3
_CONTAINERS_OPENED = 4  # scopes opened one inside the other at most (jax2tf: function, pjit, module)


def _open_the_container(
    main_nodes: list[Node], table: ParamTable, naming: TfNaming, node_paths: NodePaths, named: dict[int, str]
) -> None:
    """One scope over the whole model (Caffe2's `gpu_0/` on every tensor, a Flax module `MagikaV2/`
    under jax2tf's scopes) makes one layer of it (see _container): its nodes are grouped one scope deeper
    (`MagikaV2/Dense_0/...` -> `Dense_0`), a node with no deeper scope is a row of its own, and so on
    while one layer is still the model."""
    levels: dict[int, int] = {}  # node index -> scopes opened below the layer its name gave
    given: dict[int, tuple[tuple[str, ...], str]] = {}  # node index -> the scopes above its new layer, and it
    opened: list[tuple[str, ...]] = []
    for _ in range(_CONTAINERS_OPENED):
        container = _container(main_nodes, table, node_paths)
        if container is None:
            break
        opened.append(container)
        for node in main_nodes:
            if node_paths[node.index] == container:
                levels[node.index] = level = levels.get(node.index, 0) + 1
                source = named.get(node.index, "")
                sub = naming.sublayer(source, level, source == node.name)
                node_paths[node.index] = (sub[1],) if sub else None
                if sub:
                    given[node.index] = sub
    if given:
        _settle_names(given, node_paths, keras3=not naming.keras3 and opened[0][-1].endswith("_1"))


def _settle_names(given: dict[int, tuple[tuple[str, ...], str]], node_paths: NodePaths, keras3: bool) -> None:
    """A name under two different scopes (`Max` inside the module and beside it) is a row for neither;
    under Keras 3's model scope (`functional_1`, a TFLite file's only scope) each layer's re-entered
    scope loses its one suffix (`dense_1` is layer `dense`)."""
    parents: dict[str, set[tuple[str, ...]]] = {}
    for above, name in given.values():
        parents.setdefault(name, set()).add(above)
    keras3 = keras3 and all(_KERAS3_SUFFIX.search(name) for name in parents)
    for index, (_, name) in given.items():
        if node_paths[index] != (name,):
            continue
        if len(parents[name]) > 1:
            node_paths[index] = None
        elif keras3:
            node_paths[index] = (_KERAS3_SUFFIX.sub("", name),)


def _container(main_nodes: list[Node], table: ParamTable, node_paths: NodePaths) -> tuple[str, ...] | None:
    """The layer that is the model, not a layer: it holds every product of the graph (three or more),
    every counted parameter and at least half of the nodes."""
    sizes = Counter(path for path in node_paths.values() if path)
    if not sizes:
        return None
    container, size = sizes.most_common(1)[0]
    if size < _CONTAINER_SHARE * len(main_nodes):
        return None
    products = [n for n in main_nodes if n.op_type in _PRODUCTS]
    if len(products) < _CONTAINER_PRODUCTS or any(node_paths[n.index] != container for n in products):
        return None
    counted = (t for t in table.tensors if t.category in COUNTED_CATEGORIES and t.uses)
    if any(all(node_paths.get(u.node.index) != container for u in t.uses) for t in counted):
        return None  # a parameter read outside: the layer is one of several
    return container


def _join_einsum_rewrites(graph: Graph, node_paths: NodePaths, param_names: dict[int, list[str]]) -> None:
    """tf2onnx rewrites a layer's einsums (tf_keras's MultiHeadAttention, EinsumDense) into nodes of its
    own naming (`Gemm__145`, `Reshape__142`); without a bias Add after them (use_bias=False) no named op
    says whose kernels the Gemms read. The region of such nodes connected to an anonymous product holding
    weights meets named ops: the layer named both before and after the region (the attention's softmax
    feeding the values' product, its query scaling fed by the query's) is the one rewritten, and with none
    such, a single layer the region meets; the region joins it."""
    anonymous = {n.index for n in graph.nodes if node_paths[n.index] is None and _GENERATED_SUFFIX.search(n.name or "")}
    seeds = [n for n in graph.nodes if n.index in anonymous and n.op_type in _PRODUCTS and n.index in param_names]
    if not seeds:
        return
    producers, readers = graph.producers, graph.readers
    done: set[int] = set()
    for seed in seeds:
        if seed.index in done:
            continue
        region, before, after = _einsum_region(seed, anonymous, producers, readers, node_paths)
        done |= {n.index for n in region}
        layers = before & after or before | after
        if len(layers) == 1:
            path = next(iter(layers))
            for node in region:
                node_paths[node.index] = path


_REGION_NODES = 4096  # nodes of one rewritten region at most


def _einsum_region(
    seed: Node,
    anonymous: set[int],
    producers: dict[str, Node],
    readers: dict[str, list[Node]],
    node_paths: NodePaths,
) -> tuple[list[Node], set[tuple[str, ...]], set[tuple[str, ...]]]:
    """The anonymous nodes joined to `seed` by values, and the layers of the named nodes that feed the
    region and of those it feeds."""
    region: list[Node] = []
    seen = {seed.index}
    before: set[tuple[str, ...]] = set()
    after: set[tuple[str, ...]] = set()
    todo = [seed]
    while todo and len(region) < _REGION_NODES:
        node = todo.pop()
        region.append(node)
        inputs = [producers[name] for name in node.inputs if name in producers]
        outputs = [reader for name in node.outputs if name for reader in readers.get(name, ())]
        for neighbours, named in ((inputs, before), (outputs, after)):
            for other in neighbours:
                if other.index in anonymous:
                    if other.index not in seen:
                        seen.add(other.index)
                        todo.append(other)
                elif (path := node_paths.get(other.index)) is not None:
                    named.add(path)
    return region, before, after


def _join_what_they_follow(
    view: ModelView, table: ParamTable, naming: TfNaming, node_paths: NodePaths, param_names: dict[int, list[str]]
) -> None:
    """tf2onnx's own helpers (`Squeeze__36` after an LSTM), anonymous Identity nodes (paddle2onnx puts
    one after many ops: `Identity.1`) and the Add of a bias paddle2onnx moved out of its Conv, folded
    under a name of its own (`p2o.pd_op.reshape.0.0`), join the layer they follow."""
    producers = view.main.producers
    biases = {t.name for t in table.tensors if t.role == "bias"}
    stored = view.main.tensors
    for node in view.main.nodes:
        if node_paths[node.index] is not None or not node.inputs:
            continue
        # an op that reads stored weights only (the Transpose an unfolded legacy export writes
        # before a MatMul) belongs to the module their state_dict keys name
        owners = {path_from_tensor_name(name) if name in stored else None for name in node.inputs if name}
        if len(owners) == 1 and None not in owners:
            node_paths[node.index] = owners.pop()
            continue
        if node.index in param_names:
            joins = node.op_type == "Add" and biases.issuperset(param_names[node.index])
        else:
            joins = node.op_type == "Identity" or bool(naming.root and _GENERATED_SUFFIX.search(node.name))
        if joins:
            source = producers.get(node.inputs[0])
            if source is not None:
                node_paths[node.index] = node_paths.get(source.index)


class _Rows:
    """The layers by path, made as nodes and tensors ask for them; a node without a path is a row of
    its own, named after its label."""

    def __init__(self, main_nodes: list[Node]) -> None:
        self.layers: dict[tuple[str, ...], Layer] = {}
        self.main_nodes = main_nodes
        self.labels: dict[str, str] = {}  # str(index) -> label of main nodes, made when a row needs one
        # the index of the node that made each row as main nodes are placed in graph order (its first:
        # with its name, its _row_order): the first rows of `layers`, in order
        self.firsts: list[int] = []
        self.made: list[Layer] = []  # the rows layer_for made, in order
        self.moved: dict[int, int] = {}  # id -> place in firsts of a row whose first node came later
        self.renamed = False  # whether _name_by_keys renamed a row (rows.layers' order changed)

    def layer_for(self, path: tuple[str, ...] | None, node: Node | None) -> Layer:
        key = path if path else ("#node", str(node.index if node else -1))
        layer = self.layers.get(key)  # one hash of the key per call (70k new layers at 200k nodes)
        if layer is None:
            if key[0] == "#node" and node is not None and key[1] == str(node.index):
                name = node.label  # the node's own row (indices are global: no other node has its index)
            elif key[0] == "#node":
                if not self.labels:
                    self.labels.update((str(n.index), n.label) for n in self.main_nodes)
                name = self.labels.get(key[1], node.label if node else "(unused)")
            else:
                name = ".".join(key)
            layer = self.layers[key] = Layer(key, name)
            self.made.append(layer)
        return layer


def _tensor_row(
    tensor: ParamTensor,
    path: tuple[str, ...] | None,
    rows: _Rows,
    node_paths: _Paths,
    in_branch: set[int],
    owner_of_scope: dict[str, Node],
) -> Layer | None:
    """The row a tensor joins when no layer is the module its state_dict key names (`path`, if any):
    its first named use's (a body's op that reads a parameter has its own; another body's node joins
    the main node owning the body); None when no node uses it."""
    first = _first_named_use(tensor)
    if first is not None and first.scope != MAIN:
        if first.index in in_branch and tensor.category in COUNTED_CATEGORIES:  # by a module or an op of its own
            target = rows.layer_for(node_paths.get(first.index) or path, first)
            if not target.nodes:
                target.nodes.append(first)
            return target
        first = owner_of_scope.get(first.scope, first)
    if first is None:
        return None
    if first.scope == MAIN:
        return rows.layer_for(node_paths.of(first), first)
    return rows.layer_for(path, first)


def _row_order(layer: Layer, helpers: set[int]) -> tuple[int, str]:
    """A row's place: its first own node (not a helper attached to it), in graph order."""
    for node in layer.nodes:  # in graph order: the first own node has the smallest own index
        if node.index not in helpers:
            return (node.index, layer.name)
    return (layer.first_index, layer.name)


# A normalization written out as ops: its mean, centring, variance, eps, root and division, and the
# Casts to float32 and back around them (LlamaRMSNorm)
_NORM_STATISTIC_OPS = frozenset({"ReduceMean", "Sub", "Pow", "Mul", "Add", "Sqrt", "Div", "Reciprocal", "Cast"})
_NORM_STATISTIC_MOST = 16  # nodes one normalization's statistics take (LayerNorm: 7, RMSNorm: 5)


def _join_lowered_norms(
    graph: Graph, node_paths: dict[int, tuple[str, ...] | None], param_names: dict[int, list[str]]
) -> None:
    """The anonymous ops that compute a LayerNorm's or RMSNorm's statistics (torch < 1.13 names them
    `ReduceMean_2`, `Sqrt_9`) join the layer of the `* weight` they feed, which its state_dict key
    names: torch's module holds them, so they take no rows of their own. Only nodes whose every
    reader is in the normalization join, starting from the mean (or the square, or a Cast) of the
    input: a residual Add before it stays where it was."""
    producers, readers = graph.producers, graph.readers
    for scale in graph.nodes:
        path = node_paths[scale.index]
        if scale.op_type != "Mul" or path is None or scale.index not in param_names:
            continue
        found = _statistics_behind(scale, producers, node_paths)
        if found is None:
            continue
        found = _read_only_inside(scale, found, producers, readers)
        ops = {node.op_type for node in found.values()}
        if "ReduceMean" in ops and not ops.isdisjoint(("Sqrt", "Reciprocal")):
            for index in found:
                node_paths[index] = path


def _statistics_behind(
    scale: Node, producers: dict[str, Node], node_paths: dict[int, tuple[str, ...] | None]
) -> dict[int, Node] | None:
    """The anonymous statistic ops behind a `* weight` (None: more than one normalization takes)."""
    found: dict[int, Node] = {}
    stack = [producers.get(name) for name in scale.inputs if name]
    while stack and len(found) <= _NORM_STATISTIC_MOST:
        node = stack.pop()
        if node is None or node.index in found or node_paths[node.index] is not None:
            continue
        if node.op_type not in _NORM_STATISTIC_OPS:
            continue
        found[node.index] = node
        stack += [producers.get(name) for name in node.inputs if name]
    return found if len(found) <= _NORM_STATISTIC_MOST else None


def _read_only_inside(
    scale: Node, found: dict[int, Node], producers: dict[str, Node], readers: dict[str, list[Node]]
) -> dict[int, Node]:
    """`found` without what a node outside also reads, and what starts from anything but the input's mean."""
    while True:
        inside = {scale.index, *found}
        kept = {}
        for index, node in found.items():
            if any(r.index not in inside for out in node.outputs for r in readers.get(out, ())):
                continue
            fed = [producers.get(name) for name in node.inputs if name]
            starts = not any(p is not None and p.index in found for p in fed)
            if starts and node.op_type not in ("ReduceMean", "Pow", "Mul", "Cast"):
                continue
            kept[index] = node
        if len(kept) == len(found):
            return found
        found = kept


def _branch_nodes(view: ModelView) -> list[Node]:
    """The nodes of the main graph's If/Loop/Scan bodies, nested ones too (not of functions)."""
    inside = {MAIN}
    found: list[Node] = []
    for scope, graph in view.graphs.items():  # in walk order: a body after the graph that holds it
        if graph.kind == "subgraph" and graph.parent in inside:
            inside.add(scope)
            found += graph.nodes
    return found


def _first_named_use(tensor: ParamTensor) -> Node | None:
    """The node of the first use in the role that names the tensor (not a Shape read of its dims)."""
    uses = tensor.uses
    if len(uses) == 1:  # most tensors: no list, no key function
        return uses[0].node
    role = tensor.role  # not read again per use
    named_uses = [u for u in uses if u.role == role] or list(uses)
    return min(named_uses, key=_NODE_INDEX).node if named_uses else None


_NODE_INDEX = attrgetter("node.index")  # no Python call per use: five shared constants have 48.6k uses at 200k nodes


def _attach_helpers(
    view: ModelView, node_paths: _Paths, param_names: dict[int, list[str]], unnamed: list[Node]
) -> set[int]:
    """Anonymous Constant nodes and shape arithmetic join the layer that consumes them, instead of
    each taking a row of its own (exporters emit many; torchinfo and Keras show none). `unnamed`: the
    main graph's nodes without a path, in graph order."""
    candidates = []  # nodes that may attach, last first: what decides it is the node's own
    value_shapes = view.value_shapes  # empty when inference was skipped (build.MAX_INFER_NODES)
    for node in reversed(unnamed):
        if node_paths.get(node.index) or node.index in param_names:
            continue
        if node.op_type != "Constant":
            if not value_shapes:
                continue  # no shapes: no node is shape arithmetic
            shapes = [value_shapes.get(out) for out in node.outputs if out]
            # shape arithmetic and loop conditions: integer or bool outputs only
            if not shapes or not all(v is not None and v.dtype in _NON_DATA for v in shapes):
                continue
        candidates.append(node)
    wanted = {out for node in candidates for out in node.outputs}
    first_reader: dict[str, Node] = {}  # the nodes are in graph order: the first is the earliest
    main = view.main.nodes if wanted else []
    # the nodes reading any of them, found in one C-level pass (most nodes read none: 200k nodes) that
    # stops once each has its first reader (a Constant's is often a few nodes on)
    for node in compress(main, map(not_, map(wanted.isdisjoint, map(_INPUTS, main)))):
        for name in node.inputs:
            if name in wanted and name not in first_reader:
                first_reader[name] = node
        if len(first_reader) == len(wanted):
            break
    attached: set[int] = set()
    for node in candidates:
        users = [first_reader[out] for out in node.outputs if out in first_reader]
        if users:  # the first consumer's layer, or that anonymous consumer's own row
            first = min(users, key=lambda c: c.index)
            node_paths[node.index] = node_paths.of(first) or ("#node", str(first.index))
            attached.add(node.index)
    return attached


def _main_owner_of_scopes(view: ModelView) -> dict[str, Node]:
    """For every subgraph/function scope, the main-graph node that (transitively) runs it."""
    owner: dict[str, Node] = {}
    if len(view.graphs) == 1:  # no subgraphs, no functions
        return owner
    for node in view.main.nodes:
        _claim_scopes(view, owner, node, node, 0)
    return owner


def _claim_scopes(view: ModelView, owner: dict[str, Node], node: Node, top: Node, depth: int) -> None:
    """Give `top` every scope `node` runs, and theirs, not claimed yet. A module function, not a
    closure: a closure calling itself is a reference cycle, kept (with the view) while gc is paused."""
    if depth > 32:
        return
    for sub in node.subgraphs:
        if sub not in owner:
            owner[sub] = top
            for inner in view.graphs[sub].nodes:
                _claim_scopes(view, owner, inner, top, depth + 1)
    body = view.functions.get((node.domain, node.op_type))
    if body is not None and body not in owner:
        owner[body] = top
        for inner in view.graphs[body].nodes:
            _claim_scopes(view, owner, inner, top, depth + 1)


def roll_up(layers: list[Layer], depth: int) -> list[Layer]:
    """torchinfo's --depth: merge layers whose paths share their first `depth` scopes."""
    merged: dict[tuple[str, ...], Layer] = {}
    for layer in layers:
        named = layer.path and not layer.path[0].startswith("#")
        key = layer.path[:depth] if named and len(layer.path) > depth else layer.path
        if key not in merged:
            merged[key] = Layer(key, ".".join(key) if named else layer.name)
        merged[key].nodes.extend(layer.nodes)
        merged[key].tensors.extend(layer.tensors)
    for layer in merged.values():
        layer.nodes.sort(key=lambda n: n.index)
    return _merge_anonymous_runs(list(merged.values()))


def _merge_anonymous_runs(layers: list[Layer]) -> list[Layer]:
    """At a --depth, consecutive rows that are one anonymous op each and hold no parameters (torch's
    functional ops at the top level: `/Slice_3`, `/Concat_4`; torchinfo shows none of them) become one row
    named by its first and last op, instead of a row per op."""
    out: list[Layer] = []
    run: list[Layer] = []

    def flush() -> None:
        if len(run) > 1:
            nodes = [n for layer in run for n in layer.nodes]
            name = f"{run[0].name} .. {run[-1].name} ({len(nodes)} ops)"
            out.append(Layer(("#ops", *run[0].path[1:]), name, nodes, [t for la in run for t in la.tensors]))
        else:
            out.extend(run)
        run.clear()

    for layer in layers:
        if layer.path[:1] == ("#node",) and not any(t.category in COUNTED_CATEGORIES for t in layer.tensors):
            run.append(layer)
        else:
            flush()
            out.append(layer)
    flush()
    return out
