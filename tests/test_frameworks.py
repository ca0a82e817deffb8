"""Framework view: Keras and PyTorch counts rebuilt through exporter rewrites, checked against what the
frameworks recorded beside each fixture (models/*/*.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from builders import MODELS, fixture_meta
from onnx import TensorProto

from onnxaudit import audit
from onnxaudit.count.roles import classify
from onnxaudit.count.table import param_table
from onnxaudit.frameworks.common import counted
from onnxaudit.frameworks.doubts import anonymous_biases, buffer_named, folded_products, made_in_forward
from onnxaudit.frameworks.figures import Figure
from onnxaudit.frameworks.view import odd_tensors
from onnxaudit.model.load import load

KERAS = sorted((MODELS / "keras").glob("*.onnx"))
TORCH = sorted((MODELS / "torch").glob("*.onnx"))


_meta = fixture_meta


_WEIGHTS = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "bias", "gamma", "beta", "alpha")


def _frozen_layers(meta: dict) -> set[str]:
    """Layers whose weights Keras recorded as non-trainable (trainable=False): invisible in ONNX."""
    return {w["layer"] for w in meta["weights"] if w["name"] in _WEIGHTS and not w["trainable"]}


def _assumed_beta(path: Path, meta: dict) -> dict[str, int]:
    """Keras 3 BNs after a conv with gamma but no beta (center=False): tf2onnx folds the shift into one
    anonymous constant, so the rewrite assumes Keras's default beta. Per layer: the channels over-counted.
    Not after a bias-free Conv2D: tf2onnx merges that BN into the conv, and the merged bias keeps the
    name of the product that shows no beta (`batchnorm/mul_2`)."""
    if path.stem.endswith(("tfkeras_op13", "keras3_torch_export")) or "__tflite" in path.stem:
        return {}
    out = {}
    before: tuple[str, set[str]] = ("", set())
    for layer in meta["layers"]:
        names = {w["name"] for w in meta["weights"] if w["layer"] == layer["name"]}
        if layer["class"] == "BatchNormalization" and len(layer["output_shape"]) == 4 and names >= {"gamma"}:
            merged = before[0] == "Conv2D" and "bias" not in before[1]
            if "beta" not in names and not merged:
                out[layer["name"]] = layer["output_shape"][-1]
        if names:
            before = (layer["class"], names)
    return out


# what each alternative a rewrite states leaves out of the Keras layer it names
_SETTING_DROPS = {"center=False": "beta", "scale=False": "gamma", "use_bias=False": "bias"}


@pytest.mark.parametrize("path", KERAS, ids=lambda p: p.stem)
def test_keras_figures_hold_keras_and_the_defaults_they_imply_are_true(path):
    """Every figure's bounds hold Keras's figure. Where it rests on defaults the file cannot show, the
    defaults Keras's figures imply taken the other way (when one set does) are true of the Keras model:
    the layer has no beta, gamma or bias."""
    from onnxaudit.verify.assumptions import solve

    meta = _meta(path)
    fw = audit(path).framework
    assert fw.total.contains(meta["total"])
    if _frozen_layers(meta):  # trainable=False is invisible in ONNX: only the total can agree
        return
    assert fw.trainable.contains(meta["trainable"])
    assert fw.non_trainable.contains(meta["non_trainable"])
    solution = solve(fw.layers, {k: meta[k] for k in ("total", "trainable", "non_trainable")})
    assert solution is not None
    weights = {(w["layer"], w["name"]) for w in meta["weights"]}
    for alternative in solution.taken if solution.unique else []:
        layer, _, setting = alternative.text.partition(" has ")
        if not setting:  # "prestem was built with mean= and variance=": no weights at all
            layer = alternative.text.partition(" was built with ")[0]
            assert layer not in {name for name, _ in weights}, alternative.text
            continue
        assert (layer, _SETTING_DROPS[setting]) not in weights, alternative.text


def _assumed_gamma(meta: dict) -> bool:
    """A BN with beta but no gamma (scale=False) after a bias-free Conv2D: tf2onnx merges it into the
    conv, whose bias (`batchnorm/sub`) shows beta but cannot show gamma: the likely value assumes it."""
    before = ""
    for layer in meta["layers"]:
        names = {w["name"] for w in meta["weights"] if w["layer"] == layer["name"]}
        if layer["class"] == "BatchNormalization" and "beta" in names and "gamma" not in names:
            if before == "Conv2D":
                return True
        if names:
            before = layer["class"] if "bias" not in names else ""
    return False


def _given_normalization(meta: dict) -> bool:
    """A Normalization built with mean= and variance= (ConvNeXt's prestem): Keras holds constants and counts 0,
    but its file looks like an adapted one's (7): the likely value assumes adapted, the bounds reach 0."""
    return any(la["class"] == "Normalization" and not la["params"] for la in meta["layers"])


# Keras 3 exports through tf2onnx keep layer scopes in node names: figures must be exact or inferred, never
# ambiguous. (tf_keras folds BN so that center/scale cannot be seen; the torch backend keeps no Keras names;
# TFLite's converter folds BNs and makes up conv biases without always saying so.)
NAMED = [
    p
    for p in KERAS
    if not p.stem.endswith(("tfkeras_op13", "keras3_torch_export"))
    and "__tflite" not in p.stem
    and not p.stem.startswith(("frozen", "bn_no"))
    and not _frozen_layers(_meta(p))
    and not _assumed_beta(p, _meta(p))
    and not _assumed_gamma(_meta(p))
    and not _given_normalization(_meta(p))
]
TORCH_BACKEND = [p for p in KERAS if p.stem.endswith("keras3_torch_export")]


def _rebuilt_exactly_as_keras_said(path: Path, meta: dict):
    """Each figure shows Keras's (exact, or the likely value where it rests on Keras's defaults) and its
    bounds hold it."""
    fw = audit(path).framework
    assert fw.status != "ambiguous"
    figures = (fw.total, fw.trainable, fw.non_trainable)
    assert tuple(f.shown for f in figures) == (meta["total"], meta["trainable"], meta["non_trainable"])
    assert all(f.contains(f.shown) for f in figures)
    return fw


@pytest.mark.parametrize("path", TORCH_BACKEND, ids=lambda p: p.stem)
def test_keras_torch_backend_totals_rebuilt(path):
    """Keras 3 on the torch backend: anonymous names, BN as Sub/Mul/Add (3 of 4 vectors survive)."""
    _rebuilt_exactly_as_keras_said(path, _meta(path))


@pytest.mark.parametrize("path", NAMED, ids=lambda p: p.stem)
def test_keras_layers_match_when_names_survive(path):
    meta = _meta(path)
    fw = _rebuilt_exactly_as_keras_said(path, meta)
    by_name = {la.name: la for la in fw.layers}
    for layer in meta["layers"]:
        if layer["params"]:
            rebuilt = by_name[layer["name"]]
            assert (rebuilt.trainable.shown, rebuilt.non_trainable.shown) == (
                layer["trainable"],
                layer["non_trainable"],
            )
            # exact, or a default assumed with the alternative stated and inside the bounds
            assert rebuilt.trainable.exact or rebuilt.trainable.lo == layer["trainable"] + sum(
                a.trainable for a in rebuilt.alternatives
            )
            assert rebuilt.non_trainable.exact


def test_seed_cnn_keras3_export_summary_figures(capsys):
    from onnxaudit.cli.main import main

    for kind in ("tf2onnx_op13", "tf2onnx_op17", "keras3_export"):
        assert main(["summary", str(MODELS / "keras" / f"seed_cnn__{kind}.onnx")]) == 0
        out = capsys.readouterr().out
        assert "Rebuilt totals: Total params: 37,633 (37,601..37,633) · Trainable params: 37,569" in out
        # beta assumed (center=True, the default: the folded shift cannot show it), its absence in the bounds
        assert "bn0 (BatchNormalization)  128 (96..128)  64 (32..64)             64  inferred" in out
        assert "    bounds cover the defaults taken the other way: bn0 has center=False" in out


def test_depthwise_conv_is_3x3x18_not_3x3x18x18():
    fw = audit(MODELS / "keras" / "bottleneck_bias__tf2onnx_op17.onnx").framework
    depthwise = next(la for la in fw.layers if la.name == "depthwise_conv2d")
    assert depthwise.trainable.lo == 3 * 3 * 18 + 18


def test_tfkeras_fold_is_ambiguous_with_reason():
    fw = audit(MODELS / "keras" / "seed_cnn__tfkeras_op13.onnx").framework
    conv0 = next(la for la in fw.layers if la.name == "conv0")
    assert (conv0.trainable.lo, conv0.trainable.hi) == (32 * 3 * 7 * 7, 32 * 3 * 7 * 7 + 32)
    assert conv0.status == "ambiguous" and "cannot be told apart" in conv0.evidence[0]


@pytest.mark.parametrize("path", TORCH, ids=lambda p: p.stem)
def test_pytorch_parameters_recovered_or_bracketed(path):
    meta = _meta(path)
    fw = audit(path, convention="pytorch").framework
    assert fw.trainable.contains(meta["parameters"])
    assert fw.non_trainable.contains(meta["running_stats"])
    if fw.status != "ambiguous":
        assert (fw.trainable.lo, fw.non_trainable.lo) == (meta["parameters"], meta["running_stats"])


def test_dynamo_fold_names_conv_and_bn_modules():
    meta = _meta(MODELS / "torch" / "resnet_tiny__dynamo.onnx")
    fw = audit(MODELS / "torch" / "resnet_tiny__dynamo.onnx", convention="pytorch").framework
    by_name = {la.name: la for la in fw.layers}
    for module in meta["modules"]:
        rebuilt = by_name[module["name"]]
        buffers = module["buffers"] - (1 if module["class"].startswith("BatchNorm") else 0)  # num_batches_tracked
        assert (rebuilt.trainable.lo, rebuilt.non_trainable.lo) == (module["parameters"], buffers), module["name"]


# The layer zoo (scripts/export_keras.py ZOO_CASES): every layer Keras counted, rebuilt row by row,
# except what the file cannot show (frozen layers' split, a folded BN's missing beta, TFLite's folds), checked apart.
ZOO_CASES = ("conv_zoo", "rnn_zoo", "masked_lstm", "attn_norm", "norm_frozen", "conv_bn_merged", "convnext_block")
ZOO = [p for p in KERAS if p.stem.split("__")[0] in ZOO_CASES]
# tf_keras folds each BN into its conv (`*_fused_bn`), which cannot show the conv's bias nor center/scale.
ZOO_NAMED = [p for p in ZOO if p.stem != "conv_bn_merged__tfkeras_op13" and "tflite" not in p.stem]


def test_zoo_fixtures_present():
    assert len(ZOO) >= 17


def test_convs_of_one_slashed_scope_are_each_rebuilt_with_their_folded_bns():
    """tf_keras layers named with a slash (MobileNetV3's `expanded_conv/expand`, `.../depthwise`,
    `.../project`) share one TF scope: every conv in it and the BN folded into each are rebuilt, its
    squeeze-excite convs counted as stored, and each default the fold hides is said of its own layer."""
    path = MODELS / "keras" / "slash_blocks__tfkeras_op13.onnx"
    meta = _meta(path)
    block = _fw_layer(audit(path).framework, "block")
    in_block = [la for la in meta["layers"] if la["name"].startswith("block/")]
    assert block.total.contains(sum(la["params"] for la in in_block))
    assert block.non_trainable.exact and block.non_trainable.lo == sum(la["non_trainable"] for la in in_block)
    texts = {a.text for a in block.alternatives}
    assert {"block/expand/bn has center=False", "block/depthwise/bn has scale=False"} <= texts
    assert block.trainable.shown == sum(la["trainable"] for la in in_block)


@pytest.mark.parametrize(
    ("case", "layer", "bias"),
    [("bottleneck_bias", "conv2d", 18), ("bottleneck_nobias", "conv2d", 0), ("bottleneck_nobias", "conv2d_1", 0)],
)
def test_a_folded_convs_node_name_shows_whether_it_had_a_bias(case, layer, bias):
    """tf2onnx's conv that a BN was folded into keeps the name of the TF op the BN read: `<conv>/BiasAdd`
    (use_bias=True) or `<conv>/Conv2D` (use_bias=False): the conv's count is exact either way."""
    fw = audit(MODELS / "keras" / f"{case}__tfkeras_op13.onnx").framework
    conv = next(la for la in fw.layers if la.name == layer and la.kind == "Conv")
    kernel = next(w for w in _meta(MODELS / "keras" / f"{case}__tfkeras_op13.onnx")["weights"] if w["layer"] == layer)
    assert conv.trainable.exact and conv.trainable.lo == math.prod(kernel["shape"]) + bias
    assert not any("use_bias" in a.text for a in conv.alternatives)


@pytest.mark.parametrize("path", ZOO_NAMED, ids=lambda p: p.stem)
def test_zoo_layers_rebuilt_as_keras_counted(path):
    meta = _meta(path)
    fw = audit(path).framework
    by_name = {la.name: la for la in fw.layers}
    frozen, assumed = _frozen_layers(meta), _assumed_beta(path, meta)
    for layer in meta["layers"]:
        if not layer["params"]:
            row = by_name.get(layer["name"])
            assert row is None or row.total.hi == 0 or row.total.lo == 0 and row.alternatives, layer["name"]
            continue
        rebuilt = by_name[layer["name"]]
        assert rebuilt.total.shown is not None, layer["name"]
        assert rebuilt.total.exact or rebuilt.alternatives, layer["name"]
        if layer["name"] in frozen:
            assert rebuilt.total.shown == layer["params"]
        elif layer["name"] in assumed:
            # the likely value (center=True) is shown; the bounds hold Keras's figure
            assert rebuilt.trainable.shown == layer["trainable"] + assumed[layer["name"]]
            assert rebuilt.trainable.contains(layer["trainable"])
            assert any("beta assumed present" in e for e in rebuilt.evidence)
            assert [a.text for a in rebuilt.alternatives] == [f"{layer['name']} has center=False"]
        else:
            assert (rebuilt.trainable.shown, rebuilt.non_trainable.shown) == (
                layer["trainable"],
                layer["non_trainable"],
            )
            assert rebuilt.trainable.contains(layer["trainable"])


def test_prelu_slopes_are_trainable_parameters():
    meta = _meta(MODELS / "keras" / "conv_zoo__tf2onnx_op17.onnx")
    alpha = next(w for w in meta["weights"] if w["layer"] == "prelu" and w["name"] == "alpha")
    prelu = next(la for la in audit(MODELS / "keras" / "conv_zoo__tf2onnx_op17.onnx").framework.layers
                 if la.name == "prelu")  # fmt: skip
    assert prelu.kind == "PReLU" and prelu.trainable.lo == math.prod(alpha["shape"])
    assert "negated slopes" in prelu.evidence[0]


@pytest.mark.parametrize("kind", ["tf2onnx_op17", "tfkeras_op13"])
def test_normalization_count_is_added_and_stated(kind):
    path = MODELS / "keras" / f"norm_frozen__{kind}.onnx"
    meta = _meta(path)
    stored = sum(math.prod(w["shape"]) for w in meta["weights"] if w["layer"] == "norm" and w["name"] != "count")
    count = next(w for w in meta["weights"] if w["layer"] == "norm" and w["name"] == "count")
    norm = next(la for la in audit(path).framework.layers if la.name == "norm")
    # adapted (mean, variance and count weights) is the likely value; built with mean= and variance= it
    # holds constants and Keras reports 0: the bounds cover both
    assert (norm.trainable.lo, norm.non_trainable.shown) == (0, stored + math.prod(count["shape"]))
    assert norm.non_trainable.lo == 0 and "built with mean= and variance=" in norm.alternatives[0].text
    assert any("not in the file" in e for e in norm.evidence)


def test_tfkeras_bn_constant_beta_is_not_a_weight():
    path = MODELS / "keras" / "conv_zoo__tfkeras_op13.onnx"
    want = next(la for la in _meta(path)["layers"] if la["name"] == "bn_nocenter")
    bn = next(la for la in audit(path).framework.layers if la.name == "bn_nocenter")
    assert (bn.trainable.lo, bn.non_trainable.lo) == (want["trainable"], want["non_trainable"])
    assert any("beta is the constant" in e for e in bn.evidence)


def test_masked_lstm_loop_bias_is_trainable():
    for path in (p for p in ZOO if p.stem.startswith("masked_lstm")):
        want = next(la for la in _meta(path)["layers"] if la["name"] == "lstm")
        lstm = next(la for la in audit(path).framework.layers if la.name == "lstm")
        assert lstm.trainable == lstm.trainable.of(want["trainable"]), path.stem
        assert "BiasAdd" in lstm.evidence[0]


def test_tfkeras_group_norm_shift_through_the_batch_normalization_sub_is_counted():
    """tf_keras's GroupNormalization normalizes with tf.nn.batch_normalization: x * (gamma / sqrt(var))
    + (beta - mean * gamma / sqrt(var)), its run-time statistics in a Sub whose first operand is beta."""
    path = MODELS / "keras" / "attn_norm__tfkeras_op13.onnx"
    keras_gn = next(la for la in _meta(path)["layers"] if la["name"] == "gn")
    gn = _fw_layer(audit(path).framework, "gn")
    assert gn.total.exact and gn.trainable.exact and gn.trainable.lo == keras_gn["trainable"] == 2 * 8


def test_tfkeras_einsum_products_join_the_layer_whose_bias_add_they_feed():
    """tf2onnx rewrites tf_keras's MultiHeadAttention einsums into anonymous Gemm/MatMul nodes reshaped
    back (Reshape, Squeeze) before the layer's own named bias Add (`model/mha/key/add`): the four
    kernels are the attention layer's, not rows of their own."""
    path = MODELS / "keras" / "attn_norm__tfkeras_op13.onnx"
    keras_mha = next(la for la in _meta(path)["layers"] if la["name"] == "mha")
    mha = _fw_layer(audit(path).framework, "mha")
    assert mha.total.lo == keras_mha["params"] == 4 * (8 * 2 * 4) + 3 * (2 * 4) + 8


def test_tfkeras_einsum_products_without_biases_join_the_layer_named_around_them():
    """MultiHeadAttention(num_heads=3, key_dim=5, value_dim=6, use_bias=False) through tf_keras: no bias
    Add names the einsums' Gemms; the anonymous region around them is fed by the attention's softmax and
    feeds its query scaling, named `model/mha/...`, and only then the pooling after it: the mha layer's."""
    path = MODELS / "keras" / "mha_vdim_nobias__tfkeras_op13.onnx"
    meta = _meta(path)
    keras_mha = next(la for la in meta["layers"] if la["name"] == "mha")
    fw = audit(path).framework
    mha = _fw_layer(fw, "mha")
    assert mha.total.exact and mha.total.lo == keras_mha["params"] == 2 * 8 * 3 * 5 + 2 * 8 * 3 * 6
    assert (fw.total.lo, fw.total.hi) == (meta["total"], meta["total"])


def test_tfkeras_einsum_kernels_read_only_for_their_shape_are_copies_told_by_values():
    """tf2onnx's einsum rewrite keeps each projection kernel (1x1x2x4x8) for its Shape alone, beside the
    8x8 copy it folded for the Gemm: equal values at every sampled position make it that kernel again, so
    the attention layer, and the model, are Keras's figures exactly (it was 288..480 and 347..539)."""
    path = MODELS / "keras" / "attn_norm__tfkeras_op13.onnx"
    meta = _meta(path)
    fw = audit(path).framework
    mha = _fw_layer(fw, "mha")
    keras_mha = next(la for la in meta["layers"] if la["name"] == "mha")
    assert mha.total.exact and mha.total.lo == keras_mha["params"]
    assert sum("read only for its shape" in e for e in mha.evidence) == 3
    assert (fw.total.lo, fw.total.hi) == (meta["total"], meta["total"])


def test_square_weight_is_no_tied_copy_of_a_position_table(tmp_path):
    """BERT with hidden == max positions: the dense weight has the position table's shape reversed,
    but position tables are never tied to an output head."""
    from builders import audit_model, embed_layer_norm_then_dense

    hidden, positions, vocab = 8, 8, 20
    fw = audit_model(tmp_path, embed_layer_norm_then_dense(hidden, positions, vocab)).framework
    expected = vocab * hidden + positions * hidden + 2 * hidden + hidden * hidden
    assert (fw.status, fw.total.lo, fw.total.hi) == ("exact", expected, expected)


def test_a_stored_copy_named_transposed_counts_once(tmp_path):
    """Optimum ties GPT-2's head as Transpose(wte) named `wte.weight_transposed`; onnxruntime folds it
    into a stored tensor of that name: the name and reversed dims say it is the table again."""
    from builders import audit_model, init, model, node, value

    vocab, hidden = 20, 8
    m = model(
        [node("Gather", ["wte.weight", "ids"], ["h"]),
         node("MatMul", ["h", "wte.weight_transposed"], ["logits"], name="/lm_head/MatMul")],
        [value("ids", [1, 4], TensorProto.INT64)],
        [value("logits", [1, 4, vocab])],
        [init("wte.weight", [vocab, hidden]), init("wte.weight_transposed", [hidden, vocab])],
    )  # fmt: skip
    report = audit_model(tmp_path, m, convention="pytorch")
    fw = report.framework
    assert report.totals.trainable == 2 * vocab * hidden  # the file stores both
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (vocab * hidden, vocab * hidden, "inferred")
    head = next(la for la in fw.layers if "wte.weight_transposed" in la.tensors)
    assert "stored again, transposed" in head.evidence[0]
    m.graph.initializer[1].CopyFrom(init("wte.weight_transposed", [hidden + 1, vocab]))  # not the table's dims
    assert audit_model(tmp_path, m, convention="pytorch").framework.trainable.lo == vocab * hidden * 2 + vocab


def test_tied_head_folded_at_export_is_settled_by_its_values():
    """tied_lm ties its head to the embedding; constant folding stores the transpose as `onnx::MatMul_8`.
    Values at sampled positions settle it: counted once, and the first evidence line (the one printed
    without --explain) says why."""
    path = MODELS / "torch" / "tied_lm__legacy_fold.onnx"
    fw = audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (_meta(path)["parameters"],) * 2 + ("inferred",)
    head = next(layer for layer in fw.layers if layer.name == "lm_head")
    assert "embed.weight stored again, transposed (values equal at" in head.evidence[0]


ORT_OPTIMIZED = sorted((MODELS / "ortopt").glob("*.onnx"))


@pytest.mark.parametrize("path", ORT_OPTIMIZED, ids=lambda p: p.stem)
def test_onnxruntime_optimized_files_still_bracket_the_framework_counts(path):
    """onnxruntime's optimizer folds BNs and renames nodes: the framework view must still contain what
    the framework reported, never an exact figure that misses it."""
    truth = _meta(path)["source_recorded"]
    fw = audit(path).framework
    for figure, key in ((fw.total, "total"), (fw.trainable, "trainable"), (fw.non_trainable, "non_trainable")):
        assert figure.contains(truth[key]), (key, figure, truth[key])


SIMPLIFIED = sorted((MODELS / "simplified").glob("*.onnx"))


@pytest.mark.parametrize("path", SIMPLIFIED, ids=lambda p: p.stem)
def test_simplified_files_still_bracket_the_framework_counts(path):
    """onnx-simplifier, onnxslim and onnxscript's optimizer fold BNs into convs (scripts/simplify.py):
    never an exact figure that misses what the framework reported."""
    truth = _meta(path)["source_recorded"]
    fw = audit(path).framework
    for figure, key in ((fw.total, "total"), (fw.trainable, "trainable"), (fw.non_trainable, "non_trainable")):
        assert figure.contains(truth[key]), (key, figure, truth[key])


@pytest.mark.parametrize("tool", ["onnxsim", "onnxslim"])
def test_a_reciprocal_folded_by_a_simplifier_is_counted_with_what_it_inverts(tool):
    """A Snake's 1 / (alpha + eps) is computed at run time in the TorchScript export; onnx-simplifier and
    onnxslim fold it into a stored tensor beside alpha, with no graph signature to say where it came
    from. Its values (1 / alpha at every position) do: it is counted once, with alpha, and the upper
    bound is torch's figure (it was 156 = 148 + 8)."""
    path = MODELS / "simplified" / f"snake__legacy__{tool}.onnx"
    truth = _meta(path)["source_recorded"]
    fw = audit(path).framework
    assert fw.total.hi == truth["total"] == 8 * 4 * 3 + 8 + 8 + 4 * 8 + 4
    assert any("as its reciprocal (1 / alpha at all 8 positions" in e for la in fw.layers for e in la.evidence)


# (jax2onnx names a conv's bias after nothing the fusion's names can be matched with: its own bias
# cannot be told from the folded shift there, a range)
ONNXSCRIPT_NAMED = [p for p in SIMPLIFIED if p.stem.endswith("__onnxscript") and "jax/" not in str(_meta(p)["source"])]


@pytest.mark.parametrize("path", ONNXSCRIPT_NAMED, ids=lambda p: p.stem)
def test_onnxscript_fusions_recorded_on_the_node_are_rebuilt_exactly(path):
    """onnxscript's optimizer keeps the conv's names and writes FuseBatchNormIntoConv in the fused node's
    metadata: each BN is rebuilt (affine assumed, as for dynamo), to what the framework reported."""
    truth = _meta(path)["source_recorded"]
    fw = audit(path).framework
    assert fw.status in ("exact", "inferred")
    assert (fw.trainable.shown, fw.non_trainable.shown) == (truth["trainable"], truth["non_trainable"])
    assert fw.trainable.contains(truth["trainable"])


def _fw_layer(fw, name: str):
    matches = [layer for layer in fw.layers if layer.name == name]
    assert len(matches) == 1, [layer.name for layer in fw.layers]
    return matches[0]


def test_onnxruntime_conv_bn_fusion_names_the_bn_it_folded():
    fw = audit(MODELS / "ortopt" / "seed_cnn__legacy_nofold__ort_extended.onnx").framework
    c, k = 32, 32 * 3 * 7 * 7
    conv, bn = _fw_layer(fw, "conv0"), _fw_layer(fw, "bn0")
    assert (conv.trainable.lo, conv.trainable.hi) == (k, k + c)  # the conv's own bias cannot be told
    assert (bn.trainable.lo, bn.trainable.hi, bn.non_trainable.lo, bn.non_trainable.hi) == (2 * c, 2 * c, 2 * c, 2 * c)


def test_onnxruntime_fold_without_a_trace_is_a_possible_bn():
    fw = audit(MODELS / "ortopt" / "seed_cnn__dynamo__ort_extended.onnx").framework
    c = 32
    maybe = next(layer for layer in fw.layers if "folded by onnxruntime?" in layer.name)
    assert maybe.status == "ambiguous" and (maybe.trainable.hi, maybe.non_trainable.hi) == (2 * c, 2 * c)


def test_onnxruntime_mul_fusion_of_a_tf2onnx_bn():
    fw = audit(MODELS / "ortopt" / "seed_cnn__tf2onnx_op17__ort_extended.onnx").framework
    c = 32
    bn = next(layer for layer in fw.layers if layer.kind == "BatchNorm")
    assert (bn.non_trainable.lo, bn.non_trainable.hi) == (2 * c, 2 * c)  # its folded name says batchnorm


def test_onnxruntime_folded_transpose_of_a_tied_weight():
    fw = audit(MODELS / "ortopt" / "tied_lm__legacy_nofold__ort_extended.onnx").framework
    head = next(layer for layer in fw.layers if layer.name == "lm_head")
    assert (head.trainable.hi, head.status) == (0, "inferred")
    assert "/lm_head/Transpose_output_0 is embed.weight stored again, transposed (values equal" in head.evidence[0]


def test_onnxruntime_nchwc_layout_keeps_conv_weights_and_the_folded_bn():
    """ORT_ENABLE_ALL rewrites convs as com.microsoft.nchwc Conv fed a reordered filter named "reorder":
    still a conv's weight and bias, and the ConvBnFusion bias still names the BN folded into it."""
    report = audit(MODELS / "ortopt" / "seed_cnn__legacy_nofold__ort_all.onnx")
    c, k, fc = 32, 32 * 3 * 7 * 7, 32 * 32 * 32 + 1
    assert (report.totals.trainable, report.totals.unclassified) == (k + c + fc, 0)
    fw = report.framework
    conv, bn = _fw_layer(fw, "relu"), _fw_layer(fw, "bn0")  # the nchwc node is named after the fused Relu
    assert (conv.trainable.lo, conv.trainable.hi) == (k, k + c)
    assert (bn.trainable.lo, bn.trainable.hi, bn.non_trainable.lo, bn.non_trainable.hi) == (2 * c, 2 * c, 2 * c, 2 * c)
    assert any("NCHWc" in note for note in fw.notes)  # zero padding up to a channel block is counted: said


def test_plain_conv_is_not_a_possible_bn_outside_onnxruntime_files(tmp_path):
    from builders import audit_model, seed_cnn

    fw = audit_model(tmp_path, seed_cnn()).framework
    assert not any("folded by onnxruntime" in layer.name for layer in fw.layers)


TORCH_ZOO = sorted((MODELS / "torchzoo").glob("*.onnx"))
# the TorchScript exporter writes a registered buffer like a parameter (dynamo's node metadata tells them apart);
# dynamo folds exp(logit_scale) into a constant named `exp`: the parameter is not in the file;
# the TorchScript exporter writes nothing of a module forward never calls, and keeps no graph signature
ZOO_ASSUMED = {"buffer_projection__legacy", "logits_bias__legacy", "scalar_parameter__dynamo", "unused_module__legacy"}


@pytest.mark.parametrize("path", [p for p in TORCH_ZOO if p.stem not in ZOO_ASSUMED], ids=lambda p: p.stem)
def test_torch_zoo_framework_view_contains_what_torch_counted(path):
    meta = _meta(path)
    fw = audit(path, convention="pytorch").framework
    assert fw.trainable.contains(meta["parameters"]), fw.trainable
    assert fw.non_trainable.contains(meta["running_stats"]), fw.non_trainable


def test_legacy_deduplicated_untrained_tensors_count_as_torch_counted():
    """An untrained model's BN scales, shifts and statistics are equal: torch.onnx (legacy) stores one of
    each and Identity nodes for the rest (scripts/export_torch_zoo.py, untrained_bn)."""
    path = MODELS / "torchzoo" / "untrained_bn__legacy.onnx"
    meta = _meta(path)
    report = audit(path, convention="pytorch")
    assert (report.totals.trainable, report.totals.non_trainable) == (meta["parameters"], meta["running_stats"])
    assert report.framework.status == "exact"


def test_dynamo_fusion_of_an_untrained_bn_without_shift_is_rebuilt():
    """Convs without bias, untrained BNs: the fused bias is all zeros and dynamo drops it, so only the
    conv node's scope (the BN's call) shows the BN (scripts/export_torch_zoo.py, untrained_conv_bn)."""
    path = MODELS / "torchzoo" / "untrained_conv_bn__dynamo.onnx"
    meta, fw = _meta(path), audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi) == (meta["parameters"],) * 2
    assert (fw.non_trainable.lo, fw.non_trainable.hi) == (meta["running_stats"],) * 2
    assert [la.kind for la in fw.layers] == ["Conv", "BatchNorm"] * 2


