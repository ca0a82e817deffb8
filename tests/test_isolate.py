"""isolate: a native call on untrusted input runs in a forked child; its crash is a stated failure."""

from __future__ import annotations

import ctypes
import os
import time
from types import SimpleNamespace

import pytest
from builders import audit_model, seed_cnn

from onnxaudit import onnxcore
from onnxaudit.isolate import IsolatedFailure, run_isolated


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
