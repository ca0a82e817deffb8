"""isolate: a native call on untrusted input runs in a forked child; its crash is a stated failure."""

from __future__ import annotations

import ctypes
import os
import time
from types import SimpleNamespace

import pytest
from builders import audit_model, seed_cnn

from onnxaudit.io import onnxcore
from onnxaudit.io.isolate import IsolatedFailure, run_isolated


def _segfault() -> bytes:
    return ctypes.string_at(0)  # reads address 0: SIGSEGV in the process that runs it


def _refuse() -> bytes:
    raise ValueError("no")


def test_the_answer_comes_back_from_the_child():
    parent = os.getpid()
    assert run_isolated(lambda: str(os.getpid()).encode()) != str(parent).encode()
    assert run_isolated(lambda: b"x" * 3_000_000) == b"x" * 3_000_000  # more than a pipe buffer


def test_a_native_crash_is_a_failure_not_the_end_of_the_process():
    with pytest.raises(IsolatedFailure, match=r"crashed \(SIGSEGV\)"):
        run_isolated(_segfault)


def test_an_exception_comes_back_as_its_first_line():
    def fail() -> bytes:
        raise ValueError("bad dims\nsecond line")

    with pytest.raises(IsolatedFailure, match=r"^bad dims$"):
        run_isolated(fail)


def test_a_hang_is_stopped_at_the_time_limit():
    start = time.monotonic()
    with pytest.raises(IsolatedFailure, match="timed out after 0.5 s"):
        run_isolated(lambda: time.sleep(60) or b"", timeout=0.5)
    assert time.monotonic() - start < 10


def test_a_runaway_allocation_fails_in_the_child():
    with pytest.raises(IsolatedFailure, match="MemoryError|out of memory"):
        run_isolated(lambda: bytes(8 << 30))


def test_summary_survives_a_crash_in_shape_inference(tmp_path, monkeypatch):
    monkeypatch.setattr(onnxcore, "_SHAPE_INFERENCE", SimpleNamespace(infer_shapes=lambda *a: _segfault()))
    report = audit_model(tmp_path, seed_cnn())
    assert report.totals.total == (7 * 7 * 3 * 32 + 32) + 4 * 32 + (32 * 32 * 32 + 1)
    assert any("static shape inference failed: crashed (SIGSEGV)" in line for line in report.limits)


def test_beside_another_python_thread_the_call_runs_in_process():
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert run_isolated(lambda: str(os.getpid()).encode()) == str(os.getpid()).encode()
        with pytest.raises(IsolatedFailure, match="^no$"):
            run_isolated(_refuse)
    finally:
        stop.set()
        thread.join()


def test_an_answer_viewing_a_truncated_mapping_is_a_sigbus(tmp_path):
    import mmap

    path = tmp_path / "f.bin"
    path.write_bytes(bytes(1 << 16))
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    os.truncate(path, 4096)  # the pages past the first vanish; the child only hands them on
    try:
        with pytest.raises(IsolatedFailure, match=r"crashed \(SIGBUS\)"):
            run_isolated(lambda: (memoryview(mapped)[8192:],))
    finally:
        mapped.close()


def test_an_answer_in_parts_comes_back_joined():
    assert run_isolated(lambda: (b"head", b"x" * 5_000_000, b"tail")) == b"head" + b"x" * 5_000_000 + b"tail"
    assert run_isolated(lambda: b"") == b""


def test_work_meanwhile_runs_here_while_the_child_runs(tmp_path):
    flag = tmp_path / "flag"

    def child() -> bytes:
        while not flag.exists():  # the parent's work happens while this one runs, or never: the time limit
            time.sleep(0.01)
        return flag.read_bytes()

    def meanwhile() -> None:  # the flag appears whole (renamed into place): created empty, then written, a child
        (tmp_path / "part").write_text(str(os.getpid()))  # could read it between the two (seen under load)
        (tmp_path / "part").replace(flag)

    assert run_isolated(child, timeout=30, meanwhile=meanwhile) == str(os.getpid()).encode()


def test_work_meanwhile_failing_ends_the_child_first(tmp_path):
    pid_file = tmp_path / "pid"

    def child() -> bytes:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)
        return b""

    def fail() -> None:
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.01)
        raise KeyError("meanwhile")

    start = time.monotonic()
    with pytest.raises(KeyError, match="meanwhile"):
        run_isolated(child, timeout=30, meanwhile=fail)
    assert time.monotonic() - start < 10
    assert not os.path.exists(f"/proc/{pid_file.read_text()}")  # killed and reaped: not even a zombie left


def test_frames_arrive_in_order_while_the_child_goes_on(tmp_path):
    """Each frame the call sends is handed over as it arrives: the child waits for the parent's answer to the first
    before it sends the next, and both come before the call's own answer. In this process alike (not fork_safe)."""
    from onnxaudit.io import isolate

    seen = tmp_path / "seen"

    def child() -> bytes:
        for k in range(3):
            isolate.send_frame([b"frame", str(k).encode(), b"x" * 300_000])  # several pipe-fulls: written in turns
            while not (seen.exists() and seen.read_text().endswith(str(k))):  # the parent took it already
                time.sleep(0.01)
        return b"answer"

    got: list[bytes] = []

    def take(frame: bytearray) -> None:
        got.append(bytes(frame[:6]))
        seen.write_text(seen.read_text() + str(len(got) - 1) if seen.exists() else "0")

    assert run_isolated(child, timeout=30, frames=take) == b"answer"
    assert got == [b"frame0", b"frame1", b"frame2"]
    got.clear()
    seen.unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(isolate, "fork_safe", lambda: False)
        assert run_isolated(child, timeout=30, frames=take) == b"answer"
    assert got == [b"frame0", b"frame1", b"frame2"]


def test_frames_sent_later_never_hold_the_child_back(tmp_path):
    """send_frame(later=True): the child goes on while the parent has not taken a frame yet, even when its frames
    are more than the pipe holds; they arrive whole, in order, before the answer."""
    from onnxaudit.io import isolate

    walked = tmp_path / "walked"
    sizes = [700_000, 1, 900_000, 1_500_000]  # 3 MB: over the pipe's 1 MiB (or its default 64 KiB)

    def child() -> bytes:
        for k, size in enumerate(sizes):
            isolate.send_frame([str(k).encode(), bytes([k]) * size], later=True)
        walked.write_text("done")
        return b"answer"

    got: list[tuple[bytes, int]] = []
    walked_first: list[bool] = []

    def take(frame: bytearray) -> None:
        if not got:  # the child ends its call while the parent still holds the first frame
            deadline = time.monotonic() + 20
            while not walked.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            walked_first.append(walked.exists())
        got.append((bytes(frame[:1]), len(frame) - 1))
        assert frame[1:] == bytes([len(got) - 1]) * sizes[len(got) - 1]

    assert run_isolated(child, timeout=30, frames=take) == b"answer"
    assert walked_first == [True]
    assert got == [(str(k).encode(), size) for k, size in enumerate(sizes)]


def test_frames_failing_end_the_child_first(tmp_path):
    from onnxaudit.io import isolate

    pid_file = tmp_path / "pid"

    def child() -> bytes:
        pid_file.write_text(str(os.getpid()))
        isolate.send_frame([b"one"])
        time.sleep(60)
        return b""

    def fail(frame: bytearray) -> None:
        raise KeyError(bytes(frame).decode())

    start = time.monotonic()
    with pytest.raises(KeyError, match="one"):
        run_isolated(child, timeout=30, frames=fail)
    assert time.monotonic() - start < 10
    assert not os.path.exists(f"/proc/{pid_file.read_text()}")
