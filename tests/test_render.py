"""Renderers: escaping of hostile names, Keras-style byte sizes."""

from __future__ import annotations

from builders import audit_model, init, model, node, value

from onnxaudit.render import escape, escape_markdown, human_bytes, render_markdown, render_text


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
        assert "x\n" not in text
