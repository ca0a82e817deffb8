"""The static checks run with the suite, so the README's test command (and .ci/run, which runs exactly
that) fails on a lint, format or type error: ruff over the package, the tests and the benchmarks, mypy
over the package with the settings in pyproject.toml's [tool.mypy]. ruff and mypy come with the test
extras; a missing tool fails here rather than skipping the check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINTED = ("onnxaudit", "tests", "benchmarks")  # scripts/ is excluded in pyproject.toml (own framework venvs)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", *LINTED), ("ruff", "format", "--check", *LINTED), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_static_check_passes(command: tuple[str, ...]) -> None:
    result = _run(*command)
    assert result.returncode == 0, f"python -m {' '.join(command)} failed:\n{result.stdout}{result.stderr}"
