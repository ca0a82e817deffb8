"""A BatchNormalization that is not over the channel axis of the conv before it is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import save, seed_cnn

from onnxaudit.count.normaxis import channel_axis_findings
from onnxaudit.count.roles import classify
from onnxaudit.count.table import param_table
from onnxaudit.model.load import load

MODELS = Path(__file__).resolve().parent.parent / "models"
KERAS = MODELS / "keras"
TORCHZOO = MODELS / "torchzoo"


def _findings(path: Path):
    view = load(path)
    return channel_axis_findings(view, param_table(classify(view)))


def test_hand_built_axis_typo_is_found(tmp_path):
    found = _findings(save(seed_cnn(axis_typo=True), tmp_path / "typo.onnx"))
    assert [(f.node, f.features, f.producer, f.channels, f.transposed) for f in found] == [
        ("bn0", 64, "conv0", 32, True)
    ]
    assert "not the channel axis" in found[0].message
    assert _findings(save(seed_cnn(), tmp_path / "ok.onnx")) == []


@pytest.mark.parametrize("kind", ["tf2onnx_op13", "tf2onnx_op17", "keras3_export", "tfkeras_op13"])
def test_keras_axis_typo_exports(kind):
    assert [(f.features, f.channels) for f in _findings(KERAS / f"seed_cnn_axis_typo__{kind}.onnx")] == [(64, 32)]
    assert _findings(KERAS / f"seed_cnn__{kind}.onnx") == []


def test_summary_notes_the_axis_typo():
    from onnxaudit import audit

    notes = audit(KERAS / "seed_cnn_axis_typo__tf2onnx_op17.onnx").notes
    assert any("not the channel axis" in note for note in notes)
    assert not any("channel axis" in note for note in audit(KERAS / "seed_cnn__tf2onnx_op17.onnx").notes)


@pytest.mark.parametrize("kind", ["legacy", "dynamo", "dynamo_noopt"])
def test_linear_read_through_a_transpose_is_not_an_axis_typo(kind):
    """LeViT's LinearNorm: Linear(16, 10, bias=False), BatchNorm1d(10) on the flattened sequence. Without
    the optimizer dynamo stores the (10, 16) weight and transposes it before the MatMul: the MatMul writes
    10 features, as the BN normalizes, not the 16 of the stored weight's last dim."""
    assert _findings(TORCHZOO / f"linear_norm__{kind}.onnx") == []
