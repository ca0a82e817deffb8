"""`check --format text`: a verdict line per model, a line per finding (a rule firing more than
LISTED_PER_RULE times on one model is one line with the count unless --verbose), the scan line, notes.

Lines fit `width` columns (a finding's message wraps under itself, nothing is cut); `width=None`
(`--wide`) leaves every line whole."""

from __future__ import annotations

from onnxaudit.check.runner import CheckReport, CheckRun
from onnxaudit.render.check.common import LISTED_PER_RULE, runs, scan_line, verdict, where
from onnxaudit.render.layout import WIDTH, wrap, wrap_all
from onnxaudit.render.summary import escape

# a finding's message starts after `  OA206 warning `: its continuation lines start there too
_MESSAGE_INDENT = len("  OA206 warning ") - 2


def _finding_lines(report: CheckReport, verbose: bool) -> list[str]:
    lines = []
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
    return lines


def render_report(report: CheckReport, verbose: bool = False, width: int | None = WIDTH) -> str:
    head = f"Check {escape(report.model)}: {verdict(report)}"
    # a long path: the verdict on a line of its own rather than broken across two
    lines = (
        [head]
        if width is None or len(head) <= width
        else [*wrap(head[: head.rindex(": ")] + ":", width), "    " + verdict(report)]
    )
    lines += wrap_all(_finding_lines(report, verbose), width, _MESSAGE_INDENT)
    lines += wrap(scan_line(report), width)
    lines += wrap_all([f"Note: {escape(n)}" for n in report.notes], width)
    return "\n".join(lines) + "\n"


def render_text(run: CheckRun, verbose: bool = False, width: int | None = WIDTH) -> str:
    parts = [render_report(report, verbose, width) for report in run.reports]
    if len(run.reports) + len(run.unusable) > 1:
        failed = sum(1 for r in run.reports if not r.passed)
        unusable = f", {len(run.unusable)} unusable" if run.unusable else ""
        parts.append(f"Checked {len(run.reports) + len(run.unusable)} files: {failed} failed{unusable}\n")
    return "".join(parts)
