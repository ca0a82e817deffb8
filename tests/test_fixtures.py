"""Real exporter output in models/: our counts against what torch and Keras recorded beside each file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from builders import MODELS, fixture_meta, layer_row

from onnxaudit import audit


def _fixtures(folder: str) -> list[Path]:
    return sorted((MODELS / folder).glob("*.onnx"))


_meta = fixture_meta


def _kind(path: Path) -> tuple[str, str]:
    model, kind = path.stem.split("__")
    return model, kind


# Exports where every torch tensor survives as itself: BN kept (no folding), no tied copy stored twice.
def _torch_exact(path: Path) -> bool:
    model, kind = _kind(path)
    if kind in ("legacy_nofold", "legacy_training", "dynamo_noopt"):
        return True
    return model in ("lstm", "gru")  # nothing to fold


TORCH = _fixtures("torch")
TORCH_EXACT = [p for p in TORCH if _torch_exact(p)]


def test_fixture_folders_are_populated():
    assert len(TORCH) >= 20 and len(_fixtures("keras")) >= 30 and len(_fixtures("jax")) >= 3


@pytest.mark.parametrize("path", TORCH_EXACT, ids=lambda p: p.stem)
def test_torch_parameters_and_buffers_exact(path):
    meta = _meta(path)
    pytorch = audit(path, convention="pytorch").totals
    assert pytorch.trainable == meta["parameters"]
    assert pytorch.non_trainable == meta["running_stats"]
    assert pytorch.unclassified == 0
    keras = audit(path).totals
    assert (keras.total, keras.trainable, keras.non_trainable) == (
        meta["keras_equivalent"]["total"],
        meta["keras_equivalent"]["trainable"],
        meta["keras_equivalent"]["non_trainable"],
    )


def _module_expectations(meta: dict) -> dict[tuple[str, ...], tuple[int, int]]:
    """From torch's own state_dict: (parameter elements, running-stat elements) per module. Modules that
    share a tied tensor form one group: the exporter may file the shared tensor under either name."""
    groups: dict[str, tuple[str, ...]] = {}
    for entry in meta["state_dict"]:
        if entry.get("tied_to"):
            a, b = entry["name"].rpartition(".")[0], entry["tied_to"].rpartition(".")[0]
            groups[a] = groups[b] = tuple(sorted({a, b}))
    out: dict[tuple[str, ...], list[int]] = {}
    for entry in meta["state_dict"]:
        if entry.get("tied_to"):
            continue
        module, _, leaf = entry["name"].rpartition(".")
        counts = out.setdefault(groups.get(module, (module,)), [0, 0])
        numel = math.prod(entry["shape"])
        if entry["kind"] == "parameter":
            counts[0] += numel
        elif leaf in ("running_mean", "running_var"):
            counts[1] += numel
    return {k: (v[0], v[1]) for k, v in out.items()}


@pytest.mark.parametrize(
    "path", [p for p in TORCH_EXACT if _kind(p)[1] in ("legacy_nofold", "dynamo_noopt")], ids=lambda p: p.stem
)
def test_torch_rows_match_modules(path):
    report = audit(path, convention="pytorch")
    for modules, (params, stats) in _module_expectations(_meta(path)).items():
        rows = [r for r in report.rows if r.name in modules]
        assert rows, f"no row for {modules} in {[r.name for r in report.rows]}"
        assert (sum(r.trainable for r in rows), sum(r.non_trainable for r in rows)) == (params, stats), modules


def test_torch_depth_rolls_up_to_top_modules():
    path = MODELS / "torch" / "resnet_tiny__legacy_nofold.onnx"
    expected = _module_expectations(_meta(path))
    report = audit(path, convention="pytorch", depth=1)
    layer1 = layer_row(report, "layer1")
    assert layer1.trainable == sum(p for (m,), (p, _) in expected.items() if m.startswith("layer1."))
    assert layer1.non_trainable == sum(s for (m,), (_, s) in expected.items() if m.startswith("layer1."))


@pytest.mark.parametrize("kind", ["legacy_fold", "dynamo"])
def test_tied_weight_stored_twice_is_counted_as_stored(kind):
    """These exports store the tied embedding twice (once transposed); the file total says so."""
    path = MODELS / "torch" / f"tied_lm__{kind}.onnx"
    meta = _meta(path)
    embed = next(e for e in meta["state_dict"] if e["name"] == "embed.weight")
    assert audit(path).totals.total == meta["parameters"] + math.prod(embed["shape"])


def _keras_plain_layers(meta: dict) -> list[dict]:
    """Conv/Dense layers not followed by a BatchNormalization (which an exporter might fold into them)."""
    layers = meta["layers"]
    plain = []
    for i, layer in enumerate(layers):
        following = layers[i + 1]["class"] if i + 1 < len(layers) else ""
        if layer["class"] in ("Conv2D", "Dense", "DepthwiseConv2D") and following != "BatchNormalization":
            plain.append(layer)
    return plain


# The torch backend keeps no Keras layer names (initializers are onnx::<op>_N), so only totals compare there;
# TFLite's converter moves a BN and the bias before it into the next Dense, so its rows need not be Keras's.
KERAS_WITH_PLAIN = [
    p
    for p in _fixtures("keras")
    if _keras_plain_layers(_meta(p)) and not p.stem.endswith("keras3_torch_export") and "__tflite" not in p.stem
]


@pytest.mark.parametrize("path", KERAS_WITH_PLAIN, ids=lambda p: p.stem)
def test_keras_layer_names_and_counts_survive(path):
    """Each plain layer is a row of its own, except tf_keras layers named with a slash (`block/se/conv`): TF
    scopes them under their first part, one row (`block`) that verify compares with their sum."""
    report = audit(path)
    for layer in _keras_plain_layers(_meta(path)):
        if "/" not in layer["name"]:
            assert layer_row(report, layer["name"]).params == layer["params"], layer["name"]


@pytest.mark.parametrize("path", _fixtures("keras") + TORCH, ids=lambda p: p.stem)
def test_every_fixture_total_is_the_sum_of_its_rows(path):
    report = audit(path)
    assert sum(r.params for r in report.rows) == report.totals.total
    counted = [t for t in report.tensors if t.bucket is not None]
    assert sum(t.count for t in counted) == report.totals.total


ORT_FUSED = _fixtures("ortfused")


@pytest.mark.parametrize("path", ORT_FUSED, ids=lambda p: p.stem)
def test_ort_fused_transformers_total_what_torch_counted(path):
    """BERT/GPT-2 fused by onnxruntime.transformers (Attention, EmbedLayerNormalization,
    SkipLayerNormalization, BiasGelu, FastGelu): the fused file holds exactly torch's parameters,
    every one classified (GPT-2's bool causal-mask buffer is a mask, not a parameter)."""
    meta = _meta(path)
    assert any(op.startswith("com.microsoft:") for op in meta["ops"])
    for convention in ("keras", "pytorch"):
        totals = audit(path, convention=convention).totals
        assert (totals.total, totals.trainable, totals.unclassified) == (meta["parameters"], meta["parameters"], 0)


def test_ort_fused_bert_qkv_weight_is_three_linears():
    path = MODELS / "ortfused" / "bert_tiny__ort_fused.onnx"
    hidden = _meta(path)["config"]["hidden"]
    report = audit(path)
    qkv = [t for t in report.tensors if any(c.startswith("Attention") for c in t.consumers)]
    assert sorted(t.count for t in qkv) == sorted([3 * hidden, hidden * 3 * hidden] * 2)


@pytest.mark.parametrize("path", _fixtures("jax"), ids=lambda p: p.stem)
def test_jax2onnx_counts_what_flax_counted(path):
    """scripts/export_jax.py: Flax NNX models through jax2onnx. A missing LayerNorm/RMSNorm scale or
    bias and a zero initial state are written as ConstantOfShape, and jax.lax.scan's input reaches the
    Loop body as a body input: none of them is a weight."""
    meta = _meta(path)
    report = audit(path)
    assert (report.totals.trainable, report.totals.non_trainable) == (meta["trainable"], meta["non_trainable"])
    fw = report.framework
    if fw is not None and fw.status != "none":
        assert fw.trainable.contains(meta["trainable"]) and fw.non_trainable.contains(meta["non_trainable"])