def test_dynamo_fusion_of_a_bn_without_affine_is_told_by_its_fx_call():
    """dynamo folds both BNs of bn_no_affine into their convs; only the fused node's FX call shows that
    the second BN (affine=False) was given no weight and bias. The first keeps the stated assumption."""
    path = MODELS / "torchzoo" / "bn_no_affine__dynamo.onnx"
    meta, fw = _meta(path), audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (meta["parameters"], meta["parameters"], "inferred")
    channels = 8  # nn.BatchNorm1d(8) and nn.BatchNorm1d(8, affine=False) in scripts/export_torch_zoo.py
    first, second = [la for la in fw.layers if la.kind == "BatchNorm"]
    assert (first.trainable.hi, first.non_trainable.hi) == (2 * channels, 2 * channels)
    assert any("affine=True assumed" in e for e in first.evidence)
    assert (second.trainable.hi, second.non_trainable.lo) == (0, 2 * channels)


def test_lowered_group_norm_drops_the_exporters_group_constants():
    path = MODELS / "torchzoo" / "groupnorm__legacy.onnx"
    report = audit(path, convention="pytorch")
    groups, channels = 2, 8  # nn.GroupNorm(2, 8) in scripts/export_torch_zoo.py
    norm = next(la for la in report.framework.layers if la.kind == "GroupNorm")
    assert (norm.trainable.lo, norm.trainable.hi) == (2 * channels, 2 * channels)
    assert report.totals.trainable == _meta(path)["parameters"] + 2 * groups  # the file stores the group constants


