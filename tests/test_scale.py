"""What keeps huge graphs fast must not change a figure: compact JSON, skipped inference, paused GC."""

from __future__ import annotations

import gc
import json

from builders import save, seed_cnn

import onnxaudit.model.build as build_module
import onnxaudit.render.summary as render_module
from onnxaudit import audit
from onnxaudit.render.summary import render_json


def test_compact_json_holds_the_same_data(tmp_path, monkeypatch):
    report = audit(save(seed_cnn(), tmp_path / "m.onnx"))
    pretty = render_json(report)
    monkeypatch.setattr(render_module, "PRETTY_JSON_ITEMS", 0)
    compact = render_json(report)
    assert "\n" not in compact.rstrip("\n") and len(compact) < len(pretty)
    assert json.loads(compact) == json.loads(pretty) == json.loads(json.dumps(report.to_dict()))


def test_inference_skipped_above_the_node_limit_says_so(tmp_path, monkeypatch):
    path = save(seed_cnn(), tmp_path / "m.onnx")
    full = audit(path)
    monkeypatch.setattr(build_module, "MAX_INFER_NODES", 3)
    skipped = audit(path)
    assert skipped.totals == full.totals
    assert [r.params for r in skipped.rows] == [r.params for r in full.rows]
    assert all(r.output_shape is None for r in skipped.rows)
    assert any("shape inference skipped" in limit for limit in skipped.limits)
    assert not any("shape inference skipped" in limit for limit in full.limits)


def test_audit_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    path = save(seed_cnn(), tmp_path / "m.onnx")
    assert gc.isenabled()
    audit(path)
    assert gc.isenabled()
    gc.disable()
    try:
        audit(path)
        assert not gc.isenabled()
    finally:
        gc.enable()
