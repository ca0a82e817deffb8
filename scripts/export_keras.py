#!/usr/bin/env python3
"""Build small Keras models, record what Keras reports, export them to ONNX.

Produces the real-exporter fixtures in models/keras/ used by onnxaudit's tests:
for every (case, export kind) a ``<case>__<kind>.onnx``, a ``.json`` with the
figures Keras itself reports (totals, per-layer counts, every weight with its
trainability) and a ``.summary.txt`` with the exact text ``model.summary()``
printed.  Export failures are listed in models/keras/FAILURES.md.

Install (own venv; needs only PyPI):

    python3 -m venv /work/venvs/keras
    /work/venvs/keras/bin/pip install -r scripts/requirements-keras.txt
    /work/venvs/keras/bin/pip install --no-deps tf_keras==2.21.0
    # (--no-deps: tf_keras depends on the full "tensorflow" package)

Run (from the repo root; under a minute on 2 cores):

    /work/venvs/keras/bin/python scripts/export_keras.py

That runs the Keras 3 kinds in this process, then re-invokes itself as
``TF_USE_LEGACY_KERAS=1 python scripts/export_keras.py --keras2`` for the
Keras 2 (tf_keras) kind, then as
``KERAS_BACKEND=torch /work/venvs/keras_torch/bin/python scripts/export_keras.py
--keras-torch`` for the Keras 3 torch-backend kind.  That last half needs a
second venv with torch instead of TensorFlow (``--keras-torch-python`` or
$KERAS_TORCH_PYTHON name its interpreter):

    python3 -m venv /work/venvs/keras_torch
    /work/venvs/keras_torch/bin/pip install -r scripts/requirements-keras-torch.txt
    # torch==2.13.0 exactly: it resolves to the local CPU wheel; a plain
    # "torch" or a newer one pulls the multi-GB CUDA build.

``--keras3`` / ``--keras2`` / ``--keras-torch`` run just one part;
``--skip-keras-torch`` runs the TensorFlow parts only; ``--cases a,b`` limits
the cases.

Export kinds:
  tf2onnx_op13, tf2onnx_op17  tf2onnx.convert.from_keras(Keras 3 model, opset=N)
  keras3_export               Keras 3 model.export(path, format="onnx")
  tflite_op17                 tf.lite.TFLiteConverter.from_keras_model, then
                              tf2onnx.convert.from_tflite(opset=17) (seed_cnn,
                              conv_zoo, conv_bn_merged only)
  tflite_int8_op17            the same with full integer quantization (a
                              representative dataset; conv_bn_merged only)
  tfkeras_op13                same model built with tf_keras (Keras 2),
                              tf2onnx.convert.from_keras(opset=13)
  keras3_torch_export         same model built with Keras 3 on the torch
                              backend (KERAS_BACKEND=torch), Keras 3
                              model.export(path, format="onnx").  With the
                              default input signature (batch None) Keras
                              picks torch's TorchScript exporter
                              (torch.onnx.export(..., dynamo=False)); the
                              .json records the torch.onnx.export arguments.

Models are FUNCTIONAL (keras.Input -> layers -> keras.Model): tf2onnx 1.17
fails on a Keras 3 Sequential with KeyError('keras_tensor_N').  Every weight
is set from a per-case numpy RNG (same values in Keras 2, Keras 3 on TF and
Keras 3 on torch); biases (LSTM/GRU biases included), embedding tables and
BatchNormalization statistics are random and non-zero, because exporters drop
all-zero biases and identity BatchNormalizations.  lstm_text and embed_ln take
int32 token ids.

Reruns give identical .json/.summary.txt files and identical parameter
initializers.  tf2onnx's helper constants (const_fold_opt__N, const_starts__N,
unk__N) may be numbered or ordered differently between runs: tf2onnx's
internal iteration order varies, and PYTHONHASHSEED does not fix it.  Its
name counter is reset before each export, so a file does not depend on which
exports ran before it.  The names tf2onnx gives the weights of an ONNX LSTM/GRU
it builds (W0__N, R0__N, B0__N / W__N, R__N, B__N) come from that counter too,
so their N can differ between runs (values do not).  tf_keras's Embedding
table is named after TF's process-wide capture counter; _CaptureNames makes it
``model/embed/embedding_lookup/1:0`` in every run.  The torch-backend files
are byte-identical between runs.  models/keras/README.md is hand-written, not
generated.
``--keras2`` / ``--keras3`` / ``--keras-torch`` alone rewrite FAILURES.md with
only their part.
"""

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
import zlib
from contextlib import redirect_stdout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "models", "keras")

KERAS3_KINDS = ["tf2onnx_op13", "tf2onnx_op17", "keras3_export"]
# Through TensorFlow Lite: TFLiteConverter (folds each BN into the op before it), then tf2onnx --tflite
TFLITE_KINDS = ["tflite_op17", "tflite_int8_op17"]
KERAS2_KINDS = ["tfkeras_op13"]
KERAS_TORCH_KINDS = ["keras3_torch_export"]
ALL_KINDS = KERAS3_KINDS + TFLITE_KINDS + KERAS2_KINDS + KERAS_TORCH_KINDS
# Kinds a case gets unless KINDS_FOR_CASE says otherwise.
DEFAULT_KINDS = KERAS3_KINDS + KERAS2_KINDS

