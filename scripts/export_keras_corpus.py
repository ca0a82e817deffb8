#!/usr/bin/env python3
"""A Keras corpus with truth, for issue #18 (classes 1, 3, 8, 9): exports OUTSIDE the repo.

Keras 3 applications (weights=None, small inputs) and hand-built functional models covering
each class (BatchNormalization with center/scale in every combination, merged into a bias-free
conv or lowered to Mul + Add after a Dense or a biased conv, before a conv; LSTM / GRU /
Bidirectional / SimpleRNN; SeparableConv1D; Embedding + LayerNormalization), through:

  tf2onnx_op17   tf2onnx.convert.from_keras(Keras 3 model, opset=17)
  keras3_export  Keras 3 model.export(path, format="onnx")
  tfkeras_op13   the same model built with tf_keras (Keras 2), tf2onnx opset 13

Beside each ``<case>__<kind>.onnx`` (in --out, default /root/.cache/onnxaudit-corpus/keras):
``.json`` (Keras's count_params(), trainable, non-trainable, every layer and weight: the
helpers of scripts/export_keras.py), ``.summary.txt`` (model.summary() as Keras prints it by
default: Keras 3 at 200 columns, Keras 2 at its default line_length, where long type names
wrap) and ``.summary_narrow.txt`` (Keras 3 at 80 columns, Keras 2 at line_length=120).

Venv as in scripts/requirements-keras.txt (tensorflow-cpu 2.21, keras 3.15, tf_keras 2.21
with --no-deps, tf2onnx 1.17). Run from the repo root, niced:

    nice -n 10 /tmp/venv-tf/bin/python scripts/export_keras_corpus.py            # Keras 3 kinds
    TF_USE_LEGACY_KERAS=1 nice -n 10 /tmp/venv-tf/bin/python scripts/export_keras_corpus.py --keras2

``--cases a,b`` limits the cases; an existing .json is skipped unless --force. Failures are
listed in corpus_failures*.md in --out (only when there are any). The score is scripts/score_keras_corpus.py's.
"""

import argparse
import json
import os
import sys
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_keras as ek  # noqa: E402  (the fixture script's helpers: report, summary, export)

OUT = "/root/.cache/onnxaudit-corpus/keras"

# application: (constructor name, input shape)
APPS = {
    "app_mobilenet_v2": ("MobileNetV2", (96, 96, 3)),
    "app_mobilenet_v3_small": ("MobileNetV3Small", (96, 96, 3)),
    "app_efficientnet_b0": ("EfficientNetB0", (64, 64, 3)),
    "app_resnet50": ("ResNet50", (64, 64, 3)),
    "app_densenet121": ("DenseNet121", (64, 64, 3)),
    "app_nasnet_mobile": ("NASNetMobile", (64, 64, 3)),
    "app_convnext_tiny": ("ConvNeXtTiny", (64, 64, 3)),
}

BN_COMBOS = {"tt": (True, True), "tf": (True, False), "ft": (False, True), "ff": (False, False)}

HAND = {}
for _k in BN_COMBOS:
    HAND["bn_merged_" + _k] = (8, 8, 3)  # bias-free conv -> BN: tf2onnx merges the BN into the conv
    HAND["bn_lowered_" + _k] = (6,)  # Dense -> BN: lowered to Mul + Add
    HAND["bn_convbias_" + _k] = (8, 8, 3)  # conv with bias -> BN: lowered to Mul + Add
