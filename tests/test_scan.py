"""`onnxaudit scan DIR`: every model audited in parallel, errors as records, exit codes 0 / 1 / 2."""

from __future__ import annotations

import io
import json
import multiprocessing
import os

import pytest
from builders import init, model, node, save, seed_cnn, unreadable_folder, value

from onnxaudit import audit
from onnxaudit.cli.main import main
from onnxaudit.scan import batch as scan_module
from onnxaudit.scan.batch import Progress, Record, find_models


def _mlp():
    return model(
        [node("MatMul", ["x", "W"], ["h"]), node("Add", ["h", "b"], ["y"])],
        [value("x", ["N", 16])],
        [value("y", ["N", 4])],
        [init("W", [16, 4]), init("b", [4])],
    )


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "models"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a").mkdir()
    save(seed_cnn(), root / "a" / "cnn.onnx")
    save(_mlp(), root / "b" / "deeper" / "mlp.ONNX")
    (root / "b" / "broken.onnx").write_bytes(b"\x08" + b"\xff" * 11)
    (root / "b" / "empty.onnx").write_bytes(b"")
    (root / "notes.txt").write_text("not a model")
    return root


def _records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_scan_reports_every_model_in_path_order(tree, capsys):
    code = main(["scan", str(tree), "--jobs", "2"])
    out, err = capsys.readouterr()
    records = _records(out)
    names = [os.path.relpath(r["path"], tree) for r in records]
    assert names == ["a/cnn.onnx", "b/broken.onnx", "b/deeper/mlp.ONNX", "b/empty.onnx"]
    assert code == 1  # two files could not be audited
    by_name = dict(zip(names, records, strict=True))
    cnn = by_name["a/cnn.onnx"]
    expected = audit(tree / "a" / "cnn.onnx").totals
    assert cnn["status"] == "ok" and cnn["error"] is None
    assert (cnn["total"], cnn["trainable"], cnn["non_trainable"]) == (
        expected.total,
        expected.trainable,
        expected.non_trainable,
    )
    assert by_name["b/deeper/mlp.ONNX"]["total"] == 16 * 4 + 4
    assert cnn["macs"] == {"terms": {"N": 19_300_352}, "text": "19,300,352 x N", "value": None}  # seed_cnn's
    assert by_name["b/broken.onnx"]["macs"] is None
    for bad, message in (("b/broken.onnx", "not an ONNX model"), ("b/empty.onnx", "empty file")):
        record = by_name[bad]
        assert record["status"] == "error" and record["total"] is None
        assert message in record["error"] and "\n" not in record["error"]
    assert all(r["schema_version"] == 2 and r["convention"] == "keras" for r in records)
    assert "4 models: 2 audited, 2 failed" in err
    assert "\r" not in err  # no progress bar when stderr is not a terminal


def test_scan_exit_0_when_everything_audits(tmp_path, capsys):
    save(_mlp(), tmp_path / "one.onnx")
    assert main(["scan", str(tmp_path), "--jobs", "1", "--convention", "pytorch", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert _records(out)[0]["convention"] == "pytorch" and err == ""


def test_scan_output_is_deterministic(tree, capsys):
    main(["scan", str(tree), "--jobs", "2"])
    first = capsys.readouterr().out
    main(["scan", str(tree), "--jobs", "1"])
    assert capsys.readouterr().out == first


def test_unusable_directory_exits_2(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "absent")]) == 2
    assert "no such directory" in capsys.readouterr().err
    save(_mlp(), tmp_path / "file.onnx")
    assert main(["scan", str(tmp_path / "file.onnx")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_empty_directory_is_not_an_error(tmp_path, capsys):
    assert main(["scan", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no .onnx files" in err


def test_symlinked_folders_are_not_entered(tmp_path):
    save(_mlp(), tmp_path / "m.onnx")
    (tmp_path / "loop").symlink_to(tmp_path)
    assert find_models(tmp_path) == [tmp_path / "m.onnx"]


def test_a_folder_that_cannot_be_read_is_reported_and_fails_the_scan(tmp_path, capsys):
    save(_mlp(), tmp_path / "m.onnx")
    deep = unreadable_folder(tmp_path, _mlp())
    try:
        assert main(["scan", str(tmp_path), "--jobs", "1"]) == 1
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o700)
    out, err = capsys.readouterr()
    records = _records(out)
    errors = [r for r in records if r["status"] == "error"]
    assert [r["status"] for r in records if r["path"] == str(tmp_path / "m.onnx")] == ["ok"]
    assert errors and all("cannot read the folder" in r["error"] and r["path"] in r["error"] for r in errors)
    assert any(deep in r["path"] for r in errors)
    assert "cannot read the folder" in err


def test_progress_bar_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = Progress(2, stream)
    bar.update(0, Record("a.onnx", "ok"))
    bar.update(1, Record("b.onnx", "error", error="bad"))
    bar.close()
    assert "1/2 files" in stream.getvalue() and "2/2 files, 1 error" in stream.getvalue()
    plain = io.StringIO()
    Progress(2, plain).update(0, Record("a.onnx", "ok"))
    assert plain.getvalue() == ""


def _dies_on_crash(path: str, convention: str, max_nodes: int) -> Record:
    if "crash" in path:
        os._exit(3)  # as an out-of-memory kill would end a worker
    return _real_audit_one(path, convention, max_nodes)


_real_audit_one = scan_module.audit_one


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="workers must inherit the patch")
def test_a_dying_worker_fails_only_its_file(tmp_path, capsys, monkeypatch):
    for name in ("a.onnx", "crash.onnx", "z.onnx"):
        save(_mlp(), tmp_path / name)
    monkeypatch.setattr(scan_module, "audit_one", _dies_on_crash)
    assert main(["scan", str(tmp_path), "--jobs", "2"]) == 1
    records = _records(capsys.readouterr().out)
    assert [r["status"] for r in records] == ["ok", "error", "ok"]
    assert "process died" in records[1]["error"]