def test_bn_without_affine_has_only_statistics():
    path = MODELS / "torchzoo" / "bn_no_affine__legacy.onnx"
    fw = audit(path, convention="pytorch").framework
    channels = 8  # nn.BatchNorm1d(8, affine=False) in scripts/export_torch_zoo.py
    bn = next(la for la in fw.layers if la.kind == "BatchNorm")
    assert (bn.trainable.hi, bn.non_trainable.lo, bn.non_trainable.hi) == (0, 2 * channels, 2 * channels)


def test_two_bns_dynamo_fused_into_one_conv_are_both_rebuilt():
    """Conv, BN, BN: dynamo's optimizer fuses both into the conv, whose rewrite-rule metadata names the
    fusion twice; only the last BN's module is recorded (scripts/export_torch_zoo.py, conv_bn_bn)."""
    path = MODELS / "torchzoo" / "conv_bn_bn__dynamo.onnx"
    meta, fw = _meta(path), audit(path, convention="pytorch").framework
    channels = 4  # nn.BatchNorm2d(4) twice in scripts/export_torch_zoo.py
    # the earlier BN's call is not recorded: its weight and bias (affine or not) make the range
    assert (fw.trainable.lo, fw.trainable.hi) == (meta["parameters"] - 2 * channels, meta["parameters"])
    assert (fw.non_trainable.lo, fw.non_trainable.hi) == (meta["running_stats"],) * 2
    assert [(la.kind, la.status) for la in fw.layers] == [
        ("Conv", "inferred"), ("BatchNorm", "ambiguous"), ("BatchNorm", "inferred")
    ]  # fmt: skip


