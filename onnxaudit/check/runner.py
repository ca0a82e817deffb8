"""`onnxaudit check`: the selected rules over one model, as a CheckReport with an exit status.

Rules are chosen from the registry before anything runs (--select/--ignore), and each declares the stage
it needs. Order matters for safety: the model is opened once (safeopen), its wire format is mapped
(datamap), the file pass validates dims, stored lengths and external data before any byte of it is read
(data.py; it always runs, the OA301..OA304 rules report what it found), then the model view is built
(load) for the rules that need it, and only when a selected rule reads values are weights scanned in
bounded chunks (values.py). A file whose dims are broken still gets its file-level findings even though
no model view can be built from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from onnxaudit.check.context import CheckContext, CheckOptions
from onnxaudit.check.data import file_pass
from onnxaudit.check.registry import SEVERITIES, SEVERITY_RANK, Finding, Rule
from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.values import ScanTotals, scan_values
from onnxaudit.count.conventions import CONVENTIONS
from onnxaudit.count.roles import RoleTable, classify
from onnxaudit.count.table import param_table
from onnxaudit.errors import AuditError, UsageError, names_the_file
from onnxaudit.io.datamap import map_file
from onnxaudit.io.external import ExternalFiles
from onnxaudit.io.safeopen import open_model
from onnxaudit.io.weights import ScanError
from onnxaudit.model.load import MAX_NODES, load
from onnxaudit.model.view import ModelView

CHECK_SCHEMA_VERSION = 1
FailOn = Literal["error", "warning", "never"]  # the lowest severity that fails the check
FAIL_ON: tuple[FailOn, ...] = get_args(FailOn)


@dataclass
class CheckReport:
    schema_version: int
    model: str
    fail_on: FailOn
    passed: bool
    counts: dict[str, int]
    params: int | None  # None when no model view could be built
    findings: list[Finding]
    rules: list[str]  # the rules that ran
    scan: ScanTotals = field(default_factory=ScanTotals)
    notes: list[str] = field(default_factory=list)
    baselined: int = 0  # findings left out because --baseline lists them

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Unusable:
    """A file `check` could not read as a model: the one line that says why."""

    model: str
    error: str


@dataclass
class CheckRun:
    """Several files checked with the same rules: one report per usable file."""

    reports: list[CheckReport]
    unusable: list[Unusable] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The worst: 2 when a file was unusable, else 1 when a report failed, else 0."""
        return max([r.exit_code for r in self.reports] + [2 for _ in self.unusable], default=0)


def tally(findings: list[Finding], fail_on: str) -> tuple[dict[str, int], bool]:
    """Findings per severity, and whether none is at or above `fail_on`."""
    counts: dict[str, int] = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    limit = SEVERITY_RANK.get(fail_on, -1)
    return counts, not any(SEVERITY_RANK[f.severity] <= limit for f in findings)


def check_files(
    paths: Iterable[str | os.PathLike[str]],
    fail_on: FailOn = "error",
    select: str | None = None,
    ignore: str | None = None,
    max_params: int | None = None,
    max_macs: int | None = None,
    max_activation_memory: int | None = None,
    dims: dict[str, int] | None = None,
    max_nodes: int = MAX_NODES,
) -> CheckRun:
    """`check` each file; an unusable one is noted and the others still checked. A usage error (an
    unknown rule, a bad --fail-on) stops before the first file."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    REGISTRY.select(select, ignore)
    run = CheckRun([])
    for path in paths:
        try:
            limits = (max_params, max_macs, max_activation_memory, dims, max_nodes)
            run.reports.append(check(path, fail_on, select, ignore, *limits))
        except UsageError:
            raise
        except AuditError as exc:
            run.unusable.append(Unusable(str(path), str(exc)))
    return run


@names_the_file
def check(
    path: str | os.PathLike[str],
    fail_on: FailOn = "error",
    select: str | None = None,
    ignore: str | None = None,
    max_params: int | None = None,
    max_macs: int | None = None,
    max_activation_memory: int | None = None,
    dims: dict[str, int] | None = None,
    max_nodes: int = MAX_NODES,
) -> CheckReport:
    """Apply the selected rules to the model at `path`. Raises AuditError (one line) for unusable input."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    rules = REGISTRY.select(select, ignore)
    options = CheckOptions(max_params, max_macs, max_activation_memory, tuple(sorted((dims or {}).items())))
    stages = {rule.needs for rule in rules}
    path = Path(path)
    name = str(path)
    notes: list[str] = []
    opened = open_model(path)
    try:
        files = map_file(opened.fd, opened.size, name)
        with ExternalFiles(path.parent) as external:
            data = file_pass(files, opened.fd, external)
            ctx = CheckContext(name, files, data, options, frozenset(r.id for r in rules))
            findings = _run(rules, "file", ctx)
            view = _view(path, opened.dev, opened.ino, bool(data.problems), notes, max_nodes)
            scan = ScanTotals()
            if view is not None:
                roles = classify(view)
                ctx.with_view(view, roles, _total(roles))
                findings += _run(rules, "view", ctx)
                if "values" in stages:
                    try:
                        values = scan_values(roles, files, data)
                        ctx.with_values(values)
                        findings += _run(rules, "values", ctx)
                    except ScanError as exc:
                        raise AuditError(f"{name}: {exc}") from None
                    scan = values.totals
    finally:
        os.close(opened.fd)
    kept = sorted(findings, key=Finding.sort_key)
    counts, passed = tally(kept, fail_on)
    ids = sorted(r.id for r in rules)
    return CheckReport(CHECK_SCHEMA_VERSION, name, fail_on, passed, counts, ctx.params, kept, ids, scan, notes)


def _run(rules: Iterable[Rule], stage: str, ctx: CheckContext) -> list[Finding]:
    return [f for rule in rules if rule.needs == stage for f in rule.findings(ctx)]


def _view(path: Path, dev: int, ino: int, broken: bool, notes: list[str], max_nodes: int) -> ModelView | None:
    """The model view, or None (with a note) when the file pass already found why it cannot be built
    (`broken`). The file loaded must be the file mapped."""
    try:
        view = load(path, max_nodes=max_nodes)
    except AuditError as exc:
        if broken:
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


def _total(roles: RoleTable) -> int:
    keras = CONVENTIONS["keras"]
    return sum(t.count or 0 for t in param_table(roles).tensors if keras.bucket(t.category) is not None)


__all__ = ["CHECK_SCHEMA_VERSION", "CheckReport", "CheckRun", "Unusable", "check", "check_files"]
