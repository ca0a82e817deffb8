"""The exporter rules in the order they are tried, per origin: the only place precedence lives.

For each layer the first rule that rebuilds it wins, as tf2onnx applies its rewriters and onnxruntime its
fusions in one fixed list. An entry is tried only in a file holding one of the op types its rule declares,
and where it names a gate, only in files the gate admits (who saved the file, what its names show).
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxaudit.frameworks.context import (
    FileContext,
    Gate,
    Rule,
    bn_reads_its_parameters_as_statistics,
    ort_optimized,
    simplifier_folds_named,
    tflite_export,
    torch_folds_named,
    torch_nameless,
    ultralytics_export,
)
from onnxaudit.frameworks.keras import (
    keras_bn_const_affine,
    keras_bn_scale_shift,
    keras_conv_bn_merged,
    keras_conv_left_as_call,
    keras_fused_bn,
    keras_layer_scale,
    keras_normalization,
    keras_prelu,
    keras_recurrent_bias,
    keras_rnn_loop_bias,
)
from onnxaudit.frameworks.lowered import instance_norm_over_groups, lowered_group_norm, lowered_layer_norm
from onnxaudit.frameworks.onnxruntime import ort_conv_bn_fusion, ort_silent_fold
from onnxaudit.frameworks.onnxscript import onnxscript_bn_fusion
from onnxaudit.frameworks.paddle import paddle_bn_without_affine
from onnxaudit.frameworks.tflite import tflite_maybe_folded
from onnxaudit.frameworks.torch import (
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


@dataclass(frozen=True)
class Entry:
    rule: Rule
    when: Gate | None = None  # None: every file of the origin


# onnxruntime re-saves exports of either framework: its fusions come first everywhere, then a simplifier's
# BN that reads its own parameters as statistics; onnxscript's optimizer and onnxslim run on any export
# (jax2onnx's, onnx.helper's), so their folds are looked for whoever exported the file. The rules that only
# say a BN may hide in a layer (tflite_maybe_folded, nameless_torch_fold, ort_silent_fold) come after every
# rule that rebuilds one from evidence. An Ultralytics file's Conv blocks are its exporter's own fusion:
# those two rules come before torch.onnx's.
ORDER: dict[str, tuple[Entry, ...]] = {
    "keras": (
        Entry(ort_conv_bn_fusion),
        Entry(bn_statistics_stored_once, when=bn_reads_its_parameters_as_statistics),
        Entry(onnxscript_bn_fusion),
        Entry(keras_bn_scale_shift),
        Entry(keras_conv_bn_merged),
        Entry(keras_fused_bn),
        Entry(keras_recurrent_bias),
        Entry(lowered_layer_norm),
        Entry(keras_prelu),
        Entry(keras_normalization),
        Entry(keras_bn_const_affine),
        Entry(keras_rnn_loop_bias),
        Entry(keras_conv_left_as_call),
        Entry(keras_layer_scale),
        Entry(tflite_maybe_folded, when=tflite_export),
        Entry(instance_norm_over_groups),
        Entry(ort_silent_fold, when=ort_optimized),
    ),
    "pytorch": (
        Entry(ort_conv_bn_fusion),
        Entry(bn_statistics_stored_once, when=bn_reads_its_parameters_as_statistics),
        Entry(ultralytics_fused_conv, when=ultralytics_export),
        Entry(ultralytics_anchors, when=ultralytics_export),
        Entry(torch_dynamo_conv_bn),
        Entry(torch_legacy_folded_conv, when=torch_folds_named),
        Entry(onnxscript_bn_fusion),
        Entry(lowered_layer_norm),
        Entry(torch_instance_norm_with_stats),
        Entry(torch_bn_without_affine),
        Entry(lowered_group_norm),
        Entry(torch_parametrized_weight),
        Entry(torch_norm_without_affine),
        Entry(nameless_torch_fold, when=torch_nameless),
        Entry(instance_norm_over_groups),
        Entry(ort_silent_fold, when=ort_optimized),
    ),
    "paddle": (
        Entry(ort_conv_bn_fusion),
        Entry(bn_statistics_stored_once, when=bn_reads_its_parameters_as_statistics),
        Entry(onnxscript_bn_fusion),
        Entry(paddle_bn_without_affine),
        Entry(lowered_layer_norm),
        Entry(instance_norm_over_groups),
        Entry(ort_silent_fold, when=ort_optimized),
    ),
    "unknown": (
        Entry(ort_conv_bn_fusion),
        Entry(bn_statistics_stored_once, when=bn_reads_its_parameters_as_statistics),
        Entry(onnxscript_bn_fusion),
        Entry(torch_legacy_folded_conv, when=simplifier_folds_named),
        Entry(lowered_layer_norm),
        Entry(instance_norm_over_groups),
        Entry(ort_silent_fold, when=ort_optimized),
    ),
}


def rules_for(ctx: FileContext) -> list[Rule]:
    """The rules that can match a layer of this file, in precedence order: those whose op types the
    file holds and whose gate admits it."""
    ops = ctx.op_types
    return [
        entry.rule
        for entry in ORDER[ctx.origin]
        if not entry.rule.ops.isdisjoint(ops) and (entry.when is None or entry.when(ctx))
    ]
