"""The wire reader: the same ModelView as protobuf, without weight bytes, and only AuditError on bad bytes."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from builders import dense_relu, init, ints, model, node, save, value, varint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from onnxaudit import AuditError
from onnxaudit.io import wire
from onnxaudit.io.wire import KEEP_BYTES, strip_weights
from onnxaudit.model.load import load

ROOT = Path(__file__).resolve().parent.parent
ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
FIXTURES = sorted(glob.glob(str(ROOT / "models" / "**" / "*.onnx"), recursive=True))
BACKEND = sorted(glob.glob(str(ONNX_DATA / "**" / "*.onnx"), recursive=True))


def _same_view(path: Path | str) -> None:
    try:
        reference = load(path, reader="protobuf")
    except AuditError as exc:
        with pytest.raises(AuditError) as err:
            load(path, reader="wire")
        assert type(err.value) is type(exc)
        return
    assert load(path, reader="wire") == reference


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: os.path.relpath(p, ROOT))
def test_fixtures_read_the_same(path):
    _same_view(path)


@pytest.mark.parametrize("path", BACKEND, ids=lambda p: os.path.relpath(p, ONNX_DATA))
def test_onnx_backend_models_read_the_same(path):
    _same_view(path)


def test_there_are_models_to_compare():
    assert len(FIXTURES) >= 20 and len(BACKEND) >= 100


# ---------------------------------------------------------------- every place a tensor can hide


def _big(name: str, n: int = 4096) -> TensorProto:
    return init(name, [n])  # 16 KiB of float32: above KEEP_BYTES, so it is stripped


def _typed(name: str) -> list[TensorProto]:
    """Tensors whose data is in the typed fields rather than raw_data (old exporters write these)."""
    floats = helper.make_tensor(name + ".f", TensorProto.FLOAT, [3000], np.arange(3000, dtype=np.float32))
    int64s = helper.make_tensor(name + ".i", TensorProto.INT64, [2000], np.arange(-1000, 1000, dtype=np.int64))
    int32s = helper.make_tensor(name + ".h", TensorProto.FLOAT16, [3000], np.ones(3000, np.float16), raw=False)
    doubles = helper.make_tensor(name + ".d", TensorProto.DOUBLE, [1000], np.arange(1000, dtype=np.float64))
    uint64s = helper.make_tensor(name + ".u", TensorProto.UINT64, [1000], np.arange(1000, dtype=np.uint64))
    strings = helper.make_tensor(name + ".s", TensorProto.STRING, [300], [b"x" * 50] * 300)
    return [floats, int64s, int32s, doubles, uint64s, strings]


def _everything() -> onnx.ModelProto:
    then_graph = helper.make_graph(
        [node("MatMul", ["x", "then.W"], ["t"]), node("Constant", [], ["tc"], value=_big("tc.value"))],
        "then",
        [],
        [value("t", None)],
        [_big("then.W", 16 * 16 * 8)],
    )
    else_graph = helper.make_graph([node("Identity", ["x"], ["e"])], "else", [], [value("e", None)])
    body = helper.make_graph(
        [node("Add", ["v", "loop.b"], ["v2"]), node("Identity", ["cond"], ["cond2"])],
        "body",
        [value("i", [], TensorProto.INT64), value("cond", [], TensorProto.BOOL), value("v", None)],
        [value("cond2", [], TensorProto.BOOL), value("v2", None)],
        [_big("loop.b")],
    )
    sparse_values = numpy_helper.from_array(np.arange(1, 2001, dtype=np.float32), "S")
    sparse_indices = numpy_helper.from_array(np.arange(0, 4000, 2, dtype=np.int64), "S.idx")
    sparse = helper.make_sparse_tensor(sparse_values, sparse_indices, [4000])
    func = helper.make_function(
        "custom",
        "Affine",
        ["a"],
        ["b"],
        [node("Constant", [], ["w"], value=_big("fw")), node("Mul", ["a", "w"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    nodes = [
        node("Constant", [], ["shape"], value=ints("shape.value", [1, -1])),
        node("Constant", [], ["big_const"], value=_big("big.value")),
        node("Constant", [], ["floats"], value_floats=[0.5] * 2000),
        node("Constant", [], ["sparse_const"], sparse_value=sparse),
        node("Reshape", ["x", "shape"], ["r"]),
        node("If", ["cond"], ["y_if"], then_branch=then_graph, else_branch=else_graph),
        node("Loop", ["trip", "cond", "r"], ["y_loop"], body=body),
        node("Affine", ["y_loop"], ["y_fn"], domain="custom"),
        node("Gather", ["emb", "idx"], ["g"]),
        helper.make_node("Concat", ["big_const", *[t.name for t in _typed("typed")]], ["cat"], axis=0, name="cat"),
    ]
    nodes[0].doc_string = "a doc string nobody reads " * 400
    inits = [
        init("emb", [100, 64]),
        ints("trip", [3]),
        numpy_helper.from_array(np.array(True), "cond"),
        ints("idx", [1, 2, 3]),
        *_typed("typed"),
    ]
    m = model(
        nodes,
        [value("x", [1, 16, 8])],
        [value("y_if", None), value("y_fn", None), value("g", None), value("cat", None)],
        inits,
        extra_opsets={"custom": 1},
        functions=[func],
    )
    sparse_init = helper.make_sparse_tensor(
        numpy_helper.from_array(np.ones(1500, np.float32), "SI"),
        numpy_helper.from_array(np.arange(1500, dtype=np.int64), "SI.idx"),
        [3000],
    )
    m.graph.sparse_initializer.append(sparse_init)
    m.graph.node[8].metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'emb']")
    m.doc_string = "model doc " * 1000
    return m


def test_every_tensor_kind_reads_the_same_without_its_bytes(tmp_path):
    path = save(_everything(), tmp_path / "all.onnx")
    _same_view(path)
    light = strip_weights(path.read_bytes())
    assert light.stripped_tensors >= 10
    assert len(light.data) < path.stat().st_size // 5
    view = load(path)
    assert view.main.tensors["shape"].values == (1, -1)  # small int constants keep their values
    assert view.main.tensors["typed.i"].stored_bytes == 8 * 2000
    assert view.main.tensors["typed.s"].stored_bytes == 50 * 300
    assert view.main.tensors["big_const"].stored_bytes == 4 * 4096


def test_duplicate_raw_data_last_one_wins(tmp_path):
    t = numpy_helper.from_array(np.ones(2048, np.float32), "W")  # 8 KiB
    m = model([node("Relu", ["W"], ["y"])], [], [value("y", None)], [t])
    data = bytearray(m.SerializeToString())
    small = numpy_helper.from_array(np.ones(3, np.float32), "W")
    # a second occurrence of the same initializer field merges into the first: raw_data is replaced
    extra = onnx.GraphProto(initializer=[small]).SerializeToString()
    graph = onnx.ModelProto(graph=onnx.GraphProto.FromString(extra)).SerializeToString()
    path = tmp_path / "dup.onnx"
    path.write_bytes(bytes(data) + graph)
    _same_view(path)


def test_external_data_is_never_opened(tmp_path):
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1 << 20, 1024])
    t.data_location = TensorProto.EXTERNAL
    for key, val in (("location", "weights.bin"), ("offset", "0"), ("length", str(4 << 30))):
        t.external_data.add(key=key, value=val)
    m = model([node("MatMul", ["x", "W"], ["y"])], [value("x", ["N", 1 << 20])], [value("y", None)], [t])
    os.mkfifo(tmp_path / "weights.bin")  # opening it would block
    view = load(save(m, tmp_path / "ext.onnx"))
    tensor = view.main.tensors["W"]
    assert tensor.storage == "external" and tensor.external.location == "weights.bin"
    assert tensor.external.length == 4 << 30


def test_file_over_2_gib_reads_without_touching_its_weights(tmp_path):
    """A sparse file: 2.1 GiB of embedded raw_data that is never read (holes cost no disk)."""
    size = (2 << 30) + (100 << 20)
    n = size // 4
    head = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[n // 1024, 1024]).SerializeToString()
    raw_tag = bytes([9 << 3 | 2]) + varint(n * 4)
    tensor_len = len(head) + len(raw_tag) + n * 4
    graph_tail = onnx.GraphProto(
        node=[helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        input=[value("x", ["N", n // 1024])],
        output=[value("y", None)],
    ).SerializeToString()
    graph_len = 1 + len(varint(tensor_len)) + tensor_len + len(graph_tail)
    ir = onnx.ModelProto(ir_version=8, opset_import=[helper.make_opsetid("", 17)]).SerializeToString()
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as f:
        f.write(ir + bytes([7 << 3 | 2]) + varint(graph_len))
        f.write(bytes([5 << 3 | 2]) + varint(tensor_len) + head + raw_tag)
        f.seek(n * 4, os.SEEK_CUR)
        f.write(graph_tail)
    assert path.stat().st_size > 2**31 and path.stat().st_blocks * 512 < 1 << 20
    with pytest.raises(AuditError, match="2 GiB"):
        load(path, reader="protobuf")
    view = load(path)
    assert view.main.tensors["W"].dims == (n // 1024, 1024)
    assert view.main.tensors["W"].stored_bytes == n * 4
    assert path.stat().st_blocks * 512 < 1 << 20  # still sparse: nothing was read or written


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x08" + b"\xff" * 11, "varint"),  # ir_version with an endless varint
        (b"\x3a\xff\xff\xff\x7f" + b"\x00" * 10, "past the end"),  # graph longer than the file
        (b"\x0e\x00", "wire type"),  # wire type 6 does not exist
        (b"\x3c", "group"),  # an end-group tag with no group
        (b"\x02\x00", "field number"),  # field number 0
    ],
)
def test_malformed_bytes_raise_one_line(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(AuditError, match=message) as err:
        load(path)
    assert "\n" not in str(err.value) and "not an ONNX model" in str(err.value)


def test_every_truncation_is_an_audit_error(tmp_path):
    data = _fuzz_seed()
    path = tmp_path / "cut.onnx"
    for cut in range(1, len(data), max(1, len(data) // 300)):
        path.write_bytes(data[:cut])
        with pytest.raises(AuditError):
            load(path, with_shapes=False)


def _field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_nesting_beyond_the_limit(tmp_path):
    """Graph -> node -> attribute -> graph, 40 times: built as bytes, since protobuf itself refuses
    to build a message this deep. The innermost weight makes every level large enough to walk."""
    graph = helper.make_graph([node("Relu", ["x"], ["y"])], "g", [], [value("y", None)], [_big("pad")])
    payload = graph.SerializeToString()
    for _ in range(40):
        attribute = helper.make_attribute("then_branch", helper.make_graph([], "x", [], [])).SerializeToString()
        attribute = attribute.replace(_field(6, helper.make_graph([], "x", [], []).SerializeToString()), b"")
        attribute += _field(6, payload)
        payload = _field(1, _field(4, b"If") + _field(5, attribute))
    ir = onnx.ModelProto(ir_version=8, opset_import=[helper.make_opsetid("", 17)]).SerializeToString()
    path = tmp_path / "deep.onnx"
    path.write_bytes(ir + _field(7, payload))
    with pytest.raises(AuditError, match="deep") as err:
        load(path)
    assert "\n" not in str(err.value)


def _fuzz_seed() -> bytes:
    """A small model with every structure the walker rewrites, and weights just above KEEP_BYTES."""
    big = KEEP_BYTES // 4 + 10
    sub = helper.make_graph([node("Constant", [], ["k"], value=init("k", [big]))], "s", [], [value("k", None)])
    fn = helper.make_function("f", "F", ["a"], ["b"], [node("Identity", ["a"], ["b"])], [helper.make_opsetid("", 17)])
    nodes = [
        node("Constant", [], ["shape"], value=ints("shape.value", [1, -1])),
        node("Reshape", ["x", "shape"], ["r"], name="/fc/Reshape"),
        node("MatMul", ["r", "fc.W"], ["h"], name="/fc/MatMul"),
        node("Add", ["h", "fc.B"], ["h2"], name="/fc/Add"),
        node("F", ["h2"], ["f"], domain="f"),
        node("If", ["c"], ["z"], then_branch=sub, else_branch=sub),
        node("BatchNormalization", ["f", "g", "b", "m", "v"], ["y"], epsilon=1e-3),
    ]
    inits = [init("fc.W", [big // 4, 4]), init("fc.B", [4]), *(init(n, [4]) for n in "gbmv")]
    m = model(nodes, [value("x", ["N", big // 4])], [value("y", ["N", 4]), value("z", None)], inits,
              extra_opsets={"f": 1}, functions=[fn])  # fmt: skip
    return m.SerializeToString()


def _structure_positions(data: bytes) -> list[int]:
    """Offsets outside the weight bytes, so mutations hit what the walker reads."""
    seed = onnx.ModelProto.FromString(data)
    constant = seed.graph.node[5].attribute[0].g.node[0].attribute[0].t
    skip: set[int] = set()
    for raw in [t.raw_data for t in seed.graph.initializer] + [constant.raw_data]:
        start = data.find(raw)
        if len(raw) > 64 and start >= 0:
            skip.update(range(start, start + len(raw)))
    return [i for i in range(len(data)) if i not in skip]


_FUZZ_SEED = _fuzz_seed()
_FUZZ_POSITIONS = _structure_positions(_FUZZ_SEED)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_bytes_raise_only_audit_error(tmp_path, data):
    seed = _FUZZ_SEED
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.sampled_from(_FUZZ_POSITIONS))
        mutated[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        mutated = mutated[: data.draw(st.integers(1, len(mutated)))]
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(bytes(mutated))
    try:
        load(path)
    except AuditError as exc:
        assert "\n" not in str(exc)


def test_weights_in_local_function_constants_are_stripped(tmp_path):
    """FunctionProto.node is field 7: a big Constant inside a function body is skipped by length too."""
    from onnxaudit.io.wire import strip_weights

    weight = numpy_helper.from_array(np.ones((512, 1024), np.float32), "c")
    fn = helper.make_function(
        "local",
        "F",
        ["X"],
        ["Y"],
        [
            helper.make_node("Constant", [], ["W"], value=weight),
            helper.make_node("MatMul", ["X", "W"], ["Y"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    m = model(
        [node("F", ["x"], ["y"], domain="local")],
        [value("x", [1, 512])],
        [value("y", None)],
        extra_opsets={"local": 1},
        functions=[fn],
    )
    path = save(m, tmp_path / "fn.onnx")
    light = strip_weights(path.read_bytes())
    assert light.stripped_tensors == 1 and len(light.data) < 4096
    assert load(path).graphs["function:local.F"].tensors["W"].dims == (512, 1024)


# ---------------------------------------------------------------- node metadata no stage reads

_TRACE = "pkg.torch.onnx.stack_trace"


def _entry(key: bytes, value: bytes) -> onnx.StringStringEntryProto:
    return onnx.StringStringEntryProto(key=key.decode(), value=value.decode())


def test_unread_node_metadata_is_left_out_of_the_light_copy(tmp_path):
    m = dense_relu()
    dense, relu = m.graph.node
    dense.metadata_props.extend([_entry(_TRACE.encode(), b'File "model.py", line 9\n' * 40)])  # long: walked
    dense.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'fc']")
    relu.metadata_props.add(key="namespace", value="fc: Linear")  # a small node: copied whole unless it drops one
    relu.metadata_props.add(key="pkg.torch.onnx.fx_node", value="%relu : [num_users=1] = call_function[aten.relu]")
    dense.metadata_props.add(
        key="pkg.torch.onnx.fx_node", value="%linear = call_function[aten.linear](%x, %p_fc_weight)"
    )
    path = save(m, tmp_path / "meta.onnx")
    light = onnx.ModelProto.FromString(bytes(strip_weights(path.read_bytes()).data))
    kept = [[(p.key, p.value) for p in n.metadata_props] for n in light.graph.node]
    assert kept == [[(p.key, p.value) for p in dense.metadata_props[1:]], []]  # relu's FX call names no parameter
    assert load(path).main.nodes[0].module_scopes == ("", "fc")
    _same_view(path)


@pytest.mark.parametrize(
    "entry, kept",
    [
        (b"\x0a\x09namespace" + b"\x12\x01x", False),  # well formed, unread: dropped
        (b"\x0a\x09namespace" + b"\x12\x01x" + b"\x18\x01", True),  # an unknown varint field: protobuf decides
        (b"\x12\x01x" + b"\x0a\x09namespace" + b"\x0a\x1apkg.torch.onnx.name_scopes", True),  # the last key wins
        (b"\x0a\x1apkg.torch.onnx.name_scopes" + b"\x0a\x09namespace", False),
        (b"\x12\x01x", False),  # no key: "" is read by no one
        (b"\x0a\x09namespace" + b"\x12\x80\x01" + b"x" * 128, False),  # a value's length in two bytes
        (b"\x0a\x09namespace" + b"\x12\x80\x80\x01" + b"x" * 16384, False),  # and in three
        (b"\x0a\x1apkg.torch.onnx.name_scopes" + b"\x12\x80\x01" + b"x" * 128, True),
        (b"\x0a\x7fnamespace", True),  # a length past the entry's end: protobuf refuses the file
        (b"\x0a\x16pkg.torch.onnx.fx_node" + b"\x12\x0c%relu = relu", False),  # an FX call read for nothing
        (b"\x0a\x16pkg.torch.onnx.fx_node" + b"\x12\x0a%p_fc_bias", True),  # a parameter
        (b"\x0a\x16pkg.torch.onnx.fx_node" + b"\x12\x0a%b_running", True),  # a buffer
        (b"\x0a\x16pkg.torch.onnx.fx_node" + b"\x12\x0aNone, None", True),  # a norm's weight and bias not passed
        (b"\x0a\x16pkg.torch.onnx.fx_node" + b"\x12\x0c%relu = relu" + b"\x12\x01x", True),  # not torch's form
    ],
)
def test_metadata_entries_dropped_only_when_well_formed_and_unread(tmp_path, entry, kept):
    relu = onnx.NodeProto(op_type="Relu", input=["x"], output=["y"]).SerializeToString()
    relu += b"\x4a" + varint(len(entry)) + entry  # NodeProto.metadata_props, field 9
    graph = b"\x0a" + varint(len(relu)) + relu  # GraphProto.node
    m = model([], [value("x", [2])], [value("y", [2])])
    path = tmp_path / "entry.onnx"  # ModelProto.graph written twice: protobuf merges the second into the first
    path.write_bytes(m.SerializeToString() + b"\x3a" + varint(len(graph)) + graph)
    light = strip_weights(path.read_bytes())
    assert (entry in bytes(light.data)) is kept
    assert light.metadata is kept  # a kept entry is where module scopes may be: the copy is searched for them
    _same_view(path)


def test_the_walk_says_whether_the_copy_holds_metadata_any_stage_reads(tmp_path):
    """LightModel.metadata: False when no node keeps a metadata entry and no graph has metadata_props (the reader then
    does not search the copy for torch's keys), True for a graph's metadata_props (torch's graph signature)."""
    m = dense_relu()
    m.graph.node[0].metadata_props.add(key="namespace", value="pkg.torch.onnx.name_scopes")  # dropped
    m.graph.node[0].doc_string = "pkg.torch.onnx.name_scopes"  # dropped with the node's doc string
    m.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['']")  # the model's own: not a node's
    data = m.SerializeToString()
    assert not strip_weights(data).metadata
    m.graph.metadata_props.add(key="pkg.torch.export.ExportedProgram.graph_signature", value="")
    assert strip_weights(m.SerializeToString()).metadata
    _same_view(save(m, tmp_path / "signed.onnx"))


def test_no_stage_reads_a_dropped_metadata_key():
    """Every node metadata key the fixtures carry is either kept (and read in model/metadata.py) or named
    nowhere in onnxaudit's source."""
    from onnxaudit.io.wire import NODE_METADATA_KEPT

    found = set()
    for path in FIXTURES:
        m = onnx.load(path, load_external_data=False)
        found |= {p.key for n in m.graph.node for p in n.metadata_props}
    dropped = found - set(NODE_METADATA_KEPT)
    assert {_TRACE, "namespace", "pkg.torch.onnx.class_hierarchy"} <= dropped
    assert set(NODE_METADATA_KEPT) <= found
    reader = (ROOT / "onnxaudit" / "model" / "metadata.py").read_text()
    source = "\n".join(p.read_text() for p in (ROOT / "onnxaudit").rglob("*.py"))
    for key in NODE_METADATA_KEPT:
        assert f'"{key}"' in reader and key.startswith("pkg.")  # metadata.may_hold_module_scopes looks for "pkg."
    for key in dropped:
        assert f'"{key}"' not in source.replace('"domain": "namespace"', ""), key  # (SARIF's kind of a domain)
        assert f"'{key}'" not in source, key


@pytest.mark.parametrize(
    "args",
    [
        ["summary", "--explain"],
        ["summary", "--format", "json"],
        ["summary", "--convention", "pytorch", "--by", "op"],
        ["check", "--fail-on", "warning", "--format", "json"],
        ["diff"],
    ],
    ids=" ".join,
)
def test_every_command_says_the_same_with_the_unread_metadata(monkeypatch, capsys, args):
    """The dynamo fixtures hold stack traces, class hierarchies and namespaces: each command's output is the
    same whether the walk drops them or keeps every entry."""
    from onnxaudit.cli.main import main

    files = [str(ROOT / "models" / "torch" / f"resnet_tiny__dynamo{kind}.onnx") for kind in ("", "_noopt")]
    command = [*args[:1], *files[: 2 if args[0] == "diff" else 1], *args[1:]]
    outputs = []
    for keep_all in (False, True):
        if keep_all:
            monkeypatch.setattr(wire, "_unread_entry", lambda buf, start, end: False)
        light = strip_weights(Path(files[0]).read_bytes())
        outputs.append((main(command), capsys.readouterr(), len(light.data)))
    (code, said, size), (code_all, said_all, size_all) = outputs
    entries = [
        p for n in onnx.load(files[0]).graph.node for p in n.metadata_props if p.key not in wire.NODE_METADATA_KEPT
    ]
    assert size_all - size >= sum(1 + len(varint(p.ByteSize())) + p.ByteSize() for p in entries) > 10_000
    assert (code, said.out, said.err) == (code_all, said_all.out, said_all.err)


_KEYS = st.sampled_from(
    [b"pkg.torch.onnx.name_scopes", b"namespace", b"pkg.torch.onnx.stack_trace", b"", b"pkg.torch.onnx.fx_node"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just(1), _KEYS),
            st.tuples(st.sampled_from([1, 2, 3]), st.binary(max_size=300)),
            st.tuples(st.just(2), st.sampled_from([b"%p_w", b"x%b_y", b"None", b"Non", b"%relu"])),
        ),
        max_size=4,
    ),
    st.integers(0, 3),
)
def test_an_entry_is_dropped_only_when_protobuf_reads_it_as_an_unread_key(fields, cut):
    from google.protobuf.unknown_fields import UnknownFieldSet

    from onnxaudit.io.wire import NODE_METADATA_KEPT, _unread_entry

    entry = b"".join(varint(number << 3 | 2) + varint(len(payload)) + payload for number, payload in fields)
    entry = entry[: len(entry) - cut] if cut < len(entry) else entry  # some cut short
    if not _unread_entry(entry, 0, len(entry)):
        return
    parsed = onnx.StringStringEntryProto()
    assert parsed.ParseFromString(entry) == len(entry)  # well formed: protobuf reads it whole
    assert not len(UnknownFieldSet(parsed))
    if parsed.key == "pkg.torch.onnx.fx_node":  # kept whenever model/metadata.node_metadata could read anything of it
        raw = parsed.value.encode() if isinstance(parsed.value, str) else parsed.value  # bytes when not UTF-8
        assert not any(mark in raw for mark in (b"%p_", b"%b_", b"None"))
    else:
        assert parsed.key not in NODE_METADATA_KEPT


