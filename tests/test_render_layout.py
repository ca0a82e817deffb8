"""Text output fits 100 columns by default (names shortened with an ellipsis, prose wrapped), `--wide`
keeps every line whole; the header lists only the opset domains the graph uses; Markdown code spans hold
names as they are; scan's table has an Unclassified column."""

from __future__ import annotations

import json
import textwrap

import pytest
from builders import MODELS, audit_model, init, model, node, save, value
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from onnxaudit import audit
from onnxaudit.cli.main import main
from onnxaudit.render.layout import LONG_LINE, WIDTH, wrap
from onnxaudit.render.summary import LONGEST_SHOWN, code_span, escape, render_markdown, render_text
from onnxaudit.scan.batch import Record, summary_table

FIXTURES = sorted(MODELS.rglob("*.onnx"))
LONG = "encoder.layers.11.self_attention.query_key_value.projection_with_a_very_long_name"


def _long_named_model():
    return model(
        [node("MatMul", ["x", f"{LONG}.weight"], ["y"], name=f"/{LONG}/MatMul")],
        [value("x", ["N", 4])],
        [value("y", ["N", 3])],
        [init(f"{LONG}.weight", [4, 3])],
    )


@pytest.mark.parametrize("explain", [False, True])
def test_every_fixture_fits_100_columns(explain):
    over = [
        (path.name, line)
        for path in FIXTURES
        for line in render_text(audit(path), explain=explain).splitlines()
        if len(line) > WIDTH
    ]
    assert not over, over[:3]