HAND.update(
    {
        "bn_first_tt": (8, 8, 3),
        "bn_first_ff": (8, 8, 3),
        "rnn_lstm": (10, 6),
        "rnn_gru": (10, 6),
        "rnn_gru_noreset": (10, 6),
        "rnn_bilstm": (10, 6),
        "rnn_bigru": (10, 6),
        "rnn_simple": (10, 6),
        "rnn_stacked": (10, 6),
        # batch fixed at 1 (Input(batch_size=1)): Keras 3's export keeps it, so the initial state of a
        # recurrent layer tf2onnx writes as a Loop is a stored zeros tensor
        "rnn_gru_b1": (10, 6),
        "rnn_lstm_b1": (10, 6),
        "rnn_bilstm_b1": (10, 6),
        "rnn_masked_b1": (10,),
        "sep1d": (12, 4),
        "embed_ln_nc": (16,),
        "bn_two_merged": (8, 8, 3),
        # names longer than a narrow Keras 3 table's first column: cut with an ellipsis there
        "long_names": (8, 8, 3),
        # MultiHeadAttention: tf_keras's einsums become anonymous Gemm/MatMul + Reshape through tf2onnx
        "mha_self": (6, 8),
        "mha_vdim_nobias": (6, 8),
        "mha_cross": (6, 8),
    }
)
INT = {"embed_ln_nc": ("int32", 40), "rnn_masked_b1": ("int32", 30)}
CASES = list(APPS) + list(HAND)
KINDS3 = ["tf2onnx_op17", "keras3_export"]
KINDS2 = ["tfkeras_op13"]


def build(keras, case):
    L = keras.layers
    if case in APPS:
        ctor, shape = APPS[case]
        kw = {"weights": None, "input_shape": shape, "classes": 10}
        if case.startswith("app_nasnet"):
            kw["include_top"] = True
        return getattr(keras.applications, ctor)(**kw)
    batch = 1 if case.endswith("_b1") else None
    inp = keras.Input(shape=HAND[case], dtype=INT[case][0] if case in INT else "float32", batch_size=batch)
    if case.startswith("bn_"):
        combo = case.rsplit("_", 1)[1]
        center, scale = BN_COMBOS.get(combo, (True, True))
        if case.startswith("bn_merged"):
            x = L.Conv2D(4, 3, use_bias=False, name="conv")(inp)
            x = L.BatchNormalization(center=center, scale=scale, name="bn")(x)
            x = L.GlobalAveragePooling2D(name="gap")(x)
        elif case.startswith("bn_lowered"):
            x = L.Dense(5, name="dense")(inp)
            x = L.BatchNormalization(center=center, scale=scale, name="bn")(x)
        elif case.startswith("bn_convbias"):
            x = L.Conv2D(4, 3, name="conv")(inp)
            x = L.BatchNormalization(center=center, scale=scale, name="bn")(x)
            x = L.GlobalAveragePooling2D(name="gap")(x)
        elif case.startswith("bn_first"):
            x = L.BatchNormalization(center=center, scale=scale, name="bn_in")(inp)
            x = L.Conv2D(4, 3, name="conv")(x)
            x = L.GlobalAveragePooling2D(name="gap")(x)
        else:  # bn_two_merged: two merged BNs, one default and one center=False
            x = L.Conv2D(4, 3, use_bias=False, name="conv_a")(inp)
            x = L.BatchNormalization(name="bn_a")(x)
            x = L.ReLU(name="relu")(x)
            x = L.Conv2D(6, 3, use_bias=False, name="conv_b")(x)
            x = L.BatchNormalization(center=False, name="bn_nocenter")(x)
            x = L.GlobalAveragePooling2D(name="gap")(x)
        out = L.Dense(2, name="head")(x)
    elif case == "long_names":
        x = L.Conv2D(4, 3, name="block_1_expanded_convolution_layer_one")(inp)
        x = L.BatchNormalization(name="block_1_expanded_convolution_layer_one_bn")(x)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        out = L.Dense(2, name="projection_head_dense_layer_number_one")(x)
    elif case.startswith("rnn_"):
        kind = case[4:].removesuffix("_b1")
        if kind == "lstm":
            x = L.LSTM(8, name="lstm")(inp)
        elif kind == "gru":
            x = L.GRU(8, name="gru")(inp)
        elif kind == "gru_noreset":
            x = L.GRU(8, reset_after=False, name="gru")(inp)
        elif kind == "bilstm":
            x = L.Bidirectional(L.LSTM(8), name="bilstm")(inp)
        elif kind == "bigru":
            x = L.Bidirectional(L.GRU(8), name="bigru")(inp)
        elif kind == "masked":
            x = L.Embedding(30, 8, mask_zero=True, name="embed")(inp)
            x = L.LSTM(32, name="lstm")(x)
        elif kind == "simple":
            x = L.SimpleRNN(8, name="srnn")(inp)
        else:
            x = L.LSTM(8, return_sequences=True, name="lstm_a")(inp)
            x = L.GRU(6, name="gru_b")(x)
        out = L.Dense(2, name="head")(x)
    elif case == "sep1d":
        x = L.SeparableConv1D(6, 3, name="separable_conv1d")(inp)
        x = L.Conv1D(4, 3, name="conv1d")(x)
        x = L.GlobalAveragePooling1D(name="gap")(x)
        out = L.Dense(2, name="head")(x)
    elif case.startswith("mha_"):
        if case == "mha_self":
            x = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inp, inp)
        elif case == "mha_vdim_nobias":
            x = L.MultiHeadAttention(num_heads=3, key_dim=5, value_dim=6, use_bias=False, name="mha")(inp, inp)
        else:  # mha_cross: keys and values of another width, an output width of its own
            kv = L.Dense(12, name="kv")(inp)
            x = L.MultiHeadAttention(num_heads=2, key_dim=4, output_shape=10, name="mha")(inp, kv)
        x = L.GlobalAveragePooling1D(name="gap")(x)
        out = L.Dense(2, name="head")(x)
    elif case == "embed_ln_nc":
        x = L.Embedding(40, 8, name="embed")(inp)
        x = L.LayerNormalization(center=False, name="ln_nocenter")(x)
        x = L.LayerNormalization(scale=False, name="ln_noscale")(x)
        out = L.Dense(3, name="head")(x)
    else:
        raise ValueError(case)
    return keras.Model(inp, out)