def test_a_constant_whose_data_looks_like_tags_is_copied_as_a_plain_node(tmp_path):
    """A value's bytes that could begin a graph's or an entry's tag (_ATTR_ENTRY_BYTE: a TorchScript Constant's data,
    an int of 50) no longer send its node to the walk: the attribute's tags are read, and hold neither."""
    from onnxaudit.io.budget import Tally
    from onnxaudit.io.wire import _Writer

    data = np.frombuffer(bytes(range(256)) * 4, dtype=np.float32)  # every byte value: each entry byte is in it
    const = node("Constant", [], ["c"], value=numpy_helper.from_array(data, "c"))
    scalar = node("Constant", [], ["k"], value_int=0x32 | 0x5A << 8)  # an int whose varint holds the bytes too
    for proto in (const, scalar):
        buf = proto.SerializeToString()
        assert wire._ATTR_ENTRY_BYTE.search(buf)
        assert _Writer(buf, b"n" * 8, Tally()).plain_node(0, len(buf)) == []  # copied whole, nothing left out
    holding = helper.make_attribute("then_branch", helper.make_graph([], "g", [], []))
    assert not wire._tags_plain(buf := holding.SerializeToString(), 0, len(buf))  # a graph: walked
    path = save(model([const, scalar, node("Add", ["c", "k"], ["y"])], [], [value("y", [256])]), tmp_path / "c.onnx")
    _same_view(path)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 14, 15, 20, 21, 22, 23, 99]), st.integers(0, 7)),
        max_size=5,
    ),
    st.sampled_from([b"", b"\x08\x01", b"\x10\x05\x08\x02"]),  # each a well-formed message (what it holds is inside's)
    st.integers(0, 3),
)
def test_an_attribute_read_as_plain_holds_no_graph_or_entry(fields, payload, cut):
    """_tags_plain says True only for bytes protobuf reads whole as an AttributeProto with no field numbered as a
    graph or an entry (6, 9, 10, 11, 15, 23), known or unknown. It reads the attribute's own tags: the messages it
    holds (a tensor, a type) are _Writer.inside's to read."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    values = {0: varint(len(payload)), 1: payload[:8].ljust(8, b"x"), 2: varint(len(payload)) + payload}
    values[5] = payload[:4].ljust(4, b"x")
    data = b"".join(varint(number << 3 | kind) + values.get(kind, b"") for number, kind in fields)
    data = data[: len(data) - cut] if cut < len(data) else data
    if not wire._tags_plain(data, 0, len(data)):
        return
    parsed = onnx.AttributeProto()
    assert parsed.ParseFromString(data) == len(data)
    assert not parsed.HasField("g")
    assert not (parsed.graphs or parsed.strings or parsed.tensors or parsed.type_protos or parsed.sparse_tensors)
    unknown = UnknownFieldSet(parsed)
    assert not {unknown[i].field_number for i in range(len(unknown))} & wire._ATTR_WALKED_NUMBERS


def test_every_entry_a_message_copied_whole_may_hold_is_counted():
    """Held against onnx's own descriptors: inside each message the walk may copy whole, every repeated message or
    string field is counted as entries (graphs aside: the walk takes every graph), every repeated varint field (a
    tensor's dims and integer data, an attribute's ints) as numbers, every message that may hold some is looked into;
    every such message a walked message holds is looked into. A field a new onnx adds fails here until the walk
    counts it."""
    from google.protobuf.descriptor import Descriptor, FieldDescriptor

    kinds = {
        "ValueInfoProto": wire._VALUE_INFO,
        "TypeProto": wire._TYPE,
        "TypeProto.Tensor": wire._TENSOR_TYPE,
        "TypeProto.SparseTensor": wire._TENSOR_TYPE,
        "TypeProto.Sequence": wire._ELEM,
        "TypeProto.Optional": wire._ELEM,
        "TypeProto.Map": wire._MAP,
        "TensorShapeProto": wire._SHAPE,
        "TensorProto": wire._TENSOR,
        "SparseTensorProto": wire._SPARSE,
        "AttributeProto": wire._ATTR,
        "TensorAnnotation": wire._ANNOTATION,
        "DeviceConfigurationProto": wire._DEVICE_CONFIG,
        "NodeDeviceConfigurationProto": wire._NODE_DEVICE,
        "ShardingSpecProto": wire._SHARDING,
        "IntIntListEntryProto": wire._INT_LIST,
        "ShardedDimProto": wire._SHARDED_DIM,
    }
    walked = {"ModelProto": wire._MODEL, "GraphProto": wire._GRAPH, "NodeProto": wire._NODE}
    walked |= {"FunctionProto": wire._FUNCTION, "TrainingInfoProto": wire._TRAINING}

    def name(d: Descriptor) -> str:
        return d.full_name.removeprefix("onnx.")

    def repeated(f: FieldDescriptor) -> bool:
        return bool(f.is_repeated)

    def varints(f: FieldDescriptor) -> bool:
        """A repeated field of numbers protobuf decodes from 1 byte each into 4 or 8 (packed or not)."""
        fixed = (f.TYPE_FLOAT, f.TYPE_DOUBLE, f.TYPE_FIXED32, f.TYPE_FIXED64, f.TYPE_SFIXED32, f.TYPE_SFIXED64)
        return repeated(f) and f.cpp_type not in (f.CPPTYPE_MESSAGE, f.CPPTYPE_STRING) and f.type not in fixed

    def holds(d: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
        """Whether a message may hold entries: a repeated field of messages, strings or varints, or a message that
        may."""
        return any(
            (repeated(f) and f.cpp_type in (f.CPPTYPE_MESSAGE, f.CPPTYPE_STRING))
            or varints(f)
            or (
                f.message_type is not None
                and name(f.message_type) not in seen
                and holds(f.message_type, seen | {name(d)})
            )
            for f in d.fields
        )

    met: set[str] = set()
    todo = [onnx.ModelProto.DESCRIPTOR]
    while todo:
        d = todo.pop()
        if name(d) in met:
            continue
        met.add(name(d))
        todo += [f.message_type for f in d.fields if f.message_type is not None]
        for f in d.fields:
            tag = f.number << 3 | 2
            inner = name(f.message_type) if f.message_type is not None else None
            if name(d) in walked:
                if inner in kinds and holds(f.message_type):
                    assert wire._CHILD_KEYS[walked[name(d)]].get(tag) == kinds[inner], (name(d), f.name)
                continue
            if name(d) not in kinds:
                assert not holds(d), f"{name(d)} holds entries and is neither walked nor counted inside"
                continue
            entries, held, numbers = wire._INSIDE[kinds[name(d)]]
            if inner == "GraphProto":
                continue  # an attribute holding a graph is walked (_ATTR_ENTRY_BYTE)
            assert (f.number in numbers) == varints(f), (name(d), f.name)
            if repeated(f) and f.cpp_type in (f.CPPTYPE_MESSAGE, f.CPPTYPE_STRING):
                assert tag in entries, (name(d), f.name)
            if inner is not None and holds(f.message_type):
                assert held.get(tag) == kinds[inner], (name(d), f.name)
    assert set(kinds) | set(walked) <= met


def _merged(rest: list, nodes: list) -> onnx.ModelProto:
    """The copy without the main graph's nodes, and those nodes as a second graph field (protobuf merges the two)."""
    joined = b"".join(nodes)
    return onnx.ModelProto.FromString(
        b"".join(rest) + b"\x3a" + varint(len(joined)) + joined if joined else b"".join(rest)
    )