def test_long_names_are_shortened_and_wide_keeps_them(tmp_path, capsys):
    path = save(_long_named_model(), tmp_path / "m.onnx")
    assert main(["summary", str(path)]) == 0
    fitted = capsys.readouterr().out
    row = next(line for line in fitted.splitlines() if line.startswith("encoder"))
    assert "…" in row and LONG not in fitted.split("Total params")[0]
    assert max(map(len, fitted.splitlines())) <= WIDTH
    assert main(["summary", str(path), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert f"{LONG} (MatMul)" in wide and "…" not in wide


def test_explanations_move_under_their_row_only_when_the_table_would_not_fit(tmp_path):
    narrow = audit_model(tmp_path, model([node("MatMul", ["x", "w"], ["y"], name="fc")], [value("x", [2, 4])],
                                         [value("y", [2, 3])], [init("w", [4, 3])]))  # fmt: skip
    lines = render_text(narrow, explain=True, width=200).splitlines()  # room beside the row
    assert any(line.startswith("fc (MatMul)") and "MatMul 4x3 = 12" in line for line in lines)
    wide = render_text(audit_model(tmp_path, _long_named_model(), name="long.onnx"), explain=True).splitlines()
    at = next(i for i, line in enumerate(wide) if line.startswith("encoder"))
    assert wide[at + 1].startswith("    MatMul 4x3 = 12")


def test_a_wrapped_line_never_starts_a_workflow_command():
    lines = wrap("Note: " + "word " * 18 + "::error::forged", 100)
    assert len(lines) == 2 and all(not line.lstrip().startswith("::") for line in lines)


def test_header_lists_only_the_domains_the_graph_uses(tmp_path):
    m = model(
        [node("MatMul", ["x", "w"], ["y"], name="fc")],
        [value("x", [2, 4])],
        [value("y", [2, 3])],
        [init("w", [4, 3])],
        extra_opsets={"ai.onnx.ml": 2, "com.microsoft": 1, "\x1b[31mevil": 1},
    )
    report = audit_model(tmp_path, m)
    header = " ".join(render_text(report).splitlines()[:2])
    assert "opset 17" in header and "ai.onnx.ml" not in header and "microsoft" not in header
    assert "\x1b" not in render_text(report)
    assert sorted(report.opsets) == sorted(["ai.onnx", "ai.onnx.ml", "com.microsoft", "\x1b[31mevil"])  # JSON keeps all
    used = model(
        [node("MatMul", ["x", "w"], ["y"], name="fc"), node("Gelu", ["y"], ["z"], name="act", domain="com.microsoft")],
        [value("x", [2, 4])],
        [value("z", [2, 3])],
        [init("w", [4, 3])],
        extra_opsets={"com.microsoft": 1, "ai.onnx.ml": 2},
    )
    header = " ".join(render_text(audit_model(tmp_path, used, name="used.onnx")).splitlines()[:2])
    assert "com.microsoft 1" in header and "ai.onnx.ml" not in header


@pytest.mark.parametrize(
    ("name", "span"),
    [("hey_jarvis.onnx", "`hey_jarvis.onnx`"), ("a`b*c", "``a`b*c``"), ("`edge`", "`` `edge` ``")],
)
def test_code_spans_hold_names_unescaped(name, span):
    assert code_span(name) == span


def test_markdown_model_name_is_a_plain_code_span(tmp_path):
    m = model([node("MatMul", ["x", "w"], ["y"], name="fc")], [value("x", [2, 4])], [value("y", [2, 3])],
              [init("w", [4, 3])])  # fmt: skip
    report = audit_model(tmp_path, m, name="hey_jarvis.onnx")
    first = render_markdown(report).splitlines()[0]
    assert "hey_jarvis.onnx`" in first and "hey\\_jarvis" not in first


def test_scan_table_has_unclassified_so_columns_add_up(tmp_path):
    records = [Record(str(tmp_path / "a.onnx"), "ok", 100, 60, 30, 10, 400, 500, 3)]
    header, row = summary_table(records, tmp_path).splitlines()[:2]
    assert header.split()[-1] == "Unclassified"
    assert row.split()[2:] == ["100", "60", "30", "10"]


# The fixtures whose check, diff and shapes lines ran longest before these outputs were fitted (up to 297 columns)
LONG_CHECKED = [
    MODELS / "keras" / "masked_lstm__keras3_export.onnx",
    MODELS / "keras" / "seed_geron_book__tf2onnx_op17.onnx",  # a rule firing 6 times: its summed line
    MODELS / "torch" / "mobilenetv2_tiny__legacy_training.onnx",
    MODELS / "ortfused" / "llama_tiny__ort_fused.onnx",
]
LONG_DIFFED = [
    (MODELS / "ort" / f"{stem}__{quantized}.onnx", MODELS / "ortfused" / f"{stem}.onnx")
    for stem, quantized in [
        ("bert_tiny__ort_fused", "dynamic_per_channel"),
        ("gpt2_tiny__ort_fused", "dynamic_per_channel"),  # MACs figures of 100 columns each
        ("llama_tiny__ort_fused", "matmul_nbits_gather"),
    ]
]


def _fitted_and_wide(capsys, *argv: str) -> tuple[str, str]:
    main([*argv])
    fitted = capsys.readouterr().out
    main([*argv, "--wide"])
    wide = capsys.readouterr().out
    return fitted, wide


def _longest(text: str) -> int:
    return max(map(len, text.splitlines()))


def test_check_text_fits_100_columns_and_wide_keeps_lines_whole(tmp_path, capsys):
    unused = model(
        [node("MatMul", ["x", "w"], ["y"], name="fc")],
        [value("x", ["N", 4])],
        [value("y", ["N", 3])],
        [init("w", [4, 3]), init(f"{LONG}.weight", [3])],  # OA203: consumed by no node
    )
    long_named = str(save(unused, tmp_path / "long.onnx"))
    fitted, wide = _fitted_and_wide(capsys, "check", *map(str, LONG_CHECKED), long_named, "--fail-on", "never")
    assert _longest(fitted) <= WIDTH < _longest(wide)
    assert "".join(fitted.split()) == "".join(wide.split())  # wrapped (a long name across lines), nothing cut
    summed = [line for line in wide.splitlines() if "findings, the first:" in line]
    assert summed and all(line.rstrip().endswith(("lists all 6]", "lists all 7]")) for line in summed)
    assert any(f"tensor {LONG}.weight]" in line for line in wide.splitlines())
    assert all(f"tensor {LONG}.weight]" not in line for line in fitted.splitlines())


@pytest.mark.parametrize(("old", "new"), LONG_DIFFED, ids=lambda p: p.name)
def test_diff_text_fits_100_columns_and_wide_keeps_names(old, new, capsys):
    fitted, wide = _fitted_and_wide(capsys, "diff", str(old), str(new))
    assert _longest(fitted) <= WIDTH < _longest(wide)
    assert "…" in fitted and "…" not in wide
    new_layers = [
        la["new"] for la in json.loads(_cli_out(capsys, "diff", str(old), str(new), "--format", "json"))["layers"]
    ]
    wide_rows = wide.split("Layers:")[1]
    assert all(f"{name} (" in wide_rows for name in new_layers if name)  # every layer's name whole with --wide


def _cli_out(capsys, *argv: str) -> str:
    main(list(argv))
    return capsys.readouterr().out


def test_shapes_text_fits_100_columns_and_wide_keeps_names(tmp_path, capsys):
    for path in (save(_long_named_model(), tmp_path / "long.onnx"), LONG_CHECKED[0]):
        fitted, wide = _fitted_and_wide(capsys, "shapes", str(path))
        assert _longest(fitted) <= WIDTH < _longest(wide)
    assert "…" in fitted and "…" not in wide  # value names shortened in the table
    assert "functional_1_lstm_1_while_cond_frozen_20253_functional_1/lstm_1/while/LogicalAnd:0 (And)" in wide


def test_scan_table_fits_100_columns_and_wide_keeps_paths(tmp_path):
    deep = tmp_path / ("a_rather_long_folder_name_" * 3) / ("and_a_longer_model_file_name_" * 3 + ".onnx")
    records = [
        Record(str(deep), "ok", 100, 60, 30, 10, 400, 500, 3),
        Record(str(tmp_path / "b.onnx"), "error", error="b.onnx: " + "not a model " * 12),
    ]
    fitted, wide = summary_table(records, tmp_path), summary_table(records, tmp_path, width=None)
    assert _longest(fitted) <= WIDTH < _longest(wide)
    assert str(deep.relative_to(tmp_path)) in wide and "…" in fitted and ".onnx" in fitted.splitlines()[1]


def test_verify_text_fits_100_columns_and_wide_keeps_lines_whole(capsys):
    stem = MODELS / "keras" / "conv_bn_merged__tfkeras_op13"  # its verdict's conditions ran to 230 columns
    fitted, wide = _fitted_and_wide(capsys, "verify", f"{stem}.onnx", "--keras-summary", f"{stem}.summary.txt")
    assert _longest(fitted) <= WIDTH < _longest(wide)
    assert fitted.split() == wide.split()  # wrapped between words, nothing cut
    assert wide.splitlines()[0].endswith("(or another combination of the assumed defaults)")


def test_a_line_with_a_huge_word_is_cut_at_the_width_in_linear_time():
    """textwrap cuts a long word a line at a time, copying the rest each time: a 2 MB op type took 46 s.
    A word over LONG_LINE characters is cut every WIDTH columns instead, nothing lost."""
    word = "".join(chr(ord("a") + i % 26) for i in range(4 * LONG_LINE))
    lines = wrap(f"  unknown op {word} here", WIDTH)
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[0] == f"  unknown op {word}"[:WIDTH]
    assert all(line.startswith(" " * 6) for line in lines[1:])
    assert "".join(line[6:] for line in lines[1:]) == f"  unknown op {word} here"[WIDTH:]


def test_a_huge_name_is_shown_by_its_ends_and_its_length():
    name = "\x1b" + "n" * (3 * LONGEST_SHOWN) + "end"
    shown = escape(name)
    assert shown.startswith("\\x1bnnn") and shown.endswith("nnnend")
    assert f"[{len(name):,} characters]" in shown and len(shown) < 2 * LONGEST_SHOWN
    assert escape("n" * LONGEST_SHOWN) == "n" * LONGEST_SHOWN


_WORDS = st.text(alphabet=st.sampled_from("ab:-.,()x1 \t"), min_size=41, max_size=160)


@settings(max_examples=600, deadline=None)
@given(
    data=st.data(),
    lead=st.integers(0, 6),
    words=st.lists(st.text(alphabet=st.sampled_from("abc:-.,()x1é"), min_size=1, max_size=30), min_size=3, max_size=40),
    indent=st.integers(0, 8),
)
def test_single_spaced_prose_wraps_as_textwrap_does(data, lead, words, indent):
    # wrap's fast path (rfind at single spaces) against textwrap itself, which it replaces for such lines;
    # a line too long for its width (one that fits is returned whole, before any wrapping)
    line = " " * lead + " ".join(words)
    width = data.draw(st.integers(4, len(line) - 1))
    expected = textwrap.wrap(
        line, width=width, subsequent_indent=" " * (lead + indent), break_on_hyphens=False, replace_whitespace=False
    )
    expected = [p.replace("::", "\\::", 1) if p.lstrip().startswith("::") else p for p in expected]
    assert wrap(line, width, indent) == expected


@settings(max_examples=300, deadline=None)
@given(text=_WORDS, width=st.integers(10, 40))
def test_other_prose_still_wraps_through_textwrap(text, width):
    # tabs, runs of spaces, trailing spaces, words longer than a line: textwrap's own answer
    assume(len(text) > width)
    expected = textwrap.wrap(
        text,
        width=width,
        subsequent_indent=" " * (len(text) - len(text.lstrip(" ")) + 4),
        break_on_hyphens=False,
        replace_whitespace=False,
    )
    expected = [p.replace("::", "\\::", 1) if p.lstrip().startswith("::") else p for p in expected]
    assert wrap(text, width) == expected
