"""What an exporter rule may ask of the file it looks at, and what a rule is.

Every rule has one signature, `rule(ctx, layer, tensors) -> list[FrameworkLayer] | None`: `ctx` is the
FileContext, built once per file, whose facts (the TF naming, the TFLite folds, who saved the file) are
computed on first use and then shared by every rule and layer. A rule declares the op types it needs with
`@rule(...)`, as onnxruntime's fusions declare theirs (`search_op_types`): where none of them is in the
file, or in the layer, it is not tried. The gates below are the file facts the registry's entries name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from onnxaudit.count.layers import Layer, TfNaming, names_weight_op, path_from_tensor_name, tf_naming, tflite_parts
from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.frameworks.common import ANONYMOUS_PARAMETER
from onnxaudit.frameworks.figures import FrameworkLayer
from onnxaudit.model.exporters import holds_module_scopes, torchscript_node_names
from onnxaudit.model.view import ModelView, Node

RuleFunction = Callable[["FileContext", Layer, list[ParamTensor]], "list[FrameworkLayer] | None"]


@dataclass(frozen=True, eq=False)
class Rule:
    """An exporter rule: the layer rebuilt as the framework counted it, or None where its pattern is absent.
    `ops`: it can match only a layer holding one of these op types (a node of the layer, or one reading
    its tensors)."""

    id: str
    ops: frozenset[str]
    function: RuleFunction

    def __call__(self, ctx: FileContext, layer: Layer, tensors: list[ParamTensor]) -> list[FrameworkLayer] | None:
        return self.function(ctx, layer, tensors)

    @property
    def summary(self) -> str:
        """The first line of the rule's docstring."""
        return (self.function.__doc__ or "").strip().partition("\n")[0]


def rule(*ops: str | Iterable[str]) -> Callable[[RuleFunction], Rule]:
    """Declare a rule and the op types it needs (names or collections of names)."""
    needed = frozenset(o for group in ops for o in ((group,) if isinstance(group, str) else group))
    if not needed:
        raise ValueError("a rule declares the op types it needs")

    def declare(function: RuleFunction) -> Rule:
        return Rule(function.__name__, needed, function)

    return declare


@dataclass(eq=False)
class FileContext:
    """One file as the rules see it: the view, its param table and who exported it, with facts computed
    once (on first use) for every rule and layer."""

    view: ModelView
    table: ParamTable

    @cached_property
    def origin(self) -> str:
        """keras | pytorch | paddle | unknown: who exported the file, from its producer and names."""
        view = self.view
        producer = view.producer.lower()
        # module scopes: no node asked when the reader saw none in the file (holds_module_scopes)
        if "pytorch" in producer or holds_module_scopes(view):
            return "pytorch"
        if "tf2onnx" in producer or "keras" in producer:
            return "keras"
        if "paddle" in producer or view.graph_name.startswith("PaddlePaddle") or "Paddle" in view.opsets:
            return "paddle"  # paddle2onnx: "PaddlePaddle Graph in PIR mode", no producer since 2.x
        if torchscript_node_names(view):
            # a TorchScript export that another tool re-saved under its own name: onnxruntime, Optimum,
            # onnx.compose's merge_models
            return "pytorch"
        return "unknown"

    @cached_property
    def op_types(self) -> frozenset[str]:
        """Every op type of the file, subgraphs included: a rule needing none of them is not tried (the
        view's, which the classifier built)."""
        return self.view.op_types

    @cached_property
    def naming(self) -> TfNaming:
        return tf_naming(self.view)

    def producer_of(self, name: str) -> Node | None:
        """The main-graph node that writes `name` (Graph.producers, built on first use and shared with the
        other stages: most layers never ask)."""
        return self.view.main.producers.get(name)

    @cached_property
    def tflite(self) -> bool:
        """tf2onnx converted a .tflite file: its ops, or the tensors they hold, are named by all the TF ops
        fused into them (`a/b;c/d`)."""
        names = (*(node.name for node in self.view.main.nodes), *self.view.main.tensors)
        return any(";" in name and "/" in name for name in names)

    @cached_property
    def tflite_folded_bns(self) -> frozenset[str]:
        """The BNs a TFLite file's weight ops list in their fused names (keras_fused_bn rebuilds those). A
        full-int8 file also names the Add of the folded shift after the BN: that Add is no second BN."""
        if not self.tflite:
            return frozenset()
        naming, found = self.naming, set[str | None]()
        for node in self.view.main.nodes:
            if ";" in node.name and naming.layer(node.name) and "/batchnorm/" in node.name:
                parts = tflite_parts(node.name)
                if any(map(names_weight_op, parts)):
                    found.update(naming.layer(part) for part in parts if "/batchnorm/" in part)
        return frozenset(name for name in found if name)

    @property
    def ort_optimized(self) -> bool:
        """Saved by onnxruntime's graph optimizer (SessionOptions.optimized_model_filepath), which imports
        every domain it registers, its NCHWc layout domain among them."""
        return "com.microsoft.nchwc" in self.view.opsets

    @cached_property
    def torchscript_names(self) -> bool:
        """Node names the TorchScript exporter gives: `/scope/Op`, or `Conv_611` before torch 1.13 (Silero
        VAD v4, pytorch 1.12, saved by onnxruntime)."""
        view = self.view
        return torchscript_node_names(view) or (
            view.producer.startswith("pytorch") and all(OLD_TORCHSCRIPT_NODE.fullmatch(n.name) for n in view.main.nodes)
        )

    @cached_property
    def parameter_names(self) -> list[str]:
        """The parameters' names as the framework gave them: onnxruntime's quantizers store `fc.weight` as
        `fc.weight_quantized`, Optimum's merged decoders as `fc.weight_merged_0`."""
        return [TOOL_SUFFIX.sub("", t.name) for t in self.table.tensors if t.category == "parameter"]

    @cached_property
    def state_dict_names(self) -> bool:
        """A PyTorch file that keeps its parameters' state_dict names (somewhere): the first such name
        ends the search (no list of every parameter's name, 38k at 200k nodes, for the answer)."""
        return any(
            path_from_tensor_name(TOOL_SUFFIX.sub("", t.name)) for t in self.table.tensors if t.category == "parameter"
        )


