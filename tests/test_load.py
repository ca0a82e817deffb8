"""Loader: safe open of real files on disk, structure without weight bytes, external data unread."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from builders import conv_bn_scaled, init, model, node, save, seed_cnn, value, with_training_info
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from onnxaudit import AuditError, audit
from onnxaudit.model import load as load_module
from onnxaudit.model.build import _small_values
from onnxaudit.model.load import load


def test_structure_matches_protobuf(tmp_path):
    m = seed_cnn()
    view = load(save(m, tmp_path / "m.onnx"))
    assert [n.op_type for n in view.main.nodes] == [n.op_type for n in m.graph.node]
    assert {t.name: t.dims for t in view.main.tensors.values()} == {i.name: tuple(i.dims) for i in m.graph.initializer}
    assert view.opsets == {"ai.onnx": 17} and view.ir_version == 8


def test_the_schema_registry_is_built_here_while_the_walk_runs(tmp_path, monkeypatch):
    # each inference child inherits it rather than building it again; without inference it is not built
    calls = []
    monkeypatch.setattr(load_module, "prepare_inference", lambda: calls.append(os.getpid()))
    path = save(seed_cnn(), tmp_path / "m.onnx")
    assert load(path).value_shapes and calls == [os.getpid()]
    assert not load(path, with_shapes=False).value_shapes and calls == [os.getpid()]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (bytes(range(256)) * 4, "not an ONNX model"),
        (b"hello, this is a text file\n" * 10, "not an ONNX model"),
    ],
)
def test_unusable_bytes_raise_one_line(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(AuditError) as err:
        load(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_truncated_model(tmp_path):
    data = seed_cnn().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AuditError, match="not an ONNX model"):
        load(path)


def test_directory_missing_and_fifo(tmp_path):
    with pytest.raises(AuditError, match="directory"):
        load(tmp_path)
    with pytest.raises(AuditError, match="no such file"):
        load(tmp_path / "absent.onnx")
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(AuditError, match="not a regular file"):
        load(fifo)  # must not block waiting for a writer


def test_symlink_leaving_its_folder_is_refused(tmp_path):
    outside = save(seed_cnn(), tmp_path / "outside.onnx")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "link.onnx").symlink_to(outside)
    with pytest.raises(AuditError, match="outside its folder"):
        load(folder / "link.onnx")
    (folder / "inside.onnx").write_bytes(outside.read_bytes())
    (folder / "ok.onnx").symlink_to(folder / "inside.onnx")
    assert load(folder / "ok.onnx").main.nodes


def test_negative_dims_are_an_error(tmp_path):
    bad = helper.make_tensor("W", TensorProto.FLOAT, [4, 4], np.ones(16, np.float32).tobytes(), raw=True)
    bad.dims[0] = -4
    bad.dims[1] = -4  # numpy's prod would call this +16
    m = model([node("MatMul", ["x", "W"], ["y"])], [value("x", [1, 4])], [value("y", None)], [bad])
    with pytest.raises(AuditError, match="negative dim"):
        load(save(m, tmp_path / "neg.onnx"))


def test_absurd_dims_are_an_error(tmp_path):
    t = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2**40, 2**40])
    m = model([node("MatMul", ["x", "W"], ["y"])], [value("x", [1, 4])], [value("y", None)], [t])
    with pytest.raises(AuditError, match="exceeds"):
        load(save(m, tmp_path / "huge.onnx"))


def _external(name: str, dims: list[int], location: str) -> onnx.TensorProto:
    t = onnx.TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.data_location = TensorProto.EXTERNAL
    for key, val in (("location", location), ("offset", "0"), ("length", str(4 * int(np.prod(dims))))):
        t.external_data.add(key=key, value=val)
    return t


def test_external_data_absent_still_counts_from_dims(tmp_path):
    m = model(
        [node("MatMul", ["x", "W"], ["h"]), node("Add", ["h", "b"], ["y"])],
        [value("x", ["N", 1024])],
        [value("y", ["N", 4096])],
        [_external("W", [1024, 4096], "weights.bin"), init("b", [4096])],
    )
    report = audit(save(m, tmp_path / "ext.onnx"))
    assert not (tmp_path / "weights.bin").exists()
    assert report.totals.total == 1024 * 4096 + 4096
    assert any("not opened" in limit for limit in report.limits)


def test_external_data_file_is_never_opened(tmp_path):
    """A FIFO as the data file: opening it for reading would block the test forever."""
    os.mkfifo(tmp_path / "weights.bin")
    m = model([node("MatMul", ["x", "W"], ["y"])], [value("x", ["N", 64])], [value("y", None)],
              [_external("W", [64, 64], "weights.bin")])  # fmt: skip
    assert audit(save(m, tmp_path / "ext.onnx")).totals.total == 64 * 64


def test_weights_are_not_decoded(tmp_path):
    """Dims are the truth for counting: a raw_data of the wrong length still counts by dims."""
    t = numpy_helper.from_array(np.ones((8, 8), np.float32), "W")
    t.raw_data = t.raw_data[:10]
    m = model([node("MatMul", ["x", "W"], ["y"])], [value("x", [1, 8])], [value("y", None)], [t])
    assert audit(save(m, tmp_path / "short.onnx")).totals.total == 8 * 8


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "int32", "uint32", "int64", "uint64"])
@pytest.mark.parametrize("raw", [True, False])
def test_small_integer_values_decode_like_numpy_helper(dtype: str, raw: bool):
    values = np.array([0, 1, 7, 100], dtype=dtype)
    if np.issubdtype(values.dtype, np.signedinteger):
        values[1] = -3
    tensor = numpy_helper.from_array(values, "t")
    if not raw:  # the typed fields onnx.helper.make_tensor writes
        tensor = helper.make_tensor("t", tensor.data_type, [4], values.tolist())
    expected = tuple(int(v) for v in numpy_helper.to_array(tensor))
    assert _small_values(tensor, (4,)) == expected


def test_small_integer_values_of_a_wrong_length_stay_unknown():
    tensor = numpy_helper.from_array(np.arange(4, dtype=np.int64), "t")
    tensor.raw_data = tensor.raw_data[:-1]
    assert _small_values(tensor, (4,)) is None


def test_a_file_truncated_under_the_reader_is_one_error_not_a_dead_process(tmp_path):
    import mmap

    from onnxaudit.model.read import _strip_in_child

    path = save(seed_cnn(), tmp_path / "m.onnx")
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    os.truncate(path, 4096)  # the pages past the first vanish: touching them raises SIGBUS
    try:
        with pytest.raises(AuditError, match="changed while it was read"):
            _strip_in_child(mapped, str(path))
    finally:
        mapped.close()


def test_a_malformed_file_is_refused_by_the_reader_in_one_line(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x0a\xff\xff\xff\xff\x0f")  # a length-delimited field longer than the file
    with pytest.raises(AuditError, match=r"bad.onnx: not an ONNX model \(malformed protobuf"):
        load(path)


@pytest.mark.parametrize("reader", ["wire", "protobuf"])
def test_both_readers_see_the_training_info_marker(tmp_path, reader: str):
    m = with_training_info(conv_bn_scaled(), ["W", "mean"])
    view = load(save(m, tmp_path / "m.onnx"), reader=reader)
    assert view.trained == frozenset({"W", "mean"})
    assert load(save(conv_bn_scaled(), tmp_path / "plain.onnx"), reader=reader).trained is None


@pytest.mark.parametrize("reader", ["wire", "protobuf"])
def test_torch_module_scopes_are_read_only_where_the_file_holds_them(tmp_path, reader: str):
    m = seed_cnn()
    m.graph.node[1].metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'features']")
    scoped = load(save(m, tmp_path / "scoped.onnx"), reader=reader)
    assert [n.module_scopes for n in scoped.main.nodes][:3] == [(), ("", "features"), ()]
    plain = load(save(seed_cnn(), tmp_path / "plain.onnx"), reader=reader)
    assert all(n.module_scopes == () for n in plain.main.nodes)


@pytest.mark.parametrize("reader", ["wire", "protobuf"])
def test_dynamo_graph_signature_and_folded_sources_are_read(reader: str):
    """torch.onnx (dynamo) writes the ExportedProgram's graph signature on the main graph (every parameter
    and buffer, stored or folded away) and, on each initializer its optimizer folded, what it came from."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "models" / "torchzoo" / "spectral_norm__dynamo.onnx"
    fx = load(path, reader=reader).fx
    assert fx.signature_parameters == {"0.bias", "0.parametrizations.weight.original"}
    assert fx.signature_buffers == {"0.parametrizations.weight.0._u", "0.parametrizations.weight.0._v"}
    assert "0_parametrizations_weight_original" in fx.parameters  # as the nodes' FX calls name them
    assert "0.parametrizations.weight.original" in fx.folded_from["div"]  # W / sigma, folded into `div`
    plain = load(path.with_name("constant_weight__legacy.onnx"), reader=reader).fx
    assert not plain.signature_parameters and not plain.folded_from


