"""Lay a CheckReport out as text, JSON, Markdown or GitHub Actions annotations. No checking here.

Every name and message goes through `render.escape` (control characters, ANSI, invalid UTF-8 made
visible); GitHub annotations additionally percent-encode what the runner would parse (`%`, CR, LF in
the message; also `:` and `,` in properties), so a tensor name cannot start a workflow command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

from onnxaudit.check.registry import Finding
from onnxaudit.check.runner import CheckReport
from onnxaudit.render.summary import escape, escape_markdown, human_bytes

GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _verdict(report: CheckReport) -> str:
    c = report.counts
    plural = {"error": "errors", "warning": "warnings", "info": "info"}
    parts = ", ".join(f"{c[s]} {plural[s] if c[s] != 1 else s}" for s in ("error", "warning", "info"))
    state = "pass" if report.passed else "FAIL"
    return f"{state} ({parts}; fail on {report.fail_on})"


def _where(f: Finding) -> str:
    scope = "" if f.scope == "main" else f" in {escape(f.scope)}"
    return f"{f.subject} {escape(f.target)}{scope}" if f.target else f"{f.subject}{scope}"


def _scan_line(report: CheckReport) -> str:
    s = report.scan
    params = "" if report.params is None else f"{report.params:,} parameters; "
    holes = f", {human_bytes(s.holes)} of it sparse holes not read" if s.holes else ""
    skipped = f"; {s.not_scanned} not scanned" if s.not_scanned else ""
    return f"{params}scanned {s.tensors} tensor{'' if s.tensors == 1 else 's'} ({human_bytes(s.bytes)}{holes}){skipped}"


def render_check_text(report: CheckReport) -> str:
    lines = [f"Check {escape(report.model)}: {_verdict(report)}"]
    for f in report.findings:
        lines.append(f"  {f.rule} {f.severity:<7} {escape(f.message)}  [{f.name}; {_where(f)}]")
    lines.append(_scan_line(report))
    lines += [f"Note: {escape(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def render_check_json(report: CheckReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


def render_check_markdown(report: CheckReport) -> str:
    lines = [f"**onnxaudit check** {escape_markdown(report.model)}: {escape_markdown(_verdict(report))}", ""]
    if report.findings:
        lines += ["| Rule | Severity | Where | Message |", "|---|---|---|---|"]
        for f in report.findings:
            cells = [f"{f.rule} {f.name}", f.severity, escape_markdown(_where(f)), escape_markdown(f.message)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(escape_markdown(_scan_line(report)))
    lines += [f"- Note: {escape_markdown(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def annotation_data(text: str) -> str:
    """A workflow command's message: the runner decodes %25, %0D and %0A."""
    return escape(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotation_property(text: str) -> str:
    """A workflow command's property value: additionally ':' and ',' end it."""
    return annotation_data(text).replace(":", "%3A").replace(",", "%2C")


def render_check_github(report: CheckReport) -> str:
    """One `::error file=...,title=...::message` line per finding, then the verdict as plain text."""
    lines = []
    for f in report.findings:
        props = f"file={annotation_property(report.model)},title={annotation_property(f'{f.rule} {f.name}')}"
        lines.append(
            f"::{GITHUB_LEVEL[f.severity]} {props}::{annotation_data(f.message)} [{annotation_data(_where(f))}]"
        )
    lines.append(f"onnxaudit check {annotation_data(report.model)}: {_verdict(report)}")
    return "\n".join(lines) + "\n"


CheckFormat = Literal["text", "json", "markdown", "github"]
RENDERERS: dict[CheckFormat, Callable[[CheckReport], str]] = {
    "text": render_check_text,
    "json": render_check_json,
    "markdown": render_check_markdown,
    "github": render_check_github,
}
