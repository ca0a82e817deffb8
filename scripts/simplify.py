"""Fixtures re-saved by the graph simplifiers people run before deployment: onnx-simplifier
(`onnxsim.simplify`), onnxslim (`onnxslim.slim`), onnxscript's optimizer (`onnxscript.optimizer.optimize`,
which torch.onnx's dynamo exporter also runs) and onnxoptimizer's fuse_bn_into_conv pass.

All fold a BatchNormalization into the conv before it. onnxsim and onnxslim store the folded weight and
bias under names of their own (onnxsim `_v_37`, onnxslim `<the BN's output>_weight`) and deduplicate
tensors of equal values (an untrained model's unit scales and zero shifts); onnxscript keeps the conv's
names (`<conv>.weight`, a new `<conv>.weight_bias`) and records the fusion in the node's metadata
(`pkg.onnxscript.rewriter.rule_name`); onnxoptimizer's fuse_bn_into_conv alone leaves the fold to run
time (W * gamma / sqrt(var + eps) computed by nodes before the conv). Writes
models/simplified/<source>__<tool>.onnx and a .json beside each with what the source's framework
recorded (the truth a framework view must still contain), in Keras terms.

Run: python scripts/simplify.py [TOOL ...] [SOURCE ...]   (in a venv with scripts/requirements-simplify.txt)
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "simplified"
SOURCES = (
    "torch/seed_cnn__legacy_nofold",  # BN kept by the exporter, folded by the simplifier
    "torch/seed_cnn__dynamo_noopt",  # the same from dynamo without its own optimizer
    "torch/resnet_tiny__legacy_nofold",
    "torchzoo/untrained_conv_bn__legacy",  # default init: equal tensors deduplicated too
    "keras/seed_cnn__tf2onnx_op17",  # tf2onnx's Mul + Add BN
    "jax/conv_bn",  # jax2onnx's: the simplifiers' folds, whoever exported the file
    "torchzoo/snake__legacy",  # TorchScript computes 1 / alpha at run time; the simplifiers store it
)
# tool -> (the call, as recorded beside each file)
SIMPLIFIERS = {
    "onnxsim": "onnxsim.simplify(model)[0]",
    "onnxslim": "onnxslim.slim(model)",
    "onnxscript": "onnxscript.optimizer.optimize(model)",
    "onnxoptimizer": 'onnxoptimizer.optimize(model, ["fuse_bn_into_conv"])',
}


def _simplify(tool: str, model: onnx.ModelProto) -> onnx.ModelProto:
    module = importlib.import_module(tool)
    if tool == "onnxsim":
        return module.simplify(model)[0]
    if tool == "onnxslim":
        return module.slim(model)
    if tool == "onnxoptimizer":  # folds at run time: a subgraph computes W * gamma / sqrt(var + eps)
        return module.optimize(model, ["fuse_bn_into_conv"])
    return importlib.import_module("onnxscript.optimizer").optimize(model)


def _truth(meta: dict) -> dict[str, int]:
    """What the framework itself reported, in Keras terms (running statistics non-trainable)."""
    if "parameters" in meta:  # models/torchzoo records torch's two figures
        return {
            "total": meta["parameters"] + meta["running_stats"],
            "trainable": meta["parameters"],
            "non_trainable": meta["running_stats"],
        }
    source = meta.get("keras_equivalent", meta)
    if "total" not in source:  # models/jax records Flax's two figures
        return {
            "total": source["trainable"] + source["non_trainable"],
            **{k: source[k] for k in source if "train" in k},
        }
    return {k: source[k] for k in ("total", "trainable", "non_trainable")}


def main(only: list[str]) -> None:
    """`only`: tools and sources (`jax/conv_bn`) to make; all of either kind when none is named."""
    tools = [name for name in only if name in SIMPLIFIERS]
    sources = [name for name in only if name not in SIMPLIFIERS]
    OUT.mkdir(parents=True, exist_ok=True)
    for rel in SOURCES:
        if sources and rel not in sources:
            continue
        source = ROOT / "models" / f"{rel}.onnx"
        for tool, call in SIMPLIFIERS.items():
            if tools and tool not in tools:
                continue
            target = OUT / f"{source.stem}__{tool}.onnx"
            model = _simplify(tool, onnx.load(str(source)))
            onnx.save(model, str(target))
            record = {
                "source": f"{rel}.onnx",
                "source_recorded": _truth(json.loads(source.with_suffix(".json").read_text())),
                "ops": sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node}),
                "tool": {tool: importlib.import_module(tool).__version__, "onnx": onnx.__version__},
                "api": call,
            }
            target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            print(f"{target.name}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
