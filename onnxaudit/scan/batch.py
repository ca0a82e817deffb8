"""`onnxaudit scan DIR`: audit every .onnx file under DIR in parallel processes.

One JSON Lines record per model on stdout, in path order (so the output is deterministic whatever
finishes first); an unusable model is a record with status "error", never the end of the scan. A
progress bar (terminal only) and a summary table go to stderr. Exit 0 when every file was audited,
1 when any file could not be, 2 when DIR itself is unusable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from onnxaudit.api import Convention, audit
from onnxaudit.errors import AuditError
from onnxaudit.io.remote import is_url
from onnxaudit.model.load import MAX_NODES
from onnxaudit.render.layout import WIDTH, table, wrap_all
from onnxaudit.render.summary import escape

SCAN_SCHEMA_VERSION = 2  # 2: macs, flops, peak_activation_bytes, peak_exact
SUFFIX = ".onnx"
MAX_LISTING = 1 << 26  # characters of a --list file: a million long URLs
DIED = "the audit process died"  # a worker that died on the file (killed, out of memory, crashed)


@dataclass(frozen=True)
class Record:
    """One model's line of the scan: counts when audited, a one-line error when not."""

    path: str
    status: str  # ok | error
    total: int | None = None
    trainable: int | None = None
    non_trainable: int | None = None
    unclassified: int | None = None
    total_bytes: int | None = None
    file_bytes: int | None = None
    nodes: int | None = None
    limits: tuple[str, ...] = ()
    error: str | None = None
    # the cost figures ({text, value, terms}: symbolic where input dims are free); None without shapes
    macs: dict[str, object] | None = None
    flops: dict[str, object] | None = None
    peak_activation_bytes: dict[str, object] | None = None
    peak_exact: bool | None = None  # False: peak_activation_bytes is an upper bound

    def to_json(self, convention: str) -> str:
        data = {"schema_version": SCAN_SCHEMA_VERSION, "convention": convention, **self.__dict__}
        data["limits"] = list(self.limits)
        return json.dumps(data, sort_keys=True)


def find_models(root: Path, unreadable_folders: list[Record] | None = None) -> list[Path]:
    """Every *.onnx file under root, in sorted order. Symlinked folders are not entered (no loops);
    symlinked files are listed and the loader decides whether to follow them. A folder below root that
    cannot be listed becomes an error Record in `unreadable_folders`: a scan must never pass over it in
    silence (it may hold the models the user meant)."""
    if not root.exists():
        raise AuditError(f"{root}: no such directory")
    if not root.is_dir():
        raise AuditError(f"{root}: not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise AuditError(f"{root}: cannot read the directory")
    found: list[Path] = []
    unreadable: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=unreadable.append):
        dirs.sort()
        found += [Path(folder, f) for f in files if f.lower().endswith(SUFFIX)]
    if unreadable and unreadable[0].filename == str(root):
        raise AuditError(f"{root}: cannot read the directory ({unreadable[0].strerror})")
    if unreadable_folders is not None:
        for exc in unreadable:
            folder = os.fsdecode(exc.filename) if exc.filename is not None else str(root)
            why = f"cannot read the folder ({exc.strerror}); any models in it were not audited"
            unreadable_folders.append(Record(folder, "error", error=one_line(f"{folder}: {why}")))
    return sorted(found)


def read_listing(listing: str) -> list[str]:
    """The paths and URLs a listing file names, one a line (blank lines and '#' comments left out), sorted
    and each once; '-' reads stdin. Raises AuditError naming the file when it cannot be read."""
    try:
        if listing == "-":
            text = sys.stdin.read()
        else:
            with open(listing, encoding="utf-8") as f:
                text = f.read(MAX_LISTING + 1)
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise AuditError(f"{listing}: cannot read the list of models ({why})") from None
    if len(text) > MAX_LISTING:
        raise AuditError(f"{listing}: the list of models is over {MAX_LISTING:,} characters")
    names = {line.strip() for line in text.splitlines()}
    return sorted(name for name in names if name and not name.startswith("#"))


