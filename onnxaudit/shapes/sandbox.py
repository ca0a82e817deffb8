"""Run one onnxruntime job in a child process with a wall-clock and a memory limit.

The child (`ortchild.py`) caps its own address space with RLIMIT_AS before importing onnxruntime,
loads the model at once and runs it when the parent says go; the parent kills the child's whole
process group when the clock runs out. Whatever happens, the caller gets a ChildResult, never an
exception from the child and never a hang.

The child is forked from the parent when that is safe (Linux, and this process runs a single
thread: a lock another thread held at the fork would stay held in the child for ever). A fork
skips a second interpreter's start and imports, and the child starts loading while the parent
still prepares (shape inference, the memory estimate). Elsewhere it is a fresh `python -I`.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from onnxaudit.io.isolate import address_space, signal_name
from onnxaudit.shapes import ortchild

if TYPE_CHECKING:
    import subprocess

CHILD = Path(__file__).with_name("ortchild.py")
MAX_RESULT_BYTES = 64 * 2**20
_KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
# Address space of a fresh `python -I` (about 14 MiB measured): a forked child starts with the parent's
# pages instead, shared and not new memory, so its limit allows what it inherits beyond this.
FRESH_INTERPRETER_BYTES = 16 * 2**20


@dataclass
class ChildResult:
    """outcome: ok | timeout | memory | crashed | load_error | run_error | input_error | error."""

    outcome: str
    message: str = ""
    payload: dict[str, Any] = field(default_factory=dict)  # the child's result.json
    seconds: float = 0.0


def fork_safe() -> bool:
    """Whether this process can fork the child: Linux (threads are counted in /proc) and one thread."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # onnxruntime's own pool does the work; no second pool of threads
    return env


def limits(max_memory: int, timeout: float) -> dict[str, object]:
    """What the child needs before anything else: its limits, and who its parent is."""
    return {
        "max_memory": max_memory,
        "timeout": timeout,
        "threads": max(1, min(4, os.cpu_count() or 1)),
        "parent": os.getpid(),
    }


class Child:
    """One child process, started with its limits only: it imports onnxruntime at once, loads the
    model when given the job (`send_job`), runs it on `run`'s go and is waited for under the
    wall-clock limit; `close` ends it. Use it as a context manager so no child outlives the caller."""

    def __init__(self, limits: dict[str, object], fork: bool | None = None) -> None:
        import tempfile  # here, not at import: it imports random and shutil, which a summary never needs

        self._tmp = tempfile.TemporaryDirectory(prefix="onnxaudit-shapes-")
        self.job_dir = Path(self._tmp.name)
        self.pid = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.status: int | None = None
        self.error = ""
        self.used = False
        self._control = -1
        self.started = time.perf_counter()
        self.forked = fork_safe() if fork is None else fork
        # a file, not a pipe: a chatty child cannot block
        with open(self.job_dir / "child.log", "wb") as log:
            try:
                if self.forked:
                    self._fork(limits, log.fileno())
                else:
                    self._spawn(limits, log)
            except OSError as exc:
                self.error = f"cannot start a child process: {exc.strerror or exc}"

    # ------------------------------------------------------------ starting

    def _fork(self, limits: dict[str, object], log: int) -> None:
        limits = dict(limits, inherited_bytes=max(0, address_space() - FRESH_INTERPRETER_BYTES))
        control_read, control_write = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = os.fork()
        except OSError:
            for fd in (control_read, control_write, null):
                os.close(fd)
            raise
        if pid == 0:  # the child: never returns into the parent's code
            code = 3
            try:
                os.setsid()  # its own process group, for the parent's kill
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.close(control_write)
                os.chdir(self.job_dir)  # a relative path inside the model resolves into the empty job folder
                gc.freeze()  # the parent's objects stay untouched: no copy of their pages, no collection of them
                gc.disable()
                code = ortchild.serve(str(self.job_dir), limits, control_read)
            finally:
                os._exit(code)
        os.close(control_read)
        os.close(null)
        self.pid, self._control = pid, control_write

    def _spawn(self, limits: dict[str, object], log: BinaryIO) -> None:
        import subprocess  # only here: a forked child needs none of it

        control_read, control_write = os.pipe()
        try:
            # -I: no user site, no PYTHON* variables, no cwd on sys.path. cwd is the empty job folder,
            # so any relative path inside the model resolves to nothing.
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(CHILD), str(self.job_dir), json.dumps(limits)],
                cwd=self.job_dir,
                stdin=control_read,
                stdout=log,
                stderr=log,
                env=_child_env(),
                start_new_session=True,
            )
        except OSError:
            os.close(control_write)
            raise
        finally:
            os.close(control_read)
        self.pid, self._control = self.proc.pid, control_write

    def send_job(self, job: dict[str, object], extra: bytes) -> None:
        """Hand the child its job (see ortchild.py); it starts loading the model."""
        self.used = True
        if self.error:
            return
        (self.job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        (self.job_dir / "outputs.pb").write_bytes(extra)
        self._say(ortchild.JOB)

    # ------------------------------------------------------------ waiting and ending

    def _reap(self, block: bool) -> bool:
        """Collect the child's exit status; True once it has ended."""
        if self.status is not None or not self.pid:
            return True
        if self.proc is not None:
            code = self.proc.wait() if block else self.proc.poll()
            if code is None:
                return False
            self.status = code
            return True
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.status = -_KILL
            return True
        if pid == 0:
            return False
        self.status = os.waitstatus_to_exitcode(status)
        return True

    def _wait(self, timeout: float) -> bool:
        """Wait for the child's exit at most `timeout` seconds: with a pidfd (Linux 5.3+) the exit
        wakes the parent at once; otherwise poll with short, growing sleeps."""
        deadline = time.monotonic() + timeout
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            pidfd = -1
        try:
            delay = 0.0005
            while not self._reap(block=False):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if pidfd >= 0:
                    select.select([pidfd], [], [], left)
                else:
                    time.sleep(min(delay, left))
                    delay = min(delay * 2, 0.02)
            return True
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def _kill(self) -> None:
        if not self.pid or self._reap(block=False):
            return
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.pid, _KILL)  # the child leads its own session: take its threads too
            elif self.proc is not None:  # pragma: no cover - Windows
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.pid, _KILL)  # forked a moment ago: not yet a group leader
            except (ProcessLookupError, PermissionError):
                pass
        self._reap(block=True)

    def _say(self, word: bytes) -> None:
        if self._control < 0:
            return
        try:
            os.write(self._control, word)
        except OSError:  # the child ended already (a load error): its result says why
            pass

    def _hang_up(self) -> None:
        if self._control >= 0:
            os.close(self._control)
            self._control = -1

    def close(self) -> None:
        """End the child (if it still runs) and remove its job folder."""
        self._hang_up()
        self._kill()
        self._tmp.cleanup()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, timeout: float) -> ChildResult:
        """Say go and wait for the result; `timeout` seconds of wall clock at most from now."""
        if self.error:
            return ChildResult("error", self.error)
        self._say(ortchild.GO)
        self._hang_up()
        try:
            if not self._wait(timeout):
                self._kill()
                return ChildResult("timeout", f"killed after {timeout:g} s (--timeout)", seconds=timeout)
        finally:
            self._kill()  # also on KeyboardInterrupt: never leave a child running
        return self._result(time.perf_counter() - self.started)

    def _result(self, seconds: float) -> ChildResult:
        code = self.status if self.status is not None else -_KILL
        result = _read_result(self.job_dir)
        if code < 0:
            name = signal_name(-code)
            hint = " (the kernel's out-of-memory killer?)" if name == "SIGKILL" else ""
            return ChildResult("crashed", f"onnxruntime child died with {name}{hint}", seconds=seconds)
        if result is None:
            return ChildResult("crashed", f"onnxruntime child exited with status {code} and no result", seconds=seconds)
        outcome = str(result.get("outcome", "error"))
        return ChildResult(outcome, str(result.get("message", "")), result, seconds)


def _read_result(job_dir: Path) -> dict[str, Any] | None:
    path = job_dir / ortchild.RESULT
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return None
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None  # anything else is no result


def run_child(job: dict[str, object], outputs_proto: bytes, max_memory: int, timeout: float) -> ChildResult:
    """Run `job` (see ortchild.py) in a new child at once; `timeout` seconds of wall clock at most."""
    with Child(limits(max_memory, timeout)) as child:
        child.send_job(job, outputs_proto)
        return child.run(timeout)
