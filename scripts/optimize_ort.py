"""Fixtures re-saved by onnxruntime's own graph optimizer from the exporter fixtures.

onnxruntime (SessionOptions.graph_optimization_level = ORT_ENABLE_EXTENDED, optimized_model_filepath)
folds BatchNormalization and constant Muls into convs (ConvBnFusion_*, ConvMulFusion_* tensors), turns
Conv/Gemm + activation into com.microsoft FusedConv/FusedGemm, folds shape arithmetic and transposes of
weights. People deploy such files. Writes models/ortopt/<source>__ort_extended.onnx and a .json beside
each with what the source's framework recorded (the truth a framework view must still contain).
A few sources are also saved at ORT_ENABLE_ALL (<source>__ort_all.onnx): the layout pass rewrites convs
to com.microsoft.nchwc Conv with weights reordered into channel blocks (8 or 16 by the CPU's vector
width: such a file is tied to the machine that wrote it, and onnxruntime warns so).

Run: /work/venvs/torch/bin/python scripts/optimize_ort.py
Versions: scripts/requirements-torch.txt (onnxruntime 1.32.0, onnx 1.23.2).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnxruntime

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "ortopt"
SOURCES = (
    "torch/seed_cnn__legacy_nofold",  # ConvBnFusion_W_conv0.weight, ConvBnFusion_BN_B_bn0.bias
    "torch/seed_cnn__dynamo",  # BN already folded by torch; onnxruntime drops the scope that showed it
    "torch/resnet_tiny__dynamo_noopt",  # a bias-less conv's Expand(0.0, [C]) shape folded to a constant
    "torch/tied_lm__legacy_nofold",  # the tied head's Transpose folded into a stored copy
    "keras/seed_cnn__tf2onnx_op17",  # ConvMulFusion_W_*, ConvAddFusion_B_* from tf2onnx's Mul + Add BN
    "keras/seed_cnn__tfkeras_op13",  # *_fused_bn weight whose FusedBatchNormV3 output name is gone
    "keras/bottleneck_nobias__tf2onnx_op17",  # depthwise conv + BN folded by a Mul fusion
)
# saved at ORT_ENABLE_ALL too: NCHWc convs (ReorderInput/ReorderOutput around them, reordered weights)
SOURCES_ALL = (
    "torch/seed_cnn__legacy_nofold",
    "torch/resnet_tiny__legacy_nofold",
    "torch/mobilenetv2_tiny__legacy_nofold",
)
LEVELS = {
    "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _truth(meta: dict) -> dict[str, int]:
    """What the framework itself reported, in Keras terms (torch fixtures record their equivalent)."""
    source = meta.get("keras_equivalent", meta)
    return {k: source[k] for k in ("total", "trainable", "non_trainable")}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = [(rel, "extended") for rel in SOURCES] + [(rel, "all") for rel in SOURCES_ALL]
    for rel, level in jobs:
        source = ROOT / "models" / f"{rel}.onnx"
        target = OUT / f"{source.stem}__ort_{level}.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = LEVELS[level]
        options.optimized_model_filepath = str(target)
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(target))
        record = {
            "source": f"{rel}.onnx",
            "source_recorded": _truth(json.loads(source.with_suffix(".json").read_text())),
            "ops": sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node}),
            "tool": {
                "onnxruntime": onnxruntime.__version__,
                "onnx": onnx.__version__,
                "api": f"SessionOptions(graph_optimization_level=ORT_ENABLE_{level.upper()}, "
                "optimized_model_filepath=...)",
            },
        }
        target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{target.name}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main()
