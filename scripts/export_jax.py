"""Small Flax NNX models exported by jax2onnx, with what Flax itself counts beside each file.

jax2onnx writes a parameter a layer does not have (a LayerNorm without use_scale/use_bias, a
zero initial RNN state) as a ConstantOfShape, and `jax.lax.scan` as a Loop whose body reads the
scanned input as a body input: neither is a weight. Each `<case>.onnx` gets a `<case>.json` with
`trainable` (sizes of nnx.state(model, nnx.Param)) and `non_trainable` (nnx.BatchStat: the BN
moving mean and variance), after every value was randomized (trained-like, no ones or zeros left).

Run: python3 -m venv /work/venvs/jax && /work/venvs/jax/bin/pip install -r scripts/requirements-jax.txt
     /work/venvs/jax/bin/python scripts/export_jax.py [CASE ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
from flax import nnx
from jax2onnx import to_onnx

OUT = Path(__file__).resolve().parent.parent / "models" / "jax"


class ConvBN(nnx.Module):
    """Conv + BatchNorm (+ a bias-free conv and its BN), then a Dense: NHWC in."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.c1 = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.bn1 = nnx.BatchNorm(8, rngs=rngs)
        self.c2 = nnx.Conv(8, 16, (3, 3), use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(16, rngs=rngs)
        self.fc = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.bn1(self.c1(x)))
        x = nnx.relu(self.bn2(self.c2(x)))
        return self.fc(x.mean(axis=(1, 2)))


class NormsWithoutAffine(nnx.Module):
    """A LayerNorm with neither scale nor bias and an RMSNorm without scale: what they lack, jax2onnx
    writes as ConstantOfShape ones and zeros."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(16, 32, rngs=rngs)
        self.ln = nnx.LayerNorm(32, use_scale=False, use_bias=False, rngs=rngs)
        self.l2 = nnx.Linear(32, 32, rngs=rngs)
        self.rms = nnx.RMSNorm(32, use_scale=False, rngs=rngs)
        self.head = nnx.Linear(32, 4, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.rms(self.l2(self.ln(self.l1(x)))))


class ScannedGRU(nnx.Module):
    """A GRU cell run over time by jax.lax.scan (a Loop), from a zero state (a ConstantOfShape)."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.cell = nnx.GRUCell(in_features=6, hidden_features=8, rngs=rngs)
        self.fc = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:  # (batch, time, 6)
        def step(h: jax.Array, xt: jax.Array) -> tuple[jax.Array, jax.Array]:
            return self.cell(h, xt)

        h, _ = jax.lax.scan(step, jnp.zeros((x.shape[0], 8), x.dtype), jnp.swapaxes(x, 0, 1))
        return self.fc(h)


CASES = {
    "conv_bn": (ConvBN, [("B", 16, 16, 3)]),
    "norms_without_affine": (NormsWithoutAffine, [("B", 16)]),
    "scanned_gru": (ScannedGRU, [(2, 5, 6)]),
}


def _randomize(model: nnx.Module, seed: int) -> None:
    """Trained-like values: every parameter and statistic moved off its initial value."""
    rng = np.random.default_rng(seed)
    for kind in (nnx.Param, nnx.BatchStat):
        state = nnx.state(model, kind)
        moved = jax.tree.map(lambda v: jnp.asarray(np.asarray(v) + 0.05 * rng.standard_normal(np.shape(v))), state)
        nnx.update(model, moved)
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm):
            node.var.value = jnp.abs(node.var.value) + 0.5


def _size(model: nnx.Module, kind: type) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(nnx.state(model, kind))))


def main(only: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, (name, (cls, inputs)) in enumerate(CASES.items()):
        if only and name not in only:
            continue
        model = cls(nnx.Rngs(seed))
        _randomize(model, seed)
        model.eval()
        target = OUT / f"{name}.onnx"
        to_onnx(model, inputs, model_name=name, return_mode="file", output_path=str(target))
        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        feeds = {
            i.name: np.random.default_rng(0).random([d if isinstance(d, int) else 2 for d in i.shape], np.float32)
            for i in session.get_inputs()
        }
        session.run(None, feeds)
        record = {
            "model": name,
            "trainable": _size(model, nnx.Param),
            "non_trainable": _size(model, nnx.BatchStat),
            "how": "sizes of nnx.state(model, nnx.Param) / nnx.state(model, nnx.BatchStat)",
            "exporter": {
                "jax2onnx": _version("jax2onnx"), "jax": jax.__version__, "flax": _version("flax"),
                "onnx": onnx.__version__, "onnxruntime": ort.__version__,
            },
        }  # fmt: skip
        target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{target.name}: trainable {record['trainable']}, non_trainable {record['non_trainable']}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main(sys.argv[1:])
