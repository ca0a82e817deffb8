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
from dataclasses import asdict, dataclass, field, replace
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
from onnxaudit.io.external import Extent, ExternalFiles, RemoteExternal
from onnxaudit.io.ranged import FetchRefused, RangedBuffer
from onnxaudit.io.remote import RemoteRead, is_url, open_ranged
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
    fetch_values: int | None = None,
) -> CheckRun:
    """`check` each file; an unusable one is noted and the others still checked. A usage error (an
    unknown rule, a bad --fail-on) stops before the first file."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    REGISTRY.select(select, ignore)
    run = CheckRun([])
    for path in paths:
        try:
            limits = (max_params, max_macs, max_activation_memory, dims, max_nodes, fetch_values)
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
    fetch_values: int | None = None,
) -> CheckReport:
    """Apply the selected rules to the model at `path` (a file or a URL). Raises AuditError (one line) for
    unusable input. `fetch_values`: for a URL, the bytes of weight values the value rules may fetch (None:
    those rules are not run, each noted); a local file's values are read whole."""
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}")
    rules = REGISTRY.select(select, ignore)
    options = CheckOptions(max_params, max_macs, max_activation_memory, tuple(sorted((dims or {}).items())))
    notes: list[str] = []
    if is_url(path):
        name = str(path)
        rules = _over_url(rules, fetch_values, notes)
        findings, ctx, scan = _check_url(name, rules, options, max_nodes, fetch_values, notes)
    else:
        name = str(Path(path))
        findings, ctx, scan = _check_file(Path(path), rules, options, max_nodes, notes)
    kept = sorted(findings, key=Finding.sort_key)
    counts, passed = tally(kept, fail_on)
    ids = sorted(r.id for r in rules)
    return CheckReport(CHECK_SCHEMA_VERSION, name, fail_on, passed, counts, ctx.params, kept, ids, scan, notes)


Checked = tuple[list[Finding], CheckContext, ScanTotals]


def _check_file(
    path: Path, rules: tuple[Rule, ...], options: CheckOptions, max_nodes: int, notes: list[str]
) -> Checked:
    name = str(path)
    opened = open_model(path)
    try:
        files = map_file(opened.fd, opened.size, name, max_nodes)
        with ExternalFiles(path.parent) as external:
            data = file_pass(files, opened.fd, external)
            ctx = CheckContext(name, files, data, options, frozenset(r.id for r in rules))
            findings = _run(rules, "file", ctx)
            view = _view(path, opened.dev, opened.ino, bool(data.problems), notes, max_nodes)
            findings, scan = _later_stages(rules, ctx, view, findings, None)
    finally:
        os.close(opened.fd)
    return findings, ctx, scan


def _check_url(
    url: str, rules: tuple[Rule, ...], options: CheckOptions, max_nodes: int, budget: int | None, notes: list[str]
) -> Checked:
    """check for a model at a URL: the same stages over byte ranges. The structure is fetched once (the data
    map and the view share one RangedBuffer), external data files are asked only for their size, and weight
    values are read (when a rule needs them) through a second buffer capped at `budget` bytes."""
    remote, buf = open_ranged(url)
    values_buf = RangedBuffer(remote.read_at, remote.size, max_fetch=budget)
    external = RemoteExternal(url)
    try:
        files = map_file(buf, remote.size, url, max_nodes)
        data = file_pass(files, buf, external)
        ctx = CheckContext(url, files, data, options, frozenset(r.id for r in rules))
        findings = _run(rules, "file", ctx)
        view = _view_of_url(url, buf, bool(data.problems), notes, max_nodes)
        findings, scan = _later_stages(rules, ctx, view, findings, (buf, values_buf, budget or 0))
    except FetchRefused as exc:
        raise AuditError(f"{url}: {exc}") from None
    finally:
        remote.close()
    fetched = RemoteRead(url, remote.size, buf.fetched, buf.requests + external.requests)
    note = fetched.note()
    notes.append(note.replace("weight bytes and external data", "external data") if values_buf.requests else note)
    if values_buf.requests:
        notes.append(
            f"weight values: {values_buf.fetched:,} bytes fetched in {values_buf.requests} ranged reads "
            f"(--fetch-values allows {budget:,})"
        )
    return findings, ctx, scan


# a URL's weights: the structure's buffer, the values' buffer, and the values' byte budget
UrlValues = tuple[RangedBuffer, RangedBuffer, int]


def _later_stages(
    rules: tuple[Rule, ...], ctx: CheckContext, view: ModelView | None, findings: list[Finding], url: UrlValues | None
) -> tuple[list[Finding], ScanTotals]:
    """The view rules, then (when one is selected) the value scan and its rules."""
    scan = ScanTotals()
    if view is None:
        return findings, scan
    roles = classify(view)
    ctx.with_view(view, roles, _total(roles))
    findings += _run(rules, "view", ctx)
    if any(rule.needs == "values" for rule in rules):
        data = ctx.file
        budget = None
        if url is not None:  # read the weights through the values' buffer, within its budget
            structure, values_buf, budget = url
            data = replace(data, extents={k: _moved(e, structure, values_buf) for k, e in data.extents.items()})
        try:
            values = scan_values(roles, ctx.files, data, budget)
            ctx.with_values(values)
            findings += _run(rules, "values", ctx)
        except ScanError as exc:
            raise AuditError(f"{ctx.model}: {exc}") from None
        scan = values.totals
    return findings, scan


def _moved(extent: Extent, old: RangedBuffer, new: RangedBuffer) -> Extent:
    return replace(extent, fd=new) if extent.fd is old else extent


NOT_OVER_URL = {  # value rules that are not run on a model at a URL, even with --fetch-values
    "OA105": "finding copies re-reads tensors and compares them element by element, not done over a URL",
}


def _over_url(rules: tuple[Rule, ...], budget: int | None, notes: list[str]) -> tuple[Rule, ...]:
    """The rules that run on a model at a URL; each value rule left out gets a note saying why."""
    kept = []
    for rule in rules:
        why = NOT_OVER_URL.get(rule.id) if rule.needs == "values" else None
        if rule.needs == "values" and budget is None:
            why = "it reads weight values, which are fetched from a URL only within --fetch-values SIZE"
        if why is None:
            kept.append(rule)
        else:
            notes.append(f"{rule.id} {rule.name} not run: {why}")
    return tuple(kept)


def _view_of_url(url: str, buf: RangedBuffer, broken: bool, notes: list[str], max_nodes: int) -> ModelView | None:
    try:
        view = load(url, max_nodes=max_nodes, ranged=buf)
    except AuditError as exc:
        if broken:
            notes.append(f"no model view ({exc}); graph and value rules skipped")
            return None
        raise
    return view


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
