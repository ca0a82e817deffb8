"""`onnxaudit scan DIR --cluster ADDRESS`: the same audits, run by the workers of an existing Dask cluster.

Only paths travel: each worker opens the file itself, so the workers must see the same filesystem (a shared
mount, the same paths). A relative path is sent with the client's working folder and every record names the
file as the local scan would. Each task is a batch of files, each audited by the local scan's own
`batch.audit_one` in a child forked from the worker thread (scan/auditor.py says why), so each record is the
one a local scan writes. Only files within a window of the first record not yet written are handed out,
whatever the number of files: the output is in the order of the paths.

A worker process that dies anyway (killed from outside) is the scheduler's business first: it retries the
task on other workers, then gives up with KilledWorker; the files of that batch are then handed out one by
one, and a file whose own task is killed that way is recorded as the audit process having died, as the
local scan's words have it. Anything else that goes wrong with the cluster (no scheduler at the address, no
workers, a worker without onnxaudit or with another version, the scheduler lost mid-scan) ends the scan
with one line naming the address, exit 2: never a mix of results from two versions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from onnxaudit._version import __version__
from onnxaudit.api import Convention
from onnxaudit.errors import AuditError, UsageError
from onnxaudit.io.remote import is_url
from onnxaudit.model.load import MAX_NODES
from onnxaudit.scan.auditor import audit_in_child
from onnxaudit.scan.batch import DIED, Record, one_line

if TYPE_CHECKING:
    from distributed import Client, Future

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler, and again for a first worker to be there
BATCHES_PER_THREAD = 4  # the window: this many batches per worker thread in flight or waiting for order
MIN_WINDOW = 16  # files
MAX_BATCH = 8  # files per task at most


class WorkerMismatch(Exception):
    """Raised on a worker whose onnxaudit is not the client's: the task fails instead of auditing."""


def worker_version() -> str:
    """Runs on each worker (Client.run): which onnxaudit it imports."""
    return __version__


def audit_on_worker(
    expected: str, folder: str, paths: list[str], convention: Convention, max_nodes: int
) -> list[Record]:
    """One task: a batch of files (each relative to the client's `folder` when not absolute) audited one
    after another by the local scan's own function in this worker thread's child (scan/auditor.py: one
    thread, as a local scan's pool process, so the audit's own isolation works as there; a file that kills
    the child is that file's record, never a dead worker taking other files' tasks with it), each record
    naming its file exactly as the client named it."""
    if __version__ != expected:
        raise WorkerMismatch(f"a worker runs onnxaudit {__version__}, this client {expected}")
    return [_as_named(audit_in_child(_target(folder, path), convention, max_nodes), path) for path in paths]


def _target(folder: str, path: str) -> str:
    return path if is_url(path) else os.path.join(folder, path)


def _as_named(record: Record, path: str) -> Record:
    if record.path == path:
        return record
    error = record.error.replace(one_line(record.path), one_line(path)) if record.error is not None else None
    return Record(**{**record.__dict__, "path": path, "error": error})


