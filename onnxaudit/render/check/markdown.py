"""`check --format markdown`: a verdict line and a findings table per model (for a PR comment)."""

from __future__ import annotations

from onnxaudit.check.runner import CheckReport, CheckRun
from onnxaudit.render.check.common import scan_line, verdict, where
from onnxaudit.render.summary import escape_markdown


def render_report(report: CheckReport) -> str:
    lines = [f"**onnxaudit check** {escape_markdown(report.model)}: {escape_markdown(verdict(report))}", ""]
    if report.findings:
        lines += ["| Rule | Severity | Where | Message |", "|---|---|---|---|"]
        for f in report.findings:
            cells = [f"{f.rule} {f.name}", f.severity, escape_markdown(where(f)), escape_markdown(f.message)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(escape_markdown(scan_line(report)))
    lines += [f"- Note: {escape_markdown(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def render_markdown(run: CheckRun, verbose: bool = False) -> str:
    return "\n".join(render_report(report) for report in run.reports)
