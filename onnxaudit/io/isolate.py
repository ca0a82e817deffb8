"""Run one native call on untrusted input in a forked child, so that its crash, hang or runaway
allocation becomes a stated failure instead of the end of the process.

onnx's C++ shape inference reads the model's structure, which a hostile file controls; a segfault
there would take the whole audit down with no one-line error. A fork costs ~1-3 ms (the parent holds
only the structure, never weights), far less than a second interpreter.
"""

from __future__ import annotations

import errno
import faulthandler
import functools
import os
import select
import signal
import struct
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence

# the child may grow this much beyond the parent's address space before its allocation fails
CHILD_EXTRA_MEMORY = 2 << 30
_OK, _RAISED, _FRAME = b"\0", b"\1", b"\2"
_HEADER = struct.Struct("<cQ")  # the answer's kind, then its length in bytes
MAX_ANSWER_BYTES = 2 << 30  # a structure over this is refused by the reader long before

# What a call gives back: bytes, or parts written one after another (views into a mapped file are
# never copied into one buffer); the parent receives them joined.
Answer = bytes | tuple[bytes | memoryview, ...]


class _Frames:
    """Where send_frame writes: the child's pipe (set in the child), or run_isolated's `frames` itself when the call
    runs in this process (not fork_safe)."""

    pipe = -1
    sink: Callable[[bytearray], object] | None = None
    # frames sent with later=True that the pipe had no room for yet (in the child), oldest first, each its parts
    # not written yet
    waiting: deque[list[bytes | memoryview]] = deque()


def send_frame(parts: Sequence[bytes | memoryview], later: bool = False) -> None:
    """From inside a call run by run_isolated(..., frames=...): hand `parts` (joined) to `frames` in the parent now,
    while the call goes on (each is read as it comes, before the answer). `later`: the call does not wait for the
    parent to take it: whatever the pipe has no room for now waits in the child, written before anything sent after
    it (at the next send_frame, or before the answer). The parts are then kept until written, so a view in them must
    stay valid (a mapped file the child holds open)."""
    if _Frames.pipe >= 0:
        frame = [_HEADER.pack(_FRAME, sum(len(part) for part in parts)), *parts]
        if not later:
            _write_waiting(_Frames.pipe)
            _write_all(_Frames.pipe, frame)
            return
        _Frames.waiting.append(frame)
        _write_waiting(_Frames.pipe, block=False)
    elif _Frames.sink is not None:
        _Frames.sink(bytearray(b"".join(parts)))


def _write_waiting(fd: int, block: bool = True) -> None:
    """Write the frames waiting (send_frame's later), oldest first: all of them, or (not `block`) as much as the
    pipe takes now."""
    waiting = _Frames.waiting
    if not waiting:
        return
    os.set_blocking(fd, block)
    try:
        while waiting:
            rest = _write_all(fd, waiting[0])
            if rest:  # the pipe is full: only without `block`
                waiting[0] = rest
                return
            waiting.popleft()
    finally:
        os.set_blocking(fd, True)


class IsolatedFailure(Exception):
    """The call raised, crashed, ran out of time or memory; the message says which, in one line."""


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def address_space() -> int:
    """This process's address space in bytes (0 when /proc cannot say)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _limit_memory() -> None:
    current = address_space()
    if not current:
        return  # no /proc: the wall-clock limit still holds
    try:
        import resource

        limit = current + CHILD_EXTRA_MEMORY
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):
        pass  # no rlimits: the wall-clock limit still holds


def _child(call: Callable[[], Answer], out: int) -> None:
    status = 1
    try:
        faulthandler.disable()  # a crash is reported by the parent, in one line, not as a dump
        _silence()
        _limit_memory()
        _Frames.pipe, _Frames.waiting = out, deque()
        try:
            kind, payload = _OK, call()
        except BaseException as exc:  # noqa: BLE001 - every failure goes back as one line
            kind, payload = _RAISED, _first_line(exc).encode("utf-8", "replace")
        parts = payload if isinstance(payload, tuple) else (payload,)
        header = _HEADER.pack(kind, sum(len(part) for part in parts))
        _write_waiting(out)  # the frames sent before it, first
        _write_all(out, [header, *parts])
        status = 0
    finally:
        os._exit(status)  # never return into the parent's code, never run its atexit handlers


def _silence() -> None:
    """Send the child's stdout and stderr to /dev/null: native code failing on a hostile file writes
    there (onnx's C++ shape inference aborting prints the assertion) and the user's terminal, or a
    scan's output, must see only the parent's one line."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in (1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


# buffers given to one writev(2): POSIX guarantees at least 16, Linux takes 1024
_IOV_MAX = 1024


def _write_all(fd: int, parts: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """Write `parts` one after another, never copied into one buffer, up to _IOV_MAX of them per writev:
    a light copy of 200k nodes comes in ~290k parts, which one write each made ~290k system calls and as
    many turns of the parent reading them. What is left to write: nothing, but on a non-blocking `fd` whose
    pipe filled up."""
    views = [part for part in parts if len(part)]  # bytes, or one-dimensional views of bytes
    first = 0
    while first < len(views):
        batch = views[first : first + _IOV_MAX]
        try:
            written = _writev(fd, batch)
        except BlockingIOError:
            return views[first:]
        if written <= 0:
            raise OSError(errno.EIO, "the pipe took nothing")
        for view in batch:  # step over what was written whole; a part written in part stays, cut
            if written < len(view):
                views[first] = memoryview(view)[written:]
                break
            written -= len(view)
            first += 1
    return []


def _writev(fd: int, views: list[bytes | memoryview]) -> int:
    try:
        return os.writev(fd, views)
    except OSError as exc:
        if exc.errno == errno.EFAULT:
            # a part views a mapped file whose pages vanished (truncated by another process):
            # write(2) says EFAULT where touching them ourselves raises SIGBUS; report it as that
            signal.raise_signal(signal.SIGBUS)
        raise


class _Reader:
    """Reads the child's answer under one deadline, killing the child when it passes."""

    def __init__(self, pid: int, source: int, timeout: float) -> None:
        self.pid, self.source, self.timeout = pid, source, timeout
        self.deadline = time.monotonic() + timeout

    def fill(self, view: memoryview) -> bool:
        """Fill `view` from the pipe; False when the child closed it first."""
        got = 0
        while got < len(view):
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.source], [], [], left)[0]:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise IsolatedFailure(f"timed out after {self.timeout:g} s")
            n = os.readv(self.source, [view[got:]])
            if n == 0:
                return False
            got += n
        return True