@pytest.mark.parametrize("path", FIXTURES[::7] + [str(p) for p in BACKEND[::25]], ids=lambda p: os.path.basename(p))
def test_the_streamed_nodes_and_the_rest_are_the_light_copy(path, monkeypatch):
    """strip_weights_streamed (the main graph's nodes and initializers sent every 2 as they are walked) gives, merged
    back, what strip_weights gives: the same ModelProto."""
    monkeypatch.setattr(wire.os, "urandom", lambda n: b"n" * n)  # one nonce for both walks: their marks alike
    data = Path(path).read_bytes()
    sent: list[bytes] = []
    stream = wire.NodeStream(lambda nonce, parts: sent.append(b"".join(parts)), 1, 2)
    try:
        light, rest, tail = wire.strip_weights_streamed(data, stream)
    except AuditError:
        with pytest.raises(AuditError):
            strip_weights(data)
        return
    merged, whole = _merged(rest, [*sent, *tail]), onnx.ModelProto.FromString(bytes(strip_weights(data).data))
    marks = 0
    for streamed, kept in zip(merged.graph.initializer, whole.graph.initializer, strict=True):  # main graph: streamed
        if streamed.doc_string.startswith(b"n".hex() * 8):  # without its raw_data, its count in the doc string
            assert int(streamed.doc_string[16:]) == len(kept.raw_data) and not streamed.raw_data and not kept.doc_string
            kept.ClearField("raw_data")
            kept.doc_string = streamed.doc_string
            marks += 1
    assert merged == whole and marks == light.marked
    main = onnx.ModelProto.FromString(data).graph
    items = len(main.node) + len(main.initializer)  # both go, counted together
    assert stream.decided is (len(main.node) > 1) and len(sent) == (items // 2 if len(main.node) > 1 else 0)
    alone = _merged(rest, []).graph
    assert not alone.node and not alone.initializer if len(main.node) > 1 else True


def _large_graph(tmp_path: Path, nodes: int) -> Path:
    """A main graph of `nodes` nodes: Constants (one named as an initializer, which it replaces), an If with its own
    graphs, torch's module scopes on the last nodes only, a call to a local function."""
    body = [node("Identity", ["x" if k == 0 else f"h{k - 1}"], [f"h{k}"], name=f"id{k}") for k in range(nodes)]
    body[5] = node("Constant", [], ["W"], name="shadow", value=ints("v", [1, 2]))  # the initializer W's name
    body[9] = node("Constant", [], ["h9"], value_ints=[3, 4])
    then = helper.make_graph([node("Identity", ["x"], ["t"])], "then", [], [value("t", None)])
    body[12] = node("If", ["c"], ["h12"], then_branch=then, else_branch=then)
    for late in body[-3:]:
        late.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'block', 'identity']")
    body[20] = node("Twice", ["h19"], ["h20"], domain="local")
    twice = helper.make_function("local", "Twice", ["a"], ["b"], [node("Identity", ["a"], ["b"])], [])
    m = model(body, [value("x", [2])], [value(f"h{nodes - 1}", [2])], [init("W", [2])], functions=[twice])
    m.opset_import.add(domain="local", version=1)
    return save(m, tmp_path / "large.onnx")