DEFAULT_KERAS_TORCH_PYTHON = "/work/venvs/keras_torch/bin/python"

CASES = [
    "seed_cnn",
    "seed_cnn_axis_typo",
    "seed_mlp",
    "seed_geron_book",
    "seed_geron_code",
    "bottleneck_bias",
    "bottleneck_nobias",
    "frozen",
    "bn_no_center_scale",
    "lstm_text",
    "gru_seq",
    "embed_ln",
    "conv_zoo",
    "rnn_zoo",
    "masked_lstm",
    "attn_norm",
    "norm_frozen",
    "conv_bn_merged",
    "dense_bn",
    "slash_blocks",
    "convnext_block",
]

# The layer zoo: layers real users have, a few per model, every layer named.
ZOO_CASES = ("conv_zoo", "rnn_zoo", "masked_lstm", "attn_norm", "norm_frozen", "conv_bn_merged", "dense_bn",
             "slash_blocks", "convnext_block")

# seed_mlp is 8.5 MB per file: only two kinds, to keep the repo small.
KINDS_FOR_CASE = {"seed_mlp": ["tf2onnx_op17", "tfkeras_op13"]}
# The torch-backend kind only for a few cases (Conv/BN/DepthwiseConv/Dense).
for _c in ("seed_cnn", "bottleneck_bias", "bottleneck_nobias", "seed_geron_code"):
    KINDS_FOR_CASE[_c] = DEFAULT_KINDS + KERAS_TORCH_KINDS
# Recurrent / embedding cases: one tf2onnx opset is enough.
for _c in ("lstm_text", "gru_seq", "embed_ln"):
    KINDS_FOR_CASE[_c] = ["tf2onnx_op17", "keras3_export", "tfkeras_op13",
                          "keras3_torch_export"]
# The layer zoo: TensorFlow kinds only, one tf2onnx opset plus Keras 3's export.
for _c in ZOO_CASES:
    KINDS_FOR_CASE[_c] = ["tf2onnx_op17", "keras3_export", "tfkeras_op13"]
# TFLite's fused ops (conv + BN + activation in one, named by all of their TF ops) for a few cases.
for _c in ("seed_cnn", "conv_zoo", "conv_bn_merged"):
    KINDS_FOR_CASE[_c] = KINDS_FOR_CASE.get(_c, DEFAULT_KINDS) + TFLITE_KINDS[:1]
KINDS_FOR_CASE["conv_bn_merged"] += TFLITE_KINDS[1:]  # full integer quantization (int8 weights and activations)
KINDS_FOR_CASE["dense_bn"] = list(TFLITE_KINDS)
KINDS_FOR_CASE["slash_blocks"] = list(KERAS2_KINDS)  # Keras 3 refuses a "/" in a layer name

# (total, trainable, non_trainable) as Keras's summary() prints them.
# The first seven are the canonical figures; the last two follow from seed_cnn
# (frozen: conv0 4,736 + bn0 128 all non-trainable; bn_no_center_scale: bn0
# keeps only moving_mean/moving_variance, 64 non-trainable).
EXPECTED = {
    "seed_cnn": (37633, 37569, 64),
    "seed_cnn_axis_typo": (37761, 37633, 128),
    "seed_mlp": (2140752, 2139728, 1024),
    "seed_geron_book": (271346, 268978, 2368),
    "seed_geron_code": (267810, 267010, 800),
    "bottleneck_bias": (465, 387, 78),
    "bottleneck_nobias": (426, 348, 78),
    "frozen": (37633, 32769, 4864),
    "bn_no_center_scale": (37569, 37505, 64),
    # embed 50*8=400, lstm 4*16*(8+16) + 4*16 = 1600 (one bias), head 16*4+4 = 68
    "lstm_text": (2068, 2068, 0),
    # gru (reset_after=True: bias (2, 48)) 3*16*(6+16) + 2*3*16 = 1152, head 51
    "gru_seq": (1203, 1203, 0),
    # embed 100*32 = 3200, norm 2*32 = 64, proj 32*100+100 = 3300
    "embed_ln": (6564, 6564, 0),
    # sep 3*3*3 + 3*8 + 8 = 59; dw (depth_multiplier 2) 3*3*8*2 + 16 = 160;
    # deconv 3*3*4*16 + 4 = 580; bn_nocenter 4 + (4 + 4); prelu 4;
    # fc_nobias 4*5 = 20; bn_noscale 5 + (5 + 5); head 5*2 + 2 = 12
    "conv_zoo": (862, 844, 18),
    # conv1d 3*6*8 + 8 = 152; td_dense 8*8 + 8 = 72; bilstm 2*(4*6*(8+6) + 24) = 720;
    # bigru 2*(3*5*(12+5) + 2*15) = 570; srnn 4*(10+4) + 4 = 60;
    # lstm_seq 4*4*(4+4) + 16 = 144; head 4*2 + 2 = 10
    "rnn_zoo": (1728, 1728, 0),
    # embed 30*8 = 240, lstm 4*8*(8+8) + 32 = 544, head 8*2 + 2 = 18
    "masked_lstm": (802, 802, 0),
    # mha 3*(8*2*4 + 2*4) + (2*4*8 + 8) = 288, ln 2*8, gn 2*8, unit 0, head 8*3 + 3
    "attn_norm": (347, 347, 0),
    # norm mean 3 + variance 3 + count 1 (non-trainable); dense 3*4 + 4;
    # bn_frozen 4*4 all non-trainable (trainable=False); head 4 + 1
    "norm_frozen": (44, 21, 23),
    # conv_a 3*3*3*8 = 216, bn_a (center=False) 8 + (8 + 8); conv_b 3*3*8*8 = 576,
    # bn_b 2*8 + (8 + 8); conv_c 576, bn_c (no center, no scale) 0 + (8 + 8);
    # dense_d 8*6 + 6 = 54, bn_d (center=False) 6 + (6 + 6); head 6*2 + 2 = 14
    "conv_bn_merged": (1526, 1466, 60),
    # dense 6*8 + 8 = 56, bn (no center, no scale) 0 + (8 + 8); head 8*2 + 2 = 18
    "dense_bn": (90, 74, 16),
    # stem 3*3*3*8 + bn 4*8; expand 8*16 + bn 4*16; depthwise 3*3*16 + bn 4*16; se conv 16*4+4, conv_1 4*16+16;
    # project 16*8 + bn 4*8; head 8*3+3. Non-trainable: the four BNs' moving mean and variance, 2*(8+16+16+8)
    "slash_blocks": (216 + 32 + 128 + 64 + 144 + 64 + 68 + 80 + 128 + 32 + 27, 887, 96),
    # prestem 0 (constants); stem 2*2*3*8+8; dwconv (groups=8) 7*7*1*8+8; ln 2*8; pw1 8*32+32; pw2 32*8+8; layer_scale 8; head 8*3+3
    "convnext_block": (104 + 400 + 16 + 288 + 264 + 8 + 27, 1107, 0),
}

