"""check: each rule fires on a minimal model and stays quiet on a clean one; formats, flags, exit codes."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from builders import MODELS, array, batchnorm, external, init, linear, model, node, save, seed_cnn, value
from onnx import TensorProto, helper

from onnxaudit.check.rules import REGISTRY
from onnxaudit.check.runner import CHECK_SCHEMA_VERSION, check
from onnxaudit.cli.main import main


def _rules(tmp_path, m: onnx.ModelProto, name: str = "m.onnx", **kwargs) -> list[str]:
    return [f.rule for f in check(save(m, tmp_path / name), **kwargs).findings]


def _weight(values, name: str = "W") -> onnx.TensorProto:
    return array(name, np.asarray(values, np.float32))


def test_clean_model_has_no_findings(tmp_path):
    report = check(save(seed_cnn(), tmp_path / "seed_cnn.onnx"))
    assert report.findings == [] and report.passed and report.exit_code == 0
    assert report.params == 37_633 and report.scan.tensors == 8


@pytest.mark.parametrize("fixture", ["seed_cnn__legacy_nofold", "resnet_tiny__legacy_fold", "tied_lm__legacy_nofold"])
def test_real_exports_pass(fixture):
    report = check(MODELS / "torch" / f"{fixture}.onnx")
    assert report.passed, [f.message for f in report.findings]


# ---------------------------------------------------------------- OA1xx: values


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_weights(tmp_path, bad):
    values = np.ones((4, 4), np.float32)
    values[1, 2] = bad
    findings = check(save(linear(_weight(values)), tmp_path / "m.onnx")).findings
    assert [f.rule for f in findings] == ["OA101"] and findings[0].target == "W"
    assert "among 16 values" in findings[0].message


def test_bn_variance_negative_zero_and_tiny(tmp_path):
    ok = [1.0, 1.0]
    assert _rules(tmp_path, batchnorm(ok, ok, ok, [1.0, -0.5])) == ["OA102"]
    assert _rules(tmp_path, batchnorm(ok, ok, ok, [1.0, 0.0], epsilon=0.0)) == ["OA102"]
    tiny = check(save(batchnorm(ok, ok, ok, [1.0, 0.0], epsilon=1e-5), tmp_path / "t.onnx")).findings
    assert [f.rule for f in tiny] == ["OA103"] and "316x" in tiny[0].message
    assert _rules(tmp_path, batchnorm(ok, ok, ok, [1.0, 0.0], epsilon=1e-3)) == []  # Keras' default: 31.6x


def test_all_zero_weights(tmp_path):
    assert _rules(tmp_path, linear(_weight(np.zeros((4, 4))))) == ["OA104"]
    assert _rules(tmp_path, batchnorm([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0])) == ["OA104"]  # gamma


def test_duplicate_and_transposed_weights(tmp_path):
    w = np.random.default_rng(0).random((8, 16)).astype(np.float32)
    copy = model(
        [node("MatMul", ["x", "W"], ["h"]), node("MatMul", ["h2", "W2"], ["y"]), node("Relu", ["h"], ["h2"])],
        [value("x", ["N", 8])],
        [value("y", None)],
        [_weight(w), array("W2", np.ascontiguousarray(w.T))],
    )
    findings = check(save(copy, tmp_path / "t.onnx")).findings
    assert [f.rule for f in findings] == ["OA105"] and "transposed" in findings[0].message
    same = model(
        [node("MatMul", ["x", "W"], ["h"]), node("MatMul", ["h", "W2"], ["y"])],
        [value("x", ["N", 8])],
        [value("y", None)],
        [_weight(w[:, :8]), array("W2", np.ascontiguousarray(w[:, :8]))],
    )
    findings = check(save(same, tmp_path / "s.onnx")).findings
    assert [f.rule for f in findings] == ["OA105"] and "same 64 float32 values" in findings[0].message


def test_shared_weight_is_no_duplicate(tmp_path):
    shared = model(
        [node("MatMul", ["x", "W"], ["h"]), node("MatMul", ["h", "W"], ["y"])],
        [value("x", ["N", 8])],
        [value("y", None)],
        [init("W", [8, 8])],
    )
    report = check(save(shared, tmp_path / "m.onnx"))
    assert report.findings == [] and report.params == 64


def test_real_tied_weights_stored_transposed():
    report = check(MODELS / "torch" / "tied_lm__legacy_fold.onnx")
    assert [f.rule for f in report.findings] == ["OA105"]
    assert "'embed.weight' (100x32) transposed" in report.findings[0].message


def test_values_not_scannable_are_said(tmp_path):
    half = helper.make_tensor("W", TensorProto.FLOAT16, [4, 4], np.ones(16, np.float16).view(np.uint16).tolist())
    assert _rules(tmp_path, linear(half)) == ["OA308"]  # float16 in int32_data: not decoded


# ---------------------------------------------------------------- OA2xx: graph


def test_bn_training_mode(tmp_path):
    ok = [1.0, 1.0]
    assert _rules(tmp_path, batchnorm(ok, ok, ok, ok, training_mode=1)) == ["OA201"]


def test_bn_malformed(tmp_path):
    ok = [1.0, 1.0]
    assert _rules(tmp_path, batchnorm(ok, ok, ok, ok, inputs=("x", "g", "b"))) == [
        "OA202",
        "OA203",
        "OA203",
    ]  # m, v unused
    assert _rules(tmp_path, batchnorm(ok, ok, [1.0] * 4, ok)) == ["OA202"]
    findings = check(save(batchnorm(ok, ok, ok, ok, channels=3), tmp_path / "c.onnx")).findings
    assert [f.rule for f in findings] == ["OA202"] and "3 channels" in findings[0].message


def test_unused_and_overridable_initializers(tmp_path):
    assert _rules(tmp_path, linear(init("W", [4, 4]), extra=[init("spare", [3])])) == ["OA203"]
    m = linear(init("W", [4, 4]))
    m.graph.input.append(value("W", [4, 4]))
    findings = check(save(m, tmp_path / "o.onnx")).findings
    assert [(f.rule, f.severity) for f in findings] == [("OA204", "warning")]
    m.ir_version = 3  # IR < 4 lists every initializer as an input: expected, so only info
    findings = check(save(m, tmp_path / "ir3.onnx")).findings
    assert [(f.rule, f.severity) for f in findings] == [("OA204", "info")]


def test_duplicate_names(tmp_path):
    twice = model(
        [node("MatMul", ["x", "W"], ["y"])], [value("x", ["N", 4])], [value("y", None)], [init("W", [4, 4])] * 2
    )
    assert _rules(tmp_path, twice) == ["OA205"]
    written_twice = model(
        [node("Relu", ["x"], ["h"], name="a"), node("Sigmoid", ["x"], ["h"], name="b")],
        [value("x", ["N", 4])],
        [value("h", None)],
    )
    assert _rules(tmp_path, written_twice) == ["OA205"]


def test_unclassified_tensor(tmp_path):
    m = model([node("Add", ["x", "pos"], ["y"])], [value("x", ["N", 4, 4])], [value("y", None)], [init("pos", [4, 4])])
    findings = check(save(m, tmp_path / "m.onnx")).findings
    assert [(f.rule, f.severity) for f in findings] == [("OA206", "info")]


def test_dangling_cycle_and_recursion(tmp_path):
    dangling = model([node("MatMul", ["nothing", "W"], ["y"])], [value("x", [1, 4])], [value("y", None)])
    dangling.graph.initializer.append(init("W", [4, 4]))
    assert _rules(tmp_path, dangling) == ["OA207"]
    cycle = model(
        [node("MatMul", ["h", "W"], ["y"], name="a"), node("Relu", ["y"], ["h"], name="b")],
        [value("x", [1, 4])],
        [value("y", None)],
        [init("W", [4, 4])],
    )
    assert _rules(tmp_path, cycle) == ["OA208"]
    body = [helper.make_node("f", ["a"], ["b"], domain="local")]
    f = helper.make_function("local", "f", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    recursive = model(
        [node("f", ["x"], ["y"], domain="local")], [value("x", [4])], [value("y", None)],
        extra_opsets={"local": 1}, functions=[f],
    )  # fmt: skip
    assert _rules(tmp_path, recursive) == ["OA209"]


def test_custom_domains(tmp_path):
    custom = model(
        [
            node("Frobnicate", ["x"], ["h"], domain="com.example"),
            node("FastGelu", ["h"], ["y"], domain="com.microsoft"),
        ],
        [value("x", ["N", 4])],
        [value("y", None)],
        extra_opsets={"com.example": 1, "com.microsoft": 1},
    )
    findings = check(save(custom, tmp_path / "m.onnx")).findings
    assert [(f.rule, f.severity, f.target) for f in findings] == [
        ("OA210", "warning", "com.example"),
        ("OA210", "info", "com.microsoft"),
    ]


def test_float64_weights(tmp_path):
    assert _rules(tmp_path, linear(init("W", [4, 4], np.float64))) == ["OA211"]


# ---------------------------------------------------------------- OA3xx: format and data


@pytest.mark.parametrize(("dims", "words"), [([-4, -4], "negative dim"), ([2**40, 2**40], "overflows int64")])
def test_bad_dims_are_findings_even_without_a_view(tmp_path, dims, words):
    bad = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=bytes(64))
    del bad.dims[:]
    bad.dims.extend(dims)
    report = check(save(linear(bad), tmp_path / "m.onnx"))
    assert [f.rule for f in report.findings] == ["OA301"] and words in report.findings[0].message
    assert report.params is None and "graph and value rules skipped" in report.notes[0]
    assert report.exit_code == 1


def test_data_length_disagrees_with_dims(tmp_path):
    short = _weight(np.ones((4, 4)))
    short.raw_data = short.raw_data[:10]
    assert _rules(tmp_path, linear(short)) == ["OA302"]
    typed = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4], float_data=[1.0] * 15)
    assert _rules(tmp_path, linear(typed)) == ["OA302"]
    empty = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4])
    findings = check(save(linear(empty), tmp_path / "e.onnx")).findings
    assert [f.rule for f in findings] == ["OA302"] and "no data" in findings[0].message


def _external_model(tmp_path, **entries) -> str:
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    (folder / "w.bin").write_bytes(np.ones(16, np.float32).tobytes())
    return str(save(linear(external("W", [4, 4], **entries)), folder / "m.onnx"))


@pytest.mark.parametrize(
    ("entries", "rule", "words"),
    [
        ({"location": "w.bin"}, None, ""),
        ({"location": "./w.bin"}, None, ""),
        ({"location": "../w.bin"}, "OA303", "'..' leaves"),
        ({"location": "/etc/hostname"}, "OA303", "absolute"),
        ({"location": "missing.bin"}, "OA303", "does not exist"),
        ({"location": ""}, "OA303", "empty location"),
        ({"location": "w.bin", "offset": 4}, "OA304", "runs past the end"),
        ({"location": "w.bin", "offset": "-4"}, "OA304", "not a whole number"),
        ({"location": "w.bin", "offset": "1e3"}, "OA304", "not a whole number"),
        ({"location": "w.bin", "offset": 10**6}, "OA304", "past the end"),
        ({"location": "w.bin", "length": 8}, "OA302", "dims need 64"),
        ({"location": "w.bin", "length": None}, None, ""),  # the rest of the file: 64 bytes, as the dims need
    ],
)
def test_external_data_rules(tmp_path, entries, rule, words):
    findings = check(_external_model(tmp_path, **entries)).findings
    assert [f.rule for f in findings] == ([rule] if rule else [])
    assert words in (findings[0].message if findings else "")


def test_external_links_fifos_and_devices(tmp_path):
    path = _external_model(tmp_path, location="link.bin")
    folder = tmp_path / "models"
    (folder / "link.bin").symlink_to(folder / "w.bin")  # even a symlink staying inside is refused
    assert "is a symlink" in check(path).findings[0].message
    os.unlink(folder / "link.bin")
    os.link(folder / "w.bin", folder / "link.bin")
    assert "hard link" in check(path).findings[0].message
    os.unlink(folder / "link.bin")
    os.mkfifo(folder / "link.bin")
    assert "is a FIFO" in check(path).findings[0].message


def test_versions_from_the_future(tmp_path):
    m = linear(init("W", [4, 4]), ir_version=99, opset=999)
    assert _rules(tmp_path, m) == ["OA305", "OA306"]


def test_max_params(tmp_path):
    path = save(seed_cnn(), tmp_path / "m.onnx")
    assert [f.rule for f in check(path, max_params=37_632).findings] == ["OA307"]
    assert check(path, max_params=37_633).findings == []


# ---------------------------------------------------------------- CLI: flags, formats, escaping


def _bad_model(tmp_path) -> str:
    """One error (NaN), one warning (unused), one info (unclassified), with a hostile unused name."""
    values = np.ones((4, 4), np.float32)
    values[0, 0] = np.nan
    m = model(
        [node("MatMul", ["x", "W"], ["y"]), node("Add", ["z", "pos"], ["y2"])],
        [value("x", ["N", 4]), value("z", ["N", 4, 4])],
        [value("y", None), value("y2", None)],
        [_weight(values), init("pos", [4, 4]), init("evil\n::error::pwned\x1b[31m%0A", [2])],
    )
    return str(save(m, tmp_path / "bad.onnx"))


def test_fail_on_select_ignore_and_exit_codes(tmp_path, capsys):
    path = _bad_model(tmp_path)
    assert main(["check", path]) == 1
    assert main(["check", path, "--ignore", "OA101"]) == 0
    assert main(["check", path, "--ignore", "OA101", "--fail-on", "warning"]) == 1
    assert main(["check", path, "--fail-on", "never"]) == 0
    assert main(["check", path, "--select", "OA2", "--fail-on", "warning"]) == 1
    assert main(["check", path, "--select", "OA206", "--fail-on", "warning"]) == 0
    capsys.readouterr()
    assert main(["check", path, "--select", "OA999"]) == 2
    assert "unknown rule 'OA999'" in capsys.readouterr().err


def test_json_is_deterministic_and_complete(tmp_path, capsys):
    path = _bad_model(tmp_path)
    main(["check", path, "--format", "json"])
    first = capsys.readouterr().out
    main(["check", path, "--format", "json"])
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert data["schema_version"] == CHECK_SCHEMA_VERSION and data["passed"] is False
    assert [f["rule"] for f in data["findings"]] == ["OA101", "OA203", "OA206"]
    assert data["counts"] == {"error": 1, "warning": 1, "info": 1}
    assert data["findings"][0]["name"] == "nan-inf-weights" and data["rules"] == REGISTRY.ids()


def test_text_markdown_and_github_cannot_be_injected(tmp_path, capsys):
    path = _bad_model(tmp_path)
    shown = {"text": "evil\\x0a::error::pwned\\x1b[31m%0A", "github": "evil\\x0a::error::pwned\\x1b[31m%250A"}
    shown["markdown"] = "evil\\\\x0a::error::pwned\\\\x1b\\[31m%0A"
    for fmt in ("text", "markdown", "github"):
        main(["check", path, "--format", fmt])
        out = capsys.readouterr().out
        assert "\x1b" not in out and shown[fmt] in out
        for line in out.splitlines():
            assert not line.lstrip().startswith("::") or line.startswith(("::error ", "::warning ", "::notice "))
    main(["check", path, "--format", "github"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"::error file={path.replace(':', '%3A')},title=OA101 nan-inf-weights::")
    assert "%250A" in lines[1]  # a literal '%0A' in a name stays literal: the runner must not decode a newline
    assert lines[-1].startswith("onnxaudit check ")


def test_invalid_utf8_names_are_visible(tmp_path, capsys):
    m = linear(init("WEIGHTXX", [4, 4]), extra=[init("UNUSEDXX", [2])])
    data = m.SerializeToString().replace(b"UNUSEDXX", b"UNUSED\xff\xfe").replace(b"WEIGHTXX", b"WEIGHT\xff\x1b")
    (tmp_path / "m.onnx").write_bytes(data)
    assert main(["check", str(tmp_path / "m.onnx"), "--fail-on", "never"]) == 0
    assert "'UNUSED\\xff\\xfe' (2) is consumed by no node" in capsys.readouterr().out
    assert main(["summary", str(tmp_path / "m.onnx"), "--by", "tensor"]) == 0
    assert "WEIGHT\\xff\\x1b (MatMul)" in capsys.readouterr().out


# ---------------------------------------------------------------- valid but odd


def _odd_models() -> dict[str, tuple[onnx.ModelProto, int]]:
    const = helper.make_node("Constant", [], ["W"], name="wconst", value=_weight(np.ones((4, 4)) * 0.5, "W"))
    ir3 = linear(init("W", [4, 4]), ir_version=3, opset=8)
    ir3.graph.input.append(value("W", [4, 4]))
    symbolic = model(
        [node("MatMul", ["x", "W"], ["h"]), node("Add", ["h", "b"], ["y"])],
        [value("x", ["batch", "seq", 8])],
        [value("y", ["batch", "seq", 4])],
        [init("W", [8, 4]), init("b", [4])],
    )
    return {
        "zero_params": (model([node("Relu", ["x"], ["y"])], [value("x", ["N", 4])], [value("y", None)]), 0),
        "constant_weights": (
            model([const, node("MatMul", ["x", "W"], ["y"])], [value("x", ["N", 4])], [value("y", None)]),
            16,
        ),
        "ir3_inputs": (ir3, 16),
        "symbolic_dims": (symbolic, 36),
    }


@pytest.mark.parametrize("case", sorted(_odd_models()))
def test_valid_but_odd_models_work(tmp_path, capsys, case):
    m, params = _odd_models()[case]
    path = str(save(m, tmp_path / f"{case}.onnx"))
    report = check(path)
    assert report.passed and report.params == params
    assert all(f.severity == "info" for f in report.findings), report.findings
    assert main(["summary", path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["total"] == params


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\u202eb", "a\\u202eb"),  # bidi override (Trojan Source)
        ("a\u200fb\u061c", "a\\u200fb\\u061c"),  # bidi marks
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("  ::error::x", "\\  ::error::x"),  # the runner trims leading spaces before a command
        ("W\udcff", "W\\xff"),  # invalid UTF-8 kept by surrogateescape
    ],
)
def test_escape_leaves_nothing_invisible(name, shown):
    from onnxaudit.render.summary import escape

    assert escape(name) == shown


@pytest.mark.parametrize("family", ["torch", "keras", "ort"])
def test_file_map_agrees_with_the_model_view(family):
    """datamap walks the wire format the way load's builder walks protobuf: same keys, dtypes, dims."""
    from onnxaudit.io.datamap import map_file
    from onnxaudit.io.safeopen import open_model
    from onnxaudit.model.load import load

    for path in sorted((MODELS / family).glob("*.onnx")):
        view = load(path, with_shapes=False)
        opened = open_model(path)
        try:
            records = map_file(opened.fd, opened.size, str(path)).tensors
        finally:
            os.close(opened.fd)
        tensors = {t.key: t for g in view.graphs.values() for t in g.tensors.values() if t.storage != "none"}
        for key, tensor in tensors.items():
            record = records.get(key)
            if tensor.origin != "constant":
                assert record is not None, (path.name, key)
            if record is not None:
                assert (record.dtype, record.dims, record.is_external) == (
                    tensor.dtype, tensor.dims, tensor.storage == "external"
                ), (path.name, key)  # fmt: skip
        assert set(records) <= set(tensors), (path.name, set(records) - set(tensors))


