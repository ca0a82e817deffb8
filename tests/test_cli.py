"""CLI: summary formats and options, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from builders import save, seed_cnn

from onnxaudit import SCHEMA_VERSION
from onnxaudit.cli.main import main


def _seed(tmp_path):
    return str(save(seed_cnn(), tmp_path / "seed_cnn.onnx"))


def test_text_summary_footer_and_explain(tmp_path, capsys):
    assert main(["summary", _seed(tmp_path), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 37,633 (147.00 KB)" in out
    assert "Trainable params: 37,569 (146.75 KB)" in out
    assert "Non-trainable params: 64 (256.00 B)" in out
    assert "Conv 32x3x7x7 + 32 = 4,736" in out
    assert "BatchNormalization 4 x 32 = 128" in out
    assert "(N, 32, 64, 64)" in out


def test_pytorch_convention_says_buffers(tmp_path, capsys):
    assert main(["summary", _seed(tmp_path), "--convention", "pytorch"]) == 0
    out = capsys.readouterr().out
    assert "Buffers (BN running stats): 64" in out
    assert "num_batches_tracked" in out


def test_json_is_deterministic_and_versioned(tmp_path, capsys):
    path = _seed(tmp_path)
    main(["summary", path, "--format", "json"])
    first = capsys.readouterr().out
    main(["summary", path, "--format", "json"])
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["totals"]["total"] == 37_633
    assert [r["name"] for r in data["rows"]][:3] == ["zero_padding2d", "conv0", "bn0"]


def test_markdown_and_groupings(tmp_path, capsys):
    path = _seed(tmp_path)
    main(["summary", path, "--format", "markdown"])
    assert "| conv0 | Conv |" in capsys.readouterr().out
    main(["summary", path, "--by", "role", "--format", "json"])
    roles = {r["name"]: r["params"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert roles["bn_mean"] == 32 and roles["weight"] == 32 * 3 * 7 * 7 + 32 * 32 * 32
    main(["summary", path, "--by", "tensor", "--format", "json"])
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 8  # pads is a shape constant, not a row


def test_unusable_input_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "onnxaudit", "summary", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in proc.stderr


def test_usage_errors_exit_2(tmp_path, capsys):
    try:
        main(["summary", _seed(tmp_path), "--depth", "0"])
    except SystemExit as exc:
        assert exc.code == 2
    else:  # pragma: no cover - argparse always exits here
        raise AssertionError("--depth 0 accepted")


def test_an_unexpected_failure_names_what_the_command_was_given(tmp_path, capsys, monkeypatch):
    """The catch-all for a bug printed 'onnxaudit: : internal error' for diff, check and scan, which name no single
    'model': it names check's models, diff's OLD and NEW, scan's folder. A raising stand-in for a bug in the step
    each command calls first (a real bug cannot be written to order)."""
    path = _seed(tmp_path)

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("onnxaudit.cli.diff.compare", bug)
    monkeypatch.setattr("onnxaudit.cli.check.check_files", bug)
    monkeypatch.setattr("onnxaudit.cli.main.audit", bug)
    for argv, named in (
        (["diff", path, path], f"{path} and {path}"),
        (["check", path, path], f"{path} and {path}"),
        (["summary", path], path),
    ):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == f"onnxaudit: {named}: internal error RuntimeError: a bug\n"


# entry() ends the process without the interpreter's teardown: what it printed, the atexit handlers' output and the
# exit code must be those of an ordinary exit, with and without another thread alive (then it exits as usual); a
# caller that redirected stdout gets SystemExit, as from sys.exit
_ENTRY = """
import atexit, sys, threading, time
mode = sys.argv[1]
atexit.register(lambda: print("atexit handler ran"))
def last_words():  # printed once the main thread has ended, i.e. only if the process then waits for this one
    while threading.main_thread().is_alive():
        time.sleep(0.01)
    print("thread finished")
if mode == "thread":
    threading.Thread(target=last_words).start()
from onnxaudit.cli.main import entry
sys.argv = ["onnxaudit", *sys.argv[2:]]
if mode == "redirected":
    import contextlib, io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        try:
            entry()
        except SystemExit as exc:
            code = exc.code
    print(buffer.getvalue(), end="")
    print("caught exit", code)
else:
    entry()
"""


def test_entry_exit_keeps_output_handlers_and_code(tmp_path, capsys):
    path = _seed(tmp_path)
    assert main(["summary", path]) == 0
    summary = capsys.readouterr().out
    for thread in ("none", "thread"):
        run = [sys.executable, "-c", _ENTRY, thread]
        proc = subprocess.run([*run, "summary", path], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == ""
        finished = "thread finished\n" if thread == "thread" else ""
        assert proc.stdout == summary + finished + "atexit handler ran\n"
        bad = subprocess.run([*run, "summary", str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and bad.stdout == finished + "atexit handler ran\n"
        assert len(bad.stderr.splitlines()) == 1 and str(tmp_path) in bad.stderr
    redirected = subprocess.run(
        [sys.executable, "-c", _ENTRY, "redirected", "summary", path], capture_output=True, text=True, timeout=60
    )
    assert redirected.stdout == summary + "caught exit 0\natexit handler ran\n" and redirected.returncode == 0


def test_closed_stdout_is_one_line_naming_the_file(tmp_path):
    # `onnxaudit summary m.onnx >&-`: Python starts with sys.stdout None; before, "internal error AttributeError"
    path = _seed(tmp_path)
    for command in (["summary", path], ["check", path], ["verify", path, "--expect", "total=1"]):
        proc = subprocess.run(
            [sys.executable, "-m", "onnxaudit", *command],
            stdout=subprocess.DEVNULL,  # replaced by a closed fd in the child below
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            preexec_fn=lambda: os.close(1),  # noqa: PLW1509 - a closed stdout is the case under test
        )
        assert proc.returncode == 2
        assert proc.stderr == f"onnxaudit: {path}: cannot write the output: standard output is closed\n"


def test_a_stdout_that_cannot_encode_gets_escapes_not_an_error(tmp_path):
    # PYTHONIOENCODING=ascii (or a latin-1 locale): the tables' own '·' made every summary "internal error
    # UnicodeEncodeError"; now what the stream cannot encode is written as a backslash escape
    path = _seed(tmp_path)
    for encoding, dot in (("ascii", "\\xb7"), ("latin-1", "·")):
        env = {**os.environ, "PYTHONIOENCODING": encoding}
        for command in (["summary", path], ["diff", path, path]):  # diff's text holds no '·' here: exit and stderr
            proc = subprocess.run(
                [sys.executable, "-m", "onnxaudit", *command], capture_output=True, env=env, timeout=60
            )
            assert proc.returncode == 0 and proc.stderr == b"", (encoding, command, proc.stderr)
            assert dot.encode(encoding) in proc.stdout or command[0] == "diff", (encoding, command)
