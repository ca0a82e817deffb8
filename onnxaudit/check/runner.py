"""`onnxaudit check`: deployment rules over one model, as a CheckReport with an exit status.

Order matters for safety: the model is opened once (safeopen), its wire format is mapped (datamap),
file-level rules run and external data is validated before any byte of it is read (check_data), then
the model view is built (load), graph rules run (check_graph), and only then are weights scanned in
bounded chunks (check_values). A file whose dims are broken still gets its file-level findings even
though no model view can be built from it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from onnxaudit.check.data import file_findings
from onnxaudit.check.graph import graph_findings
from onnxaudit.check.rules import RULES, SEVERITIES, SEVERITY_RANK, Finding, active_rules, finding
from onnxaudit.check.values import ScanTotals, value_findings
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.count.roles import classify
from onnxaudit.count.table import param_table
from onnxaudit.errors import AuditError, UsageError
from onnxaudit.io.datamap import map_file
from onnxaudit.io.external import ExternalFiles
from onnxaudit.io.safeopen import open_model
from onnxaudit.io.weights import ScanError
from onnxaudit.model.load import ModelView, load

CHECK_SCHEMA_VERSION = 1
FAIL_ON = ("error", "warning", "never")


@dataclass
class CheckReport:
    schema_version: int
    model: str
    fail_on: str
    passed: bool
    counts: dict[str, int]
    params: int | None  # None when no model view could be built
    findings: list[Finding]
    rules: list[str]  # the rules that ran
    scan: ScanTotals = field(default_factory=ScanTotals)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [{**asdict(f), "name": f.name} for f in self.findings]
        return data


def check(
    path: str | os.PathLike[str],
    fail_on: str = "error",
    select: str | None = None,
    ignore: str | None = None,
    max_params: int | None = None,
) -> CheckReport:
    """Apply the rules to the model at `path`. Raises AuditError (one line) for unusable input."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    rules = active_rules(select, ignore)
    path = Path(path)
    name = str(path)
    notes: list[str] = []
    opened = open_model(path)
    try:
        files = map_file(opened.fd, opened.size, name)
        with ExternalFiles(path.parent) as external:
            data = file_findings(files, opened.fd, external)
            findings = list(data.findings)
            view = _view(path, opened.dev, opened.ino, findings, notes)
            params = None
            scan = ScanTotals()
            if view is not None:
                roles = classify(view)
                params = _total(roles)
                findings += graph_findings(view, roles, files)
                if max_params is not None and params > max_params:
                    message = f"{params:,} parameters, more than --max-params {max_params:,}"
                    findings.append(finding("OA307", message, "model"))
                if rules & {"OA101", "OA102", "OA103", "OA104", "OA105", "OA308"}:
                    try:
                        more, scan = value_findings(view, roles, files, data)
                    except ScanError as exc:
                        raise AuditError(f"{name}: {exc}") from None
                    findings += more
    finally:
        os.close(opened.fd)
    kept = sorted((f for f in findings if f.rule in rules), key=Finding.sort_key)
    counts = {s: sum(1 for f in kept if f.severity == s) for s in SEVERITIES}
    limit = SEVERITY_RANK.get(fail_on, -1)
    passed = not any(SEVERITY_RANK[f.severity] <= limit for f in kept)
    return CheckReport(CHECK_SCHEMA_VERSION, name, fail_on, passed, counts, params, kept, sorted(rules), scan, notes)


def _view(path: Path, dev: int, ino: int, findings: list[Finding], notes: list[str]) -> ModelView | None:
    """The model view, or None (with a note) when the file-level findings already say why it cannot
    be built. The file loaded must be the file mapped."""
    try:
        view = load(path)
    except AuditError as exc:
        if any(f.severity == "error" for f in findings):
            notes.append(f"no model view ({exc}); graph and value rules skipped")
            return None
        raise
    try:
        info = os.stat(path)
    except OSError:
        info = None
    if info is None or (info.st_dev, info.st_ino) != (dev, ino):
        raise AuditError(f"{path}: the file was replaced while being checked")
    return view


def _total(roles) -> int:
    keras = CONVENTIONS["keras"]
    return sum(t.count or 0 for t in param_table(roles).tensors if keras.bucket(t.category) is not None)


__all__ = ["CHECK_SCHEMA_VERSION", "CheckReport", "RULES", "check"]