def batch_size(files: int, threads: int) -> int:
    """Files per task: 1 for a small scan (every thread busy), up to MAX_BATCH for a large one, where
    each task's round trip through the scheduler would otherwise cost more than a small model's audit."""
    return max(1, min(MAX_BATCH, files // (BATCHES_PER_THREAD * 2 * threads)))


@dataclass(frozen=True)
class Cluster:
    """A connected client whose workers all import this onnxaudit."""

    client: Client
    address: str
    threads: int  # worker threads when connected

    def scan(
        self,
        paths: Sequence[str | Path],
        convention: Convention,
        on_done: Callable[[int, Record], None] | None = None,
        max_nodes: int = MAX_NODES,
        window: int | None = None,
    ) -> Iterator[Record]:
        """Records in the order of `paths`, as batch.scan gives them. Files go out in batches of
        batch_size, and only while they lie within `window` files of the first not yet written (default
        BATCHES_PER_THREAD batches per worker thread, MIN_WINDOW files at least): 100,000 files never
        become 100,000 futures, nor 100,000 records held back for one slow file."""
        from distributed import as_completed

        size = batch_size(len(paths), self.threads)
        window = max(window or max(MIN_WINDOW, BATCHES_PER_THREAD * self.threads * size), 1)
        size = min(size, window)
        folder = os.getcwd()
        results: dict[int, Record] = {}
        handed: dict[Future[list[Record]], list[int]] = {}
        running = as_completed(loop=self.client.loop)  # type: ignore[no-untyped-call]  # unannotated in distributed
        next_in = next_out = 0

        def hand_out(indices: list[int]) -> None:
            args = (__version__, folder, [str(paths[i]) for i in indices], convention, max_nodes)
            future = self.client.submit(audit_on_worker, *args, pure=False)
            handed[future] = indices
            running.add(future)  # type: ignore[no-untyped-call]

        def hand_out_more() -> None:
            nonlocal next_in
            while next_in < len(paths) and next_in + min(size, len(paths) - next_in) <= next_out + window:
                hand_out(list(range(next_in, min(next_in + size, len(paths)))))
                next_in += size

        hand_out_more()
        for future in running:
            indices = handed.pop(future)
            records = _records(future, [str(paths[i]) for i in indices], self.address)
            future.release()
            if records is None:  # a worker died under a batch: each of its files again on its own
                for i in indices:
                    hand_out([i])
                continue
            for i, record in zip(indices, records, strict=True):
                results[i] = record
                if on_done is not None:
                    on_done(i, record)
            while next_out in results:
                yield results.pop(next_out)
                next_out += 1
            hand_out_more()


@contextmanager
def open_cluster(address: str, connect_timeout: float = CONNECT_TIMEOUT) -> Iterator[Cluster]:
    """A client of the Dask scheduler at `address`, checked before any file is handed over: reachable,
    at least one worker, every worker on this onnxaudit version. Raises AuditError (one line naming the
    address) otherwise."""
    distributed = _import_distributed()
    with _quiet_dask(), _connect(distributed, address, connect_timeout) as client:
        threads = _check_workers(client, address, connect_timeout)
        yield Cluster(client, address, threads)


def _import_distributed() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs Dask's distributed: pip install 'onnxaudit[cluster]'") from None
    return distributed


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """distributed logs its connection retries, a lost scheduler's traceback and closing chatter to stderr;
    the scan says what matters in its own one line, so the library's loggers (each of distributed's modules
    has its own level) are silenced while the client lives."""
    manager = logging.Logger.manager.loggerDict
    names = ["distributed", *(name for name in list(manager) if name.startswith("distributed."))]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _connect(distributed: ModuleType, address: str, timeout: float) -> Iterator[Client]:
    from distributed.comm.addressing import parse_address, parse_host_port

    try:  # checked before a Client exists: a half-made one complains on stderr as it goes
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise AuditError(f"{address}: not a Dask scheduler address such as tcp://host:8786 ({exc})") from None
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:  # refused, timed out
        raise AuditError(f"{address}: cannot reach a Dask scheduler ({_reason(exc)})") from None
    try:
        yield client
    finally:
        client.close()


def _check_workers(client: Client, address: str, timeout: float) -> int:
    """The number of worker threads, once every worker there imports this very onnxaudit."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise AuditError(f"{address}: the Dask scheduler has no workers (none joined within {timeout:g} s)") from None
    versions = client.run(worker_version, on_error="return")
    for worker, version in sorted(versions.items()):
        if isinstance(version, BaseException):
            why = f"cannot run onnxaudit ({_reason(version)})"
        elif version != __version__:
            why = f"runs onnxaudit {version}, this is {__version__}"
        else:
            continue
        raise AuditError(f"{address}: worker {worker} {why}; install onnxaudit {__version__} on every worker")
    return sum(int(info.get("nthreads", 1)) for info in client.scheduler_info()["workers"].values()) or 1


def _records(future: Future[list[Record]], paths: list[str], address: str) -> list[Record] | None:
    """The batch's records; None when a worker died under a batch of several files (KilledWorker: the
    scheduler gave up after its allowed-failures), which the caller then hands out one file at a time."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        return None if len(paths) > 1 else [Record(paths[0], "error", error=f"{paths[0]}: {DIED}")]
    except WorkerMismatch as exc:  # a worker that joined after the check
        raise AuditError(f"{address}: {exc}; install onnxaudit {__version__} on every worker") from None
    except Exception as exc:  # audit_on_worker never raises otherwise: the cluster failed (cancelled, lost...)
        raise AuditError(f"{address}: the cluster could not audit {paths[0]} ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
