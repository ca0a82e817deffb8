"""`check --format text`: a verdict line per model, a line per finding (a rule firing more than
LISTED_PER_RULE times on one model is one line with the count unless --verbose), the scan line, notes."""

from __future__ import annotations

from onnxaudit.check.runner import CheckReport, CheckRun
from onnxaudit.render.check.common import LISTED_PER_RULE, runs, scan_line, verdict, where
from onnxaudit.render.summary import escape


def render_report(report: CheckReport, verbose: bool = False) -> str:
    lines = [f"Check {escape(report.model)}: {verdict(report)}"]
    for group in runs(report.findings):
        if verbose or len(group) <= LISTED_PER_RULE:
            for f in group:
                lines.append(f"  {f.rule} {f.severity:<7} {escape(f.message)}  [{f.name}; {where(f)}]")
        else:
            f, n = group[0], len(group)
            lines.append(
                f"  {f.rule} {f.severity:<7} {n} findings, the first: {escape(f.message)}  "
                f"[{f.name}; {where(f)}; --verbose lists all {n}]"
            )
    lines.append(scan_line(report))
    lines += [f"Note: {escape(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"


def render_text(run: CheckRun, verbose: bool = False) -> str:
    parts = [render_report(report, verbose) for report in run.reports]
    if len(run.reports) + len(run.unusable) > 1:
        failed = sum(1 for r in run.reports if not r.passed)
        unusable = f", {len(run.unusable)} unusable" if run.unusable else ""
        parts.append(f"Checked {len(run.reports) + len(run.unusable)} files: {failed} failed{unusable}\n")
    return "".join(parts)