def _scopes_by_literal_eval(text: str) -> tuple[str, ...] | None:
    """How module scopes were read before the json fast path (issue #24)."""
    import ast

    try:
        found = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return tuple(found) if isinstance(found, list) and all(isinstance(x, str) for x in found) else None


def test_module_scopes_plain_path_agrees_with_literal_eval_on_the_dynamo_fixtures():
    from pathlib import Path

    from onnxaudit.model.metadata import _PLAIN_NAMES, module_scopes

    root = Path(__file__).resolve().parent.parent / "models"
    files = sorted([*root.glob("torch/*dynamo*.onnx"), *root.glob("torchzoo/*dynamo*.onnx")])
    texts = set()
    for path in files:
        m = onnx.load(path, load_external_data=False)
        texts |= {p.value for n in m.graph.node for p in n.metadata_props if p.key == "pkg.torch.onnx.name_scopes"}
    assert len(files) >= 30 and len(texts) >= 100
    for text in texts:
        assert _PLAIN_NAMES.fullmatch(text)  # each really takes the fast path
        assert module_scopes(text) == _scopes_by_literal_eval(text) is not None, text


@pytest.mark.parametrize(
    "text",
    [
        "['', 'a.b', 'x y']",
        "[]",
        "['caf\u00e9', '\U0001f600']",
        " ['a']",  # literal_eval strips leading spaces: json too, but not the bracket test
        "\n['a']",  # literal_eval refuses, json would accept
        "['a'\t]",
        "['a\tb']",  # a tab inside a string: Python takes it, json does not
        "['a' 'b']",
        "['a',]",
        "[true]",
        "[NaN]",
        "['a', 1]",
        "[['a']]",
        "['it\\'s']",
        '["a"]',
        "['a\"b']",
        "['a\\nb']",
        "[" * 3000 + "]" * 3000,
        "['a'",
        "('a',)",
        "['a']\x00",
        "['a','b']",
        "['a',  'b']",
        "['', '']",
        "['\x7f', ' ', '[', ']', ', ']",
        "['a', 'b'] ",
    ],
)
def test_module_scopes_agrees_with_literal_eval_on_odd_texts(text):
    from onnxaudit.model.metadata import module_scopes

    assert module_scopes(text) == _scopes_by_literal_eval(text)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")  # literal_eval of "\\,"
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from("ab.' ,[]\"\\\t\n\x00\x1f\x7f\u00e9"), max_size=6), max_size=5), st.data()
)
def test_module_scopes_agrees_with_literal_eval_on_lists_of_any_names(names, data):
    from onnxaudit.model.metadata import module_scopes

    text = repr(names)
    assert module_scopes(text) == _scopes_by_literal_eval(text) == tuple(names)
    cut = data.draw(st.integers(0, len(text)))
    edited = text[:cut] + data.draw(st.sampled_from(["", "'", ", ", "\\", "]", "\t"])) + text[cut:]
    assert module_scopes(edited) == _scopes_by_literal_eval(edited)