def set_weights(np, model, case):
    """Random non-zero values for every weight (exporters drop zero biases and identity BNs)."""
    rng = np.random.RandomState(zlib.crc32(case.encode()))
    for v in model.weights:
        name = ek.short_name(v)
        shape = tuple(int(d) for d in v.shape)
        if name in ("mean", "variance", "count") or not shape and name != "gamma":
            continue  # Normalization (adapt) and scalars (seed generators)
        if "int" in str(v.dtype):
            continue
        if name == "moving_variance":
            val = rng.uniform(0.5, 2.0, shape)
        elif name == "gamma":
            val = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[:-1]))
            lim = np.sqrt(3.0 / max(fan_in, 1))
            val = rng.uniform(-lim, lim, shape)
        else:
            val = rng.uniform(-0.5, 0.5, shape)
        v.assign(val.astype("float32"))


def _batch1_sample(sample):
    def batch1(np, rng, case, batch):
        return sample(np, rng, case, 1 if case.endswith("_b1") else batch)

    return batch1


def export_batch1(mods, model, case, kind, path):
    """tf2onnx with the batch fixed at 1 in the input signature (export_keras.py leaves it free)."""
    tf, tf2onnx, np = mods["tf"], mods["tf2onnx"], mods["np"]
    dtype = INT[case][0] if case in INT else "float32"
    model(np.zeros((1,) + HAND[case], dtype), training=False)
    tf2onnx.utils.INTERNAL_NAME = 1
    opset = 13 if kind == "tfkeras_op13" else 17
    spec = [tf.TensorSpec((1,) + HAND[case], getattr(tf, dtype), name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    mods["onnx"].save(proto, path)
    return opset, "tf2onnx.convert.from_keras(model, input_signature batch 1, opset=%d)" % opset, {}


def summaries(keras, model, keras2):
    """(default layout, second layout) of model.summary()."""
    chunks = []
    if keras2:
        model.summary(print_fn=lambda s, **kw: chunks.append(s))
        default = "\n".join(chunks).rstrip("\n") + "\n"
        return default, ek.capture_summary(model, True)
    return ek.capture_summary(model, False), ek.capture_summary(model, False, columns=80)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keras2", action="store_true")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    if args.keras2:
        assert os.environ.get("TF_USE_LEGACY_KERAS") == "1", "--keras2 needs TF_USE_LEGACY_KERAS=1"
        import tf_keras as keras
    else:
        import keras
    mods = {"np": np, "onnx": onnx, "ort": ort, "tf": tf, "tf2onnx": tf2onnx, "torch": None, "keras": keras}
    mods["to_numpy"] = np.asarray if args.keras2 else keras.ops.convert_to_numpy
    os.makedirs(args.out, exist_ok=True)
    kinds = KINDS2 if args.keras2 else KINDS3
    fails_path = os.path.join(args.out, "corpus_failures%s.md" % ("_keras2" if args.keras2 else ""))
    failures = []
    for case in [c for c in args.cases.split(",") if c]:
        shape = APPS[case][1] if case in APPS else HAND[case]
        ek.INPUT_SHAPES[case] = shape
        if case.endswith("_b1"):  # onnxruntime is fed what the file's fixed batch takes
            ek.sample_input = _batch1_sample(ek.sample_input)
        if case in INT:
            ek.INT_INPUTS[case] = INT[case]
        for kind in kinds:
            base = os.path.join(args.out, "%s__%s" % (case, kind))
            if os.path.exists(base + ".json") and not args.force:
                continue
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            try:
                model = build(keras, case)
                set_weights(np, model, case)
                default, second = summaries(keras, model, args.keras2)
                rep = ek.keras_report(np, model)
                if case.endswith("_b1") and kind != "keras3_export":
                    opset, api, extra = export_batch1(mods, model, case, kind, base + ".onnx")
                else:
                    opset, api, extra = ek.export_one(mods, model, case, kind, base + ".onnx")
                try:
                    ok, diff = ek.check_and_compare(mods, model, case, base + ".onnx")
                except Exception as e:  # a run that fails is recorded, the file is still a count fixture
                    ok, diff = False, "%s: %s" % (type(e).__name__, ek.first_line(e))
            except Exception as e:
                failures.append((case, kind, type(e).__name__, ek.first_line(e)))
                print("FAIL %s %s %s" % (case, kind, ek.first_line(e)), flush=True)
                traceback.print_exc(limit=2)
                continue
            doc = {
                "model": case,
                "export_kind": kind,
                "exporter": {
                    "api": api,
                    "keras": keras.__version__,
                    "tensorflow": tf.__version__,
                    "tf2onnx": tf2onnx.__version__,
                    "onnx": onnx.__version__,
                    "onnxruntime": ort.__version__,
                    "opset": opset,
                },
                "ort_matches_keras": ok,
                "ort_max_abs_diff": diff,
            }
            doc.update(extra)
            doc.update(rep)
            with open(base + ".json", "w") as f:
                f.write(json.dumps(doc, sort_keys=True, indent=1) + "\n")
            with open(base + ".summary.txt", "w", encoding="utf-8") as f:
                f.write(default)
            with open(base + ".summary_narrow.txt", "w", encoding="utf-8") as f:
                f.write(second)
            print("ok   %-24s %-14s total=%d ort=%s" % (case, kind, rep["total"], ok), flush=True)
    if failures:  # never beside the repo's fixtures' own FAILURES.md
        with open(fails_path, "w") as f:
            f.write("# Corpus export failures\n\n")
            for c, k, t, m in failures:
                f.write("- %s %s: %s: %s\n" % (c, k, t, m.replace("\n", " ")))


if __name__ == "__main__":
    main()
