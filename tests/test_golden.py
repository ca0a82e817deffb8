"""Every fixture's output equals its golden file (regenerate only with `python tests/golden_cases.py`)."""

from __future__ import annotations

import pytest
from golden_cases import at_root, fixtures, golden_path, render_case


@pytest.mark.parametrize("model", fixtures(), ids=lambda p: p.as_posix())
def test_output_equals_golden(model):
    with at_root():
        rendered = render_case(model)
    for suffix, content in rendered.items():
        path = golden_path(model, suffix)
        assert path.exists(), f"no golden file {path}: run python tests/golden_cases.py"
        expected = path.read_text(encoding="utf-8")
        assert content == expected, f"{model} differs from {path.name} (python tests/golden_cases.py --check)"


def test_every_golden_file_has_a_fixture():
    wanted = {golden_path(m, s) for m in fixtures() for s in (".txt", ".json")}
    stale = [p for p in golden_path(fixtures()[0], ".txt").parents[1].rglob("*") if p.is_file() and p not in wanted]
    assert not stale, f"golden files without a fixture: {stale[:5]}"
