"""Test helpers for hostile input: run the CLI in child processes and watch what they touch.

`CliRunner` starts one server interpreter that imports onnxaudit once; each run is a fork of it that
installs an audit hook recording every path opened, sends stdout/stderr to files and calls
`onnxaudit.cli.main` exactly as the console script does. The server waits with a deadline (a hang is
killed and reported, never waited for) and reports the child's own peak memory from wait4.

`Canary` is a file outside the model's folder watched with inotify (IN_OPEN | IN_ACCESS on its
inode), so an open through a symlink or a hard link is seen too, whatever the atime settings.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CANARY_TEXT = b"CANARY-5e1f-do-not-read-me " * 8

_SERVER = r"""
import json, os, signal, sys, time
from onnxaudit.cli.main import main

def child(request):
    opened = []
    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes)):
            opened.append(os.fsdecode(args[0]))
    sys.addaudithook(hook)
    for fd, name in ((0, os.devnull), (1, request["out"]), (2, request["err"])):
        os.dup2(os.open(name, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    code = 2
    try:
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with open(request["record"], "w") as f:
            json.dump(opened, f)
    os._exit(code)

for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        child(request)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            code = "timeout"
            break
        time.sleep(0.005)
    print(json.dumps({"code": code, "peak_kib": usage.ru_maxrss}), flush=True)
"""


@dataclass
class Outcome:
    code: int | str  # "timeout" when the run had to be killed
    stdout: str
    stderr: str
    peak_kib: int
    opened: list[str]
    raw: bytes = b""  # stdout + stderr as written, for checks on bytes (raw control characters, valid UTF-8)


class CliRunner:
    """One warm interpreter that forks a fresh child per CLI run."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, argv: list[str], workdir: Path, timeout: float = 60) -> Outcome:
        files = {k: workdir / f"run.{k}" for k in ("out", "err", "record")}
        for f in files.values():
            f.unlink(missing_ok=True)
        request = {"argv": argv, "timeout": timeout, **{k: str(v) for k, v in files.items()}}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        opened = json.loads(files["record"].read_text()) if files["record"].exists() else []
        raw_out = files["out"].read_bytes() if files["out"].exists() else b""
        raw_err = files["err"].read_bytes() if files["err"].exists() else b""
        out, err = (b.decode("utf-8", "backslashreplace") for b in (raw_out, raw_err))
        return Outcome(reply["code"], out, err, reply["peak_kib"], opened, raw_out + raw_err)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


IN_ACCESS = 0x001
IN_OPEN = 0x020


class Canary:
    """A file no run may open or read. touched() lists what happened to it since the last call."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(CANARY_TEXT)
        self.path = path
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if self._libc.inotify_add_watch(self._fd, os.fsencode(path), IN_OPEN | IN_ACCESS) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def touched(self) -> list[str]:
        events = []
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                return events
            pos = 0
            while pos < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, pos)
                events.append("open" if mask & IN_OPEN else "access" if mask & IN_ACCESS else hex(mask))
                pos += 16 + length

    def close(self) -> None:
        os.close(self._fd)


# C0 controls but newline and tab, DEL, C1 controls, and the bidi overrides/isolates (U+202A..U+202E, U+2066..U+2069)
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def raw_controls(raw: bytes) -> list[str]:
    """What in `raw` (a command's output bytes) a terminal or CI log would act on or could not show:
    invalid UTF-8 (as U+DCxx), control characters other than newline and tab, bidi overrides."""
    return sorted(set(_RAW_CONTROL.findall(raw.decode("utf-8", "surrogateescape"))))
