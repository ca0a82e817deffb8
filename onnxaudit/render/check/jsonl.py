"""`check --format jsonl`: JSON Lines, as ruff's `json-lines` and checkov's: one object per finding (the
model, the finding's fields, whether it fails at --fail-on, and the fingerprint the baseline and SARIF
use), then one per unusable file (`model`, `error`); every line carries `schema_version`. A clean run
prints nothing."""

from __future__ import annotations

import json
from dataclasses import asdict

from onnxaudit.check.baseline import fingerprint
from onnxaudit.check.registry import SEVERITY_RANK
from onnxaudit.check.runner import CHECK_SCHEMA_VERSION, CheckRun


def render_jsonl(run: CheckRun, verbose: bool = False) -> str:
    lines = []
    for report in run.reports:
        limit = SEVERITY_RANK.get(report.fail_on, -1)
        for f in report.findings:
            record = {
                "schema_version": CHECK_SCHEMA_VERSION,
                "model": report.model,
                **asdict(f),
                "fails": SEVERITY_RANK[f.severity] <= limit,
                "fingerprint": fingerprint(report.model, f),
            }
            lines.append(json.dumps(record, sort_keys=True))
    for unusable in run.unusable:
        lines.append(json.dumps({"schema_version": CHECK_SCHEMA_VERSION, **asdict(unusable)}, sort_keys=True))
    return "".join(line + "\n" for line in lines)