INPUT_SHAPES = {
    "seed_cnn": (64, 64, 3),
    "seed_cnn_axis_typo": (64, 64, 3),
    "frozen": (64, 64, 3),
    "bn_no_center_scale": (64, 64, 3),
    "seed_mlp": (4096,),
    "seed_geron_book": (28, 28),
    "seed_geron_code": (28, 28),
    "bottleneck_bias": (8, 8, 3),
    "bottleneck_nobias": (8, 8, 3),
    "lstm_text": (12,),
    "gru_seq": (10, 6),
    "embed_ln": (16,),
    "conv_zoo": (16, 16, 3),
    "rnn_zoo": (10, 6),
    "masked_lstm": (10,),
    "attn_norm": (6, 8),
    "norm_frozen": (3,),
    "conv_bn_merged": (12, 12, 3),
    "dense_bn": (6,),
    "slash_blocks": (16, 16, 3),
    "convnext_block": (8, 8, 3),
}

# Cases whose input is token ids: dtype and exclusive upper bound (vocabulary).
INT_INPUTS = {"lstm_text": ("int32", 50), "embed_ln": ("int32", 100),
              "masked_lstm": ("int32", 30)}


def input_dtype(case):
    return INT_INPUTS[case][0] if case in INT_INPUTS else "float32"


def sample_input(np, rng, case, batch):
    shape = (batch,) + INPUT_SHAPES[case]
    if case in INT_INPUTS:
        dtype, vocab = INT_INPUTS[case]
        return rng.randint(0, vocab, shape).astype(dtype)
    return rng.uniform(-1.0, 1.0, shape).astype("float32")


# --------------------------------------------------------------------------
# model definitions (shared by Keras 2 and Keras 3: same layer API)
# --------------------------------------------------------------------------

