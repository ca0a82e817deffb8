"""A child process that audits file after file for one thread of a Dask worker, as a local scan's pool process does.

A Dask worker runs tasks beside its event loop's thread, and `io.isolate.run_isolated` forks only from a process
of one thread: there the wire walk and onnx's shape inference would run inside the worker, unprotected. So each
worker thread forks a child once (the other threads, the event loop's and the idle pool's, hold nothing the
audit needs) and hands it one path at a time over a pipe. The child has one thread, so the audit's own isolation
forks as it does in a local scan; a file that crashes the child or runs past FILE_TIMEOUT is that file's record,
and the next file gets a new child. Forked once per thread, not once per file: a fork of the worker per
file would add to each file's cost what a local scan's pool never pays.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import select
import signal
import struct
import threading
import time

from onnxaudit.api import Convention
from onnxaudit.scan.batch import DIED, Record, audit_one

FILE_TIMEOUT = 600.0  # seconds for one file's audit on a worker (a local scan waits for ever)
_LENGTH = struct.Struct("<Q")


class _Ended(Exception):
    """The child closed its end: it died."""


def _write(fd: int, payload: bytes) -> None:
    view = memoryview(_LENGTH.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    parts, got = [], 0
    while got < size:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and (left <= 0 or not select.select([fd], [], [], left)[0]):
            raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            raise _Ended
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _read(fd: int, deadline: float | None) -> bytes:
    (size,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size, deadline))
    return _read_exactly(fd, size, deadline)


def _serve(requests: int, answers: int) -> None:
    """The child: (path, convention, max_nodes) in, a pickled Record out, until the worker closes the pipe."""
    status = 1
    try:
        faulthandler.disable()  # a crash is the parent's one record, not a dump on the worker's stderr
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        keep = {0, 1, 2, requests, answers}
        for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
            if fd not in keep:  # the worker's sockets and the other threads' pipes: theirs to close, not ours
                try:
                    os.close(fd)
                except OSError:
                    pass
        while True:
            try:
                target, convention, max_nodes = pickle.loads(_read(requests, None))
            except _Ended:
                break
            _write(answers, pickle.dumps(audit_one(target, convention, max_nodes)))
        status = 0
    finally:
        os._exit(status)


class Auditor:
    """One forked child and the two ends of its pipes; `audit` restarts nothing: a dead child is replaced by
    the caller (`audit_in_child`)."""

    def __init__(self) -> None:
        requests_out, requests_in = os.pipe()
        answers_out, answers_in = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(requests_in)
            os.close(answers_out)
            _serve(requests_out, answers_in)
        os.close(requests_out)
        os.close(answers_in)
        self.pid, self.requests, self.answers = pid, requests_in, answers_out

    def audit(self, target: str, convention: Convention, max_nodes: int, timeout: float) -> Record:
        _write(self.requests, pickle.dumps((target, convention, max_nodes)))
        record: Record = pickle.loads(_read(self.answers, time.monotonic() + timeout))  # our own child's Record
        return record

    def stop(self) -> None:
        for fd in (self.requests, self.answers):
            os.close(fd)  # the child reads the end of its requests and leaves
        try:
            os.kill(self.pid, signal.SIGKILL)  # or is killed mid-file
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


_children: dict[int, Auditor] = {}  # by worker thread
_lock = threading.Lock()


def audit_in_child(target: str, convention: Convention, max_nodes: int, timeout: float = FILE_TIMEOUT) -> Record:
    """`target`'s record, audited by this thread's child (forked on first use and after a death)."""
    thread = threading.get_ident()
    with _lock:
        child = _children.get(thread)
    if child is None:
        child = Auditor()
        with _lock:
            _children[thread] = child
    try:
        return child.audit(target, convention, max_nodes, timeout)
    except (_Ended, TimeoutError, OSError) as exc:  # OSError: the pipe broke as the child died
        stop_children([thread])
        why = f"the audit did not finish within {timeout:g} s" if isinstance(exc, TimeoutError) else DIED
        return Record(target, "error", error=f"{target}: {why}")


def stop_children(threads: list[int] | None = None) -> None:
    """Stop the children of these threads (all by default): the next file forks afresh, from the worker's
    code as it is then."""
    with _lock:
        stopping = [_children.pop(t) for t in list(_children) if threads is None or t in threads]
    for child in stopping:
        child.stop()
