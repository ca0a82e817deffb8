"""The child side of a shape-confirmation run: limit itself, run onnxruntime once, record shapes.

Forked by `sandbox.py` from the parent (`serve`), or where a fork is not safe started as
`python -I ortchild.py JOB_DIR LIMITS` (by path, not `-m`, so that child never imports the onnxaudit
package and onnx: only the standard library, numpy and onnxruntime). Either way it sets its limits,
imports onnxruntime, then follows the parent's words on a pipe: JOB (read JOB_DIR/job.json and
outputs.pb, load the model), GO (run it); end of file means the run was refused. It writes
JOB_DIR/result.json and nothing else (besides onnxruntime's profile with the profile method, read
back as a stream and deleted). Limits are set before anything large is imported or allocated.

Methods (job["method"]): outputs runs with every value as a graph output and records each one;
profile runs with onnxruntime's profiler on, records the graph outputs, then keeps the kernel events
of the main graph's nodes (job["profile_nodes"]) for the parent to map onto values.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Generator
    from types import ModuleType
    from typing import TextIO

# JSON as read from or written to the job folder: job.json, the limits, result.json
Json = dict[str, Any]

RESULT = "result.json"
PROFILE_PREFIX = "profile"
PRECISION_CAST = "InsertedPrecisionFreeCast_"  # onnxruntime's Casts around ops without a 16-bit kernel
_CHUNK = 1 << 20
_MAX_EVENT = 16 << 20  # one profile event larger than this is not onnxruntime's
_PER_NAME = 64  # events kept under one name (a main node runs once; If/Loop bodies may share its name)
JOB, GO = b"J", b"G"  # the parent's words on the control pipe
_MEMORY_WORDS = ("bad_alloc", "failed to allocate", "out of memory", "cannot allocate", "memoryerror")


def _set(which: str, value: int) -> bool:
    try:
        import resource
    except ImportError:  # not POSIX: only the parent's wall-clock kill applies
        return False
    limit = getattr(resource, which)
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(limit, (value, hard))
    except (ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS below the current size
        return False
    return True


def _limit(max_memory: int) -> bool:
    """Cap address space and core dumps; False where the platform has no rlimits."""
    _set("RLIMIT_CORE", 0)  # a killed 4 GiB process must not dump core
    return _set("RLIMIT_AS", max_memory)


def _limit_files(max_bytes: int) -> None:
    _set("RLIMIT_FSIZE", max_bytes)
    try:
        import signal

        # past the limit a write fails (EFBIG) instead of killing the child: a cut profile is still read
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (ImportError, AttributeError, ValueError, OSError):
        pass


def _outlive_no_parent(timeout: float, threads: int, parent: int) -> None:
    """Never outlive the run: die with the parent (Linux), and let the kernel stop a spinning child
    by CPU time even if the parent was killed before it could enforce --timeout."""
    _set("RLIMIT_CPU", int(timeout * max(threads, 1)) + 10)
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(3)


def _write(job_dir: str, result: Json) -> None:
    tmp = os.path.join(job_dir, RESULT + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, os.path.join(job_dir, RESULT))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:1000]


def _failure(kind: str, exc: BaseException) -> Json:
    line = _first_line(exc)
    if isinstance(exc, MemoryError) or any(w in line.lower() for w in _MEMORY_WORDS):
        kind = "memory"
    return {"outcome": kind, "message": line}


def _copy_model(path: str, size: int, extra: bytes, dest: str) -> None:
    """Write the file the parent read (a regular file of the size it saw) plus `extra` to `dest`.

    onnxruntime then loads a path: it parses the file once instead of holding a Python copy of the
    bytes as well (about 1x the file size instead of 3x). The copy goes through the kernel.
    """
    src = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            raise OSError("the model file changed since onnxaudit read it")
        with open(dest, "wb") as out:
            offset = 0
            while offset < size:
                try:
                    sent = os.sendfile(out.fileno(), src, offset, size - offset)
                except (AttributeError, OSError):  # no sendfile to regular files here: copy in chunks
                    os.lseek(src, offset, os.SEEK_SET)
                    chunk = os.read(src, min(size - offset, 1 << 24))
                    sent = out.write(chunk)
                if not sent:
                    raise OSError("the model file is shorter than onnxaudit read it")
                offset += sent
            out.write(extra)
    finally:
        os.close(src)


def _feed(np: ModuleType, spec: Json) -> Any:
    """One input array: real data from a .npy file, or deterministic seeded values."""
    if spec["source"] == "file":
        # asarray, not ascontiguousarray: that makes a 0-d array 1-d
        return np.asarray(np.load(spec["file"], allow_pickle=False), dtype=spec["dtype"], order="C")
    shape = tuple(spec["shape"])
    rng = np.random.default_rng(spec["seed"])
    dtype = spec["dtype"]
    if dtype == "str":
        return np.full(shape, "a", dtype=object)
    if dtype == "bool":  # masks: all true, so nothing is masked away
        return np.ones(shape, dtype=np.bool_)
    if spec["source"] == "constant":  # a value the graph compares the input with
        return np.full(shape, spec["low"], dtype=dtype)
    if spec["source"] == "ids" or np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(spec["low"], spec["high"], size=shape, dtype=np.int64).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def _observe(value: Any) -> Json:  # an onnxruntime OrtValue
    if value.is_tensor():
        return {"shape": [int(d) for d in value.shape()], "type": value.data_type()}
    return {"kind": value.data_type()}


_NUMPY_TO_ORT = {"float32": "float", "float64": "double", "object": "string"}


def _observe_array(value: object) -> Json:
    """The same record as `_observe`, from a numpy output of the plain run."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        name = _NUMPY_TO_ORT.get(value.dtype.name, value.dtype.name)
        return {"shape": [int(d) for d in value.shape], "type": f"tensor({name})"}
    return {"kind": type(value).__name__}


