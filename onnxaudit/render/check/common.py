"""What the check formats share: the verdict line, where a finding points, the scan line, and which
findings of a rule are shown one by one."""

from __future__ import annotations

from onnxaudit.check.registry import Finding
from onnxaudit.check.runner import CheckReport
from onnxaudit.render.summary import escape, human_bytes

LISTED_PER_RULE = 5  # more findings of one rule on one model: one line with the count (--verbose lists all)


def verdict(report: CheckReport) -> str:
    c = report.counts
    plural = {"error": "errors", "warning": "warnings", "info": "info"}
    parts = ", ".join(f"{c[s]} {plural[s] if c[s] != 1 else s}" for s in ("error", "warning", "info"))
    state = "pass" if report.passed else "FAIL"
    return f"{state} ({parts}; fail on {report.fail_on})"


def where(f: Finding) -> str:
    scope = "" if f.scope == "main" else f" in {escape(f.scope)}"
    return f"{f.subject} {escape(f.target)}{scope}" if f.target else f"{f.subject}{scope}"


def scan_line(report: CheckReport) -> str:
    s = report.scan
    params = "" if report.params is None else f"{report.params:,} parameters; "
    holes = f", {human_bytes(s.holes)} of it sparse holes not read" if s.holes else ""
    skipped = f"; {s.not_scanned} not scanned" if s.not_scanned else ""
    return f"{params}scanned {s.tensors} tensor{'' if s.tensors == 1 else 's'} ({human_bytes(s.bytes)}{holes}){skipped}"


def runs(findings: list[Finding]) -> list[list[Finding]]:
    """Findings in groups of one rule and severity (they arrive sorted, so each group is contiguous)."""
    groups: list[list[Finding]] = []
    for f in findings:
        if groups and (groups[-1][0].rule, groups[-1][0].severity) == (f.rule, f.severity):
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups
