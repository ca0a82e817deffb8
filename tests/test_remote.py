"""Models at a URL (io/remote.py, io/ranged.py): read by byte ranges from a real HTTP server on loopback.

The servers run in the test, on 127.0.0.1, and are shut down by it: one honours Range (206 with the asked
bytes, and counts what it sent), one ignores it (200 with the whole body). Counts over HTTP must equal the
local audit's; for a model with a 20 MB weight the bytes fetched are a small fraction of the file.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from builders import MODELS, external, fixture_meta, model, save, value
from onnx import helper, numpy_helper

from onnxaudit import audit
from onnxaudit.cli.main import main
from onnxaudit.errors import AuditError
from onnxaudit.io.external import Problem
from onnxaudit.io.ranged import RangedBuffer
from onnxaudit.io.remote import external_url, is_url
from onnxaudit.io.wire import strip_weights
from onnxaudit.render.summary import render_json

# the extra is optional at run time; [test] installs it, so CI runs these
pytest.importorskip("fsspec", reason="the [remote] extra (fsspec) is not installed")
pytest.importorskip("aiohttp", reason="the [remote] extra (aiohttp) is not installed")

FIXTURES = [MODELS / "keras" / "seed_mlp__tf2onnx_op17.onnx", MODELS / "ultralytics" / "yolov8_tiny.onnx"]


class _Files(BaseHTTPRequestHandler):
    """Serves the files in `server.files` (name -> Path); honours a single `bytes=a-b` Range."""

    timeout = 10  # a client that stops reading cannot hold the server thread (the socket times out)
    honour_range = True
    says_none = False  # a server ignoring Range may say so (Accept-Ranges: none) or say nothing

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = self.server.files.get(self.path.lstrip("/"))  # type: ignore[attr-defined]
        if path is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end = 0, len(data)
        ranged = self.honour_range and self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            first, _, last = self.headers["Range"][6:].partition("-")
            start, end = int(first), min(len(data), int(last) + 1 if last else len(data))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start))
        if self.honour_range or self.says_none:
            self.send_header("Accept-Ranges", "bytes" if self.honour_range else "none")
        self.end_headers()
        if not body:
            return
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.gets += 1  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):  # the client hung up (what a refused 200 should make it do)
            for chunk in range(start, end, 1 << 16):
                piece = data[chunk : min(end, chunk + (1 << 16))]
                with self.server.lock:  # counted before it leaves: the client cannot have it uncounted
                    self.server.sent += len(piece)  # type: ignore[attr-defined]
                self.wfile.write(piece)


class _NoRange(_Files):
    honour_range = False


class _SaysNoRange(_NoRange):
    says_none = True


@contextlib.contextmanager
def serving(files: dict[str, Path], handler: type[_Files] = _Files) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.files, server.sent, server.gets, server.lock = files, 0, 0, threading.Lock()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def url(server: ThreadingHTTPServer, name: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"


def big_model(path: Path) -> Path:
    """A Gemm with a 20 MB weight (5,000,000 float32) between two small tensors."""
    weight = numpy_helper.from_array(np.full((5000, 1000), 0.5, dtype=np.float32), "fc.W")
    bias = numpy_helper.from_array(np.arange(1000, dtype=np.float32) + 0.5, "fc.B")
    node = helper.make_node("Gemm", ["x", "fc.W", "fc.B"], ["y"], name="fc")
    return save(model([node], [value("x", [1, 5000])], [value("y", [1, 1000])], [weight, bias]), path)


def same_counts(remote: object, local: object) -> None:
    assert remote.totals == local.totals  # type: ignore[attr-defined]
    assert [(r.name, r.params) for r in remote.rows] == [(r.name, r.params) for r in local.rows]  # type: ignore[attr-defined]
    assert remote.framework == local.framework  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_counts_over_http_equal_the_local_audit(path: Path) -> None:
    with serving({path.name: path}) as server:
        remote = audit(url(server, path.name))
        sent = server.sent
    local = audit(path)
    same_counts(remote, local)
    assert remote.model == url(server, path.name)
    assert remote.remote is not None and remote.remote.file_bytes == path.stat().st_size == local.file_bytes
    # what the reader counted is what the server sent (the probe byte included)
    assert remote.remote.fetched_bytes == sent
    assert any(line.startswith("remote file: ") for line in remote.limits)


def test_a_big_weight_is_never_fetched(tmp_path: Path) -> None:
    path = big_model(tmp_path / "big.onnx")
    size = path.stat().st_size
    assert size > 20_000_000
    with serving({"big.onnx": path}) as server:
        report = audit(url(server, "big.onnx"))
        sent = server.sent
    local = audit(path)
    same_counts(report, local)
    assert report.totals.total == 5000 * 1000 + 1000
    assert report.remote is not None
    assert report.remote.fetched_bytes == sent
    assert sent < size // 100, f"{sent:,} of {size:,} bytes sent"  # the weight's bytes stayed on the server
    assert '"fetched_bytes": ' in render_json(report)
    assert '"remote"' not in render_json(local)  # a local file's JSON is unchanged


@pytest.mark.parametrize(
    ("handler", "why"), [(_NoRange, "ranged read refused"), (_SaysNoRange, "refusing to stream it whole")]
)
def test_a_server_ignoring_range_is_refused(
    handler: type[_Files], why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = big_model(tmp_path / "big.onnx")
    with serving({"big.onnx": path}, handler) as server:
        address = url(server, "big.onnx")
        code = main(["summary", address])
        gets = server.gets
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and address in err and why in err, err
    assert gets <= 1  # refused at the first answer, not retried block by block


def test_missing_file_is_one_line_naming_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    with serving({}) as server:
        address = url(server, "absent.onnx")
        code = main(["summary", address])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and address in err, err


def test_not_onnx_over_http_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 100_000)
    with serving({"junk.onnx": junk}) as server:
        address = url(server, "junk.onnx")
        code = main(["summary", address])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"onnxaudit: {address}: not an ONNX model"), err


def test_verify_and_json_over_http(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES[0]
    keras = fixture_meta(path)  # what Keras itself reported
    expect = f"total={keras['total']},trainable={keras['trainable']},non_trainable={keras['non_trainable']}"
    with serving({path.name: path}) as server:
        assert main(["verify", url(server, path.name), "--expect", expect]) == 0
        assert main(["verify", url(server, path.name), "--expect", f"total={keras['total'] + 1}"]) == 1
        assert main(["summary", url(server, path.name), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"fetched_bytes"' in out and '"requests"' in out


def test_run_shapes_on_a_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AuditError, match="needs a local file"):
        from onnxaudit.shapes.options import ShapeOptions

        audit("http://127.0.0.1:9/m.onnx", shapes=ShapeOptions())


@pytest.mark.parametrize("path", sorted(MODELS.glob("*/*.onnx"))[::7], ids=lambda p: p.stem)
def test_ranged_walk_copies_what_the_mapped_walk_copies(path: Path) -> None:
    """The wire walk over a RangedBuffer (small blocks, so fields straddle them) writes the same light copy."""
    data = path.read_bytes()
    buf = RangedBuffer(lambda offset, length: data[offset : offset + length], len(data), block=4096)
    ranged, local = strip_weights(buf), strip_weights(data)
    assert ranged.stripped_tensors == local.stripped_tensors and ranged.stripped_bytes == local.stripped_bytes
    assert bytes(ranged.data).replace(ranged.nonce, b"") == bytes(local.data).replace(local.nonce, b"")
    assert buf.fetched <= len(data)


def test_ranged_buffer_fetches_each_missing_run_once() -> None:
    data = bytes(range(256)) * 64  # 16 KiB
    calls: list[tuple[int, int]] = []

    def read_at(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return data[offset : offset + length]

    buf = RangedBuffer(read_at, len(data), block=1024)
    assert buf[5] == 5 and buf[1023] == data[1023]
    assert buf[1000:3000] == data[1000:3000]  # block 0 cached, blocks 1-2 in one request
    assert calls == [(0, 1024), (1024, 2048)]
    assert buf[-1] == data[-1] and buf.fetched == 4096 and buf.requests == 3


@pytest.mark.parametrize(
    "location",
    ["../secret.bin", "/etc/passwd", "http://evil.example/w.bin", "//evil.example/w.bin", "a/../../w.bin", "w\\x.bin"],
)
def test_external_data_must_stay_under_the_models_prefix(location: str) -> None:
    refused = external_url("https://host/models/m.onnx", location)
    assert isinstance(refused, Problem) and refused.kind == "location" and refused.message


def test_external_data_beside_the_model() -> None:
    assert external_url("https://host/models/m.onnx", "./data/w.bin") == "https://host/models/data/w.bin"
    assert is_url("s3://bucket/m.onnx") and is_url("https://h/m.onnx")
    assert not is_url("models/m.onnx") and not is_url("file:///tmp/m.onnx") and not is_url(Path("https://x"))


def test_diff_over_http_counts_as_the_local_diff() -> None:
    from onnxaudit import compare

    old, new = MODELS / "keras" / "seed_mlp__tfkeras_op13.onnx", MODELS / "keras" / "seed_mlp__tf2onnx_op17.onnx"
    with serving({old.name: old, new.name: new}) as server:
        remote = compare(url(server, old.name), url(server, new.name))
    local = compare(old, new)
    assert remote.totals == local.totals and remote.logical_agree == local.logical_agree
    assert [(row.old, row.new, row.params) for row in remote.layers] == [
        (row.old, row.new, row.params) for row in local.layers
    ]
    hows = {t.values_how for row in remote.layers for t in row.tensors}
    assert hows == {"a model at a URL: its weights are not fetched"}  # never a misleading "not readable"


# ---------------------------------------------------------------- s3:// on a loopback S3 server (moto)


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """An S3-compatible server (moto's server mode) on 127.0.0.1 holding the fixtures under
    s3://models/fixtures/ and a broken file; yields the bucket's URL. The endpoint reaches s3fs through
    AWS_ENDPOINT_URL, as a user's would."""
    pytest.importorskip("s3fs", reason="the [s3] extra (s3fs) is not installed")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, setting in env.items():
            patch.setenv(name, setting)
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="models")
        for path in FIXTURES:
            client.put_object(Bucket="models", Key=f"fixtures/{path.name}", Body=path.read_bytes())
        client.put_object(Bucket="models", Key="fixtures/broken.onnx", Body=b"\xff" * 1000)
        client.put_object(Bucket="models", Key="fixtures/notes.txt", Body=b"not a model")
        try:
            yield "s3://models"
        finally:
            server.stop()


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_counts_over_s3_equal_the_local_audit(s3: str, path: Path) -> None:
    remote = audit(f"{s3}/fixtures/{path.name}")
    local = audit(path)
    same_counts(remote, local)
    assert remote.remote is not None and remote.remote.file_bytes == path.stat().st_size
    assert 0 < remote.remote.fetched_bytes < path.stat().st_size