def build_model(keras, case):
    L = keras.layers
    inp = keras.Input(shape=INPUT_SHAPES[case], dtype=input_dtype(case))
    if case in ("seed_cnn", "seed_cnn_axis_typo", "frozen", "bn_no_center_scale"):
        x = L.ZeroPadding2D(3, name="zero_padding2d")(inp)
        x = L.Conv2D(32, 7, strides=1, name="conv0")(x)
        if case == "seed_cnn_axis_typo":
            bn = L.BatchNormalization(axis=-3, name="bn0")
        elif case == "bn_no_center_scale":
            bn = L.BatchNormalization(axis=3, center=False, scale=False, name="bn0")
        else:
            bn = L.BatchNormalization(axis=3, name="bn0")
        x = bn(x)
        x = L.ReLU()(x)
        x = L.MaxPooling2D(2, name="max_pool")(x)
        x = L.Flatten()(x)
        out = L.Dense(1, activation="sigmoid", name="fc")(x)
    elif case == "seed_mlp":
        x = L.Dense(512, activation="relu")(inp)
        x = L.BatchNormalization()(x)
        x = L.Dropout(0.5)(x)
        out = L.Dense(80, activation="sigmoid")(x)
    elif case == "seed_geron_book":
        x = L.Flatten()(inp)
        x = L.BatchNormalization()(x)
        x = L.Dense(300, activation="relu")(x)
        x = L.BatchNormalization()(x)
        x = L.Dense(100, activation="relu")(x)
        x = L.BatchNormalization()(x)
        out = L.Dense(10, activation="softmax")(x)
    elif case == "seed_geron_code":
        x = L.Flatten()(inp)
        x = L.Dense(300, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.Dense(100, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        out = L.Dense(10, activation="softmax")(x)
    elif case in ("bottleneck_bias", "bottleneck_nobias"):
        ub = case == "bottleneck_bias"
        x = L.Conv2D(18, 1, use_bias=ub)(inp)
        x = L.BatchNormalization()(x)
        x = L.ReLU(6)(x)
        x = L.DepthwiseConv2D(3, padding="same", use_bias=ub)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU(6)(x)
        x = L.Conv2D(3, 1, use_bias=ub)(x)
        out = L.BatchNormalization()(x)
    elif case == "lstm_text":
        x = L.Embedding(50, 8, name="embed")(inp)
        x = L.LSTM(16, name="lstm")(x)
        out = L.Dense(4, name="head")(x)
    elif case == "gru_seq":
        x = L.GRU(16, name="gru")(inp)  # reset_after=True (default)
        out = L.Dense(3, name="head")(x)
    elif case == "embed_ln":
        x = L.Embedding(100, 32, name="embed")(inp)
        x = L.LayerNormalization(name="norm")(x)
        out = L.Dense(100, name="proj")(x)
    elif case in ZOO_CASES:
        out = build_zoo(keras, case, inp)
    else:
        raise ValueError(case)
    model = keras.Model(inp, out)
    if case == "frozen":
        model.get_layer("conv0").trainable = False
        model.get_layer("bn0").trainable = False
    return model


def build_zoo(keras, case, inp):
    L = keras.layers
    if case == "conv_zoo":
        x = L.SeparableConv2D(8, 3, name="sep")(inp)
        x = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
        x = L.Conv2DTranspose(4, 3, strides=2, name="deconv")(x)
        x = L.BatchNormalization(center=False, name="bn_nocenter")(x)
        x = L.PReLU(shared_axes=[1, 2], name="prelu")(x)
        x = L.Rescaling(0.5, name="rescale")(x)
        x = L.SpatialDropout2D(0.2, name="sdrop")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        x = L.Dense(5, use_bias=False, name="fc_nobias")(x)
        x = L.BatchNormalization(scale=False, name="bn_noscale")(x)
        return L.Dense(2, name="head")(x)
    if case == "rnn_zoo":
        x = L.Conv1D(8, 3, name="conv1d")(inp)
        x = L.Dense(8, name="td_dense")(x)  # on a 3-D input: per timestep
        x = L.Bidirectional(L.LSTM(6, return_sequences=True), name="bilstm")(x)
        x = L.Bidirectional(L.GRU(5, return_sequences=True), name="bigru")(x)
        x = L.SimpleRNN(4, return_sequences=True, name="srnn")(x)
        x = L.LSTM(4, return_sequences=True, name="lstm_seq")(x)
        x = L.GlobalAveragePooling1D(name="gap")(x)
        return L.Dense(2, name="head")(x)
    if case == "masked_lstm":
        x = L.Embedding(30, 8, mask_zero=True, name="embed")(inp)
        x = L.LSTM(8, name="lstm")(x)
        return L.Dense(2, name="head")(x)
    if case == "attn_norm":
        x = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inp, inp)
        x = L.LayerNormalization(name="ln")(x)
        x = L.GroupNormalization(groups=2, name="gn")(x)
        x = L.UnitNormalization(name="unit")(x)
        x = L.Dropout(0.1, name="drop")(x)
        return L.Dense(3, name="head")(x)
    if case == "norm_frozen":
        import numpy as np
        norm = L.Normalization(name="norm")
        # adapt() sets mean, variance and count (3 + 3 + 1, all non-trainable)
        rng = np.random.RandomState(7)
        norm.adapt((rng.uniform(-1, 1, (64, 3)) * [1.0, 5.0, 10.0] + [0.0, 2.0, -3.0])
                   .astype("float32"))
        x = norm(inp)
        x = L.Dense(4, name="dense")(x)
        x = L.BatchNormalization(trainable=False, name="bn_frozen")(x)
        return L.Dense(1, name="head")(x)
    if case == "conv_bn_merged":
        # bias-free convs: tf2onnx merges each BN into its conv, the BN's shift becoming the bias and
        # keeping the name of the op that made it; after a Dense the BN stays x * scale + shift
        x = L.Conv2D(8, 3, use_bias=False, name="conv_a")(inp)
        x = L.BatchNormalization(center=False, name="bn_a")(x)
        x = L.ReLU(name="relu")(x)
        x = L.Conv2D(8, 3, use_bias=False, name="conv_b")(x)
        x = L.BatchNormalization(name="bn_b")(x)
        x = L.Conv2D(8, 3, use_bias=False, name="conv_c")(x)
        x = L.BatchNormalization(center=False, scale=False, name="bn_c")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        x = L.Dense(6, name="dense_d")(x)
        x = L.BatchNormalization(center=False, name="bn_d")(x)
        return L.Dense(2, name="head")(x)
    if case == "dense_bn":
        # TFLite folds the BN into the Dense; a full-int8 file names the shift's Add after the BN too
        x = L.Dense(8, name="dense")(inp)
        x = L.BatchNormalization(center=False, scale=False, name="bn")(x)
        return L.Dense(2, name="head")(x)
    if case == "slash_blocks":
        return _slash_blocks(L, inp)
    if case == "convnext_block":
        return _convnext_block(keras, inp)
    raise ValueError(case)


def _slash_blocks(L, inp):
    """tf_keras's MobileNetV3 names its layers with a slash (`expanded_conv_9/expand`,
    `expanded_conv_9/depthwise/BatchNorm`): one TF scope then holds several convs, each with a BN that
    tf2onnx folds into it, and a squeeze-excite block's convs that keep their biases."""
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = L.BatchNormalization(name="stem/bn")(x)
    x = L.ReLU(name="stem/relu")(x)
    s = L.Conv2D(16, 1, use_bias=False, name="block/expand")(x)
    s = L.BatchNormalization(name="block/expand/bn")(s)
    s = L.ReLU(name="block/expand/relu")(s)
    s = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block/depthwise")(s)
    s = L.BatchNormalization(name="block/depthwise/bn")(s)
    s = L.ReLU(name="block/depthwise/relu")(s)
    se = L.GlobalAveragePooling2D(keepdims=True, name="block/se/pool")(s)
    se = L.Conv2D(4, 1, name="block/se/conv")(se)
    se = L.ReLU(name="block/se/relu")(se)
    se = L.Conv2D(16, 1, activation="hard_sigmoid", name="block/se/conv_1")(se)
    s = L.Multiply(name="block/se/mul")([s, se])
    s = L.Conv2D(8, 1, use_bias=False, name="block/project")(s)
    s = L.BatchNormalization(name="block/project/bn")(s)
    x = L.Add(name="block/add")([x, s])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return L.Dense(3, name="head")(x)


def _convnext_block(keras, inp):
    """Keras's ConvNeXt stem and block: a Normalization given its mean and variance, a grouped conv over every channel (groups=C, which TF runs as a compiled
    function that tf2onnx leaves as a (Stateful)PartitionedCall), LayerNormalization with epsilon 1e-6
    (tf_keras's unfused path: moments and tf.nn.batch_normalization), two Dense, and its LayerScale: a
    trainable gamma of C multiplied into the residual branch."""
    L = keras.layers

    class LayerScale(L.Layer):
        def __init__(self, dim, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim

        def build(self, input_shape):
            self.gamma = self.add_weight(name="gamma", shape=(self.dim,), initializer="ones", trainable=True)

        def call(self, x):
            return x * self.gamma

    # ConvNeXt's prestem: mean= and variance= given, so Keras holds constants (0 weights); Keras 3's export
    # leaves them graph inputs
    x = L.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.052, 0.050, 0.051], name="prestem")(inp)
    x = L.Conv2D(8, 2, strides=2, name="stem")(x)
    y = L.Conv2D(8, 7, padding="same", groups=8, name="dwconv")(x)
    y = L.LayerNormalization(epsilon=1e-6, name="ln")(y)
    y = L.Dense(32, name="pw1")(y)
    y = L.Activation("gelu", name="gelu")(y)
    y = L.Dense(8, name="pw2")(y)
    y = LayerScale(8, name="layer_scale")(y)
    x = L.Add(name="add")([x, y])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return L.Dense(3, name="head")(x)


