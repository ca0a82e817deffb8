"""`check --format github`: one GitHub Actions workflow command per finding, then the verdict.

Messages and properties are percent-encoded as the runner decodes them (`%`, CR, LF; in properties
also `:` and `,`), after `escape`, so a tensor name cannot start a workflow command."""

from __future__ import annotations

from onnxaudit.check.runner import CheckReport, CheckRun
from onnxaudit.render.check.common import verdict, where
from onnxaudit.render.summary import escape

GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def annotation_data(text: str) -> str:
    """A workflow command's message: the runner decodes %25, %0D and %0A."""
    return escape(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotation_property(text: str) -> str:
    """A workflow command's property value: additionally ':' and ',' end it."""
    return annotation_data(text).replace(":", "%3A").replace(",", "%2C")


def render_report(report: CheckReport) -> str:
    """One `::error file=...,title=...::message` line per finding, then the verdict as plain text."""
    lines = []
    for f in report.findings:
        props = f"file={annotation_property(report.model)},title={annotation_property(f'{f.rule} {f.name}')}"
        lines.append(
            f"::{GITHUB_LEVEL[f.severity]} {props}::{annotation_data(f.message)} [{annotation_data(where(f))}]"
        )
    lines.append(f"onnxaudit check {annotation_data(report.model)}: {verdict(report)}")
    return "\n".join(lines) + "\n"


def render_github(run: CheckRun, verbose: bool = False) -> str:
    return "".join(render_report(report) for report in run.reports)