def test_dynamo_instance_norm_with_running_stats_counts_its_channels_once():
    """InstanceNorm2d(track_running_stats=True) in eval mode: dynamo writes a BN over N*C channels with each
    vector tiled per sample; torch counts C of each (scripts/export_torch_zoo.py, instance_norm_stats)."""
    path = MODELS / "torchzoo" / "instance_norm_stats__dynamo.onnx"
    report = audit(path, convention="pytorch")
    meta, fw = _meta(path), report.framework
    batch, channels = 2, 4  # input (2, 3, 8, 8), nn.InstanceNorm2d(4) in scripts/export_torch_zoo.py
    assert report.totals.non_trainable == 2 * batch * channels  # the file stores the tiled vectors
    assert (fw.trainable.lo, fw.trainable.hi) == (meta["parameters"],) * 2
    assert (fw.non_trainable.lo, fw.non_trainable.hi) == (meta["running_stats"],) * 2 == (2 * channels,) * 2
    assert not any("not the channel axis" in note for note in report.notes)


def test_dynamo_instance_norm_whose_reshape_back_merged_takes_c_from_the_conv():
    """The Reshape back to (N, C, H, W) merged with the Flatten after it: C is the conv's output channels
    (scripts/export_torch_zoo.py, instance_norm_flat)."""
    path = MODELS / "torchzoo" / "instance_norm_flat__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    norm = next(la for la in fw.layers if la.kind == "InstanceNorm")
    channels = 4  # nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4)
    assert (norm.trainable.hi, norm.non_trainable.hi) == (2 * channels, 2 * channels)
    assert "output channels of" in norm.evidence[0]
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2


def test_a_folded_part_of_a_table_the_file_does_not_store_has_no_upper_bound():
    """dynamo's optimizer folds what forward read of three tables: one row of a token-type table (`select`),
    the first 5 of 12 position rows (`slice_1`), one row of 4 scales (`select_1`); its graph signature names
    each table, which the file does not store (scripts/export_torch_zoo.py, table_rows). The stored count was
    each row's upper bound: 68..180 for torch's 372. Now each is open above, the Linear still exact."""
    path = MODELS / "torchzoo" / "table_rows__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    holder = {name: fl for fl in fw.layers for name in fl.tensors}
    for name in ("select", "slice_1", "select_1"):
        assert holder[name].trainable == Figure(0, None), (name, holder[name].trainable)
        assert "the file does not store it" in holder[name].evidence[0]
    assert holder["fc.bias"].trainable == Figure.of(16 * 4 + 4)
    assert fw.trainable == Figure(16 * 4 + 4, None) and fw.trainable.contains(_meta(path)["parameters"])


def test_a_torchscript_folded_row_read_by_a_mul_has_no_upper_bound():
    """The TorchScript exporter's constant folding stores one row of a table of 4 x 16 scales, read by a Mul,
    as `onnx::Mul_N` (scripts/export_torch_zoo.py, table_rows): like `onnx::Add_N`, a value folded at export
    from tensors the file need not hold. Its row was 0..16 for the table's 64."""
    path = MODELS / "torchzoo" / "table_rows__legacy_fold.onnx"
    fw = audit(path, convention="pytorch").framework
    (row,) = [fl for fl in fw.layers if any(name.startswith("onnx::Mul_") for name in fl.tensors)]
    assert row.trainable.contains(4 * 16) and row.trainable.hi is None
    assert fw.trainable.contains(_meta(path)["parameters"])


def test_a_module_forward_never_calls_is_open_above_through_dynamo():
    """dynamo's graph signature names unused.weight and unused.bias (a Linear forward never calls: torch
    counts its 4 x 3 + 3) and emb.weight (tied to head.weight, read by that name); the file stores none of
    them (scripts/export_torch_zoo.py, unused_module). The total was 40, exact-looking, for torch's 55: the
    unused module's row is now open above; emb's is not (its Gather, in emb's scope, reads head.weight)."""
    path = MODELS / "torchzoo" / "unused_module__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    rows = {fl.name: fl for fl in fw.layers}
    assert rows["unused"].trainable == Figure(0, None) and "emb" not in rows
    assert "unused.bias, unused.weight: named by torch.onnx's graph signature" in rows["unused"].evidence[0]
    assert fw.trainable == Figure(10 * 4, None) and fw.trainable.contains(_meta(path)["parameters"])


def test_anonymous_bias_in_a_file_that_names_its_parameters_may_be_a_buffer():
    """BART adds a registered buffer (final_logits_bias) to its logits; constant folding stores it as
    `onnx::Add_N`, where a Linear's own bias keeps its state_dict key (scripts/export_torch_zoo.py,
    logits_bias): counted as stored at most, and said."""
    path = MODELS / "torchzoo" / "logits_bias__legacy_fold.onnx"
    fw = audit(path, convention="pytorch").framework
    vocab = 10  # register_buffer("final_logits_bias", torch.zeros(1, 10))
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"], _meta(path)["parameters"] + vocab)
    assert any("registered buffer or a value folded at export" in e for la in fw.layers for e in la.evidence)


