"""check for CI: SARIF 2.1.0 (validated against the published schema), JUnit XML, several files with the
worst exit, a baseline so only new findings fail, one line per rule firing often, --exit-zero."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest
from builders import MODELS, array, init, linear, model, node, save, seed_cnn, value

from onnxaudit.check.baseline import fingerprint
from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import check
from onnxaudit.cli.main import main
from onnxaudit.render.check.common import LISTED_PER_RULE
from onnxaudit.render.check.sarif import artifact_uri

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
EVIL = "evil\n::error::pwned\x1b[31m%0A<x>&"


def _nan_model(nans: int = 1) -> onnx.ModelProto:
    """One error (NaN), one warning (unused, with a hostile name), one info (unclassified)."""
    values = np.ones((4, 4), np.float32)
    values.flat[:nans] = np.nan
    return model(
        [node("MatMul", ["x", "W"], ["y"]), node("Add", ["z", "pos"], ["y2"])],
        [value("x", ["N", 4]), value("z", ["N", 4, 4])],
        [value("y", None), value("y2", None)],
        [array("W", values), init("pos", [4, 4]), init(EVIL, [2])],
    )


def _unused(n: int) -> onnx.ModelProto:
    """n initializers no node reads: OA203 n times on one model."""
    return linear(init("W", [4, 4]), extra=[init(f"spare{i}", [3]) for i in range(n)])


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _validate_sarif(text: str) -> dict:
    sarif = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    return sarif


# ---------------------------------------------------------------- SARIF


def test_sarif_is_valid_and_says_what_each_result_is(tmp_path, capsys):
    bad = str(save(_nan_model(), tmp_path / "bad.onnx"))
    clean = str(save(seed_cnn(), tmp_path / "clean.onnx"))
    code, out, _ = _run(capsys, bad, clean, "--format", "sarif")
    assert code == 1
    sarif = _validate_sarif(out)
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == REGISTRY.ids()
    for rule in rules:
        registered = REGISTRY[rule["id"]]
        assert rule["fullDescription"]["text"] == registered.docs and registered.docs in rule["help"]["text"]
        assert (
            rule["defaultConfiguration"]["level"]
            == {"error": "error", "warning": "warning", "info": "note"}[registered.severity]
        )
    # absolute paths as file:// URIs (a bare /tmp/... would be read against the repository root)
    assert [a["location"]["uri"] for a in run["artifacts"]] == [Path(bad).as_uri(), Path(clean).as_uri()]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("OA101", "error"), ("OA203", "warning"), ("OA206", "note")]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    nan = results[0]["locations"][0]
    assert nan["physicalLocation"]["artifactLocation"] == {"uri": Path(bad).as_uri(), "index": 0}
    assert nan["logicalLocations"] == [{"name": "W", "fullyQualifiedName": "W", "kind": "variable"}]
    # the hostile name is escaped: no control character, no ESC reaches a SARIF viewer
    unused = results[1]
    assert "\x1b" not in out and "evil\\x0a::error::pwned\\x1b[31m" in unused["message"]["text"]
    findings = check(bad).findings
    assert [r["partialFingerprints"]["onnxauditFinding/v1"] for r in results] == [fingerprint(bad, f) for f in findings]
    assert run["invocations"] == [{"executionSuccessful": True}]


@pytest.mark.parametrize(
    ("model", "uri"),
    [
        ("models/a b.onnx", "models/a%20b.onnx"),  # relative: read against the repository root
        ("./x/../m.onnx", "m.onnx"),
        ("/ci/work/m.onnx", "file:///ci/work/m.onnx"),
        ("https://host/models/m.onnx", "https://host/models/m.onnx"),
    ],
)
def test_sarif_artifact_uris(model, uri):
    assert artifact_uri(model) == uri


def test_sarif_of_an_unusable_file_is_still_valid(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    code, out, err = _run(capsys, str(junk), "--format", "sarif")
    assert code == 2 and err.count("\n") == 1 and "junk.onnx" in err
    (run,) = _validate_sarif(out)["runs"]
    assert run["results"] == [] and run["invocations"][0]["executionSuccessful"] is False
    (notice,) = run["invocations"][0]["toolExecutionNotifications"]
    assert notice["level"] == "error" and "junk.onnx" in notice["message"]["text"]


def test_sarif_of_every_fixture_family_is_valid(capsys):
    """Real exporter output, findings of several rules (OA105, OA201, OA206, OA212) in one document."""
    picks = [
        MODELS / "torch" / "tied_lm__legacy_fold.onnx",
        MODELS / "torch" / "resnet_tiny__legacy_training.onnx",
        MODELS / "keras" / "seed_cnn_axis_typo__tf2onnx_op17.onnx",
    ]
    code, out, _ = _run(capsys, *map(str, picks), "--format", "sarif", "--fail-on", "warning")
    assert code == 1
    rules = {r["ruleId"] for r in _validate_sarif(out)["runs"][0]["results"]}
    assert {"OA105", "OA201", "OA206", "OA212"} <= rules


# ---------------------------------------------------------------- JUnit


def test_junit_has_a_testcase_per_rule_per_model(tmp_path, capsys):
    bad = str(save(_nan_model(), tmp_path / "bad.onnx"))
    clean = str(save(seed_cnn(), tmp_path / "clean.onnx"))
    missing = str(tmp_path / "missing.onnx")
    code, out, _ = _run(capsys, bad, clean, missing, "--format", "junit", "--fail-on", "warning")
    assert code == 2
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [bad, clean, missing]
    rules = REGISTRY.ids()
    for suite in suites[:2]:
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == [f"{r} {REGISTRY[r].name}" for r in rules]
        assert {c.get("classname") for c in cases} == {suite.get("name")}
        assert suite.get("tests") == str(len(rules))
        assert suite.get("failures") == str(sum(1 for c in cases if c.find("failure") is not None))
    failing = {c.get("name").split()[0]: c for c in suites[0].findall("testcase") if c.find("failure") is not None}
    assert sorted(failing) == ["OA101", "OA203"]  # fail on warning: the info (OA206) only in system-out
    assert "NaN" in failing["OA101"].find("failure").get("message")
    assert REGISTRY["OA101"].docs in failing["OA101"].find("failure").text
    assert "\\x1b" in failing["OA203"].find("failure").text and "\x1b" not in out
    info = next(c for c in suites[0].findall("testcase") if c.get("name").startswith("OA206"))
    assert info.find("failure") is None and "no known role" in info.find("system-out").text
    assert all(c.find("failure") is None for c in suites[1].findall("testcase"))
    (error,) = suites[2].iter("error")
    assert "missing.onnx" in error.get("message")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (str(2 * len(rules) + 1), "2", "1")


# ---------------------------------------------------------------- several files, exit codes


def test_several_files_exit_with_the_worst(tmp_path, capsys):
    bad = str(save(_nan_model(), tmp_path / "bad.onnx"))
    clean = str(save(seed_cnn(), tmp_path / "clean.onnx"))
    assert _run(capsys, clean, clean)[0] == 0
    code, out, _ = _run(capsys, clean, bad)
    assert code == 1
    assert out.count("\nCheck ") + out.startswith("Check ") == 2 and out.endswith("Checked 2 files: 1 failed\n")
    code, out, err = _run(capsys, clean, str(tmp_path / "none.onnx"), bad)
    assert code == 2 and "none.onnx" in err and "Checked 3 files: 1 failed, 1 unusable" in out
    code, out, _ = _run(capsys, clean, bad, "--format", "json")
    data = json.loads(out)
    assert data["passed"] is False and [r["model"] for r in data["reports"]] == [clean, bad]
    assert _run(capsys, bad, "--exit-zero")[0] == 0
    assert _run(capsys, bad, str(tmp_path / "none.onnx"), "--exit-zero")[0] == 2  # unusable input is not a finding
    assert _run(capsys, clean, "--select", "OA999")[0] == 2


# ---------------------------------------------------------------- baseline


def test_baseline_accepts_old_findings_and_fails_on_new_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save(_nan_model(), tmp_path / "a.onnx")
    save(_unused(2), tmp_path / "b.onnx")
    code, _, err = _run(capsys, "a.onnx", "b.onnx", "--fail-on", "warning", "--write-baseline", "base.json")
    assert code == 0 and "wrote 5 findings" in err
    first = (tmp_path / "base.json").read_text()
    # stable: the same file whatever the order of the files and however a path is written
    (tmp_path / "sub").mkdir()
    _run(capsys, "./b.onnx", "sub/../a.onnx", "--fail-on", "warning", "--write-baseline", "again.json")
    assert (tmp_path / "again.json").read_text() == first
    entries = json.loads(first)["findings"]
    assert sorted((e["model"], e["rule"], e["location"], e["count"]) for e in entries) == [
        ("a.onnx", "OA101", "tensor:W", 1),
        ("a.onnx", "OA203", f"tensor:{EVIL}".encode("utf-8", "surrogateescape").decode(), 1),
        ("a.onnx", "OA206", "tensor:pos", 1),
        ("b.onnx", "OA203", "tensor:spare0", 1),
        ("b.onnx", "OA203", "tensor:spare1", 1),
    ]
    code, out, _ = _run(capsys, "a.onnx", "b.onnx", "--fail-on", "warning", "--baseline", "base.json")
    assert code == 0 and "in the baseline not shown" in out and "OA101" not in out
    # the same places with other figures (3 NaN, not 1) are still the accepted findings...
    save(_nan_model(nans=3), tmp_path / "a.onnx")
    assert _run(capsys, "a.onnx", "--fail-on", "warning", "--baseline", "base.json")[0] == 0
    # ...a new place is new, and only it is shown
    save(_unused(3), tmp_path / "b.onnx")
    code, out, _ = _run(capsys, "b.onnx", "--fail-on", "warning", "--baseline", "base.json", "--format", "json")
    data = json.loads(out)
    assert code == 1 and [f["target"] for f in data["findings"]] == ["spare2"] and data["baselined"] == 2


@pytest.mark.parametrize("content", [b"", b"{}", b"[1]", b'{"schema_version": 1, "findings": [{"count": 1}]}'])
def test_a_broken_baseline_is_one_line(tmp_path, capsys, content):
    (tmp_path / "base.json").write_bytes(content)
    path = str(save(seed_cnn(), tmp_path / "m.onnx"))
    code, out, err = _run(capsys, path, "--baseline", str(tmp_path / "base.json"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "base.json" in err and "Traceback" not in err


# ---------------------------------------------------------------- one line per rule firing often


def test_a_rule_firing_often_is_one_line_unless_verbose(tmp_path, capsys):
    many = LISTED_PER_RULE + 3
    path = str(save(_unused(many), tmp_path / "m.onnx"))
    code, out, _ = _run(capsys, path, "--fail-on", "warning", "--wide")  # one line, however long
    lines = [line for line in out.splitlines() if "OA203" in line]
    assert code == 1 and len(lines) == 1
    assert f"{many} findings, the first: initializer 'spare0' (3) is consumed by no node" in lines[0]
    assert f"--verbose lists all {many}" in lines[0] and "1 errors" not in out
    verbose = [line for line in _run(capsys, path, "--fail-on", "warning", "--verbose")[1].splitlines()]
    assert sum("OA203" in line for line in verbose) == many
    assert len(json.loads(_run(capsys, path, "--format", "json")[1])["findings"]) == many
    few = str(save(_unused(LISTED_PER_RULE), tmp_path / "few.onnx"))
    assert sum("OA203" in line for line in _run(capsys, few)[1].splitlines()) == LISTED_PER_RULE


# ---------------------------------------------------------------- JSON Lines


def test_json_lines_one_finding_a_line_as_sarif_fingerprints_them(tmp_path, capsys):
    bad = str(save(_nan_model(), tmp_path / "bad.onnx"))
    clean = str(save(seed_cnn(), tmp_path / "clean.onnx"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 16)
    code, out, err = _run(capsys, bad, clean, str(garbage), "--format", "jsonl")
    assert code == 2 and err.count("\n") == 1  # the unusable file: one stderr line, and the worst exit code
    records = [json.loads(line) for line in out.splitlines()]
    findings = check(bad).findings
    assert [(r["model"], r["rule"], r["severity"], r["fails"]) for r in records[:-1]] == [
        (bad, f.rule, f.severity, f.severity == "error") for f in findings
    ]
    assert all(r["schema_version"] == 1 for r in records)
    assert sorted(records[-1]) == ["error", "model", "schema_version"] and records[-1]["model"] == str(garbage)
    assert "garbage.onnx" in records[-1]["error"]
    sarif = json.loads(_run(capsys, bad, "--format", "sarif")[1])
    prints = [r["partialFingerprints"]["onnxauditFinding/v1"] for r in sarif["runs"][0]["results"]]
    assert [r["fingerprint"] for r in records[:-1]] == prints == [fingerprint(bad, f) for f in findings]
    assert _run(capsys, clean, "--format", "jsonl")[:2] == (0, "")  # clean: nothing, as ruff prints
    assert _run(capsys, bad, "--format", "jsonl", "--exit-zero")[0] == 0
