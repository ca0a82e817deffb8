"""verify --torch-counts with torch's per-module counts (verify/modules.py), on real exports in
models/torchmodules/ made by scripts/export_torch_corpus.py with torch's counts beside each file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import MODELS

from onnxaudit.cli.main import main

FOLDER = MODELS / "torchmodules"
FIXTURES = sorted(FOLDER.glob("*.onnx"))


def _counts(stem: str) -> dict:
    return json.loads((FOLDER / f"{stem}.counts.json").read_text())


def _verify(stem: str, counts: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(counts))
    code = main(["verify", str(FOLDER / f"{stem}.onnx"), "--torch-counts", str(path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def _layers(result: dict) -> dict[str, dict]:
    return {la["name"]: la for la in result["layers"]}


def test_fixtures_are_there():
    assert len(FIXTURES) >= 7


@pytest.mark.parametrize("stem", [p.stem for p in FIXTURES])
def test_torch_modules_are_consistent(stem, tmp_path, capsys):
    code, result = _verify(stem, _counts(stem), tmp_path, capsys)
    assert code == 0, result


def _wrong(modules: dict, name: str, other: str | None) -> dict:
    """`name` 10% off (at least 2), or, with `other`, that much moved from `name` to `other`."""
    step = max(2, modules[name]["parameters"] // 10)
    out = {**modules, name: {**modules[name], "parameters": modules[name]["parameters"] + (-step if other else step)}}
    if other:
        out[other] = {**modules[other], "parameters": modules[other]["parameters"] + step}
    return out


@pytest.mark.parametrize("stem", [p.stem for p in FIXTURES])
def test_a_wrong_module_is_a_mismatch(stem, tmp_path, capsys):
    """Each module 10% off, torch's totals kept: exit 1 (a merged row is compared with an exact sum); but
    for a module the file holds nothing of, whose row has no upper bound (hf_t5 dynamo's model.shared)."""
    counts = _counts(stem)
    _, truth = _verify(stem, counts, tmp_path, capsys)
    unbounded = {la["name"] for la in truth["layers"] if la["found"] and la["found"]["hi"] is None}
    for name in counts["modules"].keys() - unbounded:
        code, result = _verify(stem, {**counts, "modules": _wrong(counts["modules"], name, None)}, tmp_path, capsys)
        assert code == 1, (name, result)


def test_parameters_moved_between_modules_is_a_mismatch(tmp_path, capsys):
    counts = _counts("zoo_mha_bias_kv__dynamo")
    code, _ = _verify(
        "zoo_mha_bias_kv__dynamo", {**counts, "modules": _wrong(counts["modules"], "mha", "fc")}, tmp_path, capsys
    )
    assert code == 1
    counts = _counts("zoo_scalar_params__dynamo")  # moved from a module to the root's own parameters
    modules = {"fc": {**counts["modules"]["fc"], "parameters": counts["modules"]["fc"]["parameters"] - 2}}
    assert _verify("zoo_scalar_params__dynamo", {**counts, "modules": modules}, tmp_path, capsys)[0] == 1


@pytest.mark.parametrize("kind", ["legacy_fold", "dynamo"])
def test_a_child_the_exporter_merged_is_compared_with_the_sum(kind, tmp_path, capsys):
    """nn.MultiheadAttention's out_proj is written inside `mha`'s row: compared with 848 + 272."""
    stem = f"zoo_mha_bias_kv__{kind}"
    code, result = _verify(stem, _counts(stem), tmp_path, capsys)
    merged = _layers(result)["mha + mha.out_proj"]
    assert code == 0 and merged["expected"] == 848 + 272
    assert merged["explain"].startswith("the file shows them as one row (mha): compared with their sum 848 + 272")


def test_root_parameters_are_what_the_modules_leave(tmp_path, capsys):
    """ScalarParams' w_0 (0-d) and w_1 (1 element) belong to the root module, which torch's counts do
    not list: the rows no module holds are compared with parameters less the listed modules."""
    code, result = _verify("zoo_scalar_params__dynamo", _counts("zoo_scalar_params__dynamo"), tmp_path, capsys)
    rest = _layers(result)["(outside the listed modules)"]
    assert code == 0 and rest["expected"] == 1 + 1 == _counts("zoo_scalar_params__dynamo")["parameters"] - (8 * 8 + 8)
    assert rest["found"]["lo"] == rest["found"]["hi"] == 2


def test_a_module_holding_statistics_only_is_in_the_rest(tmp_path, capsys):
    """BatchNorm(affine=False) has no parameter, so torch's module list skips it: its 2 x 8 statistics
    are what the totals leave outside the listed modules."""
    code, result = _verify(
        "zoo_norms_no_affine__legacy_nofold", _counts("zoo_norms_no_affine__legacy_nofold"), tmp_path, capsys
    )
    assert code == 0 and _layers(result)["(outside the listed modules)"]["expected"] == 2 * 8


def test_folded_batchnorms_pair_by_count_not_by_name_order(tmp_path, capsys):
    """torch's counts list modules by name (bn_a before bn_z); the graph folds bn_z first."""
    code, result = _verify("zoo_fold_order__legacy_fold", _counts("zoo_fold_order__legacy_fold"), tmp_path, capsys)
    layers = _layers(result)
    assert code == 0
    assert layers["bn_a"]["explain"].startswith("folded into conv_a") and layers["bn_a"]["expected"] == 4 * 8
    assert layers["bn_z"]["explain"].startswith("folded into conv_b") and layers["bn_z"]["expected"] == 4 * 4


@pytest.mark.parametrize(
    ("kind", "module", "holder"),
    [("legacy_fold", "out", "emb"), ("legacy_nofold", "out", "emb"), ("dynamo", "emb", "out")],
)
def test_a_tied_weight_counts_in_both_modules(kind, module, holder, tmp_path, capsys):
    """out.weight is emb.weight: torch counts 16 x 8 in each module, once in its parameters. The file
    stores it once (legacy_fold: with a transposed copy); the module whose row holds none of it reads
    it (or the copy), so it is consistent, and says so."""
    stem = f"zoo_tied_embedding__{kind}"
    counts = _counts(stem)
    assert sum(m["parameters"] for m in counts["modules"].values()) == counts["parameters"] + 16 * 8
    code, result = _verify(stem, counts, tmp_path, capsys)
    tied = _layers(result)[module]
    assert code == 0 and tied["expected"] == 16 * 8 and tied["verdict"] == "match"
    assert tied["explain"].startswith(f"shares {holder}.weight of {holder} (128)")


def test_a_module_counted_twice_without_a_tie_is_a_mismatch(tmp_path, capsys):
    """The same counts but for parameters that the modules do not double: no sharing to settle."""
    stem = "zoo_tied_embedding__legacy_nofold"
    counts = _counts(stem)
    modules = {**counts["modules"], "mix": {**counts["modules"]["mix"], "parameters": 72 + 128}}
    del modules["out"]
    assert _verify(stem, {**counts, "modules": modules}, tmp_path, capsys)[0] == 1


def test_a_root_parameter_filed_under_a_module_row_goes_to_the_rest(tmp_path, capsys):
    """RootToken's cls_token (1 x 1 x 8) is expanded for block's call: the file files it under `block`,
    torch counts it in the root (not listed). block holds its gamma (8) and the cls_token (8)."""
    stem = "zoo_root_token__dynamo_noopt"
    code, result = _verify(stem, _counts(stem), tmp_path, capsys)
    layers = _layers(result)
    assert code == 0
    assert layers["block"]["expected"] == 8 and layers["block"]["found"]["lo"] == 8 + 8
    assert layers["block"]["explain"].startswith("holds cls_token (8): named as the root module's own")
    assert layers["(outside the listed modules)"]["expected"] == 8


def test_modules_the_file_holds_nothing_of_are_open_and_may_share(tmp_path, capsys):
    """T5 through dynamo: torch lists model.shared, both embed_tokens and lm_head on one tied weight (1,024
    each, once in its parameters). The file stores it as model.lm_head.weight; the encoder's embedding reads
    it; the decoder's embedding call was merged into the encoder's and model.shared is never called: the
    graph signature names both, unstored. Their rows are open above, and may share the stored weight: the
    modules' sum less torch's total (-2,048 left for the rest) is then reached. Before: exit 1."""
    stem = "hf_t5__dynamo"
    counts = _counts(stem)
    code, result = _verify(stem, counts, tmp_path, capsys)
    layers = _layers(result)
    assert code == 0
    for name in ("model.shared", "model.decoder.embed_tokens"):
        assert layers[name]["found"] == {"hi": None, "likely": None, "lo": 0} and layers[name]["expected"] == 64 * 16
    rest = layers["(outside the listed modules)"]
    assert "may share a stored weight: up to 2,048 less" in rest["explain"]
    wrong = {**counts, "modules": _wrong(counts["modules"], "model.lm_head", None)}
    assert _verify(stem, wrong, tmp_path, capsys)[0] == 1