def _json_items(f: TextIO, max_item: int) -> Generator[Any, None, bool]:
    """The items of the JSON array in text file `f`, one at a time, never holding more than one item
    (plus a chunk) in memory. Returns True at the closing bracket, False where the text ends early
    (a profile cut at the file-size limit). Raises ValueError for text that is not a JSON array."""
    decoder = json.JSONDecoder()
    buf, pos, eof, opened = "", 0, False, False
    while True:
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n" + ("," if opened else ""):
                pos += 1
            if pos < len(buf) or eof:
                break
            chunk = f.read(_CHUNK)
            buf, pos, eof = chunk, 0, not chunk
        if pos >= len(buf):
            return False
        if not opened:
            if buf[pos] != "[":
                raise ValueError("onnxruntime's profile is not a JSON array")
            opened, pos = True, pos + 1
            continue
        if buf[pos] == "]":
            return True
        item: Any = None
        while True:
            try:
                item, pos = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError:
                if eof:
                    return False
                if len(buf) - pos > max_item:
                    raise ValueError(
                        f"onnxruntime's profile has an event over {max_item >> 20} MiB or text that is not JSON"
                    ) from None
                chunk = f.read(_CHUNK)
                buf, pos, eof = buf[pos:] + chunk, 0, not chunk
        yield item


def _tensors(items: object) -> list[list[Any] | None]:
    """[{"float": [1, 16]}, ...] -> [["float", [1, 16]], ...]; a malformed entry becomes None."""
    out: list[list[Any] | None] = []
    if type(items) is not list:
        return out
    for item in items:
        if type(item) is dict and len(item) == 1:
            kind, dims = next(iter(item.items()))  # JSON keys are str
            if type(dims) is list and all(type(d) is int for d in dims):
                out.append([kind, dims])
                continue
        out.append(None)
    return out


def read_profile(path: str, wanted: dict[str, str]) -> Json:
    """The kernel events of the nodes in `wanted` (event name -> op type) from onnxruntime's profile,
    streamed: [name, op, node index, ts, dur, outputs, inputs] each, at most _PER_NAME per name."""
    kept: dict[str, list[list[Any]]] = {}
    crowded: set[str] = set()
    kernels = casts = 0
    complete = False
    with open(path, encoding="utf-8", errors="replace") as f:
        items = _json_items(f, _MAX_EVENT)
        while True:
            try:
                event = next(items)
            except StopIteration as stop:
                complete = bool(stop.value)
                break
            if not isinstance(event, dict) or event.get("cat") != "Node":
                continue
            label = event.get("name")
            if not isinstance(label, str) or not label.endswith("_kernel_time"):
                continue
            kernels += 1
            args = event.get("args")
            if not isinstance(args, dict):
                args = {}
            name, op = label[: -len("_kernel_time")], str(args.get("op_name", ""))
            if name.startswith(PRECISION_CAST) and op == "Cast":
                casts += 1
            if wanted.get(name) != op:
                continue
            events = kept.setdefault(name, [])
            if len(events) >= _PER_NAME:
                crowded.add(name)
                continue
            index = args.get("node_index", args.get("graph_index", -1))
            try:
                record = [name, op, int(index), int(event.get("ts", 0)), int(event.get("dur", 0))]
            except (TypeError, ValueError):
                continue
            events.append(record + [_tensors(args.get("output_type_shape")), _tensors(args.get("input_type_shape"))])
    return {
        "events": [e for events in kept.values() for e in events],
        "crowded": sorted(crowded),
        "kernels": kernels,
        "precision_casts": casts,
        "complete": complete,
    }