# a simplifier's name for a weight it folded (onnx-simplifier `_v_37`, onnxslim `<the BN's output>_weight`)
SIMPLIFIER_FOLDED = re.compile(r"_v_\d+|.*BatchNormalization.*_(weight|bias)")
TOOL_SUFFIX = re.compile(r"(_quantized|_merged_\d+)$")
OLD_TORCHSCRIPT_NODE = re.compile(r"[A-Z][A-Za-z0-9]*_\d+")


# ---------------------------------------------------------------- gates: file facts the registry names

Gate = Callable[[FileContext], bool]


def bn_reads_its_parameters_as_statistics(ctx: FileContext) -> bool:
    """A BN reads its gamma or beta in a statistic's slot (equal values a simplifier stored once)."""
    return any(
        u.slot in (3, 4) for t in ctx.table.tensors if t.role in ("bn_gamma", "bn_beta") for u in t.uses
        if u.node.op_type == "BatchNormalization"
    )  # fmt: skip


def ultralytics_export(ctx: FileContext) -> bool:
    """Written by Ultralytics' exporter (YOLOv8 and later name their author; YOLOv5 writes stride and
    class names), which fuses every Conv block's BatchNorm into its conv before exporting."""
    meta = ctx.view.metadata
    return meta.get("author", "").startswith("Ultralytics") or {"stride", "names"} <= meta.keys()


def torch_folds_named(ctx: FileContext) -> bool:
    """An anonymous conv weight means "folded" only where the PyTorch file keeps state_dict names
    elsewhere, or where a simplifier named what it folded."""
    return ctx.state_dict_names or any(map(SIMPLIFIER_FOLDED.fullmatch, ctx.parameter_names))


def simplifier_folds_named(ctx: FileContext) -> bool:
    """A simplifier (onnx-simplifier, onnxslim) named a weight it folded, in a file of no known exporter."""
    return any(SIMPLIFIER_FOLDED.fullmatch(t.name) for t in ctx.table.tensors if t.category == "parameter")


def torch_nameless(ctx: FileContext) -> bool:
    """A PyTorch export in which no parameter keeps its state_dict name (a frozen or scripted module),
    not saved by onnxruntime (whose own doubt, ort_silent_fold, says the same of its files)."""
    names = ctx.parameter_names
    return (
        not torch_folds_named(ctx)
        and bool(names)
        and all(map(ANONYMOUS_PARAMETER.fullmatch, names))
        and not ctx.ort_optimized
    )


def tflite_export(ctx: FileContext) -> bool:
    return ctx.tflite


def ort_optimized(ctx: FileContext) -> bool:
    return ctx.ort_optimized