def test_each_kind_of_constant_is_a_tensor_of_its_figures(tmp_path):
    """A Constant's tensor, whichever attribute holds it: dtype, dims, bytes stored, small integer values; the first
    attribute that holds one wins."""
    two = node("Constant", [], ["two"], name="two", value_int=3)
    two.attribute.append(helper.make_attribute("value_float", 2.5))  # after value_int: not read
    nodes = [
        node("Constant", [], ["f"], name="f", value_float=1.5),
        node("Constant", [], ["i"], name="i", value_int=7),
        node("Constant", [], ["fs"], name="fs", value_floats=[1.0, 2.0, 3.0]),
        node("Constant", [], ["is"], name="is", value_ints=[1, 2]),
        node("Constant", [], ["long"], name="long", value_ints=list(range(65))),
        node("Constant", [], ["s"], name="s", value_string="abc"),
        node("Constant", [], ["ss"], name="ss", value_strings=["a", "bc"]),
        two,
    ]
    view = load(save(model(nodes, [], [value("f", [])]), tmp_path / "constants.onnx"))
    figures = {
        name: (t.dtype, t.dims, t.stored_bytes, t.values, t.origin, t.node) for name, t in view.main.tensors.items()
    }
    F, INT, S = TensorProto.FLOAT, TensorProto.INT64, TensorProto.STRING
    assert figures == {
        "f": (F, (), 4, None, "constant", "f"),
        "i": (INT, (), 8, (7,), "constant", "i"),
        "fs": (F, (3,), 3 * 4, None, "constant", "fs"),
        "is": (INT, (2,), 2 * 8, (1, 2), "constant", "is"),
        "long": (INT, (65,), 65 * 8, None, "constant", "long"),  # over SMALL_VALUES: values not kept
        "s": (S, (), len("abc"), None, "constant", "s"),
        "ss": (S, (2,), None, None, "constant", "ss"),
        "two": (INT, (), 8, (3,), "constant", "two"),
    }
    assert view == load(tmp_path / "constants.onnx", reader="protobuf")
