"""The exporter rules' registry (onnxaudit/frameworks/registry.py): every rule is registered, once per
origin, declares the op types it needs, keeps that promise, and rebuilds a layer of some fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import MODELS, bn_reading_its_parameters_as_statistics, save

from onnxaudit.count.layers import Layer, group_layers
from onnxaudit.count.roles import classify
from onnxaudit.count.table import ParamTable, param_table
from onnxaudit.frameworks import keras, lowered, onnxruntime, onnxscript, paddle, tflite, torch, ultralytics
from onnxaudit.frameworks.common import counted
from onnxaudit.frameworks.context import FileContext, Rule
from onnxaudit.frameworks.figures import FrameworkView
from onnxaudit.frameworks.registry import ORDER
from onnxaudit.frameworks.view import framework_view
from onnxaudit.model.load import load
from onnxaudit.model.view import ModelView

RULE_MODULES = (keras, lowered, onnxruntime, onnxscript, paddle, tflite, torch, ultralytics)
REGISTERED = {entry.rule for entries in ORDER.values() for entry in entries}

Run = tuple[Path, ModelView, ParamTable, list[Layer], FrameworkView]


def test_every_rule_is_registered_once_per_origin_and_declares_its_ops():
    defined = {value for module in RULE_MODULES for value in vars(module).values() if isinstance(value, Rule)}
    assert defined == REGISTERED, sorted(r.id for r in defined ^ REGISTERED)
    assert len({r.id for r in REGISTERED}) == len(REGISTERED)
    for origin, entries in ORDER.items():
        ids = [entry.rule.id for entry in entries]
        assert len(ids) == len(set(ids)), origin
    for r in REGISTERED:
        assert r.ops and all(isinstance(op, str) and op for op in r.ops), r.id
        assert r.summary, f"{r.id} has no docstring"


# small graphs for the rules no fixture in models/ exercises
GRAPHS = {"bn_statistics_stored_once": bn_reading_its_parameters_as_statistics}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    built = tmp_path_factory.mktemp("graphs")
    found = []
    for path in [
        *sorted(MODELS.rglob("*.onnx")),
        *(save(make(), built / f"{name}.onnx") for name, make in GRAPHS.items()),
    ]:
        view = load(path)
        table = param_table(classify(view))
        layers = group_layers(view, table)
        found.append((path, view, table, layers, framework_view(view, table, layers)))
    return found


def test_every_rule_rebuilds_a_layer_of_some_fixture(runs: list[Run]):
    fired = {rule_id for *_, fv in runs for rule_id in fv.fired}
    assert not sorted({r.id for r in REGISTERED} - fired)
    assert fired <= {r.id for r in REGISTERED}


def test_a_rule_matches_no_layer_without_the_ops_it_declares(runs: list[Run]):
    # the orchestrator skips a rule where the layer holds none of its ops: that must never hide a match
    checked = 0
    for path, view, table, layers, _ in runs:
        ctx = FileContext(view, table)
        for layer in layers:
            tensors = counted(layer.tensors)
            if not tensors:
                continue
            ops = {n.op_type for n in layer.nodes} | {u.node.op_type for t in tensors for u in t.uses}
            for r in REGISTERED:
                if r.ops.isdisjoint(ops):
                    assert r(ctx, layer, tensors) is None, (str(path), layer.name, r.id)
                    checked += 1
    assert checked > 1000  # the fixtures hold many layers each rule skips
