"""Run one onnxruntime job in a child process with a wall-clock and a memory limit.

The child (`ortchild.py`) caps its own address space with RLIMIT_AS before importing onnxruntime;
the parent kills the child's whole process group when the clock runs out. Whatever happens, the
caller gets a ChildResult, never an exception from the child and never a hang.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHILD = Path(__file__).with_name("ortchild.py")
MAX_RESULT_BYTES = 64 * 2**20


@dataclass
class ChildResult:
    """outcome: ok | timeout | memory | crashed | load_error | run_error | input_error | error."""

    outcome: str
    message: str = ""
    payload: dict = field(default_factory=dict)
    seconds: float = 0.0


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # onnxruntime's own pool does the work; no second pool of threads
    return env


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session: take its threads and helpers
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read_result(job_dir: Path) -> dict | None:
    path = job_dir / "result.json"
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_child(job: dict, outputs_proto: bytes, timeout: float) -> ChildResult:
    """Run `job` (see ortchild.py) in a fresh interpreter; `timeout` seconds of wall clock at most."""
    with tempfile.TemporaryDirectory(prefix="onnxaudit-shapes-") as tmp:
        job_dir = Path(tmp)
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        (job_dir / "outputs.pb").write_bytes(outputs_proto)
        log = open(job_dir / "child.log", "wb")  # a file, not a pipe: a chatty child cannot block
        started = time.perf_counter()
        try:
            # -I: no user site, no PYTHON* variables, no cwd on sys.path. cwd is the empty job folder,
            # so any relative path inside the model resolves to nothing.
            proc = subprocess.Popen(
                [sys.executable, "-I", str(CHILD), str(job_dir)],
                cwd=job_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=_child_env(),
                start_new_session=True,
            )
        except OSError as exc:
            log.close()
            return ChildResult("error", f"cannot start a child process: {exc.strerror or exc}")
        try:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return ChildResult("timeout", f"killed after {timeout:g} s (--timeout)", seconds=timeout)
        finally:
            _kill(proc)  # also on KeyboardInterrupt: never leave a child running
            log.close()
        seconds = time.perf_counter() - started
        result = _read_result(job_dir)
        if code < 0:
            name = _signal_name(-code)
            hint = " (the kernel's out-of-memory killer?)" if name == "SIGKILL" else ""
            return ChildResult("crashed", f"onnxruntime child died with {name}{hint}", seconds=seconds)
        if result is None:
            return ChildResult("crashed", f"onnxruntime child exited with status {code} and no result", seconds=seconds)
        outcome = str(result.get("outcome", "error"))
        return ChildResult(outcome, str(result.get("message", "")), result, seconds)