def test_a_large_main_graph_is_read_while_it_is_walked(tmp_path, monkeypatch):
    """Over MAX_INFER_NODES nodes, the main graph's nodes are read as the walk sends them (StreamedMain): the same
    view as the protobuf reader's, and as the whole copy's when reading a chunk fails half way."""
    from onnxaudit.model import build
    from onnxaudit.model.build import MAX_INFER_NODES, StreamedMain

    path = _large_graph(tmp_path, MAX_INFER_NODES + 4096 + 7)
    fed: list[int] = []
    feed = StreamedMain.feed

    def counted(self, nonce, data, scoped, text=None, stripped=True):  # type: ignore[no-untyped-def]
        fed.append(len(data))
        scopes.append(scoped)
        texts.append(text)
        return feed(self, nonce, data, scoped, text, stripped)

    scopes: list[bool] = []  # whether the walk saw metadata a stage reads in each chunk: only the last has
    texts: list[bool | None] = []  # whether the child found each chunk's names valid UTF-8: None, not looked at

    monkeypatch.setattr(build.StreamedMain, "feed", counted)
    view = load(path)
    assert len(fed) == (MAX_INFER_NODES + 4096 + 7) // 4096 + 1  # every 4096 nodes, then the last few
    assert scopes == [False] * (len(fed) - 1) + [True]
    assert texts == [True] * (len(fed) - 1) + [None]  # the last few come with the copy, looked at by the parent
    assert view == load(path, reader="protobuf")
    assert view.main.tensors["W"].origin == "constant" and view.main.nodes[-1].module_scopes == (
        "",
        "block",
        "identity",
    )
    fed.clear()
    monkeypatch.setattr(
        build.StreamedMain,
        "feed",
        lambda self, nonce, data, scoped, text=None, stripped=True: (
            fed.append(1) or len(fed) < 2 and feed(self, nonce, data, scoped)
        ),
    )
    assert load(path) == view  # the second chunk not read: the whole copy is
    assert len(fed) == 2


