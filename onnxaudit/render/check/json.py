"""`check --format json`: deterministic, with `schema_version`. One model: its report object. Several:
{"schema_version", "passed", "reports": [...], "unusable": [{"model", "error"}]}."""

from __future__ import annotations

import json
from dataclasses import asdict

from onnxaudit.check.runner import CHECK_SCHEMA_VERSION, CheckRun


def render_json(run: CheckRun, verbose: bool = False) -> str:
    if len(run.reports) == 1 and not run.unusable:
        data = run.reports[0].to_dict()
    else:
        data = {
            "schema_version": CHECK_SCHEMA_VERSION,
            "passed": run.exit_code == 0,
            "reports": [r.to_dict() for r in run.reports],
            "unusable": [asdict(u) for u in run.unusable],
        }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