def test_bn_not_over_the_channel_axis(tmp_path):
    assert "OA212" in _rules(tmp_path, seed_cnn(axis_typo=True))
    assert "OA212" not in _rules(tmp_path, seed_cnn(), name="ok.onnx")
    keras = check(MODELS / "keras" / "seed_cnn_axis_typo__tf2onnx_op17.onnx")
    assert [f.rule for f in keras.findings if f.rule == "OA212"] == ["OA212"]
    assert "64 features" in next(f.message for f in keras.findings if f.rule == "OA212")


def test_an_op_the_standard_domain_does_not_define_is_an_error(tmp_path):
    """tf2onnx and Keras 3 leave TensorFlow's StatefulPartitionedCall in a Keras ConvNeXt: no runtime
    loads the file. A warning, not an error: onnxruntime registers a few ops of its own there."""
    m = model(
        [node("StatefulPartitionedCall", ["x"], ["h"], name="block/call"), node("Relu", ["h"], ["y"])],
        [value("x", [1, 4])],
        [value("y", [1, 4])],
    )
    assert "OA213" in _rules(tmp_path, m)
    assert "OA213" not in _rules(
        tmp_path, model([node("Relu", ["x"], ["y"])], [value("x", [1, 4])], [value("y", [1, 4])])
    )
    assert main(["check", str(save(m, tmp_path / "call.onnx")), "--fail-on", "warning"]) == 1
