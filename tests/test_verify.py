"""verify: consistent figures exit 0, mismatches exit 1 with the difference explained in arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import MODELS

from onnxaudit.cli.main import main

GERON_CODE = MODELS / "keras" / "seed_geron_code__tf2onnx_op17"


def _keras_expect(keras: dict, trainable: int = 0, non_trainable: int = 0) -> str:
    """An --expect of Keras's recorded figures moved by (trainable, non_trainable); the total moves with them."""
    t, n = keras["trainable"] + trainable, keras["non_trainable"] + non_trainable
    return f"total={keras['total'] + trainable + non_trainable},trainable={t},non_trainable={n}"


def test_geron_code_against_book_totals_explains_3536(capsys):
    code = main(
        ["verify", f"{GERON_CODE}.onnx", "--expect", "total=271346,trainable=268978,non_trainable=2368", "--wide"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "BatchNormalization over 784 features" in out
    assert "a bias on dense (+300)" in out and "a bias on dense_1 (+100)" in out
    assert f"arithmetic (total): 300 + 100 + {4 * 784:,} = {300 + 100 + 4 * 784:,}" in out


def test_geron_code_against_its_own_keras_summary(capsys):
    assert main(["verify", f"{GERON_CODE}.onnx", "--keras-summary", f"{GERON_CODE}.summary.txt"]) == 0
    assert "consistent" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["tf2onnx_op13", "tf2onnx_op17", "keras3_export", "keras3_torch_export"])
@pytest.mark.parametrize(
    "case",
    ["seed_cnn", "bottleneck_bias", "bottleneck_nobias", "seed_mlp", "seed_geron_book"]
    + ["lstm_text", "gru_seq", "embed_ln"],
)
def test_keras_fixtures_verify_against_their_summaries(case, kind, capsys):
    stem = MODELS / "keras" / f"{case}__{kind}"
    if not stem.with_suffix(".onnx").exists():
        pytest.skip("no such export (size, or the exporter failed: models/keras/FAILURES.md)")
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary.txt", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["consistent"] and all(la["verdict"] == "match" for la in result["layers"])


# #18: files whose figures are exact or rest on discrete alternatives (a fold adds a bias of C, a gamma of C)
DISCRETE = [
    "slash_blocks__tfkeras_op13",
    "convnext_block__keras3_export",
    "convnext_block__tf2onnx_op17",
    "convnext_block__tfkeras_op13",
    # TFLite folds: a BN the converter may have folded without naming it adds exactly 2 x C statistics
    "seed_cnn__tflite_op17",
    "dense_bn__tflite_op17",
    "dense_bn__tflite_int8_op17",
    "conv_bn_merged__tflite_op17",
    "conv_bn_merged__tflite_int8_op17",
]


@pytest.mark.parametrize("stem", DISCRETE)
def test_true_figures_verify_and_one_trainable_more_does_not(stem, capsys):
    path = MODELS / "keras" / stem
    keras = json.loads(path.with_suffix(".json").read_text())
    t, tr, nt = keras["total"], keras["trainable"], keras["non_trainable"]
    onnx = f"{path}.onnx"
    assert main(["verify", onnx, "--expect", f"total={t},trainable={tr},non_trainable={nt}"]) == 0
    assert main(["verify", onnx, "--keras-summary", f"{path}.summary.txt"]) == 0
    assert main(["verify", onnx, "--expect", f"total={t + 1},trainable={tr + 1},non_trainable={nt}"]) == 1


def test_bias_free_convs_are_the_first_explanation_of_a_folded_scope(capsys):
    """Several folded convs in one scope: where a conv's name cannot show its bias, the fewest defaults that
    explain Keras's figures are said with the convs' biases first, not a BN without center."""
    path = MODELS / "keras" / "slash_blocks__tfkeras_op13"
    keras = json.loads(path.with_suffix(".json").read_text())
    # the names show every conv's bias here: one BN's beta fewer is the one default that explains 8 less
    expect = _keras_expect(keras, trainable=-8)
    assert main(["verify", f"{path}.onnx", "--expect", expect, "--wide"]) == 0
    assert "consistent if stem/bn has center=False" in capsys.readouterr().out


def test_a_bn_missing_from_a_tflite_file_is_the_fold_a_row_may_hold(capsys):
    """TFLite folds bn_noscale (beta, no gamma, over 5) into fc_nobias without naming it: the summary's
    bn_noscale row is the fold fc_nobias may hold, and the SeparableConv2D's depthwise bias the
    converter's zeros."""
    path = MODELS / "keras" / "conv_zoo__tflite_op17"
    assert main(["verify", f"{path}.onnx", "--keras-summary", f"{path}.summary.txt", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "bn_noscale: 15 within 0 (0..36) - consistent if fc_nobias holds a BatchNormalization of 5 outputs" in out
    assert "sep: 59 within 62 (51..62) - consistent if sep's bias functional_1/sep_1/separable_conv2d/depthwise" in out


def test_one_bn_a_tflite_file_may_hide_is_folded_once(capsys):
    """The BN over fc_nobias's 5 outputs may be folded back into fc_nobias or forward into head (its 5
    inputs), never both; and one BN is one variant (no gamma and beta, one of them, or both), never two.
    Keras's true figures (one fold: bn_noscale's beta) are consistent; the file's stated 8 statistics
    plus 2 x C for every BN it may hide, each once (C = 3, 8 in sep; 16 in dw; 5 between fc_nobias and
    head; 4 into fc_nobias; 2 out of head) is the most, and 2 x 5 more is the 5-wide BN folded twice."""
    path = MODELS / "keras" / "conv_zoo__tflite_op17"
    keras = json.loads(path.with_suffix(".json").read_text())
    onnx = f"{path}.onnx"
    truth = _keras_expect(keras)
    assert main(["verify", onnx, "--expect", truth]) == 0
    each_once = 8 + 2 * (3 + 8 + 16 + 5 + 4 + 2)
    assert main(["verify", onnx, "--expect", f"trainable=846,non_trainable={each_once}"]) == 0
    assert main(["verify", onnx, "--expect", f"trainable=846,non_trainable={each_once + 2 * 5}"]) == 1
    # Keras's figure + 1 (845 trainable) stays consistent: sep with use_bias=False (its 8 biases the
    # converter's zeros) and fc_nobias with its bias, folded forward into head with a center-only BN,
    # is a Keras model whose export has these very dims
    plus1 = _keras_expect(keras, trainable=1)
    assert main(["verify", onnx, "--expect", plus1]) == 0


def test_a_normalization_mean_left_a_graph_input_is_read_as_the_layers(capsys):
    """Keras 3's export leaves a Normalization's mean a graph input: the layer is still told (0 trainable), and
    verify says which default Keras's 0 implies."""
    path = MODELS / "keras" / "convnext_block__keras3_export"
    keras = json.loads(path.with_suffix(".json").read_text())
    expect = f"total={keras['total']},trainable={keras['trainable']},non_trainable=0"
    assert main(["verify", f"{path}.onnx", "--expect", expect, "--wide"]) == 0
    assert "consistent if prestem was built with mean= and variance=" in capsys.readouterr().out


def test_frozen_layers_are_what_the_summary_implies(capsys):
    """No ONNX file shows trainable=False: the true summary of a frozen model is consistent, and verify
    says on what condition; a summary no freezing explains is still a mismatch."""
    stem = MODELS / "keras" / "frozen__tf2onnx_op17"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary.txt", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "consistent if conv0 is frozen (trainable=False) and bn0 is frozen (trainable=False)" in out
    keras = json.loads(stem.with_suffix(".json").read_text())
    wrong = _keras_expect(keras, trainable=1, non_trainable=-1)
    assert main(["verify", f"{stem}.onnx", "--expect", wrong]) == 1


def _torch_counts(tmp_path: Path, meta: dict) -> Path:
    """The counts JSON the README's PyTorch snippet writes, from what torch recorded beside a fixture."""
    modules = {
        m["name"]: {"parameters": m["parameters"], "buffers": m["buffers"] - m["class"].startswith("BatchNorm")}
        for m in meta["modules"]
    }
    path = tmp_path / "counts.json"
    counts = {"parameters": meta["parameters"], "buffers": meta["running_stats"], "modules": modules}
    path.write_text(json.dumps(counts))
    return path


@pytest.mark.parametrize("kind", ["legacy_nofold", "legacy_fold", "dynamo", "dynamo_noopt", "legacy_training"])
def test_torch_counts_consistent_on_every_export_kind(kind, tmp_path, capsys):
    stem = MODELS / "torch" / f"resnet_tiny__{kind}"
    meta = json.loads(stem.with_suffix(".json").read_text())
    counts = _torch_counts(tmp_path, meta)
    code = main(["verify", f"{stem}.onnx", "--torch-counts", str(counts), "--format", "json"])
    result = json.loads(capsys.readouterr().out)
    figures = {f["figure"]: f["verdict"] for f in result["figures"]}
    assert figures["trainable"] in ("match", "within range")
    if kind in ("legacy_nofold", "dynamo", "dynamo_noopt", "legacy_training"):
        assert code == 0 and result["consistent"]


def test_verify_usage_and_bad_input(tmp_path, capsys):
    assert main(["verify", f"{GERON_CODE}.onnx"]) == 2
    assert main(["verify", f"{GERON_CODE}.onnx", "--expect", "total=abc"]) == 2
    missing = tmp_path / "none.txt"
    assert main(["verify", f"{GERON_CODE}.onnx", "--keras-summary", str(missing)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3


def test_folded_batchnorms_pair_with_the_missing_modules(tmp_path, capsys):
    stem = MODELS / "torch" / "resnet_tiny__legacy_fold"
    counts = _torch_counts(tmp_path, json.loads(stem.with_suffix(".json").read_text()))
    assert main(["verify", f"{stem}.onnx", "--torch-counts", str(counts), "--format", "json"]) == 0
    layers = {la["name"]: la for la in json.loads(capsys.readouterr().out)["layers"]}
    assert layers["layer1.0.bn1"]["verdict"] == "within range"
    assert layers["layer1.0.bn1"]["explain"].startswith("folded into layer1.0.conv1")


def _keras_layer(stem: Path, name: str) -> dict:
    meta = json.loads(stem.with_suffix(".json").read_text())
    return next(la for la in meta["layers"] if la["name"] == name)


def test_frozen_bn_is_what_the_summary_implies(capsys):
    """BatchNormalization(trainable=False): Keras counts gamma and beta non-trainable; the file cannot show
    it, so the true summary is consistent on that condition."""
    stem = MODELS / "keras" / "norm_frozen__tf2onnx_op17"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary.txt", "--wide"]) == 0
    assert "consistent if bn_frozen is frozen (trainable=False)" in capsys.readouterr().out


def test_bn_without_beta_after_conv_is_consistent_on_that_condition(capsys):
    """BatchNormalization(center=False) after a conv: tf2onnx folds the shift, so beta is assumed (the Keras
    default) and the figure's bounds cover its absence: the true summary exits 0 and says which default it
    implies; one parameter more is still a mismatch."""
    stem = MODELS / "keras" / "conv_zoo__tf2onnx_op17"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary.txt", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["assuming"] == "bn_nocenter has center=False"
    c = _keras_layer(stem, "bn_nocenter")["output_shape"][-1]
    bn = next(la for la in result["layers"] if la["name"] == "bn_nocenter")
    assert bn["expected"] == 3 * c and bn["found"] == {"lo": 3 * c, "hi": 4 * c, "likely": 4 * c}
    keras = json.loads(stem.with_suffix(".json").read_text())
    assert (
        main(["verify", f"{stem}.onnx", "--expect", f"total={keras['total']},trainable={keras['trainable']}", "--wide"])
        == 0
    )
    assert "consistent if bn_nocenter has center=False" in capsys.readouterr().out
    wrong = f"total={keras['total'] + 1},trainable={keras['trainable'] + 1}"
    assert main(["verify", f"{stem}.onnx", "--expect", wrong]) == 1


@pytest.mark.parametrize("kind", ["tf2onnx_op17", "keras3_export", "tfkeras_op13"])
@pytest.mark.parametrize("case", ["rnn_zoo", "masked_lstm", "attn_norm"])
def test_zoo_fixtures_verify_against_their_summaries(case, kind, capsys):
    stem = MODELS / "keras" / f"{case}__{kind}"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary.txt", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["consistent"] is True


@pytest.mark.parametrize("name", ["bert_tiny", "gpt2_tiny", "llama_tiny"])
def test_torch_counts_of_fused_transformers_are_consistent(name, tmp_path, capsys):
    """The README snippet counts BN statistics as buffers: position ids and causal masks are not."""
    stem = MODELS / "ortfused" / f"{name}__ort_fused"
    meta = json.loads(stem.with_suffix(".json").read_text())
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"parameters": meta["parameters"], "buffers": 0}))
    assert main(["verify", f"{stem}.onnx", "--torch-counts", str(counts), "--convention", "pytorch"]) == 0
    assert "consistent" in capsys.readouterr().out


def test_group_of_constants_that_may_be_no_parameters_is_not_a_mismatch(tmp_path, capsys):
    """torchvision's detection models normalize by a mean and std that are constants, not parameters
    (sweep12: every detection file was a MISMATCH for its `transform` and `anchor_generator` groups):
    a group the counts do not list, whose range starts at 0, agrees with them."""
    from builders import init, model, node, save, value

    m = model(
        [
            node("Sub", ["x", "onnx::Sub_7"], ["c"], name="/transform/Sub"),
            node("Div", ["c", "onnx::Div_8"], ["n"], name="/transform/Div"),
            node("Conv", ["n", "backbone.conv.weight", "backbone.conv.bias"], ["y"], name="/backbone/conv/Conv"),
        ],
        [value("x", [1, 3, 8, 8])],
        [value("y", None)],
        [init("onnx::Sub_7", [1, 3, 1, 1]), init("onnx::Div_8", [1, 3, 1, 1])]
        + [init("backbone.conv.weight", [4, 3, 3, 3]), init("backbone.conv.bias", [4])],
    )
    m.producer_name = "pytorch"
    conv = 4 * 3 * 3 * 3 + 4
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"parameters": conv, "modules": {"backbone.conv": {"parameters": conv}}}))
    code = main(["verify", str(save(m, tmp_path / "m.onnx")), "--torch-counts", str(counts)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(outside the listed modules): 0 within 0..6 - rows no listed module holds (transform)" in out


@pytest.mark.parametrize("kind", ["tf2onnx_op17", "keras3_export", "tfkeras_op13"])
@pytest.mark.parametrize("layout", ["summary", "summary_narrow"])
def test_bn_without_gamma_merged_into_a_conv_is_consistent_if_scale_false(kind, layout, capsys):
    """BatchNormalization(scale=False) after a bias-free conv: tf2onnx merges it and the merged bias shows
    beta but not gamma (tf_keras's fold shows neither): gamma is assumed, and Keras's own summary (Keras 3
    at 200 and 80 columns, Keras 2 at its default width and at 120) is consistent on the condition that
    the BN has scale=False; Keras's figures with one trainable parameter more are not."""
    stem = MODELS / "keras" / f"bn_merged_tf__{kind}"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.{layout}.txt", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    if kind == "tfkeras_op13":  # the fold shows neither gamma nor beta: either one may be the missing one
        assert "bn has" in result["assuming"] and "(or another combination" in result["assuming"]
    else:
        assert result["assuming"] == "bn has scale=False"
    keras = json.loads(stem.with_suffix(".json").read_text())
    wrong = _keras_expect(keras, trainable=1)
    assert main(["verify", f"{stem}.onnx", "--expect", wrong]) == 1


@pytest.mark.parametrize("layout", ["summary", "summary_narrow"])
def test_tfkeras_attention_without_biases_verifies_against_its_summaries(layout, capsys):
    """MultiHeadAttention(use_bias=False) through tf_keras + tf2onnx: its einsums are anonymous Gemm and
    MatMul nodes with no bias Add after them; the mha row still matches Keras's (both Keras 2 layouts),
    and one trainable parameter more is a mismatch."""
    stem = MODELS / "keras" / "mha_vdim_nobias__tfkeras_op13"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.{layout}.txt", "--format", "json"]) == 0
    mha = next(la for la in json.loads(capsys.readouterr().out)["layers"] if la["name"] == "mha")
    assert mha["verdict"] == "match"
    keras = json.loads(stem.with_suffix(".json").read_text())
    assert main(["verify", f"{stem}.onnx", "--expect", _keras_expect(keras, trainable=1)]) == 1


def test_explanation_starts_from_the_layers_that_differ(tmp_path, capsys):
    """A summary whose LSTM row (and totals) say 32 more than the file: the explanation names the LSTM and
    its +32 first, and no global guess (a bias somewhere) is made up for a gap the layers account for."""
    stem = MODELS / "keras" / "lstm_text__tf2onnx_op17"
    text = stem.with_suffix(".summary.txt").read_text(encoding="utf-8")
    meta = json.loads(stem.with_suffix(".json").read_text())
    lstm = next(la["params"] for la in meta["layers"] if la["name"] == "lstm")
    total, trainable = meta["total"], meta["trainable"]
    for before, after in ((lstm, lstm + 32), (total, total + 32), (trainable, trainable + 32)):
        text = text.replace(f" {before:,} ", f" {after:,} ", 1)
    wrong = tmp_path / "wrong.summary.txt"
    wrong.write_text(text, encoding="utf-8")
    assert main(["verify", f"{stem}.onnx", "--keras-summary", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "the layers that differ: lstm +32" in out and "explained by" not in out


@pytest.mark.parametrize("layout", ["summary", "summary_narrow"])
def test_keras2_wrapped_rows_verify(layout, capsys):
    """Keras 2's default width wraps `SeparableConv1D` onto a second line: the row is read, and the true
    summary is consistent (no edit made up for a gap that is not there)."""
    stem = MODELS / "keras" / "sep1d__tfkeras_op13"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.{layout}.txt", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    sep = next(la for la in result["layers"] if la["name"] == "separable_conv1d")
    assert (sep["kind"], sep["verdict"]) == ("SeparableConv1D", "match") and not result["explanation"]


def test_names_cut_short_by_a_narrow_keras3_table(capsys):
    """Keras 3 at 80 columns cuts names past the first column with an ellipsis: a cut name that starts one
    layer of the file is that layer; one that starts several is not compared (no mismatch made up)."""
    stem = MODELS / "keras" / "long_names__tf2onnx_op17"
    assert main(["verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary_narrow.txt", "--format", "json"]) == 0
    layers = {la["name"]: la for la in json.loads(capsys.readouterr().out)["layers"]}
    assert layers["projection_head_dense_layer_number_one"]["verdict"] == "match"
    cut = layers["block_1_expanded_convolution_l…"]
    assert cut["verdict"] == "within range" and "not compared" in cut["explain"]


@pytest.mark.parametrize(
    ("stem", "off"),
    [
        ("torchzoo/snake__legacy", -3),  # alpha (1, 8, 1) read by a bare Mul: a parameter or a buffer, 0 or 8
        ("torchzoo/constant_weight__legacy", 10),  # a Constant node in a conv's weight slot: 0 or 96
        ("torch/resnet_tiny__legacy_fold", 1),  # BNs folded into convs: each conv's bias 0 or C, each BN's 0 or 2C
    ],
)
def test_a_range_of_choices_takes_the_truth_and_rejects_a_figure_no_choice_reaches(stem, off, tmp_path, capsys):
    """A range whose unknowns are each a choice (this tensor is a parameter or not, this conv had a bias or
    not) is searched as alternatives: torch's own count is consistent, and a count inside the range that no
    set of choices gives is a mismatch (was accepted as within range)."""
    meta = json.loads((MODELS / f"{stem}.json").read_text())
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"parameters": meta["parameters"], "buffers": meta["running_stats"]}))
    assert main(["verify", str(MODELS / f"{stem}.onnx"), "--torch-counts", str(counts)]) == 0
    capsys.readouterr()
    counts.write_text(json.dumps({"parameters": meta["parameters"] + off, "buffers": meta["running_stats"]}))
    assert main(["verify", str(MODELS / f"{stem}.onnx"), "--torch-counts", str(counts), "--format", "json"]) == 1
    found = {f["figure"]: f["found"] for f in json.loads(capsys.readouterr().out)["figures"]}
    lo, hi = found["trainable"]["lo"], found["trainable"]["hi"]
    assert lo <= meta["parameters"] + off <= hi  # inside the range: only the choices tell it apart