@pytest.mark.parametrize(
    "field", [b"\x1a\x04id77", b"\x22\x08Identity", b"\x0a\x04h100", b"\x12\x04h200", b"\x0a\x04mark"]
)
def test_a_large_main_graph_s_names_not_utf8_are_text(tmp_path, field):
    """A name of the streamed main graph that is not UTF-8 (a node's name, op type, input, output, attribute name)
    arrives from protobuf as bytes: nodes_as_text says so for its chunk (in the walk's child: the first 4096 nodes
    are sent on), and the view holds it as text (\\xff), as the protobuf reader's does."""
    from onnxaudit.io.text import nodes_as_text
    from onnxaudit.model.build import MAX_INFER_NODES

    path = _large_graph(tmp_path, MAX_INFER_NODES + 5)
    m = onnx.load(path)
    m.graph.node[300].attribute.append(helper.make_attribute("mark", 1))
    data = m.SerializeToString()
    graph = onnx.GraphProto()
    graph.node.extend(m.graph.node[295:305])
    chunk = graph.SerializeToString()
    assert nodes_as_text(chunk) and field in data
    broken = field[:-2] + b"\xff" + field[-1:]  # the name's last but one character
    assert not nodes_as_text(chunk.replace(field, broken, 1)) or field not in chunk
    path.write_bytes(data.replace(field, broken, 1))
    view = load(path)
    assert view == load(path, reader="protobuf")
    names = [(n.name, n.op_type, *n.inputs, *n.outputs, *n.attrs) for n in view.main.nodes]
    assert sum(1 for row in names for name in row if "\\xff" in name) == 1
    assert not any(isinstance(name, bytes) for row in names for name in row)


