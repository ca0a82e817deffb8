"""`onnxaudit scan DIR --cluster ADDRESS` on a real Dask cluster on loopback (distributed.LocalCluster, two
worker processes of one thread each, started once for the module in a process of its own): the same JSON
Lines, stderr and exit code as the local scan, and one stderr line, exit 2, when the cluster cannot be used."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import MODELS, dense_relu, save, seed_cnn, unreadable_folder

from onnxaudit._version import __version__
from onnxaudit.api import Convention
from onnxaudit.scan import auditor
from onnxaudit.scan.batch import Record, audit_one
from onnxaudit.scan.cluster import WorkerMismatch, audit_on_worker

# In a process of its own: the test process stays single-threaded (the audit forks its isolation children
# only then), and the cluster is gone with that process whatever happens to the tests.
CLUSTER = """
import sys
from distributed import LocalCluster

options = dict(threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0")
with LocalCluster(n_workers=int(sys.argv[1]), **options) as c:
    print(c.scheduler_address, flush=True)
    sys.stdin.read()
"""

# Runs `code` on every worker of the scheduler at argv[1] (to give a worker another onnxaudit, and back)
ON_WORKERS = """
import sys
from distributed import Client

with Client(sys.argv[1], timeout=30) as client:
    client.run(exec, sys.argv[2], {})
"""


@contextlib.contextmanager
def local_cluster(workers: int = 2) -> Iterator[str]:
    """The address of a LocalCluster in a process of its own, closed (gracefully) when the block ends."""
    pytest.importorskip("distributed", reason="scan --cluster needs onnxaudit[cluster] (in [test])")
    proc = subprocess.Popen(
        [sys.executable, "-c", CLUSTER, str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        address = proc.stdout.readline().strip() if ready else ""
        assert address.startswith("tcp://127.0.0.1:"), "the local Dask cluster did not start"
        yield address
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with local_cluster() as address:
        yield address


def on_workers(address: str, code: str) -> None:
    subprocess.run([sys.executable, "-c", ON_WORKERS, address, code], check=True, timeout=120, capture_output=True)


def onnxaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "onnxaudit", "scan", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """Models, a real exporter's among them, a bad model, an empty file, a file that cannot be opened (its
    symlink leads nowhere), one whose symlink leaves its folder, and a folder that cannot be read."""
    root = tmp_path / "models"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a").mkdir()
    save(seed_cnn(), root / "a" / "cnn.onnx")
    save(dense_relu(), root / "b" / "deeper" / "mlp.ONNX")
    (root / "a" / "keras.onnx").write_bytes(next(MODELS.glob("keras/*.onnx")).read_bytes())
    (root / "b" / "broken.onnx").write_bytes(b"\x08" + b"\xff" * 11)
    (root / "b" / "empty.onnx").write_bytes(b"")
    (root / "b" / "gone.onnx").symlink_to("absent.onnx")  # in its folder, to nothing
    (root / "b" / "outside.onnx").symlink_to(root / "a" / "cnn.onnx")
    unreadable_folder(root / "b", dense_relu())
    yield root
    if (root / "b" / "locked").exists():
        (root / "b" / "locked").chmod(0o700)


def test_the_same_lines_stderr_and_exit_code_as_the_local_scan(scheduler: str, tree: Path) -> None:
    for folder in ("models", str(tree)):  # a relative folder too: the workers are told the client's
        local = onnxaudit(folder, "--jobs", "2", cwd=tree.parent)
        remote = onnxaudit(folder, "--cluster", scheduler, cwd=tree.parent)
        assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    records = [json.loads(line) for line in remote.stdout.splitlines()]
    status = {os.path.relpath(r["path"], tree): (r["status"], r["error"]) for r in records}
    assert remote.returncode == 1
    assert status["a/cnn.onnx"] == status["a/keras.onnx"] == status["b/deeper/mlp.ONNX"] == ("ok", None)
    for name, why in (
        ("b/broken.onnx", "not an ONNX model"),
        ("b/empty.onnx", "empty file"),
        ("b/gone.onnx", "no such file"),
        ("b/outside.onnx", "symlink points outside its folder"),
    ):
        assert status[name][0] == "error" and status[name][1].startswith(f"{tree}/{name}: {why}")
    assert any(s == "error" and "cannot read the folder" in e for s, e in status.values())
    assert len(records) == len(status) and f"{len(records)} models: 3 audited" in remote.stderr


@pytest.fixture
def http_models(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Range-honouring HTTP server on loopback (benchmarks/serve.py) over a folder of models."""
    pytest.importorskip("fsspec", reason="models at a URL need onnxaudit[remote] (in [test])")
    served = tmp_path / "served"
    served.mkdir()
    save(seed_cnn(), served / "cnn.onnx")
    (served / "keras.onnx").write_bytes(next(MODELS.glob("keras/*.onnx")).read_bytes())
    (served / "junk.onnx").write_bytes(b"\xff" * 1000)
    serve = Path(__file__).resolve().parent.parent / "benchmarks" / "serve.py"
    proc = subprocess.Popen(
        [sys.executable, str(serve), str(served), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        base = line.split(" on ", 1)[1].split(" ", 1)[0] if " on http://127.0.0.1:" in line else ""
        assert base, "the loopback HTTP server did not start"
        yield base, served
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_urls_are_handed_out_as_urls(scheduler: str, http_models: tuple[str, Path], tmp_path: Path) -> None:
    """A --list of URLs (and one the server does not have): each worker reads its model by ranges, and
    the lines, stderr and exit code are the local scan's."""
    base, served = http_models
    listing = tmp_path / "models.txt"
    listing.write_text("".join(f"{base}{name}\n" for name in ("cnn.onnx", "keras.onnx", "junk.onnx", "gone.onnx")))
    local = onnxaudit("--list", str(listing), "--jobs", "2", cwd=tmp_path)
    remote = onnxaudit("--list", str(listing), "--cluster", scheduler, cwd=tmp_path)
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    status = {r["path"].rsplit("/", 1)[1]: r["status"] for r in map(json.loads, remote.stdout.splitlines())}
    assert status == {"cnn.onnx": "ok", "gone.onnx": "error", "junk.onnx": "error", "keras.onnx": "ok"}
    assert remote.returncode == 1 and served.is_dir()


def test_progress_on_a_terminal(scheduler: str, tree: Path) -> None:
    leader, follower = pty.openpty()
    try:
        args = [sys.executable, "-m", "onnxaudit", "scan", str(tree), "--cluster", scheduler, "--quiet"]
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=follower, timeout=300)
        os.close(follower)
        shown = b""
        while select.select([leader], [], [], 0)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the follower is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    files = len(proc.stdout.splitlines()) - 1  # one line is the unreadable folder, not a file handed out
    assert proc.returncode == 1
    assert f"] {files}/{files} files, ".encode() in shown and b"\r[" in shown


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "why"),
    [
        (f"tcp://127.0.0.1:{_free_port()}", "cannot reach a Dask scheduler ("),
        ("tcp://", "not a Dask scheduler address"),
    ],
)
def test_a_scheduler_that_cannot_be_reached_is_one_line_exit_2(tmp_path: Path, address: str, why: str) -> None:
    pytest.importorskip("distributed", reason="scan --cluster needs onnxaudit[cluster] (in [test])")
    save(dense_relu(), tmp_path / "m.onnx")
    proc = onnxaudit(str(tmp_path), "--cluster", address, "--cluster-timeout", "1", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"onnxaudit: {address}: {why}")
    assert proc.stderr.count("\n") == 1