def short_name(v):
    """'conv0/kernel:0' (Keras 2) or 'kernel' (Keras 3) -> 'kernel'."""
    return v.name.split("/")[-1].split(":")[0]


def set_weights(np, model, case):
    """Deterministic, non-trivial values for every weight (same in K2/K3)."""
    rng = np.random.RandomState(zlib.crc32(case.encode()))
    for layer in model.layers:
        for v in layer.weights:
            name = short_name(v)
            shape = tuple(int(d) for d in v.shape)
            if name in ("mean", "variance", "count"):
                continue  # Normalization: set by adapt()
            if name in ("kernel", "depthwise_kernel", "recurrent_kernel", "pointwise_kernel"):
                fan_out = shape[-1] if name == "kernel" else 1
                fan_in = int(np.prod(shape[:-1])) if name == "kernel" \
                    else int(np.prod(shape[:-2]))
                lim = np.sqrt(6.0 / (fan_in + fan_out))
                val = rng.uniform(-lim, lim, shape)
            elif name == "bias":
                # includes LSTM/GRU biases (GRU reset_after: both rows).
                val = rng.uniform(-0.5, 0.5, shape)
            elif name == "embeddings":
                val = rng.uniform(-1.0, 1.0, shape)
            elif name == "alpha":  # PReLU slopes
                val = rng.uniform(0.05, 0.3, shape)
            elif name == "gamma":
                val = rng.uniform(0.5, 1.5, shape)
            elif name == "beta":
                val = rng.uniform(-0.5, 0.5, shape)
            elif name == "moving_mean":
                val = rng.uniform(-0.5, 0.5, shape)
            elif name == "moving_variance":
                val = rng.uniform(0.5, 2.0, shape)
            else:
                raise ValueError("unexpected weight %s in %s" % (v.name, layer.name))
            v.assign(val.astype("float32"))


# --------------------------------------------------------------------------
# what Keras reports
# --------------------------------------------------------------------------

def capture_summary(model, keras2, columns=200):
    chunks = []
    if keras2:
        model.summary(line_length=120, print_fn=lambda s, **kw: chunks.append(s))
        text = "\n".join(chunks)
    else:
        # Keras 3 renders a rich table and hands the whole captured console
        # text to print_fn.  Both its default width (min(88 or 108, terminal
        # columns - 4)) and rich's console width follow $COLUMNS; a wide
        # "terminal" gives Keras's own default table, untruncated.
        saved = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(columns)
        try:
            model.summary(print_fn=lambda s, **kw: chunks.append(s))
        finally:
            if saved is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = saved
        text = "".join(chunks)
    return text.rstrip("\n") + "\n"


