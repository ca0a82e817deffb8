"""Lay a CheckRun out: one module per format (text, JSON, JSON Lines, Markdown, GitHub annotations, SARIF, JUnit).
No checking here; every name and message goes through `render.summary.escape`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from onnxaudit.check.runner import CheckRun
from onnxaudit.render.check.github import render_github
from onnxaudit.render.check.json import render_json
from onnxaudit.render.check.jsonl import render_jsonl
from onnxaudit.render.check.junit import render_junit
from onnxaudit.render.check.markdown import render_markdown
from onnxaudit.render.check.sarif import render_sarif
from onnxaudit.render.check.text import render_text

CheckFormat = Literal["text", "json", "jsonl", "markdown", "github", "sarif", "junit"]
Renderer = Callable[[CheckRun, bool], str]  # (run, verbose) -> the output

RENDERERS: dict[CheckFormat, Renderer] = {
    "text": render_text,
    "json": render_json,
    "jsonl": render_jsonl,
    "markdown": render_markdown,
    "github": render_github,
    "sarif": render_sarif,
    "junit": render_junit,
}

__all__ = ["RENDERERS", "CheckFormat", "Renderer"]
