"""Renderers: escaping of hostile names, Keras-style byte sizes, compact JSON exactly as json.dumps writes it."""

from __future__ import annotations

import io
import json
import re

import pytest
from builders import MODELS, audit_model, init, model, node, value
from hypothesis import given
from hypothesis import strategies as st

import onnxaudit.render.summary as render_module
from onnxaudit import audit
from onnxaudit.render.summary import (
    escape,
    escape_markdown,
    human_bytes,
    render_json,
    render_markdown,
    render_text,
    write_json,
)


def test_escape_makes_controls_visible():
    assert escape("a\nb") == "a\\x0ab"
    assert escape("\x1b[31mred") == "\\x1b[31mred"
    assert escape("::error::pwned") == "\\::error::pwned"
    assert escape(b"\xff\xfeok") == "\\xff\\xfeok"
    assert escape("\u202eevil") == "\\u202eevil"
    assert escape_markdown("a|b`c") == "a\\|b\\`c"


def test_human_bytes_matches_keras():
    assert human_bytes(37_633 * 4) == "147.00 KB"
    assert human_bytes(256) == "256.00 B"
    assert human_bytes(2_140_752 * 4) == "8.17 MB"


def test_hostile_names_never_reach_the_terminal_raw(tmp_path):
    evil = "::error::x\n\x1b[2J|`"
    m = model(
        [node("MatMul", ["x", evil], ["y"], name=evil)],
        [value("x", ["N", 4])],
        [value("y", ["N", 4])],
        [init(evil, [4, 4])],
    )
    report = audit_model(tmp_path, m, by="tensor")
    for text in (render_text(report, explain=True), render_markdown(report, explain=True)):
        assert "\x1b" not in text
        assert all(not line.startswith("::") for line in text.splitlines())
        assert "::error::x\n" not in text


# Exports whose JSON holds every kind of value the hand-made encoders write: framework rewrites and
# ranges, symbolic and unknown dims, tied copies, unclassified tensors, BN statistics.
_JSON_FIXTURES = [
    "torch/resnet_tiny__legacy_fold.onnx",
    "torch/tied_lm__dynamo.onnx",
    "ortfused/bert_tiny__ort_fused.onnx",
    "keras/bottleneck_bias__tf2onnx_op13.onnx",
    "keras/attn_norm__keras3_export.onnx",
]


@pytest.mark.parametrize("fixture", _JSON_FIXTURES)
@pytest.mark.parametrize("by", ["layer", "tensor"])
def test_compact_json_is_what_json_dumps_writes(fixture, by, monkeypatch):
    report = audit(MODELS / fixture, convention="pytorch", by=by)
    monkeypatch.setattr(render_module, "PRETTY_JSON_ITEMS", 0)  # the hand-made encoders of big reports
    expected = json.dumps(report.to_dict(), sort_keys=True) + "\n"
    assert render_json(report) == expected
    stream = io.StringIO()
    write_json(report, stream)
    assert stream.getvalue() == expected


def test_hostile_names_in_compact_json_are_escaped_as_json_dumps_does(tmp_path, monkeypatch):
    evil = '::error::x\n\x1b[2J|`"\\é\u2028\U0001f600'
    m = model(
        [node("MatMul", ["x", evil], ["y"], name=evil)],
        [value("x", ["N", 4])],
        [value("y", [None, 4])],
        [init(evil, [4, 4])],
    )
    for by in ("layer", "tensor"):
        report = audit_model(tmp_path, m, by=by)
        monkeypatch.setattr(render_module, "PRETTY_JSON_ITEMS", 0)
        assert render_json(report) == json.dumps(report.to_dict(), sort_keys=True) + "\n"


def _escape_by_regex(name: object) -> str:
    """escape without its fast path for printable ASCII."""
    text = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = re.sub(
        r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]",
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        text,
    )
    return "\\" + text if text.lstrip().startswith("::") else text


@given(st.text(alphabet=st.characters(max_codepoint=0x3000)))
def test_escape_fast_path_changes_nothing(text):
    assert escape(text) == _escape_by_regex(text)
    assert escape(" " + text) == _escape_by_regex(" " + text)
    assert escape_markdown(text) == re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", _escape_by_regex(text))


def test_unclassified_tensors_are_listed_with_dims_and_count(tmp_path):
    """A constant of unknown role is listed under the footer: `name: dims = count values` (a 1-D
    tensor once read as a 2-D shape)."""
    m = model(
        [node("Relu", ["x"], ["r"]), node("Custom", ["r", "table"], ["y"], domain="my.ops")],
        [value("x", [1, 8])],
        [value("y", None)],
        [init("table", [8])],
        extra_opsets={"my.ops": 1},
    )
    text = render_module.render_text(audit_model(tmp_path, m))
    assert "  unclassified table: 8 = 8 values <- " in text


def test_long_symbolic_dims_are_named_in_the_table_and_spelled_out_below(tmp_path):
    """Shape inference writes dims such as floor(floor(height/2 - 1/2)/2) + 1 (a YOLO export): the
    table names each long one (s1, s2) once and spells it out under the table, so rows stay readable."""
    from builders import audit_model, model, node, value

    long_h, long_w = "floor(floor(height/2 - 1/2)/2) + 1", "floor(floor(width/2 - 1/2)/2) + 1"
    m = model(
        [node("Relu", ["x"], ["y"], name="act")],
        [value("x", ["batch", 3, long_h, long_w])],
        [value("y", ["batch", 3, long_h, long_w])],
    )
    text = render_text(audit_model(tmp_path, m))
    row = next(line for line in text.splitlines() if line.startswith("act (Relu)"))
    assert "(batch, 3, s1, s2)" in row
    assert f"  s1 = {long_h}" in text and f"  s2 = {long_w}" in text
    assert max(map(len, text.splitlines()[1:5])) < 120  # rules, headers, row (output size and MACs included)