def parse_summary_counts(text):
    got = {}
    for key, label in (("total", "Total params"), ("trainable", "Trainable params"),
                       ("non_trainable", "Non-trainable params")):
        m = re.search(r"^\s*" + label + r":\s*([\d,]+)", text, re.M)
        if not m:
            raise AssertionError("no %r line in summary:\n%s" % (label, text))
        got[key] = int(m.group(1).replace(",", ""))
    return got


def shape_list(shape):
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    return [None if d is None else int(d) for d in shape]


def keras_report(np, model):
    trainable_ids = {id(v) for v in model.trainable_weights}

    def size(vs):
        return int(sum(int(np.prod([int(d) for d in v.shape])) for v in vs))

    layers, weights = [], []
    for layer in model.layers:
        layers.append({
            "name": layer.name,
            "class": layer.__class__.__name__,
            "params": int(layer.count_params()),
            "trainable": size(layer.trainable_weights),
            "non_trainable": size(layer.non_trainable_weights),
            "output_shape": shape_list(layer.output.shape),
        })
        for v in layer.weights:
            weights.append({
                "layer": layer.name,
                "name": short_name(v),
                # the full path tells apart same-named weights (mha/query/kernel)
                "path": getattr(v, "path", None) or v.name.split(":")[0],
                "shape": [int(d) for d in v.shape],
                "trainable": id(v) in trainable_ids,
            })
    total = int(model.count_params())
    trainable = size(model.trainable_weights)
    non_trainable = size(model.non_trainable_weights)
    assert trainable + non_trainable == total, (trainable, non_trainable, total)
    assert sum(l["params"] for l in layers) == total
    return {"total": total, "trainable": trainable, "non_trainable": non_trainable,
            "layers": layers, "weights": weights}


# --------------------------------------------------------------------------
# export + check
# --------------------------------------------------------------------------

def first_line(exc):
    s = str(exc).strip().splitlines()
    return s[0] if s else ""


def export_one(mods, model, case, kind, path):
    """Write path; return (opset, api, extra json fields)."""
    np, onnx = mods["np"], mods["onnx"]
    # Call the model once first, as a user's trained model has been: Keras 3's
    # export refuses a model that was never called.
    model(np.zeros((1,) + INPUT_SHAPES[case], input_dtype(case)), training=False)
    extra = {}
    if mods.get("tf2onnx") is not None:
        # tf2onnx numbers generated names ("Conv__19", "const_fold_opt__21",
        # "unk__22") from a process-wide counter; restart it so that every file
        # looks like the first export of a fresh process, whatever ran before.
        mods["tf2onnx"].utils.INTERNAL_NAME = 1
    if kind == "keras3_export":
        with redirect_stdout(io.StringIO()):
            model.export(path, format="onnx")
        api = 'keras.Model.export(path, format="onnx")'
    elif kind in ("tflite_op17", "tflite_int8_op17"):
        tf, tf2onnx = mods["tf"], mods["tf2onnx"]
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if kind == "tflite_int8_op17":
            rng = np.random.RandomState(1)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([sample_input(np, rng, case, 1)] for _ in range(16))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
            flat = os.path.join(tmp, "model.tflite")
            with open(flat, "wb") as f:
                f.write(converter.convert())
            tf2onnx.convert.from_tflite(flat, opset=17, output_path=path)
        api = ("tf.lite.TFLiteConverter.from_keras_model(model).convert(), then "
               "tf2onnx.convert.from_tflite(opset=17)")
    elif kind == "keras3_torch_export":
        torch = mods["torch"]
        # Keras picks the torch exporter itself (dynamo=True for fully static
        # input shapes, TorchScript when a dimension is None, and silently
        # falls back to TorchScript when dynamo raises): record every
        # torch.onnx.export call and its arguments.
        calls = []
        orig = torch.onnx.export

        def recording_export(*args, **kwargs):
            call = {k: v for k, v in sorted(kwargs.items())
                    if k in ("dynamo", "opset_version", "input_names",
                             "dynamic_axes", "do_constant_folding", "export_params")}
            calls.append(call)
            try:
                return orig(*args, **kwargs)
            except Exception as e:
                call["raised"] = "%s: %s" % (type(e).__name__, first_line(e))
                raise

        torch.onnx.export = recording_export
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                model.export(path, format="onnx")
        finally:
            torch.onnx.export = orig
        api = 'keras.Model.export(path, format="onnx") [KERAS_BACKEND=torch]'
        extra["torch_onnx_export_calls"] = json.loads(json.dumps(calls, default=str))
    else:
        tf, tf2onnx = mods["tf"], mods["tf2onnx"]
        opset = {"tf2onnx_op13": 13, "tf2onnx_op17": 17, "tfkeras_op13": 13}[kind]
        spec = [tf.TensorSpec((None,) + INPUT_SHAPES[case], getattr(tf, input_dtype(case)),
                              name="input")]
        if kind == "tfkeras_op13":
            with _CaptureNames():
                proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec,
                                                      opset=opset)
        else:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
        onnx.save(proto, path)
        api = "tf2onnx.convert.from_keras(model, input_signature, opset=%d)" % opset
    m = onnx.load(path)
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    return int(opset), api, extra


