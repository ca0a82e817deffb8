"""A TensorFlow module whose every op sits under one name scope, exported by tf2onnx: what jax2tf makes
of a Flax model (Magika's byte classifier: `jax2tf_get_logits_/pjit_get_logits_/MagikaV2/Dense_0/...`),
written here with tf.name_scope so that no jax is needed. The one-hot input and a softmax with its
entropy and argmax sit outside the module's scope, inside the function's.

Writes models/tf/scoped_net__tf2onnx_op15.onnx and a .json beside it with what TensorFlow counts:
`trainable` (sum of the sizes of the module's trainable_variables), `non_trainable` (0: it has none).

Run: /work/venvs/keras/bin/python scripts/export_tf_scoped.py   (versions: scripts/requirements-keras.txt)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "models" / "tf"
OPSET = 15  # Magika's


class ScopedNet(tf.Module):
    """Dense, gelu, LayerNorm, Conv1D, max over time, LayerNorm, Dense: Magika's layers, smaller."""

    def __init__(self) -> None:
        super().__init__(name="ScopedNet")
        rng = np.random.default_rng(0)

        def var(*shape: int) -> tf.Variable:  # trained-like values: no ones or zeros for an exporter to drop
            return tf.Variable(rng.random(shape, dtype=np.float32) * 0.1 + 0.05)

        self.d0_w, self.d0_b = var(17, 8), var(8)
        self.ln0_s, self.ln0_b = var(8), var(8)
        self.c0_w, self.c0_b = var(3, 8, 12), var(12)
        self.ln1_s, self.ln1_b = var(12), var(12)
        self.d1_w, self.d1_b = var(12, 5), var(5)

    @staticmethod
    def _layer_norm(x: tf.Tensor, scale: tf.Variable, bias: tf.Variable) -> tf.Tensor:
        mean = tf.reduce_mean(x, -1, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), -1, keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-6) * scale + bias

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        with tf.name_scope("ScopedNet"):
            with tf.name_scope("Dense_0"):
                x = tf.matmul(x, self.d0_w) + self.d0_b
            with tf.name_scope("ApplyActivation_0"):
                x = tf.nn.gelu(x, approximate=True)
            with tf.name_scope("LayerNorm_0"):
                x = self._layer_norm(x, self.ln0_s, self.ln0_b)
            with tf.name_scope("Conv_0"):
                x = tf.nn.conv1d(x, self.c0_w, 1, "VALID") + self.c0_b
            x = tf.reduce_max(x, axis=1)
            with tf.name_scope("LayerNorm_1"):
                x = self._layer_norm(x, self.ln1_s, self.ln1_b)
            with tf.name_scope("Dense_1"):
                return tf.matmul(x, self.d1_w) + self.d1_b

    @tf.function(input_signature=[tf.TensorSpec([None, 32], tf.int32, name="bytes")])
    def __call__(self, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.name_scope("jax2tf_get_logits"), tf.name_scope("pjit_get_logits"):  # jax2tf's scopes
            with tf.name_scope("pjit_one_hot"):  # as jax.nn.one_hot writes it
                x = tf.cast(tf.equal(ids[..., None], tf.range(17)), tf.float32)
            x = self.logits(x)
            shifted = x - tf.reduce_max(x, -1, keepdims=True)
            e = tf.exp(shifted)
            total = tf.reduce_sum(e, -1, keepdims=True)
            probs = e / total
            entropy = -tf.reduce_sum(probs * (shifted - tf.math.log(total)), -1)
            return probs, entropy, tf.argmax(probs, -1)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model = ScopedNet()
    target = OUT / f"scoped_net__tf2onnx_op{OPSET}.onnx"
    signature = model.__call__.input_signature
    tf2onnx.convert.from_function(model.__call__, input_signature=signature, opset=OPSET, output_path=str(target))
    record = {
        "model": "scoped_net",
        "kind": f"tf2onnx_op{OPSET}",
        "trainable": sum(int(np.prod(v.shape)) for v in model.trainable_variables),
        "non_trainable": sum(int(np.prod(v.shape)) for v in model.variables if not v.trainable),
        "exporter": {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__},
    }
    target.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{target.name}: {record}")


if __name__ == "__main__":
    main()