def test_a_scheduler_lost_during_the_scan_is_one_line_exit_2(tmp_path: Path) -> None:
    for i in range(150):
        save(dense_relu(), tmp_path / f"m{i:03}.onnx")
    with local_cluster() as address:
        args = [sys.executable, "-m", "onnxaudit", "scan", str(tmp_path), "--cluster", address]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the scan is under way; the cluster is closed as the block ends
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and json.loads(first)["status"] == "ok"
    assert len(out.splitlines()) + 1 < 150  # it stopped: the rest of the files were not claimed
    assert err.startswith(f"onnxaudit: {address}: the cluster could not audit ") and err.count("\n") == 1, err


def test_a_scheduler_without_workers_is_one_line_exit_2(tmp_path: Path) -> None:
    save(dense_relu(), tmp_path / "m.onnx")
    with local_cluster(workers=0) as address:
        proc = onnxaudit(str(tmp_path), "--cluster", address, "--cluster-timeout", "1", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"onnxaudit: {address}: the Dask scheduler has no workers (none joined within 1 s)\n"


def test_without_distributed_the_flag_says_what_to_install(tmp_path: Path) -> None:
    save(dense_relu(), tmp_path / "m.onnx")
    code = (
        "import sys; sys.modules['distributed'] = None; from onnxaudit.cli.main import main; "
        f"sys.exit(main(['scan', {str(tmp_path)!r}, '--cluster', 'tcp://127.0.0.1:1']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "onnxaudit: --cluster needs Dask's distributed: pip install 'onnxaudit[cluster]'\n"


def test_jobs_and_cluster_together_are_a_usage_error(tmp_path: Path) -> None:
    proc = onnxaudit(str(tmp_path), "--cluster", "tcp://127.0.0.1:1", "--jobs", "2", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "--jobs" in proc.stderr


def test_a_worker_on_another_version_stops_the_scan(scheduler: str, tree: Path) -> None:
    on_workers(scheduler, "import onnxaudit.scan.cluster as c; c.__version__ = '0.0.0-other'")
    try:
        proc = onnxaudit(str(tree), "--cluster", scheduler, cwd=tree.parent)
    finally:
        on_workers(scheduler, f"import onnxaudit.scan.cluster as c; c.__version__ = {__version__!r}")
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert f"{scheduler}: worker tcp://127.0.0.1:" in proc.stderr
    assert f"runs onnxaudit 0.0.0-other, this is {__version__}" in proc.stderr


def test_a_worker_without_onnxaudit_stops_the_scan(scheduler: str, tree: Path) -> None:
    on_workers(scheduler, "import sys; sys.modules['onnxaudit.scan.cluster'] = None")
    try:
        proc = onnxaudit(str(tree), "--cluster", scheduler, cwd=tree.parent)
    finally:
        on_workers(scheduler, "import sys; del sys.modules['onnxaudit.scan.cluster']")
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "cannot run onnxaudit (" in proc.stderr and f"install onnxaudit {__version__} on every worker" in proc.stderr


@pytest.fixture
def children() -> Iterator[None]:
    """In this process, which has one thread as a worker's child has: auditor children started afresh."""
    auditor.stop_children()
    yield
    auditor.stop_children()


def test_the_child_writes_the_local_scans_records(children: None) -> None:
    paths = sorted(MODELS.glob("keras/*.onnx"))[:4]
    assert [auditor.audit_in_child(str(p), "keras", 1000) for p in paths] == [
        audit_one(str(p), "keras", 1000) for p in paths
    ]
    assert len(auditor._children) == 1  # one child for the thread, file after file


def _dies_or_hangs(path: str, convention: Convention, max_nodes: int) -> Record:
    if Path(path).name == "crash.onnx":
        os._exit(3)
    if Path(path).name == "hang.onnx":
        time.sleep(60)
    return audit_one(path, convention, max_nodes)


def test_a_death_or_a_hang_is_that_files_record_and_the_next_file_gets_a_new_child(
    children: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auditor, "audit_one", _dies_or_hangs)  # before the child is forked: it inherits it
    ok, crash, hang = (save(dense_relu(), tmp_path / f"{name}.onnx") for name in ("ok", "crash", "hang"))
    first = auditor.audit_in_child(str(ok), "keras", 1000)
    assert first == audit_one(str(ok), "keras", 1000) and first.status == "ok"
    assert auditor.audit_in_child(str(crash), "keras", 1000) == Record(
        str(crash), "error", error=f"{crash}: the audit process died"
    )
    assert auditor.audit_in_child(str(ok), "keras", 1000) == first
    hung = auditor.audit_in_child(str(hang), "keras", 1000, timeout=1)
    assert hung == Record(str(hang), "error", error=f"{hang}: the audit did not finish within 1 s")
    assert auditor.audit_in_child(str(ok), "keras", 1000) == first


def test_a_task_on_a_worker_of_another_version_refuses(children: None, tmp_path: Path) -> None:
    """A worker that joins after the check: its task raises rather than audit with other code."""
    path = save(dense_relu(), tmp_path / "m.onnx")
    with pytest.raises(WorkerMismatch, match=f"a worker runs onnxaudit {__version__}, this client 0.0.0-other"):
        audit_on_worker("0.0.0-other", str(tmp_path), [str(path)], "keras", 1000)
    assert [r.path for r in audit_on_worker(__version__, str(tmp_path), ["m.onnx"], "keras", 1000)] == ["m.onnx"]


def test_a_file_that_kills_its_audit_is_that_files_record(scheduler: str, tmp_path: Path) -> None:
    """The audit runs in a child forked from the worker thread: its death is the file's record (the local
    scan's words), the worker lives on and audits the rest in a new child."""
    for name in ("a.onnx", "crash.onnx", "z.onnx"):
        save(dense_relu(), tmp_path / name)
    on_workers(
        scheduler,
        "import os, onnxaudit.scan.auditor as a; real = a.audit_one; a.stop_children(); "
        "a.audit_one = lambda p, *rest: os._exit(3) if p.endswith('/crash.onnx') else real(p, *rest)",
    )
    try:
        proc = onnxaudit(str(tmp_path), "--cluster", scheduler, "--quiet", cwd=tmp_path)
    finally:
        on_workers(
            scheduler,
            "import onnxaudit.scan.auditor as a, onnxaudit.scan.batch as b; "
            "a.audit_one = b.audit_one; a.stop_children()",
        )
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and [r["status"] for r in records] == ["ok", "error", "ok"]
    assert records[1]["error"] == f"{tmp_path / 'crash.onnx'}: the audit process died"


WINDOW = """
import sys
from pathlib import Path
from onnxaudit.scan.cluster import open_cluster

paths = sorted(Path(sys.argv[2]).glob("*.onnx"))
window = int(sys.argv[3]) if len(sys.argv) > 3 else None
flight = peak = largest = 0
with open_cluster(sys.argv[1]) as cluster:
    submit = cluster.client.submit
    def counted(function, expected, folder, batch, *args, **kwargs):
        global flight, peak, largest
        flight += len(batch)
        peak, largest = max(peak, flight), max(largest, len(batch))
        return submit(function, expected, folder, batch, *args, **kwargs)
    cluster.client.submit = counted
    def done(index, record):
        global flight
        flight -= 1
    order = [r.path for r in cluster.scan(paths, "keras", done, window=window)]
print(peak, largest, order == [str(p) for p in paths], len(order))
"""


def test_at_most_a_window_of_files_is_handed_out_at_once(scheduler: str, tmp_path: Path) -> None:
    """Files in flight or held back for order never pass the window: 2 when asked (one batch of 2); by default, 40 files
    on 2 worker threads go in batches of 40 // (4 batches x 2 x 2 threads) = 2, 4 batches a thread."""
    for i in range(40):
        save(dense_relu(), tmp_path / f"m{i:02}.onnx")
    for window, expected in (("2", ["2", "2", "True", "40"]), (None, [str(4 * 2 * 2), "2", "True", "40"])):
        args = [sys.executable, "-c", WINDOW, scheduler, str(tmp_path), *([window] if window else [])]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert proc.stdout.split() == expected, proc.stderr
