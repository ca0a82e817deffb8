"""A baseline: the findings a project has accepted, so CI fails only on new ones.

A finding's fingerprint is its rule, the model's path (normalized, as given on the command line) and
where it points (subject, graph scope, node or tensor name): never its message (whose figures change
when weights do) nor its place in the output. A baseline counts each fingerprint, so a rule that fires
on the same place twice is accepted twice, and a third occurrence is new.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from onnxaudit.check.registry import Finding
from onnxaudit.check.runner import CheckReport, CheckRun, tally
from onnxaudit.errors import AuditError
from onnxaudit.io.remote import is_url
from onnxaudit.io.text import UNSAFE, as_text

BASELINE_SCHEMA_VERSION = 1
MAX_BASELINE_BYTES = 64 << 20  # a baseline is small; refuse to parse anything that could not be one


def model_key(model: str) -> str:
    """The model as the baseline names it: './a/../b.onnx' and 'b.onnx' are one file; a URL as given
    (normalizing it as a path would fold its '//')."""
    if is_url(model):
        return model
    return Path(os.path.normpath(model)).as_posix()


def location(finding: Finding) -> str:
    """Where a finding points, as text: subject, then scope and target when there are any."""
    parts: list[str] = [finding.subject]
    if finding.scope != "main":
        parts.append(as_text(finding.scope))
    if finding.target:
        parts.append(as_text(finding.target))
    return ":".join(parts)


def fingerprint(model: str, finding: Finding) -> str:
    """A stable hex digest of rule, model path and location (names kept byte for byte)."""
    fields = (finding.rule, model_key(model), finding.subject, finding.scope, finding.target)
    data = "\0".join(as_text(f) for f in fields).encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass(frozen=True)
class Baseline:
    counts: Counter[str]  # fingerprint -> findings accepted

    def apply(self, report: CheckReport) -> CheckReport:
        """`report` without the findings the baseline accepts, its verdict recomputed."""
        left = Counter(self.counts)
        kept: list[Finding] = []
        for finding in report.findings:
            key = fingerprint(report.model, finding)
            if left[key] > 0:
                left[key] -= 1
            else:
                kept.append(finding)
        dropped = len(report.findings) - len(kept)
        if not dropped:
            return report
        counts, passed = tally(kept, report.fail_on)
        note = f"{dropped} finding{'' if dropped == 1 else 's'} in the baseline not shown"
        return replace(
            report, findings=kept, counts=counts, passed=passed, baselined=dropped, notes=[*report.notes, note]
        )

    def apply_run(self, run: CheckRun) -> CheckRun:
        return replace(run, reports=[self.apply(r) for r in run.reports])


def baseline_json(run: CheckRun) -> str:
    """The baseline accepting every finding of `run`, deterministic (sorted, one entry per place)."""
    entries: dict[str, dict[str, Any]] = {}
    for report in run.reports:
        for finding in report.findings:
            key = fingerprint(report.model, finding)
            entry = entries.setdefault(
                key,
                {
                    "fingerprint": key,
                    "rule": finding.rule,
                    "model": model_key(report.model),
                    "location": location(finding).encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                    "count": 0,
                },
            )
            entry["count"] += 1
    ordered = sorted(entries.values(), key=lambda e: (e["model"], e["rule"], e["location"], e["fingerprint"]))
    data = {"schema_version": BASELINE_SCHEMA_VERSION, "tool": "onnxaudit check", "findings": ordered}
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    # a baseline is committed and reviewed: what a name holds that an editor or a terminal would act on or hide is
    # written as JSON's own escape, other names as they read (json escapes C0 controls in a string itself: the
    # ones left are the layout's newlines)
    return UNSAFE.sub(_json_escape, text) + "\n"


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    return char if char < " " else f"\\u{ord(char):04x}"


def read_baseline(path: str | os.PathLike[str]) -> Baseline:
    """The baseline in `path`; anything else is an AuditError naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BASELINE_BYTES + 1)
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the baseline ({exc.strerror or exc})") from None
    if len(raw) > MAX_BASELINE_BYTES:
        raise AuditError(f"{path}: not a baseline (over {MAX_BASELINE_BYTES >> 20} MiB)")
    try:
        data = json.loads(raw)
        if data.get("schema_version") != BASELINE_SCHEMA_VERSION:
            raise ValueError(f"schema_version {data.get('schema_version')!r}, expected {BASELINE_SCHEMA_VERSION}")
        counts: Counter[str] = Counter()
        for entry in data["findings"]:
            key, count = entry["fingerprint"], entry["count"]
            if not isinstance(key, str) or type(count) is not int or count < 1:
                raise ValueError("an entry without a fingerprint and a positive count")
            counts[key] += count
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise AuditError(f"{path}: not an onnxaudit baseline ({exc})") from None
    return Baseline(counts)