def _collect(
    pid: int, source: int, timeout: float, frames: Callable[[bytearray], object] | None = None
) -> tuple[bytes, bytearray | None, int]:
    """(kind, answer, wait status); answer None when the child ended before giving all of it. The
    answer is read straight into one buffer of the announced size: no chunks joined, no copies. Frames
    the child sends first (send_frame) go to `frames` as each arrives; if it raises, the child is ended first."""
    reader = _Reader(pid, source, timeout)
    header = bytearray(_HEADER.size)
    kind, answer = b"", None
    while reader.fill(memoryview(header)):
        kind, length = _HEADER.unpack(header)
        if length > MAX_ANSWER_BYTES:
            os.kill(pid, signal.SIGKILL)
            break
        answer = bytearray(length)
        if not reader.fill(memoryview(answer)):
            answer = None
            break
        if kind != _FRAME:
            break
        if frames is not None:
            _meanwhile(pid, functools.partial(frames, answer))
        answer = None
    return kind, answer, os.waitpid(pid, 0)[1]


# Python threads known to be idle between calls and reset in a forked child by their own library: fsspec's
# IO loop (started by the first read of a URL, never stopped; fsspec.asyn.reset_after_fork runs at fork)
FORK_AWARE_THREADS = frozenset({"fsspecIO"})


def _fsspec_threads() -> set[threading.Thread]:
    """fsspec's IO thread and its loop's default executor (aiohttp resolves host names there, botocore reads
    credentials): idle between fsspec's calls, which are synchronous, so none is in flight while we fork."""
    threads = {t for t in threading.enumerate() if t.name in FORK_AWARE_THREADS}
    asyn = sys.modules.get("fsspec.asyn")
    loop = getattr(asyn, "loop", [None])[0] if asyn is not None else None
    executor = getattr(loop, "_default_executor", None)  # asyncio's, created on the loop's first use
    return threads | set(getattr(executor, "_threads", ()))


def fork_safe() -> bool:
    """Whether this process may fork a child that runs Python: Linux, and no other Python thread (a
    lock one holds at the fork, such as the import lock, would stay held in the child for ever) but the
    FORK_AWARE_THREADS: without that, one URL read in a process would leave every later local file walked
    without isolation. Native worker threads are not counted: numpy's OpenBLAS pool, the usual one,
    registers fork handlers, and a child stuck anyway is killed at its time limit."""
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        return False
    allowed = _fsspec_threads() | {threading.current_thread()}
    return all(t in allowed for t in threading.enumerate())


def _widen(pipe: int) -> None:
    """Let the pipe hold up to 1 MiB: a large answer (a 100 MB light copy) then passes in 16x fewer
    turns of the child writing and the parent reading than through the default 64 KiB."""
    try:
        import fcntl

        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (OSError, AttributeError, ImportError):
        pass  # over the system's limit, or not Linux: the default size works, only slower


def _meanwhile(pid: int, work: Callable[[], object]) -> None:
    """work() while child `pid` runs; if it raises, the child is ended first, never left behind."""
    try:
        work()
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def run_isolated(
    call: Callable[[], Answer],
    timeout: float = 60.0,
    meanwhile: Callable[[], object] | None = None,
    frames: Callable[[bytearray], object] | None = None,
) -> bytes | bytearray:
    """call() in a forked child; its bytes (its parts joined), or IsolatedFailure. In-process where forking is not
    safe (fork_safe). `meanwhile`: work of this process's own, done while the child runs (before its answer is
    read; the time limit counts from after it). `frames`: given each frame the call sends (send_frame) as it
    arrives, while the call goes on."""
    if not fork_safe():
        if meanwhile is not None:
            meanwhile()
        _Frames.sink = frames
        try:
            answer = call()
        except Exception as exc:
            raise IsolatedFailure(_first_line(exc)) from None
        finally:
            _Frames.sink = None
        return b"".join(answer) if isinstance(answer, tuple) else answer
    source, sink = os.pipe()
    _widen(sink)
    with warnings.catch_warnings():  # Python 3.12+ warns of any fork beside threads: the ones allowed are idle
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(source)
        _child(call, sink)
    os.close(sink)
    try:
        if meanwhile is not None:
            _meanwhile(pid, meanwhile)
        kind, received, status = _collect(pid, source, timeout, frames)
    finally:
        os.close(source)
    if os.WIFSIGNALED(status) and received is None:
        raise IsolatedFailure(f"crashed ({signal_name(os.WTERMSIG(status))})")
    if received is None:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        raise IsolatedFailure(f"ended without an answer (exit status {code}; out of memory?)")
    if kind == _RAISED:
        raise IsolatedFailure(received.decode("utf-8", "replace"))
    return received