def _load(ort: ModuleType, job_dir: str, job: Json, extra: bytes, threads: int) -> Any:
    """The session, loaded from a copy of the file (plus `extra` outputs) with the job's options."""
    model_path = os.path.join(job_dir, "model.onnx")
    _copy_model(job["model"], int(job["size"]), extra, model_path)
    # nothing but result.json (and onnxruntime's profile) is written from here on
    _limit_files(max(64 * 2**20, int(job.get("max_profile_bytes", 0))))
    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors come back as exceptions; keep the child's stderr quiet
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle pool threads sleep instead of spinning: a one-off run on a shared machine gains nothing from
    # busy-waiting (deep_cnn: the same wall time, ~15% less cpu measured)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if job["optimized"] else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    if job.get("method") == "profile":
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(job_dir, PROFILE_PREFIX)
    try:
        return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    finally:
        os.unlink(model_path)  # loaded (or refused): the copy's disk space is not needed any more


def _next(control: int) -> bytes:
    """The parent's next word: JOB (job.json is written), GO (run it), or b"" (refused, or gone)."""
    try:
        return os.read(control, 1)
    except OSError:
        return b""


def _read_job(job_dir: str) -> tuple[Json, bytes]:
    with open(os.path.join(job_dir, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    with open(os.path.join(job_dir, "outputs.pb"), "rb") as f:
        return job, f.read()


def run(job_dir: str, limits: Json, control: int) -> Json | None:
    """Limit this process, import onnxruntime, then follow the parent's words on `control`: load the
    model on JOB, run it on GO. None when the parent gave up before GO (nothing to report).

    The child starts before the parent has read the model, so the imports overlap the parent's reading
    and counting, and the loading its shape inference and memory estimate; the run waits for GO, which
    the parent gives only for a model its checks let through."""
    threads = int(limits["threads"])
    limited = _limit(int(limits["max_memory"]) + int(limits.get("inherited_bytes", 0)))
    _outlive_no_parent(float(limits["timeout"]), threads, int(limits["parent"]))
    started = time.perf_counter()
    try:
        import numpy as np
        import onnxruntime as ort
    except (ImportError, MemoryError, OSError) as exc:  # a tiny --max-memory cannot even map the libraries
        return {"outcome": "memory" if limited else "load_error", "message": f"cannot start onnxruntime: {exc}"}
    if _next(control) != JOB:
        return None
    job, extra = _read_job(job_dir)
    asked = time.perf_counter()
    try:
        session = _load(ort, job_dir, job, extra, threads)
    except Exception as exc:
        return _failure("load_error", exc)
    loaded = time.perf_counter()
    if _next(control) != GO:
        return None
    go = time.perf_counter()
    try:
        feeds = {spec["name"]: _feed(np, spec) for spec in job["inputs"]}
    except Exception as exc:
        return _failure("input_error", exc)
    names = job["outputs"]
    try:
        if any(a.dtype == object for a in feeds.values()):
            # onnxruntime binds no string OrtValues: the plain run copies outputs into numpy
            arrays = session.run(names, feeds)
            observed = [_observe_array(a) for a in arrays]
        else:
            ort_feeds = {k: ort.OrtValue.ortvalue_from_numpy(a) for k, a in feeds.items()}
            observed = [_observe(v) for v in session.run_with_ort_values(names, ort_feeds)]
    except Exception as exc:
        return _failure("run_error", exc)
    finished = time.perf_counter()
    result: Json = {
        "outcome": "ok",
        "values": dict(zip(names, observed, strict=True)),
        "onnxruntime": ort.__version__,
        "seconds": {"import": asked - started, "load": loaded - asked, "run": finished - go},
        "memory_limited": limited,
    }
    if job.get("method") == "profile":
        profile = ""
        try:
            profile = session.end_profiling()  # written now, into the job folder
            del feeds, session  # weights and inputs are not needed to read it
            result["profile"] = read_profile(profile, dict(job["profile_nodes"]))
        except (OSError, ValueError) as exc:
            return _failure("error", exc)
        finally:
            if profile:
                try:
                    os.unlink(profile)  # it can be hundreds of MB, and the job folder may be a tmpfs
                except OSError:
                    pass
        result["seconds"]["profile"] = time.perf_counter() - finished
    return result


def serve(job_dir: str, limits: Json, control: int) -> int:
    """The whole child: run, then write result.json (nothing when the parent gave up before GO)."""
    try:
        result = run(job_dir, limits, control)
    except MemoryError as exc:
        result = _failure("memory", exc)
    except Exception as exc:  # the parent turns this into one line; no traceback leaves the child
        result = _failure("error", exc)
    if result is None:
        return 0
    try:
        _write(job_dir, result)
    except (OSError, MemoryError):
        return 3
    return 0


def main() -> int:
    """`python -I ortchild.py JOB_DIR LIMITS_JSON`: the parent's words on stdin."""
    job_dir = sys.argv[1]
    try:
        limits = json.loads(sys.argv[2])
    except (IndexError, ValueError) as exc:
        _write(job_dir, _failure("error", exc))
        return 0
    return serve(job_dir, limits, sys.stdin.fileno())


if __name__ == "__main__":
    sys.exit(main())
