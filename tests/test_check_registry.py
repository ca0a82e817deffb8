"""The check rule registry: every rule documented and exercised, selection before running, the README's
table generated from it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from builders import MODELS, array, batchnorm, external, init, linear, model, node, save, seed_cnn, value
from onnx import TensorProto, helper

from onnxaudit.check import docs
from onnxaudit.check.registry import FAMILIES, Registry, Rule
from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import check
from onnxaudit.errors import UsageError

OK = [1.0, 1.0]


def _nan_weight() -> onnx.ModelProto:
    values = np.ones((4, 4), np.float32)
    values[1, 2] = np.nan
    return linear(array("W", values))


def _copies() -> onnx.ModelProto:
    w = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    return model(
        [node("MatMul", ["x", "W"], ["h"]), node("MatMul", ["h", "W2"], ["y"])],
        [value("x", ["N", 8])],
        [value("y", None)],
        [array("W", w), array("W2", w.copy())],
    )


def _overridable() -> onnx.ModelProto:
    m = linear(init("W", [4, 4]))
    m.graph.input.append(value("W", [4, 4]))
    return m


def _dangling() -> onnx.ModelProto:
    return model(
        [node("MatMul", ["nothing", "W"], ["y"])], [value("x", [1, 4])], [value("y", None)], [init("W", [4, 4])]
    )


def _cycle() -> onnx.ModelProto:
    return model(
        [node("MatMul", ["h", "W"], ["y"], name="a"), node("Relu", ["y"], ["h"], name="b")],
        [value("x", [1, 4])],
        [value("y", None)],
        [init("W", [4, 4])],
    )


def _recursive() -> onnx.ModelProto:
    body = [helper.make_node("f", ["a"], ["b"], domain="local")]
    f = helper.make_function("local", "f", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    return model(
        [node("f", ["x"], ["y"], domain="local")], [value("x", [4])], [value("y", None)],
        extra_opsets={"local": 1}, functions=[f],
    )  # fmt: skip


def _custom_domain() -> onnx.ModelProto:
    return model(
        [node("Frobnicate", ["x"], ["y"], domain="com.example")],
        [value("x", ["N", 4])],
        [value("y", None)],
        extra_opsets={"com.example": 1},
    )


def _unknown_op() -> onnx.ModelProto:
    return model([node("StatefulPartitionedCall", ["x"], ["y"])], [value("x", [1, 4])], [value("y", [1, 4])])


def _bad_dims() -> onnx.ModelProto:
    bad = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=bytes(64))
    del bad.dims[:]
    bad.dims.extend([-4, -4])
    return linear(bad)


def _short_data() -> onnx.ModelProto:
    short = array("W", np.ones((4, 4), np.float32))
    short.raw_data = short.raw_data[:10]
    return linear(short)


def _float16_typed() -> onnx.ModelProto:
    bits = np.ones(16, np.float16).view(np.uint16).tolist()
    return linear(helper.make_tensor("W", TensorProto.FLOAT16, [4, 4], bits))  # int32_data: not decoded


def _external(tmp_path: Path, **entries: Any) -> Path:
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    (folder / "w.bin").write_bytes(np.ones(16, np.float32).tobytes())
    return save(linear(external("W", [4, 4], **entries)), folder / "m.onnx")


Example = Callable[[Path], tuple[Path, dict[str, Any]]]


def _built(make: Callable[[], onnx.ModelProto], **options: Any) -> Example:
    return lambda tmp_path: (save(make(), tmp_path / "m.onnx"), options)


# One model per rule that makes it fire; the registry must not hold a rule without one.
EXAMPLES: dict[str, Example] = {
    "OA101": _built(_nan_weight),
    "OA102": _built(lambda: batchnorm(OK, OK, OK, [1.0, -0.5])),
    "OA103": _built(lambda: batchnorm(OK, OK, OK, [1.0, 0.0], epsilon=1e-5)),
    "OA104": _built(lambda: linear(array("W", np.zeros((4, 4), np.float32)))),
    "OA105": _built(_copies),
    "OA201": _built(lambda: batchnorm(OK, OK, OK, OK, training_mode=1)),
    "OA202": _built(lambda: batchnorm(OK, OK, OK, OK, channels=3)),
    "OA203": _built(lambda: linear(init("W", [4, 4]), extra=[init("spare", [3])])),
    "OA204": _built(_overridable),
    "OA205": _built(lambda: linear(init("W", [4, 4]), extra=[init("W", [4, 4])])),
    "OA206": _built(
        lambda: model(
            [node("Add", ["x", "p"], ["y"])], [value("x", ["N", 4, 4])], [value("y", None)], [init("p", [4, 4])]
        )
    ),
    "OA207": _built(_dangling),
    "OA208": _built(_cycle),
    "OA209": _built(_recursive),
    "OA210": _built(_custom_domain),
    "OA211": _built(lambda: linear(init("W", [4, 4], np.float64))),
    "OA212": _built(lambda: seed_cnn(axis_typo=True)),
    "OA213": _built(_unknown_op),
    "OA301": _built(_bad_dims),
    "OA302": _built(_short_data),
    "OA303": lambda tmp_path: (_external(tmp_path, location="../w.bin"), {}),
    "OA304": lambda tmp_path: (_external(tmp_path, location="w.bin", offset=4), {}),
    "OA305": _built(lambda: linear(init("W", [4, 4]), ir_version=99)),
    "OA306": _built(lambda: linear(init("W", [4, 4]), opset=999)),
    "OA307": _built(seed_cnn, max_params=37_632),
    "OA308": _built(_float16_typed),
    "OA309": _built(seed_cnn, max_macs=19_300_351),  # 19,300,352 x N: over the limit at N = 1 already
    "OA310": _built(seed_cnn, max_activation_memory=2**20, dims={"N": 1}),  # peak 1,097,728 bytes at N = 1
}


def test_every_rule_has_an_example_and_every_example_a_rule():
    assert sorted(EXAMPLES) == REGISTRY.ids()


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_each_rule_fires_alone_when_selected(tmp_path, rule_id):
    path, options = EXAMPLES[rule_id](tmp_path)
    report = check(path, select=rule_id, **options)
    assert report.rules == [rule_id]
    assert report.findings and {f.rule for f in report.findings} == {rule_id}
    assert all(f.name == REGISTRY[rule_id].name for f in report.findings)
    ignored = check(path, ignore=rule_id, **options)
    assert rule_id not in {f.rule for f in ignored.findings}


@pytest.mark.parametrize("rule", list(REGISTRY), ids=lambda r: r.id)
def test_every_rule_is_documented(rule: Rule):
    assert rule.id[:3] in FAMILIES
    assert rule.name == rule.name.lower() and " " not in rule.name
    assert 10 <= len(rule.summary) and "\n" not in rule.summary
    assert len(rule.docs) >= 80 and rule.docs.endswith("."), rule.docs  # why it matters, what to do


def test_readme_table_is_the_registry():
    readme = Path(docs.README).read_text(encoding="utf-8")
    assert docs.readme_table(readme) == docs.rules_table(), "run: python -m onnxaudit.check.docs --write"
    assert docs.replace_table(readme, docs.rules_table()) == readme


def test_only_selected_rules_run(monkeypatch):
    """--select/--ignore choose emitters before anything runs, and the value scan happens only for a
    selected rule that reads values."""
    called: list[str] = []

    def spy(rule: Rule) -> Rule:
        def emit(ctx):
            called.append(rule.id)
            return rule.emit(ctx)

        return dataclasses.replace(rule, emit=emit)

    monkeypatch.setattr(REGISTRY, "_rules", {rid: spy(rule) for rid, rule in REGISTRY._rules.items()})
    fixture = MODELS / "torch" / "tied_lm__legacy_fold.onnx"
    graph_only = check(fixture, select="OA2")
    assert called == [r for r in REGISTRY.ids() if r.startswith("OA2")]
    assert graph_only.scan.tensors == 0 and graph_only.findings == []  # weights were never read
    called.clear()
    values = check(fixture, select="OA1", ignore="OA105")
    assert called == ["OA101", "OA102", "OA103", "OA104"]
    assert values.scan.tensors > 0 and values.findings == []  # the tied copy is OA105's, not run
    called.clear()
    assert [f.rule for f in check(fixture, select="OA105").findings] == ["OA105"] and called == ["OA105"]


def test_selection_errors_name_the_id_range():
    with pytest.raises(UsageError, match=r"unknown rule 'OA999' \(rules are OA101\.\.OA310"):
        REGISTRY.select("OA999")
    assert [r.id for r in REGISTRY.select("oa30", ignore="OA305,OA306")] == [
        "OA301",
        "OA302",
        "OA303",
        "OA304",
        "OA307",
        "OA308",
        "OA309",
    ]


def test_registry_refuses_duplicates_and_ids_outside_the_families():
    rule = REGISTRY["OA101"]
    with pytest.raises(ValueError, match="twice"):
        Registry([rule, dataclasses.replace(rule, name="other")])
    with pytest.raises(ValueError, match="outside the families"):
        Registry([dataclasses.replace(rule, id="OA901")])