def test_verify_over_s3_against_the_frameworks_figures(s3: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES[0]
    keras = fixture_meta(path)
    address = f"{s3}/fixtures/{path.name}"
    assert main(["verify", address, "--expect", f"total={keras['total']},trainable={keras['trainable']}"]) == 0
    assert main(["summary", f"{s3}/fixtures/absent.onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{s3}/fixtures/absent.onnx: no such file" in err, err


def test_scan_over_an_s3_prefix(s3: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", f"{s3}/fixtures/", "--jobs", "2"])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    paths = [r["path"] for r in records]
    assert paths == sorted(f"{s3}/fixtures/{name}" for name in ["broken.onnx", *(p.name for p in FIXTURES)])
    assert code == 1  # broken.onnx is an error record, the others audited
    by_path = {r["path"]: r for r in records}
    assert by_path[f"{s3}/fixtures/broken.onnx"]["status"] == "error"
    assert "not an ONNX model" in by_path[f"{s3}/fixtures/broken.onnx"]["error"]
    for path in FIXTURES:
        record, local = by_path[f"{s3}/fixtures/{path.name}"], audit(path).totals
        assert record["status"] == "ok"
        assert (record["total"], record["trainable"], record["non_trainable"]) == (
            local.total, local.trainable, local.non_trainable,
        )  # fmt: skip
    assert "3 models: 2 audited, 1 failed" in err and "broken.onnx" in err


def test_scan_of_an_s3_prefix_holding_nothing(s3: str, capsys: pytest.CaptureFixture[str]) -> None:
    # an object store has no folders: an empty prefix is an empty folder (exit 0, said), a missing bucket unusable
    assert main(["scan", f"{s3}/nothing-here/"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == f"no .onnx files under {s3}/nothing-here/\n"
    assert main(["scan", "s3://no-such-bucket/models/"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s3://no-such-bucket/models/" in err, err


def test_scan_of_an_http_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 1000)
    files = {p.name: p for p in FIXTURES} | {"junk.onnx": junk}
    with serving(files) as server:
        listing = tmp_path / "models.txt"
        names = [url(server, name) for name in files]
        listing.write_text("# models to audit\n" + "\n".join(reversed(names)) + "\n\n" + names[0] + "\n")
        code = main(["scan", "--list", str(listing)])
        out, err = capsys.readouterr()
        assert main(["scan", url(server, "")]) == 2  # a web server's prefix: no listing to trust
        assert "--list FILE" in capsys.readouterr().err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == sorted(names)
    assert code == 1 and [r["status"] for r in records].count("ok") == len(FIXTURES)
    assert "3 models: 2 audited, 1 failed" in err


def test_scan_takes_a_folder_or_a_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan"]) == 2
    assert main(["scan", "somewhere", "--list", "-"]) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_any_fsspec_protocol_goes_the_same_way() -> None:
    """gs://, hf:// and the rest need their own servers; fsspec's in-memory filesystem stands for them here:
    the same opener, probe, ranged walk and listing, through fsspec's generic interface only."""
    fsspec = pytest.importorskip("fsspec")
    path = FIXTURES[0]
    memory = fsspec.filesystem("memory")
    memory.pipe("/onnxaudit-test/m.onnx", path.read_bytes())
    memory.pipe("/onnxaudit-test/notes.txt", b"not a model")
    try:
        from onnxaudit.io.remote import list_models

        listed = list_models("memory://onnxaudit-test/", ".onnx")
        assert [name.rsplit("/", 2)[-2:] for name in listed] == [["onnxaudit-test", "m.onnx"]]
        remote = audit(listed[0])  # as fsspec spells it (memory:///...)
    finally:
        memory.rm("/onnxaudit-test", recursive=True)
    same_counts(remote, audit(path))
    assert remote.remote is not None and 0 < remote.remote.fetched_bytes < path.stat().st_size


# ---------------------------------------------------------------- check over a URL


def _findings(report: object) -> list[tuple[str, str, str]]:
    return [(f.rule, f.target, f.message) for f in report.findings]  # type: ignore[attr-defined]


VALUE_RULES = ("OA101", "OA102", "OA103", "OA104", "OA105", "OA308")


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_check_over_http_finds_what_the_local_check_finds(path: Path) -> None:
    from onnxaudit.check.rules import REGISTRY
    from onnxaudit.check.runner import check

    assert {r.id for r in REGISTRY if r.needs == "values"} == set(VALUE_RULES)
    local = check(path)
    with serving({path.name: path}) as server:
        structure = check(url(server, path.name))
        sent_structure = server.sent
        valued = check(url(server, path.name), fetch_values=1 << 30)
        sent_values = server.sent - sent_structure
    # without --fetch-values: the structure rules only, each value rule said not run, no weight value read
    assert _findings(structure) == [f for f in _findings(local) if f[0] not in VALUE_RULES]
    assert structure.rules == [r for r in local.rules if r not in VALUE_RULES]
    assert structure.params == local.params and structure.scan.tensors == 0
    for rule in VALUE_RULES:
        assert any(n.startswith(f"{rule} ") and "not run" in n for n in structure.notes), rule
    assert any(n.startswith("remote file: ") for n in structure.notes)
    assert sent_structure < path.stat().st_size
    # with it: every value rule but the copy search, on the same scan as the local one
    assert _findings(valued) == [f for f in _findings(local) if f[0] != "OA105"]
    assert valued.rules == [r for r in local.rules if r != "OA105"]
    assert valued.scan == local.scan
    assert any(n.startswith("OA105 duplicate-weights not run") for n in valued.notes)
    assert any(n.startswith("weight values: ") for n in valued.notes)
    assert sent_values <= 1 << 30


def nan_model(path: Path) -> Path:
    """A Gemm whose 20 MB weight holds one NaN, and a small bias."""
    data = np.full((5000, 1000), 0.5, dtype=np.float32)
    data[4999, 999] = np.nan
    weight, bias = numpy_helper.from_array(data, "fc.W"), numpy_helper.from_array(np.ones(1000, np.float32), "fc.B")
    node = helper.make_node("Gemm", ["x", "fc.W", "fc.B"], ["y"], name="fc")
    return save(model([node], [value("x", [1, 5000])], [value("y", [1, 1000])], [weight, bias]), path)


def test_value_rules_over_http_only_within_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = nan_model(tmp_path / "nan.onnx")
    size = path.stat().st_size
    with serving({"nan.onnx": path}) as server:
        address = url(server, "nan.onnx")
        assert main(["check", address]) == 0  # the NaN is in bytes nobody fetched: said, not passed over
        out = capsys.readouterr().out
        assert "OA101 nan-inf-weights not run" in out and server.sent < size // 100
        before = server.sent
        assert main(["check", address, "--fetch-values", "1MiB", "--format", "json"]) == 0
        small = json.loads(capsys.readouterr().out)
        sent_small = server.sent - before
        before = server.sent
        assert main(["check", address, "--fetch-values", "64MiB"]) == 1
        out = capsys.readouterr().out
        sent_all = server.sent - before
    # 1 MiB: the bias scanned, the 20 MB weight not (OA308 says why); what was fetched stays under the cap
    assert small["scan"]["tensors"] == 1 and small["scan"]["not_scanned"] == 1
    assert any(f["rule"] == "OA308" and "--fetch-values budget" in f["message"] for f in small["findings"])
    assert sent_small < 2 * (1 << 20)  # the values' MiB and the structure's few blocks
    # 64 MiB: the weight read, its NaN found
    assert "OA101" in out and "NaN" in out and sent_all > 20_000_000


def test_check_of_remote_external_data(tmp_path: Path) -> None:
    """External data beside a remote model: its location checked against the model's prefix, its size asked
    (so the range is checked), its bytes never fetched."""
    from onnxaudit.check.runner import check

    weights = tmp_path / "w.bin"
    weights.write_bytes(np.arange(64, dtype=np.float32).tobytes())
    inits = [
        external("inside", [8, 8], "w.bin"),
        external("escaping", [8], "../w.bin"),
        external("elsewhere", [8], "http://127.0.0.1:9/w.bin"),
        external("past_end", [8], "w.bin", offset=240),
    ]
    nodes = [helper.make_node("MatMul", ["x", "inside"], ["y0"])]
    extra = [
        helper.make_node("Identity", [name], [f"z{i}"]) for i, name in enumerate(["escaping", "elsewhere", "past_end"])
    ]
    outputs = [value("y0", [1, 8])] + [value(f"z{i}", [8]) for i in range(3)]
    path = save(model(nodes + extra, [value("x", [1, 8])], outputs, inits), tmp_path / "ext.onnx")
    local_gets: list[str] = []

    class _Logged(_Files):
        def do_GET(self) -> None:
            local_gets.append(self.path)
            super().do_GET()

    with serving({"models/ext.onnx": path, "models/w.bin": weights}, _Logged) as server:
        report = check(url(server, "models/ext.onnx"), fetch_values=1 << 20)
    by_target = {f.target: f for f in report.findings if f.rule in ("OA303", "OA304")}
    assert set(by_target) == {"escaping", "elsewhere", "past_end"}
    assert by_target["escaping"].rule == "OA303" and by_target["elsewhere"].rule == "OA303"
    assert "is a URL" in by_target["elsewhere"].message
    assert by_target["past_end"].rule == "OA304"
    assert "/models/w.bin" not in local_gets  # asked for its size (HEAD), never its bytes
    assert any(
        "inside" in f.message and "URL (never fetched)" in f.message for f in report.findings if f.rule == "OA308"
    )


def test_check_over_s3_finds_what_the_local_check_finds(s3: str) -> None:
    from onnxaudit.check.runner import check

    path = FIXTURES[1]
    remote, local = check(f"{s3}/fixtures/{path.name}", fetch_values=1 << 26), check(path)
    assert _findings(remote) == [f for f in _findings(local) if f[0] != "OA105"]
    assert remote.scan == local.scan


# ---------------------------------------------------------------- tied copies sampled over ranges


@pytest.mark.parametrize("name", ["torch/tied_lm__legacy_fold.onnx", "torch/tied_lm__dynamo.onnx"])
def test_tied_copies_settled_over_http_as_locally(name: str) -> None:
    """The framework view's sampled comparison of a tied head (stored again, transposed) reads the same
    values over ranges: the same figures and reasons as the local audit, every byte counted."""
    path = MODELS / name
    with serving({path.name: path}) as server:
        remote = audit(url(server, path.name))
        sent = server.sent
    local = audit(path)
    assert remote.framework == local.framework
    assert "values equal at 64 sampled positions" in render_json(local)  # the pair is settled by values
    assert remote.remote is not None and remote.remote.fetched_bytes == sent
    # the second walk (tensor offsets) runs over the blocks the first fetched: only the sampled elements are new
    assert remote.remote.sampled_bytes == 2 * 64 * 4  # 64 float32 pairs: a copy agrees at every one
    assert any("to compare possible copies" in line for line in remote.limits)


def test_pairs_sampled_over_a_url_are_bounded(tmp_path: Path) -> None:
    from builders import array

    from onnxaudit.frameworks.copies import REMOTE_PAIRS, SAMPLES, settle_copies
    from onnxaudit.io.remote import RemoteRead

    rng = np.random.default_rng(5)
    w = rng.random((16, 12), dtype=np.float32) + 0.5
    copies = [array(f"t{i}", w.T.copy()) for i in range(REMOTE_PAIRS + 3)]
    nodes = [helper.make_node("Identity", [t.name], [f"o{i}"]) for i, t in enumerate([array("w", w), *copies])]
    outputs = [value(f"o{i}", None) for i in range(len(nodes))]
    path = save(model(nodes, [], outputs, [array("w", w), *copies]), tmp_path / "m.onnx")
    pairs = {t.name: "w" for t in copies}
    assert settle_copies(path, pairs, {}) == dict.fromkeys(pairs, True)  # locally: every pair
    fetched = RemoteRead("u", path.stat().st_size, 0, 0)
    with serving({"m.onnx": path}) as server:
        over_url = settle_copies(url(server, "m.onnx"), pairs, {}, fetched=fetched)
        sent = server.sent
    assert over_url == {f"t{i}": True for i in range(REMOTE_PAIRS)}  # the first REMOTE_PAIRS, the rest undecided
    assert fetched.fetched_bytes == fetched.sampled_bytes == sent
    assert fetched.requests <= 3 + REMOTE_PAIRS * 2 * SAMPLES  # probe, structure, one read per sampled element


def test_diff_over_s3_counts_as_the_local_diff(s3: str) -> None:
    from onnxaudit import compare

    old, new = FIXTURES
    remote = compare(f"{s3}/fixtures/{old.name}", f"{s3}/fixtures/{new.name}")
    local = compare(old, new)
    assert remote.totals == local.totals and remote.logical_agree == local.logical_agree
    assert [(row.old, row.new, row.params) for row in remote.layers] == [
        (row.old, row.new, row.params) for row in local.layers
    ]


def test_remote_external_files_asked_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxaudit.check.runner import check
    from onnxaudit.io import remote as remote_module

    monkeypatch.setattr(remote_module, "MAX_EXTERNAL_FILES", 2)
    files = {}
    for i in range(3):
        (tmp_path / f"w{i}.bin").write_bytes(np.ones(8, np.float32).tobytes())
        files[f"w{i}.bin"] = tmp_path / f"w{i}.bin"
    inits = [external(f"t{i}", [8], f"w{i}.bin") for i in range(3)]
    nodes = [helper.make_node("Identity", [f"t{i}"], [f"o{i}"]) for i in range(3)]
    path = save(model(nodes, [], [value(f"o{i}", [8]) for i in range(3)], inits), tmp_path / "m.onnx")
    asked: list[str] = []

    class _Logged(_Files):
        def _answer(self, body: bool) -> None:
            asked.append(self.path)
            super()._answer(body)

    with serving({"m.onnx": path, **files}, _Logged) as server:
        report = check(url(server, "m.onnx"))
    unchecked = [f for f in report.findings if f.rule == "OA303"]
    assert [f.target for f in unchecked] == ["t2"] and "over 2 external data files" in unchecked[0].message
    assert "/w0.bin" in asked and "/w1.bin" in asked and "/w2.bin" not in asked  # the third never asked


def test_check_reports_name_the_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SARIF's artifact and the baseline's key are the URL itself (a path's normalization folded its '//')."""
    path = FIXTURES[0]
    baseline = tmp_path / "baseline.json"
    with serving({path.name: path}) as server:
        address = url(server, path.name)
        assert main(["check", address, "--format", "sarif"]) == 0
        sarif = json.loads(capsys.readouterr().out)
        assert main(["check", address, "--write-baseline", str(baseline)]) == 0
        capsys.readouterr()
        assert main(["check", address, "--baseline", str(baseline), "--format", "json"]) == 0
        again = json.loads(capsys.readouterr().out)
    assert [a["location"]["uri"] for a in sarif["runs"][0]["artifacts"]] == [address]
    found = len(sarif["runs"][0]["results"])
    assert found > 0 and again["baselined"] == found and again["findings"] == []  # the URL's findings matched


def test_a_url_read_leaves_local_reads_isolated(tmp_path: Path) -> None:
    """fsspec's IO thread, started by the first URL read and never stopped, does not make later local walks
    run in process: a file truncated under the reader is still one error, not a dead process. In a fresh
    interpreter (this one holds the test servers' threads)."""
    import subprocess
    import sys

    from builders import seed_cnn

    local = save(seed_cnn(), tmp_path / "m.onnx")
    script = f"""
import mmap, os, threading
from onnxaudit import audit
from onnxaudit.errors import AuditError
from onnxaudit.io.isolate import fork_safe
from onnxaudit.model.read import _strip_in_child
audit({{url!r}})
assert "fsspecIO" in {{{{t.name for t in threading.enumerate()}}}} and fork_safe()
with open({str(local)!r}, "rb") as f:
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
os.truncate({str(local)!r}, 4096)
try:
    _strip_in_child(mapped, {str(local)!r})
except AuditError as exc:
    print("error:", exc)
threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
print("other thread, fork safe:", fork_safe())
"""
    path = FIXTURES[0]
    with serving({path.name: path}) as server:
        code = script.format(url=url(server, path.name))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "changed while it was read" in done.stdout and "fork safe: False" in done.stdout, done.stdout
    assert done.stderr == ""