def test_a_large_main_graph_s_initializers_are_read_while_it_is_walked(tmp_path, monkeypatch):
    """Over MAX_INFER_NODES nodes, the main graph's initializers go with its nodes (NodeStream), in chunks of their
    own past the last node: their tensors are built as they come, in the order, with the byte counts and the
    graph-input marks the protobuf reader gives, and still before the Constants' tensors."""
    from onnxaudit.model import build
    from onnxaudit.model.build import MAX_INFER_NODES, StreamedMain

    path = _large_graph(tmp_path, MAX_INFER_NODES + 5)
    m = onnx.load(path)
    many = 2 * 4096 + 3  # over two chunks of their own
    m.graph.initializer.extend(
        init(f"t{k}", [70] if k % 3 else [4], np.float32 if k % 2 else np.int64) for k in range(many)
    )
    m.graph.initializer[2000].CopyFrom(init("big", [1000], np.int64))  # over KEEP_BYTES: the walk's mark, not t1999
    m.graph.input.append(helper.make_tensor_value_info("t7", TensorProto.FLOAT, [70]))  # IR < 4: also an input
    save(m, path)
    feed, chunks = StreamedMain.feed, []

    def counted(self, nonce, data, scoped, text=None, stripped=True):  # type: ignore[no-untyped-def]
        graph = onnx.GraphProto.FromString(bytes(data))
        chunks.append((len(graph.node), len(graph.initializer), stripped))
        return feed(self, nonce, data, scoped, text, stripped)

    monkeypatch.setattr(build.StreamedMain, "feed", counted)
    view = load(path)
    reference = load(path, reader="protobuf")
    assert list(view.main.tensors.items()) == list(reference.main.tensors.items())
    assert [name for name in view.main.tensors][:3] == ["W", "t0", "t1"]  # W: the Constant "shadow" holds it now
    assert view.main.tensors["W"].origin == "constant" and view.main.tensors["t7"].also_graph_input
    assert view.main.tensors["t1"].stored_bytes == 70 * 4 and view.main.tensors["t2"].stored_bytes == 70 * 8
    assert view.main.tensors["big"].stored_bytes == 1000 * 8  # its chunk says a tensor of it lost bytes: only its
    assert [stripped for *_, stripped in chunks] == [False] * 5 + [True, True]  # the last: not said, so it may
    assert sum(inits for _, inits, _ in chunks) == many + 1 and chunks[-2][:2] == (0, 4096)
    assert sum(nodes for nodes, _, _ in chunks) == MAX_INFER_NODES + 5