def audit_one(path: str, convention: Convention, max_nodes: int = MAX_NODES) -> Record:
    """Runs in a worker: the whole summary pipeline for one file, every failure turned into a record."""
    try:
        report = audit(path, convention=convention, max_nodes=max_nodes)
    except AuditError as exc:
        return Record(path, "error", error=one_line(str(exc)))
    except (MemoryError, RecursionError) as exc:
        return Record(path, "error", error=f"{path}: {type(exc).__name__} while reading")
    except Exception as exc:  # a bug still ends as a record, not a dead scan
        return Record(path, "error", error=one_line(f"{path}: internal error {type(exc).__name__}: {exc}"))
    t, cost = report.totals, report.cost
    figures = (asdict(cost.macs), asdict(cost.flops), asdict(cost.peak_bytes), cost.peak_exact) if cost else ()
    return Record(
        path, "ok", t.total, t.trainable, t.non_trainable, t.unclassified, t.total_bytes,
        report.file_bytes, report.node_count, tuple(report.limits), None, *figures,
    )  # fmt: skip


def one_line(text: str) -> str:
    return " ".join(text.split())


def scan(
    paths: Sequence[str | Path],
    convention: Convention,
    jobs: int,
    on_done: Callable[[int, Record], None] | None = None,
    max_nodes: int = MAX_NODES,
) -> Iterator[Record]:
    """Records in the order of `paths`, computed by `jobs` worker processes. A worker that dies
    (killed, out of memory, crashed) breaks its pool: the files not finished then run again, each
    in a pool of its own, so the death is pinned on one file and the rest are still audited."""
    results: dict[int, Record] = {}
    next_out = 0
    pending = list(range(len(paths)))
    alone = False
    while pending:
        broken: list[int] = []
        for batch in [[i] for i in pending] if alone else [pending]:
            with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(batch)))) as pool:
                futures = {pool.submit(audit_one, str(paths[i]), convention, max_nodes): i for i in batch}
                waiting: set[Future[Record]] = set(futures)
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = futures[future]
                        try:
                            results[index] = future.result()
                        except BrokenProcessPool:
                            if not alone:
                                broken.append(index)
                                continue
                            results[index] = Record(str(paths[index]), "error", error=f"{paths[index]}: {DIED}")
                        if on_done is not None:
                            on_done(index, results[index])
                    while next_out in results:
                        yield results.pop(next_out)
                        next_out += 1
        pending = sorted(broken)
        alone = True


class Progress:
    """`[#####.....] 12/40 files, 1 error` redrawn in place on a terminal; silent elsewhere."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty() and total > 0
        self.done = 0
        self.errors = 0

    def update(self, _index: int, record: Record) -> None:
        self.done += 1
        self.errors += record.status != "ok"
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            errors = f", {self.errors} error{'s' if self.errors != 1 else ''}" if self.errors else ""
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} files{errors}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def shown_name(path: str, root: str) -> str:
    """A record's path as the table shows it: relative to a local root, after a URL prefix, else whole."""
    if is_url(root):
        return path[len(root) :].lstrip("/") if path.startswith(root) else path
    return os.path.relpath(path, root) if root and not is_url(path) else path


def summary_table(records: list[Record], root: str | Path, width: int | None = WIDTH) -> str:
    """A row per file (paths shortened in the middle to fit `width` columns; `None`: whole), then totals."""
    headers = ["File", "Status", "Params", "Trainable", "Non-trainable", "Unclassified"]
    rows = []
    for r in records:
        name = escape(shown_name(r.path, str(root)))
        if r.status == "ok":
            rows.append([name, "ok", f"{r.total:,}", f"{r.trainable:,}", f"{r.non_trainable:,}", f"{r.unclassified:,}"])
        else:
            rows.append([name, "error", "-", "-", "-", "-"])
    lines = table(headers, rows, {2, 3, 4, 5}, width, {0: 20})
    ok = [r for r in records if r.status == "ok"]
    failed = [r for r in records if r.status != "ok"]
    lines.append(
        f"{len(records)} model{'s' if len(records) != 1 else ''}: {len(ok)} audited, {len(failed)} failed; "
        f"{sum(r.total or 0 for r in ok):,} params in the audited ones"
    )
    lines += wrap_all([f"error: {escape(r.error)}" for r in failed], width)
    return "\n".join(lines) + "\n"