def test_weight_whose_product_only_a_shape_reads_may_be_a_fusion_leftover(tmp_path):
    """onnxruntime's T5 attention fusion copies layer 0's key weight into the fused qkv weight and keeps
    the key MatMul for the key length alone (Reshape -> Shape): counted as stored at most."""
    from builders import audit_model, init, ints, model, node, value

    d = 8
    m = model(
        [node("MatMul", ["x", "qkv"], ["y"], name="/attn/qkv/MatMul"),
         node("MatMul", ["x", "k"], ["k_out"], name="/attn/k/MatMul"),
         node("Reshape", ["k_out", "heads"], ["k_heads"], name="/attn/Reshape"),
         node("Shape", ["k_heads"], ["k_len"], name="/attn/Shape")],
        [value("x", [1, 4, d])],
        [value("y", [1, 4, 3 * d]), value("k_len", [4], TensorProto.INT64)],
        [init("qkv", [d, 3 * d]), init("k", [d, d]), ints("heads", [1, 4, 2, d // 2])],
        extra_opsets={"com.microsoft": 1},
    )  # fmt: skip
    fw = audit_model(tmp_path, m).framework
    assert (fw.trainable.lo, fw.trainable.hi) == (3 * d * d, 4 * d * d)
    assert any("only a Shape reads its product" in e for la in fw.layers for e in la.evidence)


@pytest.mark.parametrize(
    ("weight", "bias", "maybe_bn"), [("conv1.weight", "conv1.bias", False), ("onnx::Conv_7", "onnx::Conv_8", True)]
)
def test_onnxruntime_saved_conv_under_its_state_dict_names_holds_no_bn(tmp_path, weight, bias, maybe_bn):
    """onnxruntime re-saves a TorchScript export (ORT_ENABLE_ALL, a real session): a conv whose weight and
    bias keep their state_dict keys holds no folded BN (Whisper's conv1); torch's own fold is anonymous."""
    import onnxruntime
    from builders import init, model, node, save, value

    m = model(
        [node("Conv", ["x", weight, bias], ["y"], name="/conv1/Conv", pads=[1, 1]),
         node("Relu", ["y"], ["z"], name="/act/Relu")],
        [value("x", [1, 4, 16])],
        [value("z", [1, 8, 16])],
        [init(weight, [8, 4, 3]), init(bias, [8])],
    )  # fmt: skip
    m.producer_name = "pytorch"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(save(m, tmp_path / "m.onnx")), options, providers=["CPUExecutionProvider"])
    fw = audit(tmp_path / "optimized.onnx", convention="pytorch").framework
    assert any("folded by onnxruntime" in la.name for la in fw.layers) == maybe_bn


@pytest.mark.parametrize(("dims", "doubted"), [((1, 6), True), ((6,), False)])
def test_only_a_broadcast_shaped_anonymous_bias_may_be_a_buffer(tmp_path, dims, doubted):
    """`onnx::Add_N` of (1, N) after a product is no Linear bias (BART's final_logits_bias buffer); one of
    (N,) is one folded at export (MultiheadAttention's in_proj_bias split per q, k, v): counted."""
    from builders import audit_model, init, model, node, value

    m = model(
        [node("MatMul", ["x", "onnx::MatMul_3"], ["h"], name="/head/MatMul"),
         node("Add", ["h", "onnx::Add_4"], ["y"], name="/Add"),
         node("Gemm", ["x", "body.weight", "body.bias"], ["z"], name="/body/Gemm", transB=1)],
        [value("x", [1, 4])],
        [value("y", None), value("z", None)],
        [init("onnx::MatMul_3", [4, 6]), init("onnx::Add_4", dims),
         init("body.weight", [3, 4]), init("body.bias", [3])],
    )  # fmt: skip
    m.producer_name = "pytorch"
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    total = 4 * 6 + 6 + 3 * 4 + 3
    assert (fw.trainable.lo, fw.trainable.hi) == ((total - 6) if doubted else total, total)


def test_separable_conv_merged_with_its_bn_keeps_both_kernels(tmp_path):
    """tf2onnx on Keras SeparableConv2D(use_bias=False) + BatchNormalization: depthwise conv, then the
    pointwise conv, whose bias is the BN's folded shift. Both kernels are the separable layer's."""
    from builders import audit_model, init, model, node, value

    c_in, c_out = 8, 16
    m = model(
        [node("Conv", ["x", "sep/depthwise_kernel"], ["d"], name="sep/separable_conv2d/depthwise", group=c_in),
         node("Conv", ["d", "sep/pointwise_kernel", "bn/batchnorm/sub:0"], ["y"], name="sep/separable_conv2d")],
        [value("x", [1, c_in, 8, 8])],
        [value("y", None)],
        [init("sep/depthwise_kernel", [c_in, 1, 3, 3]), init("sep/pointwise_kernel", [c_out, c_in, 1, 1]),
         init("bn/batchnorm/sub:0", [c_out])],
    )  # fmt: skip
    m.producer_name = "tf2onnx"
    fw = audit_model(tmp_path, m).framework
    sep = next(la for la in fw.layers if la.name == "sep")
    assert sep.trainable.hi == c_in * 3 * 3 + c_out * c_in
    # beta shown by the shift's name, gamma assumed (scale=True): scale=False is in the bounds
    assert (fw.trainable.shown, fw.non_trainable.shown) == (c_in * 3 * 3 + c_out * c_in + 2 * c_out, 2 * c_out)
    assert fw.trainable.lo == c_in * 3 * 3 + c_out * c_in + c_out


def test_lowered_rms_norm_is_named_for_what_it_computes():
    """nn.RMSNorm below opset 23 becomes Pow/ReduceMean/Sqrt/Reciprocal and a Mul by its weight: no mean
    subtracted, no shift, so not a LayerNormalization."""
    path = MODELS / "torchzoo" / "rms_norm__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    norm = next(la for la in fw.layers if "normalization lowered to ops" in la.evidence[0])
    features = 16  # nn.RMSNorm(16) in scripts/export_torch_zoo.py
    assert (norm.name, norm.kind, norm.trainable.hi) == ("1", "RMSNormalization", features)


def test_parametrized_weight_folded_by_dynamo_is_told_by_the_graph_signature():
    """weight_norm's g and v (or spectral_norm's original) folded into one `mul`/`div` tensor: the graph
    signature's parameters it was folded from tell them apart (was 36..44 for spectral_norm's 36)."""
    path = MODELS / "torchzoo" / "spectral_norm__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2
    assert "spectral_norm" in fw.layers[0].evidence[0] and fw.layers[0].status == "inferred"
    path = MODELS / "torchzoo" / "weight_norm__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    layer = next(la for la in fw.layers if "weight_norm" in la.evidence[0])
    v, bias = 6 * 4 * 3, 6  # weight_norm(Conv1d(4, 6, 3)): v the weight's shape, g at least one value more
    assert layer.status == "ambiguous" and (layer.trainable.lo, layer.trainable.hi) == (v + bias + 1, v + bias + 6)
    assert fw.trainable.contains(_meta(path)["parameters"])


def test_norm_scale_without_state_dict_name_may_be_the_exporters():
    """LayerNorm(elementwise_affine=False): the exporter writes the ones (and zeros) ONNX needs."""
    path = MODELS / "torchzoo" / "ln_no_affine__legacy.onnx"
    fw = audit(path, convention="pytorch").framework
    norm = next(la for la in fw.layers if la.kind == "LayerNormalization")
    assert norm.status == "ambiguous" and norm.trainable.lo == 0
    assert fw.trainable.contains(_meta(path)["parameters"])


@pytest.mark.parametrize("case", ["ln_no_affine", "norms_without_affine"])
def test_dynamo_fx_call_without_weight_and_bias_shows_the_exporters_constants(case):
    """dynamo's FX call passes layer_norm / group_norm None for weight and bias: the ones and zeros
    the exporter wrote for the ONNX op are no parameters, and the counts are torch's exactly."""
    path = MODELS / "torchzoo" / f"{case}__dynamo.onnx"
    meta, fw = _meta(path), audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi) == (meta["parameters"],) * 2
    made = [la for la in fw.layers if "FX call" in " ".join(la.evidence)]
    assert made and all(la.trainable.hi == 0 for la in made)


def test_torchscript_norms_without_affine_count_no_exporter_constant():
    """GroupNorm(affine=False) lowered to InstanceNormalization * 1 + 0 (scalar Constant nodes) and
    LayerNorm(bias=False) reading a Constant zero bias: neither constant is a parameter."""
    path = MODELS / "torchzoo" / "norms_without_affine__legacy.onnx"
    meta, fw = _meta(path), audit(path, convention="pytorch").framework
    layers = {la.name: la for la in fw.layers}
    width = 16  # nn.LayerNorm(16, bias=False) in scripts/export_torch_zoo.py
    assert (layers["gn"].trainable.hi, layers["ln_nobias"].trainable.lo, layers["ln_nobias"].trainable.hi) == (
        0,
        width,
        width,
    )
    assert layers["ln"].trainable.lo == 0  # elementwise_affine=False: Constant nodes, but freeze writes those too
    assert fw.trainable.contains(meta["parameters"])


@pytest.mark.parametrize("kind", ["legacy_fold", "legacy_nofold"])
def test_layernorm_without_bias_inside_a_dotted_scope(kind):
    """LayerNorm(8, bias=False) in a ModuleList: the exporter's zero bias is `/blocks/blocks.0/norm/
    Constant_output_0`, a dot in its scope, yet no state_dict key (counted 2 x 8 before)."""
    path = MODELS / "torchmodules" / f"zoo_head_called_through__{kind}.onnx"
    fw = audit(path, convention="pytorch").framework
    layers = {la.name: la for la in fw.layers}
    for name in ("blocks.0.norm", "blocks.1.norm"):
        assert (layers[name].trainable.lo, layers[name].trainable.hi) == (8, 8)
    torch = json.loads(path.with_name(path.stem + ".counts.json").read_text())
    assert fw.trainable.lo == fw.trainable.hi == torch["parameters"] == 2 * (8 + 8 * 8 + 8) + 2 * 8 + 8 * 4 + 4


def _token_plus_slice(slice_name: str):
    """Token embeddings plus a (1, 8, 16) constant: torch dynamo looks a position embedding up at
    export for the traced length and stores only the slice."""
    from builders import init, model, node, value

    return model(
        [
            node("Gather", ["E", "ids"], ["tok"], name="/embeddings/word/Gather"),
            node("Add", ["tok", slice_name], ["y"], name="/embeddings/Add"),
        ],
        [value("ids", [1, 8], elem=7)],
        [value("y", None)],
        [init("E", [100, 16]), init(slice_name, [1, 8, 16])],
    )


def test_a_folded_embedding_lookup_is_said_to_hide_its_table(tmp_path):
    from builders import audit_model

    fw = audit_model(tmp_path, _token_plus_slice("pos")).framework
    evidence = " ".join(line for layer in fw.layers for line in layer.evidence)
    assert "pos 1x8x16 may be an embedding table looked up at export for a traced length of 8" in evidence


def test_a_lookup_folded_by_dynamo_says_first_that_the_range_can_be_short(tmp_path):
    # named after the folded op, as dynamo names BERT's position rows with static shapes
    from builders import audit_model

    fw = audit_model(tmp_path, _token_plus_slice("embedding_1")).framework
    (slice_row,) = [layer for layer in fw.layers if "embedding_1" in layer.tensors]
    assert slice_row.evidence[0].startswith("embedding_1 1x8x16 may be an embedding table looked up at export")
    assert any("the framework's count can be above this range" in note for note in fw.notes)
    # the table may be any size: no upper bound, so the range still contains the framework's count
    table = 100 * 16
    assert (slice_row.trainable.lo, slice_row.trainable.hi, fw.trainable.hi) == (0, None, None)
    assert fw.trainable.lo == table and fw.trainable.text() == f"{table:,}+"


def test_normalization_after_rescaling_written_as_add_of_the_negated_mean(tmp_path):
    # tf2onnx on keras.applications.EfficientNetB0 (Rescaling then Normalization): the Sub became an
    # Add that keeps the Sub's name, its constant named after the Rescaling's folded add
    from builders import audit_model, init, model, node, value

    m = model(
        [
            node("Add", ["x", "m/rescaling_1/add:0"], ["centred"], name="m/normalization_1/Sub"),
            node(
                "Mul",
                ["centred", "ConstantFolding/m/normalization_1/truediv_recip:0"],
                ["y"],
                name="m/normalization_1/truediv",
            ),
        ],  # fmt: skip
        [value("x", ["N", 8, 8, 3])],
        [value("y", None)],
        [
            init("m/rescaling_1/add:0", [1, 1, 1, 3]),
            init("ConstantFolding/m/normalization_1/truediv_recip:0", [1, 1, 1, 3]),
        ],
    )
    m.producer_name = "tf2onnx"
    norm = next(la for la in audit_model(tmp_path, m).framework.layers if la.name.startswith("normalization"))
    # mean, variance and count when adapted (likely); 0 when built with mean= and variance=
    assert (norm.trainable.hi, norm.non_trainable.shown, norm.non_trainable.lo) == (0, 3 + 3 + 1, 0)


def test_nchwc_padded_conv_is_rebuilt_with_the_channels_reorder_output_restores(tmp_path):
    """onnxruntime's NCHWc pass rounds a conv's output channels up to its block with zero rows (10 -> 16
    here, as it saved a Conv2d(16, 10) at ORT_ENABLE_ALL); ReorderOutput's `channels` says the true 10."""
    from builders import audit_model, init, model, node, value

    nchwc = "com.microsoft.nchwc"
    m = model(
        [
            node("Conv", ["x", "reorder_token_1", "reorder_token_2"], ["c"], domain=nchwc),
            node("Relu", ["c"], ["r"]),
            node("ReorderOutput", ["r"], ["y"], domain=nchwc, channels=10),
        ],
        [value("x", [1, 16, 8, 8])],
        [value("y", None)],
        [init("reorder_token_1", [16, 16, 3, 3]), init("reorder_token_2", [16])],
        extra_opsets={nchwc: 1},
    )
    report = audit_model(tmp_path, m, convention="pytorch")
    assert report.totals.trainable == 16 * 16 * 3 * 3 + 16  # the file view: as stored
    assert report.framework.trainable.lo == 10 * 16 * 3 * 3 + 10  # torch's conv
    assert any("NCHWc" in note for note in report.framework.notes)


def test_a_mask_added_to_attention_scores_is_no_lowered_layer_norm_beta(tmp_path):
    # torch.onnx (legacy, constant folding) on ALBERT: the folded mask reaches the scores' Add
    # through Expand/Cast/Sub/Where, in a module that also takes a Sqrt (the score scaling)
    from builders import audit_model, init, ints, model, node, value

    scope = "/enc/attention"
    m = model(
        [
            node("MatMul", ["q", "k"], ["s"], name=f"{scope}/MatMul"),
            node("Sqrt", ["d"], ["sd"], name=f"{scope}/Sqrt"),
            node("Div", ["s", "sd"], ["s2"], name=f"{scope}/Div"),
            node("Expand", ["mask", "shape"], ["me"], name=f"{scope}/Expand"),
            node("Cast", ["me"], ["keep"], name=f"{scope}/Cast", to=TensorProto.BOOL),
            node("Where", ["keep", "low", "me"], ["m2"], name=f"{scope}/Where"),
            node("Add", ["s2", "m2"], ["y"], name=f"{scope}/Add"),
        ],
        [value("q", [1, 2, 8, 4]), value("k", [1, 2, 4, 8]), value("d", [])],
        [value("y", None)],
        [init("mask", [1, 1, 1, 8]), ints("shape", [1, 2, 8, 8]), init("low", [])],
    )
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    assert [la.kind for la in fw.layers if la.kind == "LayerNormalization"] == []


def test_a_position_bias_of_zeros_is_no_lowered_layer_norm_beta(tmp_path):
    """T5's cross attention adds a (1, heads, q, k) position bias of zeros it makes itself (a Constant node in
    the TorchScript export), in a module that also takes a Sqrt: no layer norm's beta, which is per feature."""
    from builders import audit_model, init, model, node, value

    scope = "/decoder/EncDecAttention"
    m = model(
        [
            node("MatMul", ["q", "k"], ["s"], name=f"{scope}/MatMul"),
            node("Sqrt", ["d"], ["sd"], name=f"{scope}/Sqrt"),
            node("Div", ["s", "sd"], ["s2"], name=f"{scope}/Div"),
            node("Add", ["s2", "bias"], ["y"], name=f"{scope}/Add"),
        ],
        [value("q", [1, 2, 6, 4]), value("k", [1, 2, 4, 6]), value("d", [])],
        [value("y", None)],
        [init("bias", [1, 2, 6, 6])],
    )
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    assert [la.kind for la in fw.layers if la.kind == "LayerNormalization"] == []
    assert fw.trainable.lo == 0  # zeros the model made, or a parameter: 0 to 1x2x6x6


def test_a_shared_module_called_again_is_counted_once():
    """One block called three times (scripts/export_torch_zoo.py, shared_block): with constant folding
    the legacy exporter stores the transposed weight of each call, equal copies kept once behind
    Identity nodes read in `block.0_1`, `block.0_2`: the same parameter, not three."""
    path = MODELS / "torchzoo" / "shared_block__legacy_fold.onnx"
    meta, report = _meta(path), audit(path, convention="pytorch")
    assert report.totals.trainable == meta["parameters"]
    fw = report.framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (meta["parameters"],) * 2 + ("exact",)


@pytest.mark.parametrize("kind", ["legacy", "dynamo"])
def test_a_shared_module_stored_once_is_exact(kind):
    path = MODELS / "torchzoo" / f"shared_block__{kind}.onnx"
    fw = audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (_meta(path)["parameters"],) * 2 + ("exact",)


def test_pairs_in_the_largest_graphs_stay_ranges(tmp_path, monkeypatch):
    """Finding a pair's bytes walks the whole structure again: above the node limit it is not done, and
    the copy stays a doubt. The limit is lowered here to this two-node graph."""
    import numpy as np
    from builders import array, audit_model, model, node, value

    from onnxaudit.frameworks import pairs

    monkeypatch.setattr(pairs, "_COMPARE_MAX_NODES", 1)
    w = np.random.default_rng(7).random((16, 12), dtype=np.float32) + 0.5
    m = model(
        [node("MatMul", ["x", "w"], ["h"], name="/MatMul"), node("MatMul", ["h", "t"], ["y"], name="/MatMul_1")],
        [value("x", [2, 16])],
        [value("y", None)],
        [array("w", w), array("t", w.T.copy())],
    )
    m.producer_name = "pytorch"
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (16 * 12, 2 * 16 * 12, "ambiguous")
    assert any("values not compared" in e for layer in fw.layers for e in layer.evidence)


@pytest.mark.parametrize("stored", ["copy", "other", "external"])
def test_weight_copies_per_call_of_one_linear_are_settled_by_values(tmp_path, stored):
    # torch.onnx (dynamo) on ALBERT: a shared Linear called twice holds its folded transposed weight
    # twice (val_1, val_2), and its bias once, read by both calls; sampled values say whether val_2 is
    # val_1 again, and where the data is external (never opened) the pair stays a range
    import numpy as np
    from builders import array, audit_model, external, init, model, node, value

    first = np.random.default_rng(3).random((8, 8), dtype=np.float32) + 0.5
    second = {
        "copy": array("val_2", first),
        "other": init("val_2", [8, 8]),
        "external": external("val_2", [8, 8], "w.bin"),
    }
    m = model(
        [
            node("MatMul", ["x", "val_1"], ["h1"], name="/ffn/MatMul"),
            node("Add", ["h1", "ffn.bias"], ["y1"], name="/ffn/Add"),
            node("MatMul", ["y1", "val_2"], ["h2"], name="/ffn/MatMul_1"),
            node("Add", ["h2", "ffn.bias"], ["y"], name="/ffn/Add_1"),
        ],
        [value("x", [1, 4, 8])],
        [value("y", None)],
        [array("val_1", first), second[stored], init("ffn.bias", [8])],
    )
    m.producer_name = "pytorch"
    (tmp_path / "w.bin").write_bytes(first.tobytes())
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    (ffn,) = fw.layers
    expected = {"copy": (8 * 8 + 8,) * 2 + ("inferred",), "other": (2 * 8 * 8 + 8,) * 2 + ("exact",)}
    assert (ffn.trainable.lo, ffn.trainable.hi, ffn.status) == expected.get(
        stored, (8 * 8 + 8, 2 * 8 * 8 + 8, "ambiguous")
    )
    reason = {
        "copy": "val_2 is val_1 stored again for another call (values equal",
        "external": "val_2 8x8 may be val_1",
    }
    assert stored not in reason or reason[stored] in ffn.evidence[0]


def test_a_constant_product_read_by_attention_is_not_claimed_a_parameter(tmp_path):
    # torch.onnx (dynamo) on DeBERTa-v2: rel_embeddings through pos_key_proj, split per head, folded
    # into one (heads, positions, head size) constant per layer: `transpose_1`
    from builders import audit_model, init, model, node, value

    scope = "/encoder/layer.0/attention/self"
    m = model(
        [
            node("MatMul", ["q", "transpose_1"], ["c2p"], name=f"{scope}/MatMul"),
            node("Softmax", ["c2p"], ["y"], name=f"{scope}/Softmax"),
        ],
        [value("q", [1, 2, 8, 16])],
        [value("y", None)],
        [init("transpose_1", [2, 16, 16])],
    )
    m.producer_name = "pytorch"
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    (attention,) = fw.layers
    assert (attention.trainable.lo, attention.trainable.hi, attention.status) == (0, 2 * 16 * 16, "ambiguous")
    assert "computed at export from parameters" in attention.evidence[0]


def test_one_tensor_read_by_several_modules_counts_once_per_module_at_most(tmp_path):
    # torch.onnx (dynamo) on an untrained ConvNeXt: the LayerNorm scales (ones) and shifts (zeros) of
    # two modules are stored once, under the first module's names
    from builders import audit_model, init, model, node, value

    ln = [node("LayerNormalization", [x, "a.ln.weight", "a.ln.bias"], [y], name=f"/{m}/ln/LayerNormalization")
          for x, y, m in (("x", "h", "a"), ("h", "y", "b"))]  # fmt: skip
    m = model(ln, [value("x", [1, 4, 8])], [value("y", None)], [init("a.ln.weight", [8]), init("a.ln.bias", [8])])
    m.producer_name = "pytorch"
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (2 * 8, 2 * (2 * 8), "ambiguous")
    assert any("read by several modules" in note and "equal values stored once" in note for note in fw.notes)


def test_bn_statistics_read_from_its_own_parameters_are_counted_as_statistics(tmp_path):
    # onnxsim on an untrained BatchNorm1d: running_var (ones) stored as gamma, running_mean (zeros) as beta
    from builders import audit_model, init, model, node, value

    c = 10
    m = model(
        [node("BatchNormalization", ["x", "bn.weight", "bn.bias", "bn.bias", "bn.weight"], ["y"], name="/bn/BN")],
        [value("x", [2, c])],
        [value("y", None)],
        [init("bn.weight", [c]), init("bn.bias", [c])],
    )
    report = audit_model(tmp_path, m, convention="pytorch")
    assert report.totals.non_trainable == 0  # the file holds 2 x c values
    (bn,) = report.framework.layers
    assert (bn.trainable.lo, bn.non_trainable.lo, bn.status) == (2 * c, 2 * c, "inferred")


@pytest.mark.parametrize("stored", ["copy", "other"])
def test_a_weight_folded_again_for_a_later_call_is_settled_by_values(tmp_path, stored):
    # onnxslim on an ALBERT legacy export: each call's folded transpose stored under the call's scope
    import numpy as np
    from builders import array, audit_model, init, model, node, value

    first = np.random.default_rng(5).random((8, 8), dtype=np.float32) + 0.5
    again = "/enc/query_1/Transpose_output_0"
    m = model(
        [
            node("MatMul", ["x", "/enc/query/Transpose_output_0"], ["h"], name="/enc/query/MatMul"),
            node("MatMul", ["h", again], ["y"], name="/enc/query_1/MatMul"),
        ],
        [value("x", [1, 4, 8])],
        [value("y", None)],
        [
            array("/enc/query/Transpose_output_0", first),
            array(again, first) if stored == "copy" else init(again, [8, 8]),
        ],
    )
    m.producer_name = "pytorch"
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    expected = {"copy": (8 * 8, 8 * 8, "inferred"), "other": (2 * 8 * 8, 2 * 8 * 8, "exact")}
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == expected[stored]
    (call,) = [layer for layer in fw.layers if layer.name == "enc.query_1"]
    assert stored == "other" or "stored again for another call (values equal" in call.evidence[0]


def test_an_unscoped_depthwise_conv_is_not_named_after_the_layer_before_it():
    # tf2onnx on tf_keras: the depthwise conv lost its scope (`Conv__36`) and its input is the ReLU before
    fw = audit(MODELS / "keras" / "bottleneck_bias__tfkeras_op13.onnx").framework
    names = [layer.name for layer in fw.layers]
    assert "re_lu" not in names and "Conv__36 (the conv before batch_normalization_1)" in names


def test_attention_calling_out_proj_in_its_own_scope_is_no_bn_fusion():
    """nn.MultiheadAttention (dynamo) runs out_proj's Gemm in the `mha` scope: a Gemm whose weight names
    another module is not by itself a BN fused into it (scripts/export_torch_zoo.py, self_attention)."""
    path = MODELS / "torchzoo" / "self_attention__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.non_trainable.hi) == (_meta(path)["parameters"],) * 2 + (0,)
    assert "BatchNorm" not in [layer.kind for layer in fw.layers]


@pytest.mark.parametrize("stored", ["copy", "other", "external"])
def test_a_weight_shaped_like_a_transposed_copy_is_settled_by_its_values(tmp_path, stored):
    """torch.onnx dynamo on `h = x @ self.w; y = h @ self.w.T` folds the transpose into `t`. Sampled
    values say whether `t` is `w` again (counted once) or another weight (counted); where the data lies in
    an external file, never opened, the pair stays a range."""
    import numpy as np
    from builders import array, audit_model, external, init, model, node, value

    w = np.random.default_rng(7).random((16, 12), dtype=np.float32) + 0.5
    t = {"copy": array("t", w.T.copy()), "other": init("t", [12, 16]), "external": external("t", [12, 16], "t.bin")}
    m = model(
        [node("MatMul", ["x", "w"], ["h"], name="/MatMul"), node("MatMul", ["h", "t"], ["y"], name="/MatMul_1")],
        [value("x", [2, 16])],
        [value("y", None)],
        [array("w", w), t[stored]],
    )
    m.producer_name = "pytorch"
    (tmp_path / "t.bin").write_bytes(w.T.tobytes())
    fw = audit_model(tmp_path, m, convention="pytorch").framework
    expected = {"copy": (16 * 12, 16 * 12, "inferred"), "other": (2 * 16 * 12, 2 * 16 * 12, "exact")}
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == expected.get(stored, (16 * 12, 2 * 16 * 12, "ambiguous"))
    if stored == "external":
        assert any("t 12x16 may be a transposed copy of tied w" in e for layer in fw.layers for e in layer.evidence)


@pytest.mark.parametrize("name", ["linear_1", "repeat"])
def test_a_constant_named_after_a_product_is_not_claimed_a_parameter(tmp_path, name):
    # torch.onnx dynamo on `rec(zeros)`: a Linear applied to a zero state folds to its bias per batch row
    # (`linear_1`); MultiheadAttention(add_bias_kv=True) stores bias_k repeated per batch row (`repeat`)
    from builders import audit_model, init, model, node, tensor_row, value

    m = model(
        [node("Gemm", ["x", "fc.weight"], ["g"], name="node_linear", transB=1), node("Add", ["g", name], ["y"])],
        [value("x", [2, 6])],
        [value("y", None)],
        [init("fc.weight", [16, 6]), init(name, [2, 16])],
    )
    m.producer_name = "pytorch"
    report = audit_model(tmp_path, m, convention="pytorch")
    assert tensor_row(report, name).category == "parameter"  # read as the Gemm's bias
    fw = report.framework
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (16 * 6, 16 * 6 + 2 * 16, "ambiguous")
    op = name.rstrip("_0123456789")
    assert any(f"named after the {op} that made it" in e for layer in fw.layers for e in layer.evidence)


FOLDED_TORCH = [p for p in TORCH if p.stem.endswith("legacy_fold")]


@pytest.mark.parametrize("path", FOLDED_TORCH, ids=lambda p: p.stem)
def test_bare_number_names_of_torch_before_1_13_are_anonymous_folds(path, tmp_path):
    """torch.onnx before 1.13 named the tensors it computed at export by a bare number (`391`, as in
    files published by ddddocr and Silero), where newer releases write `onnx::Conv_391`: the same
    export renamed that way is rebuilt to the same framework figures."""
    import onnx

    m = onnx.load(path)
    renamed = {t.name: t.name.rpartition("_")[2] for t in m.graph.initializer if t.name.startswith("onnx::")}
    if not renamed:
        pytest.skip("nothing folded")
    for t in m.graph.initializer:
        t.name = renamed.get(t.name, t.name)
    for n in m.graph.node:
        n.input[:] = [renamed.get(i, i) for i in n.input]
    old = tmp_path / "numbers.onnx"
    onnx.save(m, old)
    before, after = audit(path).framework, audit(old).framework
    assert [(la.kind, la.trainable, la.non_trainable) for la in after.layers] == [
        (la.kind, la.trainable, la.non_trainable) for la in before.layers
    ]
    assert after.non_trainable.contains(_meta(path)["running_stats"])


@pytest.mark.parametrize("copy", [True, False], ids=["copied", "distinct"])
def test_a_weight_stored_in_both_branches_of_an_if_is_counted_once(tmp_path, copy):
    """Silero VAD v4 (torch 1.12) stores its decoder LSTM folded once per branch of an If: sampled values
    tell one weight stored twice (counted once, inferred) from two weights of one shape (both counted)."""
    from builders import audit_model, if_with_unequal_branches

    fw = audit_model(tmp_path, if_with_unequal_branches((4, 4), (4, 4), copy=copy), convention="pytorch").framework
    if copy:
        assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (4 * 4, 4 * 4, "inferred")
        assert any("stored again in the other branch of If r" in e for la in fw.layers for e in la.evidence)
    else:
        assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (2 * 4 * 4, 2 * 4 * 4, "exact")


PADDLE = sorted((MODELS / "paddle").glob("*.onnx"))


@pytest.mark.parametrize("path", PADDLE, ids=lambda p: p.stem)
def test_paddle_exports_are_rebuilt_to_what_paddle_counted(path):
    """paddle2onnx (scripts/export_paddle.py) names no producer, makes up a GroupNorm's group scales, a
    BatchNorm's missing weight and bias, and a Conv1D's `+ 0`: none of them is a parameter."""
    meta = _meta(path)
    for convention, keys in (("keras", ("trainable", "non_trainable")), ("pytorch", ("parameters", "running_stats"))):
        fw = audit(path, convention=convention).framework
        assert fw.origin == "paddle"
        assert fw.status in ("exact", "inferred"), fw
        assert (fw.trainable.lo, fw.non_trainable.lo) == (meta[keys[0]], meta[keys[1]])


def test_ultralytics_fused_conv_blocks_are_rebuilt_to_what_torch_counted_before_the_fusion():
    """Ultralytics' exporter fuses each Conv block's BN into its conv (scripts/export_ultralytics.py): the
    file holds the fused model; its metadata names the author, so each `<block>.conv` with a bias is a
    conv without one plus `<block>.bn`, and the Detect head's anchors and strides are no parameters."""
    path = MODELS / "ultralytics" / "yolov8_tiny.onnx"
    meta = _meta(path)
    report = audit(path, convention="pytorch")
    assert report.totals.trainable == meta["fused"]["parameters"]  # the file view: the fused model
    fw = report.framework
    assert fw.status == "inferred"
    assert (fw.trainable.lo, fw.trainable.hi) == (meta["parameters"],) * 2
    assert (fw.non_trainable.lo, fw.non_trainable.hi) == (meta["running_stats"],) * 2


def test_float_tensors_no_node_reads_may_still_be_framework_parameters(tmp_path):
    """A module the graph never calls keeps its parameters in model.parameters(); paddle2onnx's SimpleRNN
    leaves its weights behind dead Identity nodes. Not counted by the file view, so the framework's count
    is a range that reaches them (an int64 leftover such as num_batches_tracked is no parameter)."""
    import numpy as np
    from builders import audit_model, dense_relu, init

    m = dense_relu()
    m.graph.initializer.extend([init("head.weight", [5, 3]), init("bn.num_batches_tracked", [], np.int64)])
    report = audit_model(tmp_path, m)
    fw = report.framework
    stored = report.totals.trainable
    assert (fw.trainable.lo, fw.trainable.hi, fw.status) == (stored, stored + 5 * 3, "ambiguous")


def test_a_dynamically_quantized_fold_still_shows_its_bn(tmp_path):
    """onnxruntime's quantize_dynamic on a constant-folded torch export: ConvInteger reads the anonymous
    folded weight, an Add after it the bias; the BN torch folded is still rebuilt as a range."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = MODELS / "torch" / "seed_cnn__legacy_fold.onnx"
    quantized = tmp_path / "q.onnx"
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    fw = audit(quantized).framework
    meta = _meta(path)
    assert fw.status == "ambiguous"
    assert fw.non_trainable.contains(meta["running_stats"]) and fw.trainable.contains(meta["parameters"])


def test_tflite_fused_ops_take_their_weights_layer_and_no_conv_is_exact():
    """tf2onnx on a .tflite file names each op by all the TF ops TFLite fused into it
    (`.../re_lu/Relu;.../bn0/batchnorm/add_1;.../conv0/BiasAdd;...`, scripts/export_keras.py's tflite_op17):
    the row is the layer holding the weights, a BN whose ops the name lists is rebuilt as a fold, and
    an op whose name shows none may still hold one, or a bias the converter made: no figure of a conv
    or Dense is exact, and the rebuilt totals contain what Keras printed."""
    for case, rows in (
        ("seed_cnn", ["conv0", "fc"]),
        ("conv_zoo", ["sep", "dw", "deconv", "prelu", "fc_nobias", "head"]),
    ):
        path = MODELS / "keras" / f"{case}__tflite_op17.onnx"
        meta = _meta(path)
        report = audit(path)
        assert [row.name for row in report.rows if row.params] == rows
        fw = report.framework
        by_name = {la.name: la for la in fw.layers}
        assert fw.trainable.contains(meta["trainable"]) and fw.non_trainable.contains(meta["non_trainable"])
        assert all(la.status == "ambiguous" for la in fw.layers if la.kind in ("Conv", "ConvTranspose", "MatMul"))
    assert by_name["bn_nocenter"].non_trainable.lo == 2 * 4  # named in the ConvTranspose's fused name
    assert any("bn_nocenter_1/batchnorm" in e for e in by_name["bn_nocenter"].evidence)


def test_torch_names_under_another_producer_are_a_pytorch_export(tmp_path):
    """A TorchScript export re-saved by a tool that writes its own producer (onnx.compose's merge_models)
    keeps torch.onnx's `/scope/Op` node names: the PyTorch rules still rebuild its folded BN (sweep11:
    'exact' and without the BN under the new producer)."""
    import onnx

    source = MODELS / "torch" / "seed_cnn__legacy_fold.onnx"
    m = onnx.load(str(source))
    m.producer_name, m.producer_version = "onnx.compose.merge_models", "1.0"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(m, str(renamed))
    before, after = audit(source).framework, audit(renamed).framework
    assert after.origin == "pytorch"
    assert (after.trainable, after.non_trainable, after.status) == (
        before.trainable,
        before.non_trainable,
        before.status,
    )
    assert after.non_trainable.contains(_meta(source)["keras_equivalent"]["non_trainable"])  # running mean + var


@pytest.mark.parametrize("stored", ["copy", "other"])
def test_tf2onnx_folded_transpose_of_a_tied_embedding_is_settled_by_its_values(tmp_path, stored):
    """A TF model that reads its embedding table again, transposed, as the output projection: tf2onnx
    stores the transpose folded as `const_fold_opt__N` (sweep10's tf.Module: 'exact' 3,572 for 1,972).
    Sampled values say whether it is the table again (counted once) or another weight."""
    import numpy as np
    from builders import array, audit_model, init, model, node, value
    from onnx import TensorProto

    table = np.random.default_rng(3).random((100, 16), dtype=np.float32) + 0.5
    head = {"copy": array("const_fold_opt__14", table.T.copy()), "other": init("const_fold_opt__14", [16, 100])}
    m = model(
        [
            node("Gather", ["embedding_lookup/16:0", "ids"], ["e"], name="embedding_lookup"),
            node("MatMul", ["e", "const_fold_opt__14"], ["y"], name="MatMul_1"),
        ],
        [value("ids", [2, 5], TensorProto.INT64)],
        [value("y", None)],
        [array("embedding_lookup/16:0", table), head[stored]],
    )
    m.producer_name = "tf2onnx"
    fw = audit_model(tmp_path, m).framework
    expected = {"copy": (100 * 16, "inferred"), "other": (2 * 100 * 16, "exact")}[stored]
    assert (fw.trainable.lo, fw.status) == expected and fw.trainable.exact


def test_tflite_bn_folded_into_a_dense_is_rebuilt_once(tmp_path):
    """A full-int8 TFLite file (sweep10's m09) names the Dense a BN was folded into after both
    (`.../d0/MatMul;.../bn/batchnorm/mul;...`) and the Add of the folded shift after the BN alone
    (`.../bn/batchnorm/add_1`): one BN, rebuilt from the Dense's name, not a second from the Add."""
    from builders import audit_model, init, model, node, value

    fused = "m_1/d0_1/MatMul;m_1/d0_1/BiasAdd;m_1/bn_1/batchnorm/mul;m_1/bn_1/batchnorm/add_1"
    m = model(
        [
            node("MatMul", ["x", "m_1/bn_1/batchnorm/mul"], ["h"], name=fused),
            node("Add", ["h", "m_1/bn_1/batchnorm/add_1"], ["y"], name="m_1/bn_1/batchnorm/add_1"),
            node("Relu", ["y"], ["z"], name="m_1/re_lu_1/Relu"),
        ],
        [value("x", [1, 20])],
        [value("z", None)],
        [init("m_1/bn_1/batchnorm/mul", [20, 32]), init("m_1/bn_1/batchnorm/add_1", [32])],
    )
    m.producer_name = "tf2onnx"
    fw = audit_model(tmp_path, m).framework
    assert fw.non_trainable.exact and fw.non_trainable.lo == 2 * 32
    assert [la.name for la in fw.layers if la.kind == "BatchNormalization"] == ["bn"]


def test_a_bn_reading_its_own_parameters_as_statistics_counts_each_once_per_role(tmp_path):
    # a simplifier stored an untrained BN's mean (= beta, zeros) and variance (= gamma, ones) once: the
    # framework held 4 x C, weight and bias trainable, running stats buffers
    from builders import audit_model, bn_reading_its_parameters_as_statistics

    c = 6
    fw = audit_model(tmp_path, bn_reading_its_parameters_as_statistics(c), convention="pytorch").framework
    (bn,) = fw.layers
    assert (bn.name, bn.kind, bn.status) == ("bn", "BatchNormalization", "inferred")
    assert (bn.trainable.lo, bn.trainable.hi, bn.non_trainable.lo, bn.non_trainable.hi) == (2 * c, 2 * c, 2 * c, 2 * c)
    assert bn.evidence[0].startswith(
        "running statistics read from the BN's own parameters (mean bn.bias, variance bn.weight)"
    )


def test_weight_norm_scalar_g_is_a_parameter():
    """weight_norm(dim=None): g is 0-d, read through g / |v| on its way into the conv weight; a value of one
    element multiplied into a weight is a literal unless a parameter's state_dict name says otherwise."""
    path = MODELS / "torchzoo" / "weight_norm_scalar_g__legacy.onnx"
    report = audit(path, convention="pytorch")
    g = next(t for t in report.tensors if t.name.endswith("parametrizations.weight.original0"))
    assert (g.category, g.count) == ("parameter", 1)
    assert report.totals.trainable == _meta(path)["parameters"] == 1 + 6 * 4 * 3 + 6 + 2 * 6 + 2


@pytest.mark.parametrize("kind", ["legacy", "legacy_fold"])
def test_spectral_norm_power_iteration_vectors_are_buffers(kind):
    """torch.nn.utils.spectral_norm's weight_u and weight_v are buffers beside weight_orig; constant folding
    also stores weight_orig reshaped for sigma's MatMul, which sampled values show to be the same weight."""
    path = MODELS / "torchzoo" / f"spectral_norm_hook__{kind}.onnx"
    report = audit(path, convention="pytorch")
    vectors = {t.name: t.category for t in report.tensors if t.name.endswith(("_u", "_v"))}
    assert vectors == {"0.weight_u": "state", "0.weight_v": "state"}
    fw = report.framework
    assert (
        (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2 == (6 * 3 * 3 * 3 + 6 + 2 * 6 + 2,) * 2
    )


def test_tables_looked_up_at_traced_indices_count_by_their_state_dict_name():
    """BERT-style position and token-type embeddings read at indices tracing made constant: their weight keys
    say they are nn.Embedding parameters (inferred, the evidence said)."""
    path = MODELS / "torchzoo" / "traced_lookups__legacy.onnx"
    fw = audit(path, convention="pytorch").framework
    width = 8  # nn.Embedding(12, 8) and nn.Embedding(2, 8) in scripts/export_torch_zoo.py
    tables = {la.name: la for la in fw.layers if la.status == "inferred"}
    assert {name: la.trainable.hi for name, la in tables.items()} == {"position": 12 * width, "token_type": 2 * width}
    assert all("state_dict name" in la.evidence[0] for la in tables.values())
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2


def test_a_row_folded_at_export_leaves_the_count_open_above():
    """Constant folding stores the rows looked up (`onnx::Add_16`), not the table: the framework's count can be
    larger than anything stored, so the range has no upper bound."""
    path = MODELS / "torchzoo" / "traced_lookups__legacy_fold.onnx"
    fw = audit(path, convention="pytorch").framework
    folded = next(la for la in fw.layers if la.trainable.hi is None)
    assert "constant folding" in folded.evidence[0]
    assert fw.trainable.hi is None and fw.trainable.contains(_meta(path)["parameters"])


def test_a_weight_made_in_forward_may_be_no_parameter():
    """F.conv1d(x, torch.ones(8, 4, 3)): TorchScript writes the weight as a Constant node; where the file
    keeps its parameters' state_dict names, such a weight is counted as stored at most."""
    path = MODELS / "torchzoo" / "constant_weight__legacy.onnx"
    fw = audit(path, convention="pytorch").framework
    conv = next(la for la in fw.layers if la.kind == "Conv")
    assert (conv.trainable.lo, conv.trainable.hi) == (0, 8 * 4 * 3)
    assert "made in forward" in conv.evidence[0]
    assert fw.trainable.contains(_meta(path)["parameters"])


@pytest.mark.parametrize("case", ["constant_weight", "constant_sum_weight"])
def test_a_weight_dynamo_folded_from_no_parameter_is_none(case):
    """torch.ones(8, 4, 3) stored as `ones`, torch.zeros(8, 8) + 0.5 as `add` (named after the op that made
    it last, as a product of parameters could be): folded from values none of which the graph signature
    lists as a parameter or buffer, so no parameter (was 0..96, and 64 exact and wrong)."""
    path = MODELS / "torchzoo" / f"{case}__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2
    made = next(la for la in fw.layers if "made in forward" in la.evidence[0])
    assert (made.trainable.lo, made.trainable.hi, made.status) == (0, 0, "inferred")


def test_a_snake_alpha_beside_its_folded_reciprocal_counts_once():
    """Snake: x + 1 / (alpha + eps) * sin(alpha * x)^2. dynamo stores the reciprocal folded (`mul`, from
    alpha by the graph signature) beside alpha: counted with alpha, once (was 148..156). TorchScript with
    constant folding reads alpha again through an Identity named `onnx::Reciprocal_19`, no state_dict key:
    the same tensor, not a second one stored once (was 140..156)."""
    path = MODELS / "torchzoo" / "snake__dynamo.onnx"
    fw = audit(path, convention="pytorch").framework
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2
    assert any("derived from them" in la.evidence[0] for la in fw.layers)
    path = MODELS / "torchzoo" / "snake__legacy_fold.onnx"
    report = audit(path, convention="pytorch")
    assert report.framework.trainable.hi == _meta(path)["parameters"] == report.totals.total
    assert report.framework.trainable.contains(_meta(path)["parameters"])


@pytest.mark.parametrize("kind", ["legacy_fold", "dynamo"])
def test_a_square_weight_stored_again_transposed_for_another_call_counts_once(kind):
    """One Linear(24, 24) called on a 2-D input (Gemm reads fc.weight) and on a 3-D one (MatMul reads the
    transposed copy constant folding stored): sampled values show the copy, counted once (was twice, exact)."""
    path = MODELS / "torchzoo" / f"shared_linear_2d_3d__{kind}.onnx"
    report = audit(path, convention="pytorch")
    fw, width = report.framework, 24
    assert report.totals.trainable == _meta(path)["parameters"] + width * width  # the file stores it twice
    assert (fw.trainable.lo, fw.trainable.hi) == (_meta(path)["parameters"],) * 2
    assert any("stored again, transposed" in " ".join(la.evidence) for la in fw.layers)


def test_the_odd_tensors_hold_all_that_four_doubts_name():
    """layers_in_doubt asks buffer_named, folded_products, anonymous_biases and made_in_forward only about
    odd_tensors (one pass that spares them the 48k state_dict weights of a 200k-node graph): over every
    fixture each finds there what it finds over all the counted tensors, and each finds something in one."""
    doubts = (buffer_named, folded_products, anonymous_biases, made_in_forward)
    named_by = dict.fromkeys(doubts, 0)
    for path in sorted(MODELS.rglob("*.onnx")):
        table = param_table(classify(load(path)))
        every, odd = counted(table.tensors), odd_tensors(table.tensors)
        for doubt in doubts:
            found = doubt(every)
            assert doubt(odd) == found, (path.name, doubt.__name__)
            named_by[doubt] += bool(found)
    assert all(named_by.values()), named_by