class _CaptureNames:
    """Number TF's by-value capture names from 1 in every export.

    FuncGraph names a captured eager value after a process-wide counter
    (pywrap_tfe.TFE_Py_UID()), so tf_keras's Embedding table, which
    ResourceGather reads from the captured handle, ends up as
    ``model/embed/embedding_lookup/<uid>:0`` with a uid that depends on
    everything the process ran before.  Within this context the capture code
    sees a counter that starts again at 1 (the graph still uniquifies names).
    Other uses of TFE_Py_UID are untouched.  If TensorFlow moves that code,
    this does nothing and the names stay process-dependent.
    """

    def __enter__(self):
        try:
            from tensorflow.core.function.capture import capture_container as cc
        except ImportError:
            self.cc = None
            return self
        self.cc, self.real = cc, cc.pywrap_tfe
        counter = iter(range(1, 1 << 62))

        class Shim:
            def __getattr__(_, name):
                return getattr(self.real, name)

            def TFE_Py_UID(_):  # noqa: N802 (TF's name)
                return next(counter)

        cc.pywrap_tfe = Shim()
        return self

    def __exit__(self, *exc):
        if self.cc is not None:
            self.cc.pywrap_tfe = self.real
        return False


ORT_NUMPY_TYPES = {"tensor(float)": "float32", "tensor(int32)": "int32",
                   "tensor(int64)": "int64"}


def check_and_compare(mods, model, case, path):
    np, onnx, ort = mods["np"], mods["onnx"], mods["ort"]
    onnx.checker.check_model(onnx.load(path))
    rng = np.random.RandomState(1000 + zlib.crc32(case.encode()) % 1000)
    x = sample_input(np, rng, case, 2)
    want = mods["to_numpy"](model(x, training=False))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    # Feed the dtype the file declares (an exporter may widen int32 to int64).
    feed = x.astype(ORT_NUMPY_TYPES.get(inp.type, x.dtype.name))
    got = sess.run(None, {inp.name: feed})[0]
    ok = bool(got.shape == want.shape and np.allclose(got, want, atol=1e-4))
    return ok, float(np.max(np.abs(got - want))) if got.shape == want.shape else None


def checker_ok(onnx, path):
    try:
        onnx.checker.check_model(onnx.load(path))
    except Exception:
        return False
    return True


