"""PaddlePaddle models exported by paddle2onnx, with what paddle itself counts beside each file.

paddle2onnx leaves the producer empty (the graph is named "PaddlePaddle Graph in PIR mode"), keeps paddle's
parameter names (`conv2d_0.w_0`, BatchNorm `batch_norm2d_0.w_0` gamma, `.b_0` beta, `.w_1` mean, `.w_2`
variance) and writes a few things its own way: a GroupNorm as InstanceNormalization over the groups with
made-up ones and zeros, then `* weight + bias`; a BatchNorm without weight and bias with made-up `const.N`
ones and zeros; a Conv1D weight through `+ 0`. Two variants per model: `op17` (paddle2onnx's default
constant folding, polygraphy) and `op17_raw` (optimize_tool "None": every weight a Constant node).

Writes models/paddle/<case>__<variant>.onnx and a .json with paddle's figures: trainable (not
stop_gradient) and non_trainable (BN mean and variance) as Keras counts them, and the same as torch
would (parameters, running_stats), plus paddle.summary's own totals.

Run: python scripts/export_paddle.py [CASE ...]   (in a venv with scripts/requirements-paddle.txt)
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import paddle
import paddle2onnx
from paddle import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "paddle"
VARIANTS = {"op17": "polygraphy", "op17_raw": "None"}


class ConvBN(nn.Layer):
    def __init__(self, bias: bool = True, affine: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, bias_attr=None if bias else False)
        self.bn = nn.BatchNorm2D(8, weight_attr=None if affine else False, bias_attr=None if affine else False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return nn.functional.relu(self.bn(self.conv(x)))


def _cases() -> dict[str, tuple[nn.Layer, list[int]]]:
    image = [1, 3, 16, 16]
    return {
        "conv_bn": (ConvBN(), image),
        "conv_nobias_bn": (ConvBN(bias=False), image),
        "bn_no_affine": (ConvBN(affine=False), image),
        "groupnorm": (nn.Sequential(nn.Conv2D(3, 16, 3), nn.GroupNorm(4, 16)), image),
        "conv1d_bn": (nn.Sequential(nn.Conv1D(4, 8, 3), nn.BatchNorm1D(8)), [1, 4, 12]),
    }


def _randomize(model: nn.Layer) -> None:
    """Non-trivial values, BN statistics included: exporters fold ones and zeros away."""
    rng = np.random.default_rng(0)
    for name, p in model.named_parameters():
        values = rng.standard_normal(p.shape).astype("float32") * 0.1
        p.set_value(np.abs(values) + 0.5 if name.endswith("_variance") else values)


def _counts(model: nn.Layer, shape: list[int]) -> dict[str, object]:
    trainable = statistics = frozen = 0
    for name, p in model.named_parameters():
        count = int(np.prod(p.shape)) if len(p.shape) else 1
        if not p.stop_gradient:
            trainable += count
        elif name.endswith(("._mean", "._variance")):
            statistics += count
        else:
            frozen += count
    with contextlib.redirect_stdout(io.StringIO()):
        summary = {k: int(v) for k, v in paddle.summary(model, tuple(shape)).items()}
    return {
        "trainable": trainable,
        "non_trainable": statistics + frozen,
        "total": trainable + statistics + frozen,
        "parameters": trainable + frozen,
        "running_stats": statistics,
        "paddle_summary": summary,
    }


def main(only: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (model, shape) in _cases().items():
        if only and name not in only:
            continue
        paddle.seed(0)
        _randomize(model)
        model.eval()
        counts = _counts(model, shape)
        saved = Path(tempfile.mkdtemp()) / name
        paddle.jit.save(model, str(saved / "model"), input_spec=[paddle.static.InputSpec(shape, "float32", "x")])
        for variant, tool in VARIANTS.items():
            target = OUT / f"{name}__{variant}.onnx"
            with contextlib.redirect_stdout(io.StringIO()):
                paddle2onnx.export(
                    str(saved / "model.json"), str(saved / "model.pdiparams"), str(target),
                    opset_version=17, optimize_tool=tool, enable_onnx_checker=True,
                )  # fmt: skip
            record = {
                "model": name,
                "variant": variant,
                **counts,
                "exporter": {
                    "paddlepaddle": paddle.__version__, "paddle2onnx": paddle2onnx.__version__,
                    "onnx": onnx.__version__, "opset_version": 17, "optimize_tool": tool,
                },
            }  # fmt: skip
            target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            print(f"{target.name}: {counts['trainable']} trainable, {counts['non_trainable']} non-trainable")


if __name__ == "__main__":
    main(sys.argv[1:])