def test_a_large_main_graph_over_the_initializer_limit_is_refused_by_the_walk(tmp_path):
    """The streamed initializers are counted by the walk (the reader builds them as they come): over --max-nodes'
    limit the same one line as the protobuf reader's."""
    from onnxaudit.model.build import MAX_INFER_NODES

    path = _large_graph(tmp_path, MAX_INFER_NODES + 5)
    m = onnx.load(path)
    limit = MAX_INFER_NODES + 10  # nodes, and initializers (TENSORS_PER_NODE 1)
    m.graph.initializer.extend(onnx.TensorProto(name=f"e{k}", data_type=TensorProto.FLOAT) for k in range(limit))
    save(m, path)
    messages = []
    for reader in ("wire", "protobuf"):
        with pytest.raises(AuditError) as err:
            load(path, reader=reader, max_nodes=limit)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and f"more than {limit:,} initializers" in messages[0]


def test_a_large_main_graph_s_float_initializers_go_without_their_bytes(tmp_path):
    """Over MAX_INFER_NODES nodes, a float initializer of dims, data_type, name and one raw_data of 256 bytes or more
    comes through the walk without its raw_data, the count in a doc string only this walk's nonce begins: the view
    holds the bytes the file stored, as the protobuf reader's. Any other tensor is copied as it was."""
    from onnxaudit.model.build import MAX_INFER_NODES

    path = _large_graph(tmp_path, MAX_INFER_NODES + 5)
    m = onnx.load(path)
    doc = init("documented", [64])
    doc.doc_string = "a doc string"
    typed = onnx.TensorProto(name="typed", data_type=TensorProto.FLOAT, dims=[64], float_data=[1.0] * 64)
    marked = [init("f32", [8, 16]), init("f16", [200], np.float16), init("f64", [32], np.float64)]
    kept = [init("small", [63]), init("ints", [64], np.int64), doc, typed]
    m.graph.initializer.extend(marked + kept)
    raw = np.zeros(80, np.float32).tobytes()
    twice = init("twice", [64]).SerializeToString() + b"\x4a" + varint(len(raw)) + raw  # the last raw_data wins
    graph = b"\x2a" + varint(len(twice)) + twice  # GraphProto.initializer, in the main graph written a second time
    data = m.SerializeToString() + b"\x3a" + varint(len(graph)) + graph
    path.write_bytes(data)
    sent: list[bytes | memoryview] = []
    light, rest, last = wire.strip_weights_streamed(
        data, wire.NodeStream(lambda nonce, parts: sent.extend(parts), MAX_INFER_NODES, 4096)
    )
    assert light.marked == len(marked)
    copy = b"".join(rest + sent + last)
    assert not any(t.raw_data in copy for t in marked) and all(t.raw_data in copy for t in kept[:3])
    assert not any(t.raw_data in b"".join(rest) for t in kept[:3])  # the initializers go with the nodes
    view = load(path)
    assert view == load(path, reader="protobuf")
    stored = {name: view.main.tensors[name].stored_bytes for name in ("f32", "f16", "f64", "small", "typed", "twice")}
    assert stored == {
        "f32": 8 * 16 * 4,
        "f16": 200 * 2,
        "f64": 32 * 8,
        "small": 63 * 4,
        "typed": 64 * 4,
        "twice": 80 * 4,
    }
