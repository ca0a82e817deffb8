"""The framework view: rebuild Keras / PyTorch layer counts through the rewrites exporters make.

Exporters rarely keep BatchNormalization as one node: tf2onnx turns it into a per-channel Mul + Add
or folds it into the preceding Conv, torch.onnx folds it into the Conv in eval mode. Each rewrite
below recognizes one such pattern from names and graph structure and says how sure it is:
`exact` (counted as stored), `inferred` (with the evidence, and any default it had to assume) or
`ambiguous` (a range that contains the truth, with the reason). Never an exact-looking guess.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from operator import itemgetter

from onnxaudit.count.layers import Layer, path_from_tensor_name, tf_naming
from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.frameworks.common import (
    ANONYMOUS_PARAMETER,
    LOOKUP_NAME,
    OLD_TORCHSCRIPT_NODE,
    ORT_REORDERED,
    SAME_OP,
    SIMPLIFIER_FOLDED,
    TOOL_SUFFIX,
    bn_reads_its_parameters_as_statistics,
    counted,
    file_layer,
    file_origin,
    folded_lookup,
    ort_optimized,
    producer_index,
    tflite_export,
    tflite_folded_bns,
    ultralytics_export,
)
from onnxaudit.frameworks.doubts import (
    BUFFER_NAMED,
    anonymous_biases,
    bn_folded_at_run_time,
    buffer_named,
    folded_products,
    maybe_counted_again,
    maybe_not_own,
    not_own,
    read_by_several_modules,
    runtime_bn_fold_biases,
)
from onnxaudit.frameworks.figures import AMBIGUOUS, RANK, ZERO, Figure, FrameworkLayer, FrameworkView
from onnxaudit.frameworks.keras import (
    keras_bn_const_affine,
    keras_bn_scale_shift,
    keras_conv_bn_merged,
    keras_fused_bn,
    keras_normalization,
    keras_prelu,
    keras_recurrent_bias,
    keras_rnn_loop_bias,
)
from onnxaudit.frameworks.lowered import (
    instance_norm_over_groups,
    lowered_bn_chains,
    lowered_group_norm,
    lowered_layer_norm,
)
from onnxaudit.frameworks.onnxruntime import nchwc_true_channels, ort_conv_bn_fusion, ort_silent_fold, without_padding
from onnxaudit.frameworks.onnxscript import onnxscript_bn_fusion
from onnxaudit.frameworks.paddle import paddle_bn_without_affine
from onnxaudit.frameworks.pairs import possible_copies
from onnxaudit.frameworks.tflite import tflite_maybe_folded
from onnxaudit.frameworks.torch import (
    DYNAMO_FUSED_OPS,
    bn_statistics_stored_once,
    nameless_torch_fold,
    torch_bn_without_affine,
    torch_dynamo_conv_bn,
    torch_instance_norm_with_stats,
    torch_legacy_folded_conv,
    torch_norm_without_affine,
    torch_parametrized_weight,
)
from onnxaudit.frameworks.ultralytics import ultralytics_anchors, ultralytics_fused_conv
from onnxaudit.model.load import ModelView, Node, torchscript_node_names
from onnxaudit.model.ops import ML_ATTRIBUTE_PARAMS


def _ml_attribute_nodes(view: ModelView) -> list[Node]:
    return [n for n in view.all_nodes() if n.domain == "ai.onnx.ml" and n.op_type in ML_ATTRIBUTE_PARAMS]


def attribute_parameters(node: Node) -> FrameworkLayer:
    """An ai.onnx.ml op (skl2onnx's LinearClassifier, TreeEnsemble...) keeps what it learned in node
    attributes, which neither view counts: the framework's count is this layer's, at least 0."""
    return FrameworkLayer(
        node.label, node.op_type, Figure(0, None), ZERO, AMBIGUOUS,
        [f"learned values ({ML_ATTRIBUTE_PARAMS[node.op_type]}) held in node attributes: not counted"],
    )  # fmt: skip


# a rewrite gets the layer and its counted tensors (computed once per layer, not once per rewrite)
Rewrite = Callable[[Layer, list[ParamTensor]], "list[FrameworkLayer] | None"]


def framework_view(view: ModelView, table: ParamTable, layers: list[Layer]) -> FrameworkView:
    origin = file_origin(view)
    rewrites: list[Rewrite]
    named = False  # a PyTorch file that keeps its parameters' state_dict names
    if origin == "keras":
        naming = tf_naming(view)
        producer_of = producer_index(view)
        tflite = tflite_export(view)
        folded = tflite_folded_bns(view, naming) if tflite else frozenset()
        rewrites = [
            lambda la, tensors: keras_bn_scale_shift(la, tensors, naming, folded),
            lambda la, tensors: keras_conv_bn_merged(la, tensors, naming),
            lambda la, tensors: keras_fused_bn(la, tensors, naming, producer_of),
            keras_recurrent_bias,
            lowered_layer_norm,
            keras_prelu,
            keras_normalization,
            keras_bn_const_affine,
            keras_rnn_loop_bias,
        ]
        if tflite:
            rewrites.append(tflite_maybe_folded)
    elif origin == "pytorch":
        dynamo_conv_bn: Rewrite = partial(torch_dynamo_conv_bn, view=view)
        rewrites = [
            dynamo_conv_bn,
            lambda la, tensors: onnxscript_bn_fusion(la, tensors, view),
            lowered_layer_norm,
            lambda la, tensors: torch_instance_norm_with_stats(la, tensors, view),
            torch_bn_without_affine,
            lowered_group_norm,
        ]
        rewrites += [torch_parametrized_weight, torch_norm_without_affine]
        if ultralytics_export(view):
            rewrites[:0] = [ultralytics_fused_conv, ultralytics_anchors]
        # an anonymous conv weight means "folded" only where the file keeps state_dict names elsewhere,
        # or where a simplifier named what it folded
        # onnxruntime's quantizers store `fc.weight` as `fc.weight_quantized`, Optimum's merged decoders as
        # `fc.weight_merged_0`
        params = [TOOL_SUFFIX.sub("", t.name) for t in table.tensors if t.category == "parameter"]
        named = any(map(path_from_tensor_name, params))
        if named or any(map(SIMPLIFIER_FOLDED.fullmatch, params)):
            rewrites.insert(1, torch_legacy_folded_conv)
        elif params and all(map(ANONYMOUS_PARAMETER.fullmatch, params)) and not ort_optimized(view):
            rewrites.append(nameless_torch_fold)  # (onnxruntime's own doubt, below, says the same of its files)
        # a rule for ops that no weight of the file meets cannot match: skipped (50k layers at 200k nodes)
        used = {u.node.op_type for t in table.tensors for u in t.uses}
        for rule, ops in ((dynamo_conv_bn, DYNAMO_FUSED_OPS), (lowered_group_norm, {"InstanceNormalization"}),
                          (torch_legacy_folded_conv, SAME_OP["Conv"])):  # fmt: skip
            if rule in rewrites and used.isdisjoint(ops):
                rewrites.remove(rule)
    elif origin == "paddle":
        rewrites = [paddle_bn_without_affine, lowered_layer_norm]
    else:
        rewrites = [lowered_layer_norm]
    if origin != "pytorch":  # (the PyTorch rules hold these two in their own order)
        # onnxscript's optimizer and onnxslim run on any export (jax2onnx's, onnx.helper's): their folds
        # are told by the node's metadata and by the folded tensor's name, whoever exported the file
        rewrites.insert(0, lambda la, tensors: onnxscript_bn_fusion(la, tensors, view))
        params = [t.name for t in table.tensors if t.category == "parameter"]
        if origin == "unknown" and any(map(SIMPLIFIER_FOLDED.fullmatch, params)):  # (Keras has its own)
            rewrites.insert(1, torch_legacy_folded_conv)
    rewrites.insert(0, ort_conv_bn_fusion)  # onnxruntime re-saves exports of either framework
    if any(t.uses and t.uses[0].node.op_type == "InstanceNormalization" for t in table.tensors):
        rewrites.append(lambda la, tensors: instance_norm_over_groups(la, tensors, view))
    if bn_reads_its_parameters_as_statistics(table):  # so do simplifiers
        rewrites.insert(1, bn_statistics_stored_once)
    if ort_optimized(view):
        # torch.onnx before 1.13 named nodes `Conv_611` (Silero VAD v4, pytorch 1.12, saved by onnxruntime):
        # its folds are bare numbers, so what keeps its state_dict key there holds no fold either
        torchscript_names = torchscript_node_names(view) or (
            view.producer.startswith("pytorch") and all(OLD_TORCHSCRIPT_NODE.fullmatch(n.name) for n in view.main.nodes)
        )
        rewrites.append(lambda la, tensors: ort_silent_fold(la, tensors, torchscript_names))
    tied, known = possible_copies(view, table, layers, origin)
    runtime_fold = bn_folded_at_run_time(table)
    shared = read_by_several_modules(table, layers) if origin == "pytorch" else {}
    chains = lowered_bn_chains(view, table)
    claimed = {name for _, _, names in chains for name in names}
    ordered: list[tuple[int, list[FrameworkLayer]]] = [(index, [layer]) for index, layer, _ in chains]
    applied: list[str] = [f"{layer.name}: {layer.evidence[0]}" for _, layer, _ in chains]
    unpadded = nchwc_true_channels(view) if ort_optimized(view) else {}
    for layer in layers:
        tensors = counted(layer.tensors)  # once per layer, for every rewrite
        if claimed:
            tensors = [t for t in tensors if t.name not in claimed]
        if unpadded:
            tensors = [without_padding(t, unpadded[t.name]) if t.name in unpadded else t for t in tensors]
        if not tensors:
            continue
        rebuilt = None
        for rewrite in rewrites:
            rebuilt = rewrite(layer, tensors)
            if rebuilt:
                applied.append(f"{layer.name}: {rebuilt[-1].evidence[0]}")
                break
        if rebuilt is None:
            rebuilt = [file_layer(layer, tensors)]
            copies = {**tied, **runtime_bn_fold_biases(tensors)} if runtime_fold else tied
            if origin == "pytorch":
                copies = {**copies, **folded_products(tensors)}
                if named:
                    copies.update(anonymous_biases(tensors))
            for copy in tensors if copies else ():
                if copy.name in copies:
                    applied.append(f"{layer.name}: {maybe_not_own(rebuilt[0], copy, copies[copy.name])}")
            for copy in tensors if known else ():
                if copy.name in known:
                    applied.append(f"{layer.name}: {not_own(rebuilt[0], copy, *known[copy.name])}")
        for t in buffer_named(tensors) if origin != "keras" else ():
            applied.append(f"{layer.name}: {maybe_not_own(_holder(rebuilt, t), t, BUFFER_NAMED)}")
        for t in tensors if shared else ():
            if t.name in shared:
                applied.append(f"{layer.name}: {maybe_counted_again(_holder(rebuilt, t), t, shared[t.name])}")
        ordered.append((layer.first_index, rebuilt))
    if "ai.onnx.ml" in view.opsets:
        ordered += [(node.index, [attribute_parameters(node)]) for node in _ml_attribute_nodes(view)]
    out = [fl for _, group in sorted(ordered, key=itemgetter(0)) for fl in group]
    dead = [t for t in table.tensors if t.category == "unused" and t.dtype.startswith(_FLOAT) and (t.count or 0) > 1]
    if dead:
        out.append(read_by_no_node(dead))
    notes = []
    if any(LOOKUP_NAME.fullmatch(t.name) and folded_lookup(t) for t in table.tensors if t.category == "unclassified"):
        notes.append(
            "Constants added to activations look like embedding rows looked up at export for a traced length "
            "(torch.onnx dynamo with static shapes): the tables they came from are not in the file, so the "
            "framework's count can be above this range."
        )
    if shared:
        notes.append(
            "Some tensors are read by several modules: one parameter they share (tied), or equal values stored "
            "once, as in an untrained model's export, whose all-zero biases exporters and simplifiers also remove; "
            "no count of the file can show those, so the framework's count may then be larger than this range."
        )
    if origin == "keras":
        notes.append("Keras layers frozen with trainable=False cannot be seen in an ONNX file.")
    if ort_optimized(view) and any(t.role == "weight" and ORT_REORDERED.fullmatch(t.name) for t in table.tensors):
        notes.append(
            "onnxruntime's NCHWc layout pass pads a conv's filter and bias with zeros up to a multiple of the "
            "CPU's channel block (8 or 16) when its output channels are not one: the file view counts them as "
            "stored, this view the channels the ReorderOutput after the conv restores (where one is reached)"
        )
    return FrameworkView(origin, _merge_same_name(out), applied, notes)


_FLOAT = ("float", "bfloat")


def read_by_no_node(dead: list[ParamTensor]) -> FrameworkLayer:
    """Float tensors that no node reads: a module the graph never calls (its parameters still count in
    the framework: paddle2onnx's SimpleRNN, whose weights only dead Identity nodes read) or a leftover
    of an exporter. Counted as stored at most."""
    n = sum(t.count or 0 for t in dead)
    return FrameworkLayer(
        "(not consumed by any node)", "unused", Figure(0, n), ZERO, AMBIGUOUS,
        [f"{len(dead)} float tensors ({n:,} values) stored but read by no node: a module the graph never calls "
         "(its parameters still count in the framework) or an exporter's leftover; counted as stored at most"],
        [t.name for t in dead],
    )  # fmt: skip


def _holder(rebuilt: list[FrameworkLayer], t: ParamTensor) -> FrameworkLayer:
    """The rebuilt layer that lists `t`, else the first (a rewrite may list only the tensors it used)."""
    return next((fl for fl in rebuilt if t.name in fl.tensors), rebuilt[0])


def _merge_same_name(layers: list[FrameworkLayer]) -> list[FrameworkLayer]:
    """A BN rebuilt from a conv row may share its name with a zero-param row of the file view."""
    merged: dict[str, FrameworkLayer] = {}
    for layer in layers:
        if layer.name in merged:
            prior = merged[layer.name]
            prior.trainable += layer.trainable
            prior.non_trainable += layer.non_trainable
            prior.status = max(prior.status, layer.status, key=RANK.__getitem__)
            prior.evidence += layer.evidence
            prior.tensors += layer.tensors
        else:
            merged[layer.name] = layer
    return list(merged.values())
