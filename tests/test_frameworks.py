"""Framework view: Keras and PyTorch counts rebuilt through exporter rewrites, checked against what the
frameworks recorded beside each fixture (models/*/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onnxaudit import audit

MODELS = Path(__file__).resolve().parent.parent / "models"
KERAS = sorted((MODELS / "keras").glob("*.onnx"))
TORCH = sorted((MODELS / "torch").glob("*.onnx"))


def _meta(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def _contains(figure, value: int) -> bool:
    return figure.lo <= value <= figure.hi


@pytest.mark.parametrize("path", KERAS, ids=lambda p: p.stem)
def test_keras_totals_rebuilt_or_bracketed(path):
    meta = _meta(path)
    fw = audit(path).framework
    assert _contains(fw.total, meta["total"])
    if meta["model"] == "frozen":  # trainable=False is invisible in ONNX: only the total can agree
        return
    assert _contains(fw.trainable, meta["trainable"])
    assert _contains(fw.non_trainable, meta["non_trainable"])


# Keras 3 exports through tf2onnx keep layer scopes in node names: figures must be exact or inferred, never
# ambiguous. (tf_keras folds BN so that center/scale cannot be seen; the torch backend keeps no Keras names.)
NAMED = [
    p
    for p in KERAS
    if not p.stem.endswith(("tfkeras_op13", "keras3_torch_export")) and not p.stem.startswith(("frozen", "bn_no"))
]
TORCH_BACKEND = [p for p in KERAS if p.stem.endswith("keras3_torch_export")]


def _rebuilt_exactly_as_keras_said(path: Path, meta: dict):
    fw = audit(path).framework
    assert fw.status != "ambiguous"
    assert (fw.total.lo, fw.trainable.lo, fw.non_trainable.lo) == (
        meta["total"],
        meta["trainable"],
        meta["non_trainable"],
    )
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
            assert (rebuilt.trainable.lo, rebuilt.non_trainable.lo) == (layer["trainable"], layer["non_trainable"])
            assert rebuilt.trainable.exact and rebuilt.non_trainable.exact


def test_seed_cnn_keras3_export_summary_figures(capsys):
    from onnxaudit.cli import main

    for kind in ("tf2onnx_op13", "tf2onnx_op17", "keras3_export"):
        assert main(["summary", str(MODELS / "keras" / f"seed_cnn__{kind}.onnx")]) == 0
        out = capsys.readouterr().out
        assert "Rebuilt totals: Total params: 37,633 · Trainable params: 37,569 · Non-trainable params: 64" in out
        assert "bn0 (BatchNormalization)      128         64             64  inferred" in out


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
    assert _contains(fw.trainable, meta["parameters"])
    assert _contains(fw.non_trainable, meta["running_stats"])
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
