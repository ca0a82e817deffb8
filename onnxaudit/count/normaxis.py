"""Is each batch normalization over the channel axis of the layer it follows?

A Keras `BatchNormalization(axis=-3)` on NHWC data normalizes the rows, not the channels: the exporter
transposes around it and the BN's vectors have the row count (64) where the conv before it has 32
output channels. Counting stays right (4 x 64); the model is probably not what its author meant.
"""

from __future__ import annotations

from dataclasses import dataclass

from onnxaudit.count.table import ParamTable, ParamTensor
from onnxaudit.model.ops import CHANNEL_PRODUCTS, CHANNELS_KEPT, output_channels
from onnxaudit.model.view import ModelView, Node, ValueInfo

_BN_ROLES = ("bn_gamma", "bn_beta", "bn_mean", "bn_var")


@dataclass(frozen=True)
class AxisFinding:
    node: str
    features: int
    producer: str
    channels: int
    transposed: bool

    @property
    def message(self) -> str:
        moved = "; a Transpose in between moves the axes" if self.transposed else ""
        return (
            f"{self.node} normalizes {self.features:,} features but follows {self.producer} with "
            f"{self.channels:,} output channels: not the channel axis{moved}"
        )


_FEATURES_LAST = frozenset({"MatMul", "MatMulInteger", "Gemm"})  # products writing features on the last axis


def _out_channels(node: Node, weights: dict[int, ParamTensor], value_shapes: dict[str, ValueInfo]) -> int | None:
    """The channels `node` writes: its output's channel dim where inference knows it (a weight read
    through a Transpose, dynamo's Linear without the optimizer, is stored the other way round), else
    the weight's dims."""
    weight = weights.get(node.index)
    if weight is None or not weight.dims or node.op_type not in CHANNEL_PRODUCTS:
        return None
    written = value_shapes.get(node.outputs[0]) if node.outputs else None
    if written is not None and written.shape and len(written.shape) >= 2:
        dim = written.shape[-1 if node.op_type in _FEATURES_LAST else 1]
        if isinstance(dim, int):
            return dim
    group = node.int_attr("group", 1) or 1
    return output_channels(node.op_type, weight.dims, group, bool(node.attrs.get("transB")))


def _features(t: ParamTensor) -> int | None:
    """The per-channel width of a normalization vector: its one non-1 dim."""
    if not t.dims:
        return None
    wide = [d for d in t.dims if d != 1]
    return wide[0] if len(wide) == 1 else (1 if not wide else None)


def channel_axis_findings(view: ModelView, table: ParamTable) -> list[AxisFinding]:
    normalizers = _normalizers(table, view.main.scope)
    if not normalizers:
        return []
    producers = view.main.producers
    weights = {u.node.index: t for t in table.tensors if t.role == "weight" for u in t.uses}
    findings = []
    for node, slot, features in normalizers.values():
        if node.module_scopes and node.module_scopes[-1].startswith("instance_norm"):
            continue  # dynamo's InstanceNorm with running stats: a BN over N*C channels by design
        current, transposed = _producer_before(producers, node, slot)
        if current is None:
            continue
        channels = _out_channels(current, weights, view.value_shapes)
        if channels is not None and channels != features:
            findings.append(AxisFinding(node.label, features, current.label, channels, transposed))
    return findings


def _normalizers(table: ParamTable, main: str) -> dict[int, tuple[Node, int, int]]:
    """Node index -> (node, data slot, features) of each BN and lowered BN (a `batchnorm` Mul) of the main graph."""
    normalizers: dict[int, tuple[Node, int, int]] = {}
    for t in table.tensors:
        dims = t.dims  # _features' first tests, inline: most tensors (a matrix, a scalar) are no vector
        if not dims or len(dims) - dims.count(1) > 1 or not (width := _features(t)):
            continue  # and no use of theirs is asked (most of the 97k at 200k nodes)
        is_bn = t.role in _BN_ROLES
        for use in t.uses:
            node = use.node
            if not is_bn and node.op_type != "Mul":
                continue  # neither a BN vector nor a lowered BN's Mul
            if node.scope != main:
                continue
            is_lowered = node.op_type == "Mul" and "batchnorm" in node.name.lower()
            if (is_bn or is_lowered) and node.index not in normalizers:
                normalizers[node.index] = (node, 0 if is_bn else 1 - use.slot, width)
    return normalizers


def _producer_before(producers: dict[str, Node], node: Node, slot: int) -> tuple[Node | None, bool]:
    """The op behind `node`'s data input past the ops that keep the channel count, and whether a
    Transpose was among them."""
    current = producers.get(node.inputs[slot]) if slot < len(node.inputs) else None
    transposed = False
    for _ in range(8):
        if current is None or current.op_type not in CHANNELS_KEPT:
            break
        transposed |= current.op_type == "Transpose"
        current = producers.get(current.inputs[0]) if current.inputs else None
    return current, transposed