def run(mode, cases):
    """mode: "keras3" (TF backend), "keras2" (tf_keras) or "keras_torch"."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras2 = mode == "keras2"
    if keras2:
        if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
            sys.exit("--keras2 needs TF_USE_LEGACY_KERAS=1 in the environment")
    if mode == "keras_torch":
        if os.environ.get("KERAS_BACKEND") != "torch":
            sys.exit("--keras-torch needs KERAS_BACKEND=torch in the environment")
    elif os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        sys.exit("--%s needs the tensorflow Keras backend (KERAS_BACKEND is %r)"
                 % (mode, os.environ["KERAS_BACKEND"]))
    import numpy as np
    import onnx
    import onnxruntime as ort
    mods = {"np": np, "onnx": onnx, "ort": ort, "tf": None, "tf2onnx": None,
            "torch": None}
    if mode == "keras_torch":
        import keras
        import onnxscript
        import torch
        mods.update(torch=torch, onnxscript=onnxscript)
    else:
        import tensorflow as tf
        if keras2:
            import tf_keras as keras
            assert tf.keras is keras or tf.keras.__name__.startswith("tf_keras"), tf.keras
        else:
            import keras
        import tf2onnx
        mods.update(tf=tf, tf2onnx=tf2onnx)
    assert keras.__version__.startswith("2." if keras2 else "3."), keras.__version__
    if not keras2:
        want_backend = "torch" if mode == "keras_torch" else "tensorflow"
        assert keras.backend.backend() == want_backend, keras.backend.backend()
        mods["to_numpy"] = keras.ops.convert_to_numpy
    else:
        mods["to_numpy"] = np.asarray
    mods["keras"] = keras
    kinds = {"keras3": KERAS3_KINDS + TFLITE_KINDS, "keras2": KERAS2_KINDS,
             "keras_torch": KERAS_TORCH_KINDS}[mode]
    os.makedirs(OUT_DIR, exist_ok=True)
    failures, results = [], []
    for case in cases:
        want_kinds = [k for k in kinds if k in KINDS_FOR_CASE.get(case, DEFAULT_KINDS)]
        if not want_kinds:
            continue
        for kind in want_kinds:
            # Fresh graph and name counters for each export: default layer and
            # model names ("dense", "functional"/"model", ...) as a user gets.
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            model = build_model(keras, case)
            set_weights(np, model, case)
            summary = capture_summary(model, keras2)
            rep = keras_report(np, model)
            printed = parse_summary_counts(summary)
            exp = dict(zip(("total", "trainable", "non_trainable"), EXPECTED[case]))
            if printed != exp or {k: rep[k] for k in exp} != exp:
                raise AssertionError("%s (%s): Keras reports %s / computed %s, "
                                     "expected %s" % (case, keras.__version__, printed,
                                                      {k: rep[k] for k in exp}, exp))
            base = os.path.join(OUT_DIR, "%s__%s" % (case, kind))
            for ext in (".onnx", ".json", ".summary.txt"):
                if os.path.exists(base + ext):
                    os.remove(base + ext)
            try:
                opset, api, extra = export_one(mods, model, case, kind, base + ".onnx")
                try:
                    ok, diff = check_and_compare(mods, model, case, base + ".onnx")
                except Exception as e:  # a run that fails is recorded: the file is still a count fixture
                    ok, diff = False, None
                    extra["ort_error"] = "%s: %s" % (type(e).__name__, first_line(e))
                    extra["onnx_checker_ok"] = checker_ok(mods["onnx"], base + ".onnx")
            except Exception as e:  # record and move on
                if os.path.exists(base + ".onnx"):
                    os.remove(base + ".onnx")
                failures.append({"case": case, "kind": kind, "type": type(e).__name__,
                                 "msg": first_line(e)})
                print("FAIL %-20s %-14s %s: %s" % (case, kind, type(e).__name__,
                                                   first_line(e)), flush=True)
                continue
            exporter = {
                "api": api,
                "keras": keras.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": ort.__version__,
                "opset": opset,
            }
            if mode == "keras_torch":
                exporter.update(keras_backend="torch",
                                torch=mods["torch"].__version__,
                                onnxscript=mods["onnxscript"].__version__)
            else:
                exporter.update(tensorflow=mods["tf"].__version__,
                                tf2onnx=mods["tf2onnx"].__version__)
            doc = {
                "model": case,
                "export_kind": kind,
                "exporter": exporter,
                "onnx_checker_ok": True,
                "ort_matches_keras": ok,
            }
            doc.update(extra)  # onnx_checker_ok False where the checker refused the file
            doc.update(rep)
            with open(base + ".json", "w") as f:
                f.write(json.dumps(doc, sort_keys=True, indent=1) + "\n")
            with open(base + ".summary.txt", "w", encoding="utf-8") as f:
                f.write(summary)
            results.append((case, kind, ok, diff))
            print("ok   %-20s %-14s opset=%d ort_matches_keras=%s max|diff|=%.2g %dB"
                  % (case, kind, opset, ok, diff if diff is not None else -1,
                     os.path.getsize(base + ".onnx")), flush=True)
    return failures


def write_failures(failures):
    lines = ["# Export failures", "",
             "Written by scripts/export_keras.py. One line per (case, export kind) "
             "whose export, onnx.checker or onnxruntime run raised.", ""]
    if not failures:
        lines.append("None: every requested export succeeded.")
    else:
        lines += ["| case | kind | exception | first line |", "| --- | --- | --- | --- |"]
        for f in sorted(failures, key=lambda f: (f["case"], f["kind"])):
            msg = f["msg"].replace("|", "\\|")
            lines.append("| %s | %s | %s | %s |" % (f["case"], f["kind"], f["type"], msg))
    with open(os.path.join(OUT_DIR, "FAILURES.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def run_child(python, flag, cases, env):
    """Run this script as `python <script> <flag>` and return its failures."""
    with tempfile.TemporaryDirectory() as td:
        fo = os.path.join(td, "failures.json")
        subprocess.run([python, os.path.abspath(__file__), flag,
                        "--cases", ",".join(cases), "--failures-out", fo],
                       env=env, check=True)
        with open(fo) as f:
            return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--keras2", action="store_true", help="only the tf_keras kind")
    g.add_argument("--keras3", action="store_true", help="only the Keras 3 (TF) kinds")
    g.add_argument("--keras-torch", action="store_true",
                   help="only the Keras 3 torch-backend kind (run with the "
                        "keras_torch venv's python and KERAS_BACKEND=torch)")
    g.add_argument("--skip-keras-torch", action="store_true",
                   help="Keras 3 (TF) and Keras 2 kinds, not the torch-backend one")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--keras-torch-python",
                    default=os.environ.get("KERAS_TORCH_PYTHON",
                                           DEFAULT_KERAS_TORCH_PYTHON),
                    help="interpreter of the venv with torch + keras "
                         "(default $KERAS_TORCH_PYTHON or %(default)s)")
    ap.add_argument("--failures-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    bad = [c for c in cases if c not in CASES]
    if bad:
        ap.error("unknown cases: %s" % bad)

    single = {"keras2": args.keras2, "keras3": args.keras3,
              "keras_torch": args.keras_torch}
    for mode, on in single.items():
        if on:
            failures = run(mode, cases)
            if args.failures_out:
                with open(args.failures_out, "w") as f:
                    json.dump(failures, f)
            else:
                write_failures(failures)
            return

    if not args.skip_keras_torch and not os.path.exists(args.keras_torch_python):
        sys.exit("no interpreter %s for the torch-backend kind: create that venv "
                 "(see the header of this script), pass --keras-torch-python, "
                 "or --skip-keras-torch" % args.keras_torch_python)
    failures = run("keras3", cases)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    failures += run_child(sys.executable, "--keras2", cases, env)
    if not args.skip_keras_torch:
        env = dict(os.environ, KERAS_BACKEND="torch")
        env.pop("TF_USE_LEGACY_KERAS", None)
        failures += run_child(args.keras_torch_python, "--keras-torch", cases, env)
    write_failures(failures)


if __name__ == "__main__":
    main()
