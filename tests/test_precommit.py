"""The pre-commit hook (.pre-commit-hooks.yaml), run by pre-commit itself in a temporary git repository:
pre-commit installs this repository into its own virtualenv (pip, as a user's machine would), passes it
the staged .onnx files only, and fails the commit on a finding."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import array, linear, save, seed_cnn

ROOT = Path(__file__).resolve().parent.parent


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_hook_checks_staged_onnx_files(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    save(seed_cnn(), repo / "clean.onnx")
    values = np.ones((4, 4), np.float32)
    values[0, 0] = np.nan
    save(linear(array("W", values)), repo / "nan.onnx")
    (repo / "notes.txt").write_text("not a model: the hook must not be given it\n")
    _git(repo, "add", "clean.onnx", "nan.onnx", "notes.txt")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PRE_COMMIT_COLOR": "never"}
    # try-repo installs the hook from the repository path, uncommitted edits included
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "onnxaudit-check", "--all-files", "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "onnxaudit check" in out and "Failed" in out
    assert "OA101" in out and "nan.onnx" in out and "Check clean.onnx: pass" in out
    assert "Check notes.txt" not in out and "notes.txt:" not in out  # files: \.onnx$ left it out
