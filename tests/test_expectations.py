"""Parsing what the frameworks printed: --expect, Keras 2/3 summaries, torch counts JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onnxaudit.errors import AuditError, UsageError
from onnxaudit.verify.expectations import parse_expect, parse_keras_summary, parse_torch_counts

KERAS = Path(__file__).resolve().parent.parent / "models" / "keras"


def test_parse_expect_subsets_and_aliases():
    assert parse_expect("total=271346,trainable=268_978").figures == {"total": 271_346, "trainable": 268_978}
    assert parse_expect("non-trainable=2368").figures == {"non_trainable": 2368}
    for bad in ("", "total", "total=x", "weights=3", "total=-1"):
        with pytest.raises(UsageError):
            parse_expect(bad)


@pytest.mark.parametrize(
    "stem",
    # Keras 3 and Keras 2 layouts; Keras 2 at its default width, where `SeparableConv1D` and
    # `GlobalAveragePooling1D` wrap onto a second line (`separable_conv1d (Separabl` + `eConv1D)`)
    ["bottleneck_nobias__tf2onnx_op17", "bottleneck_nobias__tfkeras_op13", "sep1d__tfkeras_op13"],
)
def test_keras_summaries_parse_to_what_keras_recorded(stem):
    summary = parse_keras_summary(KERAS / f"{stem}.summary.txt")
    meta = json.loads((KERAS / f"{stem}.json").read_text())
    assert summary.figures == {k: meta[k] for k in ("total", "trainable", "non_trainable")}
    parsed = [(la.name, la.kind, la.params) for la in summary.layers if not la.kind.endswith("InputLayer")]
    recorded = [(la["name"], la["class"], la["params"]) for la in meta["layers"] if la["class"] != "InputLayer"]
    assert parsed == recorded


def test_keras_summary_wrapped_names_rejoin():
    summary = parse_keras_summary(KERAS / "seed_geron_book__keras3_export.summary.txt")
    kinds = {la.name: la.kind for la in summary.layers}
    assert kinds["batch_normalization_1"] == "BatchNormalization"


def test_not_a_summary(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(AuditError, match="Total params"):
        parse_keras_summary(bad)


def test_torch_counts(tmp_path):
    path = tmp_path / "counts.json"
    path.write_text(json.dumps({"parameters": 10, "buffers": 4, "modules": {"fc": {"parameters": 10}}}))
    parsed = parse_torch_counts(path)
    assert parsed.figures == {"trainable": 10, "non_trainable": 4, "total": 14}
    assert parsed.layers[0].name == "fc" and parsed.layers[0].params == 10
    path.write_text("[1, 2]")
    with pytest.raises(AuditError, match="parameters"):
        parse_torch_counts(path)
    path.write_text("{nope")
    with pytest.raises(AuditError, match="not JSON"):
        parse_torch_counts(path)


def test_torch_counts_prefer_running_stats_over_all_buffers(tmp_path):
    """Hugging Face models hold position ids and causal masks as buffers: no BN statistics."""
    path = tmp_path / "counts.json"
    params, stats, other_buffers = 10, 4, 32
    path.write_text(json.dumps({"parameters": params, "buffers": stats + other_buffers, "running_stats": stats}))
    parsed = parse_torch_counts(path)
    assert parsed.figures == {"trainable": params, "non_trainable": stats, "total": params + stats}


@pytest.mark.parametrize("path", sorted(KERAS.glob("*.summary*.txt")), ids=lambda p: p.name)
def test_every_summary_row_is_read(path):
    """Every Keras fixture's summary, in every layout saved: the rows read add up to the Total params line
    (a row lost to wrapping would leave its parameters out) and name every layer Keras recorded."""
    summary = parse_keras_summary(path)
    assert sum(la.params for la in summary.layers) == summary.figures["total"]
    meta = json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
    parsed = [la.name for la in summary.layers]
    for recorded in (la["name"] for la in meta["layers"] if la["params"]):
        # a narrow Keras 3 table cuts a long name with an ellipsis
        assert any(recorded == name or name.endswith("…") and recorded.startswith(name[:-1]) for name in parsed)


# Lines of the summary tf_keras printed for keras.applications.MobileNetV2 at its default width (from the
# Keras corpus, scripts/export_keras_corpus.py): the second row's cut falls before ` (BatchNormalization)`
MOBILENET_V2_ROWS = """\
Model: "mobilenetv2_1.00_96"
__________________________________________________________________________________________________
 Layer (type)                Output Shape                 Param #   Connected to                  
==================================================================================================
 expanded_conv_depthwise (D  (None, 48, 48, 32)           288       ['Conv1_relu[0][0]']          
 epthwiseConv2D)                                                                                  
                                                                                                  
 expanded_conv_depthwise_BN  (None, 48, 48, 32)           128       ['expanded_conv_depthwise[0][0
  (BatchNormalization)                                              ]']                           
                                                                                                  
Total params: 416 (1.62 KB)
"""


def test_keras2_row_cut_before_its_type(tmp_path):
    path = tmp_path / "summary.txt"
    path.write_text(MOBILENET_V2_ROWS, encoding="utf-8")
    layers = [(la.name, la.kind, la.params) for la in parse_keras_summary(path).layers]
    assert layers == [
        ("expanded_conv_depthwise", "DepthwiseConv2D", 3 * 3 * 32),
        ("expanded_conv_depthwise_BN", "BatchNormalization", 4 * 32),
    ]
