"""Hostile input through the real CLI: every case ends with the expected exit code and, when the input
is unusable, one stderr line naming the file; nothing outside the model's folder is ever opened; peak
memory stays under 1 GiB. Then property tests: mutated real fixtures load, count and check, or fail
with AuditError, never anything else.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from builders import (
    MODELS,
    NUMBERS,
    array,
    attribute_floats,
    batchnorm,
    deep_nesting,
    empty_graph_fields,
    empty_model_fields,
    empty_node_fields,
    empty_nodes,
    external,
    hidden_entries,
    hidden_numbers,
    init,
    linear,
    long_text,
    many_dims,
    model,
    nested_if,
    node,
    save,
    save_with_hole,
    seed_cnn,
    shared_dim_name,
    small_branches,
    small_functions,
    small_node_entries,
    training_nodes,
    value,
)
from hostile import CANARY_TEXT, Canary, CliRunner, raw_controls
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from onnxaudit.check.runner import check
from onnxaudit.count.roles import classify
from onnxaudit.count.table import param_table
from onnxaudit.errors import AuditError
from onnxaudit.io.budget import FIELDS_PER_NODE, GraphTooLarge
from onnxaudit.io.datamap import MAX_TEXT, map_file
from onnxaudit.io.wire import KEEP_BYTES, strip_weights
from onnxaudit.model.load import load

GIB = 2**30


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path, Path], Path]  # (model folder, canary outside it) -> the model path
    summary: int
    check: int
    words: str = ""  # in the one stderr line of an exit 2
    rules: tuple[str, ...] = ()  # check findings expected (at least these)
    total: int | None = None  # summary's total, when it must count


def _write(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def build(folder: Path, canary: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return build


def _save(m: onnx.ModelProto, name: str = "m.onnx") -> Callable[[Path, Path], Path]:
    return lambda folder, canary: save(m, folder / name)


def _dir(folder: Path, canary: Path) -> Path:
    (folder / "dir.onnx").mkdir()
    return folder / "dir.onnx"


def _fifo(folder: Path, canary: Path) -> Path:
    os.mkfifo(folder / "fifo.onnx")
    return folder / "fifo.onnx"


def _big_garbage(folder: Path, canary: Path) -> Path:
    with open(folder / "big.onnx", "wb") as f:
        f.truncate(3 * GIB)  # sparse: no disk space, no bytes but zeros
    return folder / "big.onnx"


def _symlink_out(folder: Path, canary: Path) -> Path:
    (folder / "link.onnx").symlink_to(canary)
    return folder / "link.onnx"


def _dangling_symlink(folder: Path, canary: Path) -> Path:
    (folder / "link.onnx").symlink_to(folder / "missing.onnx")
    return folder / "link.onnx"


def _bad_dims(dims: list[int]) -> onnx.ModelProto:
    t = onnx.TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=bytes(64))
    del t.dims[:]
    t.dims.extend(dims)
    return linear(t)


def _graph_problems() -> dict[str, onnx.ModelProto]:
    body = [helper.make_node("f", ["a"], ["b"], domain="local")]
    f = helper.make_function("local", "f", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    nan = np.ones((4, 4), np.float32)
    nan[0, 0] = np.nan
    ok = [1.0, 1.0]
    return {
        "cycle": model(
            [node("MatMul", ["h", "W"], ["y"], name="a"), node("Relu", ["y"], ["h"], name="b")],
            [value("x", [1, 4])],
            [value("y", None)],
            [init("W", [4, 4])],
        ),
        "dangling_input": model(
            [node("MatMul", ["nothing", "W"], ["y"])], [value("x", [1, 4])], [value("y", None)], [init("W", [4, 4])]
        ),
        "duplicate_initializers": linear(init("W", [4, 4]), extra=[init("W", [8, 8])]),
        "recursive_function": model(
            [node("f", ["x"], ["y"], domain="local")],
            [value("x", [4])],
            [value("y", None)],
            extra_opsets={"local": 1},
            functions=[f],
        ),  # fmt: skip
        "bn_three_inputs": batchnorm(ok, ok, ok, ok, inputs=("x", "g", "b")),
        "bn_mismatched": batchnorm(ok, ok, [1.0] * 8, [1.0] * 3),
        "future_versions": linear(init("W", [4, 4]), ir_version=99, opset=999),
        "nan_weights": linear(array("W", nan)),
    }


def _slice_over_negative_dim() -> onnx.ModelProto:
    """onnx's C++ shape inference aborts on this (std::clamp's assertion, SIGABRT, its text on stderr)."""
    return model(
        [helper.make_node("Slice", ["x", "s", "e"], ["y"], name="sl"), node("MatMul", ["y", "W"], ["z"], name="fc")],
        [value("x", [-1, 4])],
        [value("z", None)],
        [
            init("W", [4, 4]),
            helper.make_tensor("s", TensorProto.INT64, [1], [0]),
            helper.make_tensor("e", TensorProto.INT64, [1], [2]),
        ],
    )


def _matmulnbits_negative_n() -> onnx.ModelProto:
    """onnxruntime's 4-bit MatMul with N = -1: the weight's dims come from N, found negative while counting."""
    nbits = helper.make_node(
        "MatMulNBits", ["x", "W", "S"], ["y"], name="q", domain="com.microsoft", K=4, N=-1, bits=4, block_size=32
    )
    weights = [init("W", [1, 1, 16], np.uint8), init("S", [1])]
    return model([nbits], [value("x", ["N", 4])], [value("y", None)], weights, extra_opsets={"com.microsoft": 1})


def _division_by_zero() -> onnx.ModelProto:
    """linear() beside a Reshape whose shape is folded from a Div by zero (1/0, 0/0): numpy's RuntimeWarnings of
    the fold reached stderr."""
    zeros = [helper.make_tensor(n, TensorProto.FLOAT, [2], v) for n, v in (("a", [1.0, 0.0]), ("z", [0.0, 0.0]))]
    nodes = [node("MatMul", ["x", "W"], ["y"]), node("Div", ["a", "z"], ["q"]), node("Reshape", ["x", "q"], ["r"])]
    return model(nodes, [value("x", ["N", 4])], [value("y", None), value("r", None)], [init("W", [4, 4]), *zeros])


def _evil_names() -> onnx.ModelProto:
    return linear(init("W", [4, 4]), extra=[init("x\n::error::pwned\x1b[2J\r", [2])])


def _invalid_utf8_weight_name(folder: Path, canary: Path) -> Path:
    data = linear(init("WEIGHTXX", [4, 4])).SerializeToString().replace(b"WEIGHTXX", b"W\xff\x1b[1m\x00\xfe")
    (folder / "utf8.onnx").write_bytes(data)
    return folder / "utf8.onnx"


def _external_case(location: str | Callable[[Path, Path], str], setup: Callable[[Path, Path], None], **entries):
    def build(folder: Path, canary: Path) -> Path:
        setup(folder, canary)
        where = location(folder, canary) if callable(location) else location
        return save(linear(external("W", [4, 4], where, **entries)), folder / "ext.onnx")

    return build


def _nothing(folder: Path, canary: Path) -> None:
    pass


def _data_file(folder: Path, canary: Path) -> None:
    (folder / "w.bin").write_bytes(np.ones(16, np.float32).tobytes())


def _sparse_external(folder: Path, canary: Path) -> Path:
    with open(folder / "weights.bin", "wb") as f:
        f.truncate(4 * GIB)
    m = linear(external("W", [1024, 2**20], "weights.bin"))
    return save(m, folder / "sparse4g.onnx")


def _sparse_embedded(folder: Path, canary: Path) -> Path:
    m = model([node("MatMul", ["x", "W"], ["y"], name="fc")], [value("x", ["N", 640])], [value("y", None)])
    return save_with_hole(m, "W", [640, 2**20], folder / "embedded2_5g.onnx")


PROBLEMS = _graph_problems()
CASES = [
    Case("empty", _write("empty.onnx", b""), 2, 2, "empty file"),
    Case("random_bytes", _write("random.onnx", np.random.default_rng(5).bytes(4096)), 2, 2, "not an ONNX model"),
    Case("text_file", _write("text.onnx", b"hello, this is not a model\n" * 40), 2, 2, "not an ONNX model"),
    Case("truncated", _write("cut.onnx", seed_cnn().SerializeToString()[:9000]), 2, 2, "not an ONNX model"),
    Case("directory", _dir, 2, 2, "directory"),
    Case("fifo", _fifo, 2, 2, "not a regular file"),
    Case("device", lambda folder, canary: Path("/dev/zero"), 2, 2, "not a regular file"),
    Case("sparse_3gib_garbage", _big_garbage, 2, 2, "not an ONNX model"),
    Case("symlink_out_of_folder", _symlink_out, 2, 2, "outside its folder"),
    Case("dangling_symlink", _dangling_symlink, 2, 2, "no such file"),
    Case("nesting_too_deep", _write("deep.onnx", deep_nesting(150)), 2, 2, "nested deeper"),
    Case("negative_dims", _save(_bad_dims([-4, -4])), 2, 1, "negative dim", ("OA301",)),
    Case("overflowing_dims", _save(_bad_dims([2**40, 2**40])), 2, 1, "exceeds", ("OA301",)),
    Case("cycle", _save(PROBLEMS["cycle"]), 0, 1, rules=("OA208",), total=16),
    Case("dangling_input", _save(PROBLEMS["dangling_input"]), 0, 1, rules=("OA207",), total=16),
    Case("duplicate_initializers", _save(PROBLEMS["duplicate_initializers"]), 0, 1, rules=("OA205",)),
    Case("recursive_function", _save(PROBLEMS["recursive_function"]), 0, 1, rules=("OA209",), total=0),
    Case("bn_three_inputs", _save(PROBLEMS["bn_three_inputs"]), 0, 1, rules=("OA202",)),
    Case("bn_mismatched_channels", _save(PROBLEMS["bn_mismatched"]), 0, 1, rules=("OA202",)),
    Case("future_ir_and_opset", _save(PROBLEMS["future_versions"]), 0, 1, rules=("OA305", "OA306")),
    Case("nan_weights", _save(PROBLEMS["nan_weights"]), 0, 1, rules=("OA101",), total=16),
    Case("matmulnbits_negative_n", _save(_matmulnbits_negative_n()), 2, 2, "negative dim"),
    Case("native_abort_in_inference", _save(_slice_over_negative_dim()), 0, 0, total=16),
    Case("division_by_zero_in_folding", _save(_division_by_zero()), 0, 0, total=16),
    Case("control_chars_in_names", _save(_evil_names()), 0, 0, rules=("OA203",), total=16),
    Case("invalid_utf8_names", _invalid_utf8_weight_name, 0, 0, total=16),
    *(
        Case(f"invalid_utf8_{field}", lambda folder, canary, f=field: _invalid_utf8(folder, [f]), 0, 0, total=16)
        for field in ("op_type", "fx_node", "rule_name", "name_scopes", "dim_param", "domain")
    ),
    Case("ext_dotdot", _external_case("../outside/canary.bin", _nothing), 0, 1, rules=("OA303",), total=16),
    Case("ext_absolute", _external_case(lambda f, c: str(c), _nothing), 0, 1, rules=("OA303",)),
    Case(
        "ext_symlink",
        _external_case("w.bin", lambda f, c: (f / "w.bin").symlink_to(c)),
        0,
        1,
        rules=("OA303",),
    ),  # fmt: skip
    Case(
        "ext_symlinked_folder",
        _external_case("sub/canary.bin", lambda f, c: (f / "sub").symlink_to(c.parent)),
        0,
        1,
        rules=("OA303",),
    ),  # fmt: skip
    Case("ext_hard_link", _external_case("w.bin", lambda f, c: os.link(c, f / "w.bin")), 0, 1, rules=("OA303",)),
    Case("ext_fifo", _external_case("w.bin", lambda f, c: os.mkfifo(f / "w.bin")), 0, 1, rules=("OA303",)),
    Case("ext_past_end", _external_case("w.bin", _data_file, offset=32), 0, 1, rules=("OA304",)),
    Case("ext_length_vs_dims", _external_case("w.bin", _data_file, length=60), 0, 1, rules=("OA302",)),
    Case("sparse_4gib_external", _sparse_external, 0, 0, rules=("OA104",), total=2**30),
    Case("sparse_2_5gib_embedded", _sparse_embedded, 0, 0, rules=("OA104",), total=640 * 2**20),
]


@pytest.fixture(scope="module")
def cli():
    runner = CliRunner()
    yield runner
    runner.close()


@pytest.fixture
def folders(tmp_path):
    if sys.platform != "linux":
        pytest.skip("the canary is watched with inotify (Linux)")
    folder = tmp_path / "models"
    folder.mkdir()
    canary = Canary(tmp_path / "outside" / "canary.bin")
    yield folder, canary
    canary.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file(case: Case, cli, folders, tmp_path):
    folder, canary = folders
    path = case.build(folder, canary.path)
    assert not canary.touched(), "building the case must not touch the canary"
    for command, expected in (("summary", case.summary), ("check", case.check)):
        argv = [command, str(path), "--format", "json"]
        out = cli.run(argv, tmp_path)
        assert out.code == expected, (command, out.stderr)
        assert out.peak_kib < 2**20, f"{command}: peak {out.peak_kib} KiB"
        assert CANARY_TEXT.decode()[:20] not in out.stdout + out.stderr
        if expected == 2:
            lines = out.stderr.splitlines()
            assert out.stdout == "" and len(lines) == 1, out.stderr
            assert str(path) in lines[0] and case.words in lines[0] and "Traceback" not in lines[0]
            continue
        assert out.stderr == "", out.stderr
        data = json.loads(out.stdout)
        if command == "summary" and case.total is not None:
            assert data["totals"]["total"] == case.total
        if command == "check":
            found = {f["rule"] for f in data["findings"]}
            assert set(case.rules) <= found, (case.rules, data["findings"])
    assert canary.touched() == []
    assert not any(os.path.basename(p) == "canary.bin" for p in out.opened)


def test_a_native_abort_in_inference_reaches_no_output_of_scan(cli, folders, tmp_path):
    """onnx's shape inference aborting (a std::clamp assertion on a Slice over a negative dim) is handled in its
    child; the assertion's text reached the user's stderr and scan's output. scan records the model, audited, with a
    note that inference crashed, and writes nothing else."""
    folder, _ = folders
    save(_slice_over_negative_dim(), folder / "m.onnx")
    out = cli.run(["scan", str(folder), "--jobs", "1", "-q"], tmp_path)
    assert out.code == 0 and out.stderr == "", (out.code, out.stderr)
    [record] = [json.loads(line) for line in out.stdout.splitlines()]
    assert record["error"] is None and record["total"] == 16, record
    assert any("crashed" in note for note in record["limits"]) and "Assertion" not in out.stdout


def test_a_model_path_ending_in_a_slash_is_refused(cli, folders, tmp_path):
    """pathlib drops the trailing '/', so 'good.onnx/' opened good.onnx; the shell and open(2) say it names
    a folder."""
    folder, _ = folders
    path = save(linear(init("W", [4, 4])), folder / "good.onnx")
    for command in ("summary", "check"):
        out = cli.run([command, f"{path}/"], tmp_path)
        assert (
            out.code == 2
            and out.stdout == ""
            and out.stderr == f"onnxaudit: {path}/: ends in '/', which names a folder, not a model file\n"
        )


# (file, the --max-nodes it exceeds and what the error says, a --max-nodes that admits it)
_SIZE_BOMBS = {
    "empty_nodes": (lambda: empty_nodes(100), 64, "more than 64 nodes", 101),
    "concat_inputs": (
        lambda: model(
            [node("Concat", ["x"] * 300, ["y"], axis=0)], [value("x", [4])], [value("y", None)]
        ).SerializeToString(),
        64,
        "more than 256 node inputs",
        75,
    ),
    "nested_if": (lambda: nested_if(4).SerializeToString(), 64, "more than 8 graphs", 128),
}


@pytest.mark.parametrize("bomb", sorted(_SIZE_BOMBS))
def test_graph_size_over_max_nodes_is_refused_and_the_flag_raises_it(bomb, cli, folders, tmp_path):
    """A file of 2 bytes a node holds 10M nodes in 20 MB (12 s and 1.3 GiB a million): nodes, node inputs
    (4 per allowed node) and graphs (one per 8) are capped, exit 2 naming the limit; --max-nodes raises it, in every
    command that reads a model (diff took none)."""
    folder, _ = folders
    build, limit, words, enough = _SIZE_BOMBS[bomb]
    path = folder / f"{bomb}.onnx"
    path.write_bytes(build())
    for command in (["summary"], ["check"], ["verify", "--expect", "total=16"], ["diff", str(path)]):
        out = cli.run([command[0], str(path), *command[1:], "--max-nodes", str(limit)], tmp_path)
        assert out.code == 2 and out.stdout == "", (command, out.stderr)
        assert out.stderr.startswith(f"onnxaudit: {path}: {words}") and out.stderr.count("\n") == 1, out.stderr
        assert "--max-nodes" in out.stderr
        out = cli.run([command[0], str(path), *command[1:], "--max-nodes", str(enough)], tmp_path)
        assert out.code in (0, 1) and out.stderr == "", (command, out.stderr)


# (file, a --max-nodes it exceeds, what the error says, one that admits it, its nodes and graphs): each is refused
# by both wire walks before protobuf parses anything
_WALK_BOMBS = {
    "empty_nodes": (lambda: empty_nodes(1000), 1000, "more than 1,000 nodes", 1001, 1 + 1000, 1),
    # 20 If nodes under 4 KiB each (1 + 20 + 20 * 2000 nodes, 1 + 20 * 2 graphs): their nodes hide in messages a
    # size-only walk copies whole; 20 functions of 1,000 nodes (1 + 20 * 1000 nodes, 1 + 20 graphs) likewise
    "small_branches": (
        lambda: small_branches(20, 2000),
        40_020,
        "more than 40,020 nodes",
        40_021,
        1 + 20 + 20 * 2000,
        1 + 20 * 2,
    ),
    "small_functions": (
        lambda: small_functions(20, 1000),
        20_000,
        "more than 20,000 nodes",
        20_001,
        1 + 20 * 1000,
        1 + 20,
    ),
    "nested_if": (
        lambda: nested_if(6).SerializeToString(),
        62 * 8,
        "more than 62 graphs and subgraphs",
        63 * 8,
        2**6 - 1,
        2**6 - 1,
    ),
}


@pytest.mark.parametrize("bomb", sorted(_WALK_BOMBS))
def test_both_wire_walks_count_the_graph_before_anything_is_parsed(bomb, tmp_path):
    """The walk that strips weights and check's data map stop at the first node (graph) over --max-nodes, with the
    words the view builder uses: 9M empty nodes (18 MB) cost 1.4 GiB when the count came after protobuf's parse.
    strip_weights and map_file never call protobuf, so a refusal there is a refusal before any parse; the view
    read with a limit that admits the file holds the nodes and graphs counted."""
    build, limit, words, enough, nodes, graphs = _WALK_BOMBS[bomb]
    data = build()
    path = tmp_path / "bomb.onnx"
    path.write_bytes(data)
    with pytest.raises(GraphTooLarge, match=f"^{words}: over the limit for --max-nodes {limit:,} "):
        strip_weights(data, max_nodes=limit)
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(AuditError, match=f"^{path}: {words}: over the limit for --max-nodes {limit:,} "):
            map_file(fd, len(data), str(path), max_nodes=limit)
        map_file(fd, len(data), str(path), max_nodes=enough)
    finally:
        os.close(fd)
    strip_weights(data, max_nodes=enough)
    view = load(path, max_nodes=enough)
    assert (sum(len(g.nodes) for g in view.graphs.values()), len(view.graphs)) == (nodes, graphs)


# 4,000 empty entries (2 bytes each) in each repeated field of the structure: (file, whether check's data map walks
# where they are (it walks no value info, so the dims are refused by the view's walk only), the main graph's nodes)
_FIELD_BOMBS = {
    "graph_inputs": (lambda: empty_graph_fields(11, 4000), True, 1),
    "graph_outputs": (lambda: empty_graph_fields(12, 4000), True, 1),
    "value_infos": (lambda: empty_graph_fields(13, 4000), True, 1),
    "opsets": (lambda: empty_model_fields(8, 4000), True, 1),
    "model_metadata": (lambda: empty_model_fields(14, 4000), True, 1),
    "node_outputs": (lambda: empty_node_fields(2, 4000), True, 1),
    "attributes": (lambda: empty_node_fields(5, 4000), True, 1),
    "node_metadata": (lambda: empty_node_fields(9, 4000), True, 1),
    "dims": (lambda: many_dims(4000), False, 1),
    # in nodes under 4 KiB: 4 nodes of 1,000 outputs, attributes or metadata entries each
    "small_node_outputs": (lambda: small_node_entries(2, 4, 1000), True, 1 + 4),
    "small_node_attributes": (lambda: small_node_entries(5, 4, 1000), True, 1 + 4),
    "small_node_metadata": (lambda: small_node_entries(9, 4, 1000), True, 1 + 4),
}


@pytest.mark.parametrize("bomb", sorted(_FIELD_BOMBS))
def test_structure_fields_are_counted_before_anything_is_parsed(bomb, tmp_path):
    """9M empty graph inputs, value infos, opsets, attributes or dims in 18 MB cost protobuf ~150 B each and the
    view a Python object: 2.2 to 4.5 GiB, or over a minute. Both walks count the structure's fields (FIELDS_PER_NODE
    per allowed node: 4,000 at --max-nodes 1,000) and refuse past them; three times the limit admits the file."""
    build, data_map_walks_it, nodes = _FIELD_BOMBS[bomb]
    data = build()
    path = tmp_path / "bomb.onnx"
    path.write_bytes(data)
    _fields_refused_at_1000_nodes(path, data, data_map_walks_it)
    assert len(load(path, max_nodes=3000).main.nodes) == nodes  # 2,000 would refuse 4,002 graph inputs as values


# the graph's repeated fields counted per entry by the view's builder (initializers and sparse initializers by check's
# data map too), before anything is built from them: (field, entries beside linear()'s own, what the limit says)
_ENTRY_LIMITS = {
    "initializers": (5, 1500, "more than 1,000 initializers"),
    "sparse_initializers": (15, 1500, "more than 1,000 initializers"),
    "graph_inputs": (11, 2500, "more than 2,000 graph inputs, outputs and value infos"),
    "graph_outputs": (12, 2500, "more than 2,000 graph inputs, outputs and value infos"),
    "value_infos": (13, 2500, "more than 2,000 graph inputs, outputs and value infos"),
}


@pytest.mark.parametrize("case", sorted(_ENTRY_LIMITS))
def test_graph_entries_past_their_limit_are_refused_before_they_are_built(case, tmp_path):
    """999,980 scalar initializers with names of their own fit in 15 MB (summary 15.9 s / 1.7 GiB, check 32.7 s /
    2.4 GiB), as many typed graph inputs, outputs or value infos in 18 MB (summary 6.9 s / 768 MiB, check 9.1 s, diff
    twice that): initializers count one per allowed node, graph values two, before a tensor is built or shape
    inference reads them, in the same words for load and check; twice the limit admits the file."""
    field, entries, said = _ENTRY_LIMITS[case]
    path = tmp_path / "bomb.onnx"
    path.write_bytes(empty_graph_fields(field, entries))
    words = f"{said}: over the limit for --max-nodes 1,000 (a larger value raises it)"
    with pytest.raises(AuditError, match=re.escape(words)):
        load(path, max_nodes=1000)
    with pytest.raises(AuditError, match=re.escape(words)):
        check(path, max_nodes=1000)
    assert len(load(path, max_nodes=2000).main.nodes) == 1
    assert check(path, max_nodes=2000).params is not None


_FIELDS_WORDS = f"more than {1000 * FIELDS_PER_NODE:,} fields of graph structure: over the limit for --max-nodes 1,000 "


def _fields_refused_at_1000_nodes(path: Path, data: bytes, data_map: bool | None) -> None:
    """The file at `path` (`data`) is refused for its structure's fields at --max-nodes 1,000 by the strip walk and
    the view, and admitted by the walk at 2,000; by check's data map too (`data_map` True), or admitted by it (False),
    or not asked (None)."""
    with pytest.raises(GraphTooLarge, match=f"^{_FIELDS_WORDS}"):
        strip_weights(data, max_nodes=1000)
    strip_weights(data, max_nodes=2000)
    fd = os.open(path, os.O_RDONLY)
    try:
        if data_map:
            with pytest.raises(AuditError, match=f"^{path}: {_FIELDS_WORDS}"):
                map_file(fd, len(data), str(path), max_nodes=1000)
        elif data_map is not None:
            map_file(fd, len(data), str(path), max_nodes=1000)
        map_file(fd, len(data), str(path), max_nodes=2000)
    finally:
        os.close(fd)
    with pytest.raises(AuditError, match=f"^{path}: {_FIELDS_WORDS}"):
        load(path, max_nodes=1000)


# Entries inside messages a walk of large messages copied whole: 4,900 value infos of 2,000 dims each (20 MB) cost
# 1.4 GiB, one initializer of 9M external-data entries 1.3 GiB and 24 s. Where each hides (builders.HIDDEN), and
# whether check's data map reads it (it walks initializers, not value infos, annotations or device configurations);
# then numbers protobuf decodes from 1 byte of file into 8, in an array it grows (builders.NUMBERS): 18M of a Relu's
# ints attribute, packed in 18 MB, cost summary 880 MiB, of a Constant's value_ints 1,036 MiB, 4,900 small
# attributes of 3,900 each 547 MiB; check's data map reads none of them into objects
_HIDDEN_BOMBS: dict[str, tuple[Callable[[str, int, int], bytes], bool | None]] = {
    "value_info_metadata": (hidden_entries, None),
    "sequence_dims": (hidden_entries, None),
    "tensor_external": (hidden_entries, True),
    "tensor_strings": (hidden_entries, True),
    "tensor_dims": (hidden_entries, True),
    "tensor_packed_dims": (hidden_entries, None),  # the data map reads no packed dims past 4 KiB: too many for it
    "sparse_dims": (hidden_entries, True),
    "annotation_entries": (hidden_entries, None),
    "attribute_tensor_external": (hidden_entries, None),
    "node_sharding": (hidden_entries, None),
    "device_devices": (hidden_entries, None),
    **{where: (hidden_numbers, None) for where in NUMBERS},
}
# A large tensor's data past KEEP_BYTES is left out of the copy: its strings still count (a span each in the data
# map), its numbers cost nothing and are not counted
_LEFT_OUT_WHEN_LARGE = {"tensor_strings": True, "tensor_int64": False, "attribute_tensor_int64": False}


@pytest.mark.parametrize("bomb", sorted(_HIDDEN_BOMBS))
@pytest.mark.parametrize("messages,per", [(4, 1000), (1, 5000)], ids=["small", "large"])
def test_entries_inside_messages_copied_whole_are_counted(bomb, messages, per, tmp_path):
    """Four messages under 4 KiB (copied whole by the walk) or one over it (walked) holding 1,000 or 5,000 empty
    entries or zeros in a repeated varint field: counted against the structure's fields (FIELDS_PER_NODE per allowed
    node: 4,000 at --max-nodes 1,000) before anything is parsed, by the walk and, where it reads them, the data map,
    in the words of the other limits; twice the limit admits them."""
    build, data_map = _HIDDEN_BOMBS[bomb]
    data = build(bomb, messages, per)
    path = tmp_path / "bomb.onnx"
    path.write_bytes(data)
    if messages == 1 and bomb in _LEFT_OUT_WHEN_LARGE:
        light = strip_weights(data, max_nodes=2000)
        assert light.stripped_tensors == 1 and len(light.data) < KEEP_BYTES + 200
        if not _LEFT_OUT_WHEN_LARGE[bomb]:
            strip_weights(data, max_nodes=1000)  # admitted
            return
    _fields_refused_at_1000_nodes(path, data, data_map)


def test_fixed_width_numbers_are_not_counted(tmp_path):
    """An attribute's floats decode from 4 bytes into 4 (4.5M in 18 MB: summary 134 MiB), so they are not counted:
    5,000 of them, large or in small attributes, pass --max-nodes 1,000 where as many ints do not."""
    for messages, per in ((1, 5000), (4, 1000)):
        path = tmp_path / "floats.onnx"
        path.write_bytes(attribute_floats(per, messages))
        assert [n.op_type for n in load(path, max_nodes=1000).main.nodes] == ["MatMul"] + ["Relu"] * messages


@pytest.mark.parametrize(
    "where", ["node_name", "op_type", "domain", "opset_domain", "producer", "dim_param", "metadata"]
)
def test_a_huge_text_is_printed_by_its_ends_in_every_format(where, cli, folders, tmp_path):
    """An 18 MB op type or dim_param took summary minutes (textwrap is quadratic in a word's length): a text
    over LONGEST_SHOWN characters is shown by its ends and its length, escaped, in every text format."""
    folder, _ = folders
    path = folder / "long.onnx"
    path.write_bytes(long_text(where, 64 * 1000))
    for argv in (["summary"], ["summary", "--format", "markdown"], ["summary", "--format", "json"], ["check"]):
        out = cli.run([argv[0], str(path), *argv[1:]], tmp_path)
        assert out.code in (0, 1) and out.stderr == "", (argv, out.stderr)
        assert raw_controls(out.raw) == [], (argv, raw_controls(out.raw))
        assert len(out.stdout) < 64 * 1000 or argv[1:] == ["--format", "json"], argv


def test_a_long_dim_name_reused_by_every_value_is_kept_once(cli, folders, tmp_path):
    """A 100,000-character dim name on the input of chained MatMuls: shape inference wrote it into every value's
    shape, so every row carried a copy (5,000 MatMuls, a 0.27 MB file: summary 2.4 GiB, diff 4.4 GiB, a 2 GB JSON).
    A dim name over LONG_DIM_NAME characters is now its start and its length, in every stage and format."""
    folder, _ = folders
    path = folder / "dims.onnx"
    path.write_bytes(shared_dim_name(100_000, 50))
    shown = "D" * 32 + "…(100,000 characters)"
    for argv in (["summary"], ["summary", "--format", "json"], ["check"], ["diff", str(path)]):
        out = cli.run([argv[0], str(path), *argv[1:]], tmp_path)
        assert out.code in (0, 1) and out.stderr == "", (argv, out.stderr)
        assert "D" * 257 not in out.stdout, argv  # before: 50 copies of the whole name (5 MB) in each
    out = cli.run(["summary", str(path), "--format", "json"], tmp_path)
    readable = json.dumps(json.loads(out.stdout), ensure_ascii=False)
    assert readable.count(shown) >= 50  # every MatMul's output shape holds the input's (shortened) dim


def test_a_name_over_the_data_maps_text_limit_is_refused_as_a_limit(cli, folders, tmp_path):
    """check reads names through the data map, which reads no text over MAX_TEXT bytes: an 18 MB node name was
    refused as 'malformed protobuf', as if the bytes were no protobuf. The refusal names the limit passed."""
    folder, _ = folders
    path = folder / "long.onnx"
    data = long_text("node_name", MAX_TEXT)  # 62 ASCII + a 1-byte and a 3-byte character in each 64
    path.write_bytes(data)
    length = MAX_TEXT // 64 * (62 + 1 + 3)
    start = data.index(b"\x1b") - 62  # the name's first byte: the text begins with 62 'a's
    out = cli.run(["check", str(path)], tmp_path)
    assert out.code == 2 and out.stdout == ""
    assert out.stderr == (
        f"onnxaudit: {path}: a text of {length:,} bytes at byte {start:,}: over the limit of {MAX_TEXT:,} bytes"
        " for a name or an external-data entry\n"
    )


def test_training_graphs_are_neither_parsed_nor_counted(tmp_path):
    """Only a TrainingInfoProto's update_binding is read: its algorithm graph is dropped by the walk, so 1M empty
    nodes there cost nothing and count for nothing (the view never held them)."""
    data = training_nodes(1_000_000)
    light = strip_weights(data, max_nodes=10)
    assert len(light.data) < 1000
    path = tmp_path / "t.onnx"
    path.write_bytes(data)
    view = load(path, max_nodes=10)
    assert [len(g.nodes) for g in view.graphs.values()] == [1]


def test_a_huge_max_memory_is_a_usage_error(cli, folders, tmp_path):
    """--max-memory 99999999999999999999999GiB failed in the run with 'Python int too large to convert to C long'."""
    folder, _ = folders
    path = save(linear(init("W", [4, 4])), folder / "m.onnx")
    for size in ("99999999999999999999999GiB", "1e400"):
        out = cli.run(["summary", str(path), "--run-shapes", "--max-memory", size], tmp_path)
        assert out.code == 2 and out.stdout == "" and "--max-memory: " in out.stderr, out.stderr
        assert "C long" not in out.stderr and "Traceback" not in out.stderr


def test_external_data_refused_is_never_opened(cli, folders, tmp_path):
    """The audit hook sees every open: a refused external file is not among them."""
    folder, canary = folders
    os.link(canary.path, folder / "w.bin")
    path = save(linear(external("W", [4, 4], "w.bin")), folder / "ext.onnx")
    out = cli.run(["check", str(path)], tmp_path)
    assert out.code == 1 and "hard link" in out.stdout
    assert not any(p.endswith("w.bin") for p in out.opened) and canary.touched() == []


def test_text_output_of_hostile_names_is_escaped(cli, folders, tmp_path):
    folder, _ = folders
    path = save(_evil_names(), folder / "m.onnx")
    for command in (["summary", str(path), "--by", "tensor"], ["check", str(path), "--format", "github"]):
        out = cli.run(command, tmp_path)
        assert out.code == 0 and "\x1b" not in out.stdout and "\r" not in out.stdout
        assert all(not line.startswith("::error::") for line in out.stdout.splitlines())


def _every_string(text: Callable[[int], str]) -> onnx.ModelProto:
    """A model whose every string field is text(i), i distinct per field: names, op_type, domains,
    dim_param, attribute, producer, graph name, model and node metadata (torch's and onnxscript's keys)."""
    t = iter(range(100))
    w = init(text(next(t)), [4, 4])
    dense = node("MatMul", [text(next(t)), w.name], [text(next(t))], name=text(next(t)))
    dense.metadata_props.add(key="pkg.torch.onnx.fx_node", value=f"%p_{text(next(t))}")
    dense.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=f"['{text(next(t))}']")
    dense.metadata_props.add(key="pkg.onnxscript.rewriter.rule_name", value=f"FuseBatchNormIntoConv {text(next(t))}")
    domain = text(next(t))
    custom = helper.make_node(text(next(t)), [dense.output[0]], [text(next(t))], name=text(next(t)), domain=domain)
    custom.attribute.append(helper.make_attribute(text(next(t)), text(next(t))))
    m = model(
        [dense, custom],
        [value(dense.input[0], [text(next(t)), 4])],
        [value(custom.output[0], None)],
        [w],
        extra_opsets={domain: 1},
    )
    m.producer_name, m.producer_version, m.graph.name = text(next(t)), text(next(t)), text(next(t))
    m.metadata_props.add(key=text(next(t)), value=text(next(t)))
    return m


def _controls(i: int) -> str:
    return f"n{i}\x1b[2J\r\n::error::x\u202e\x00\x7f\x85"


# _every_string's fields, by i
FIELDS = (
    "initializer dense_input dense_output dense_name fx_node name_scopes rule_name domain op_type custom_output "
    "custom_name attribute_name attribute_value dim_param producer_name producer_version graph_name metadata_key "
    "metadata_value"
).split()


def _invalid_utf8(folder: Path, fields: Sequence[str] = FIELDS) -> Path:
    """_every_string with the named fields' bytes not UTF-8 (the others plain ASCII)."""
    data = _every_string(lambda i: f"ZZZZ{i:04d}").SerializeToString()
    for i, field in enumerate(FIELDS):  # the same length, so every length prefix stays right
        if field in fields:
            data = data.replace(f"ZZZZ{i:04d}".encode(), b"\xff\x1b\x00\xfe" + f"{i:04d}".encode())
    (folder / "utf8.onnx").write_bytes(data)
    return folder / "utf8.onnx"


_EVERY_FORMAT = [
    ["summary", "--format", "text", "--explain"],
    ["summary", "--format", "text", "--by", "tensor", "--convention", "pytorch"],
    ["summary", "--format", "json"],
    ["summary", "--format", "markdown", "--explain"],
    ["check", "--format", "text", "--fail-on", "warning"],
    ["check", "--format", "json", "--fail-on", "warning"],
    ["check", "--format", "markdown", "--fail-on", "warning"],
    ["check", "--format", "github", "--fail-on", "warning"],
    ["check", "--format", "jsonl", "--fail-on", "warning"],
    ["verify", "--expect", "total=16"],
    ["verify", "--expect", "total=16", "--format", "json"],
    ["summary", "--format", "html"],
    ["check", "--format", "sarif", "--fail-on", "warning"],
    ["check", "--format", "junit", "--fail-on", "warning"],
    *(["diff", "--format", form, "SAME"] for form in ("text", "json", "markdown", "html")),
]


@pytest.mark.parametrize("strings", ["controls", "invalid_utf8"])
def test_hostile_strings_in_every_field_every_format(strings, cli, folders, tmp_path):
    """Whatever a file's strings hold, no output format writes a raw control character, a bidi override
    or a byte that is not UTF-8, and none fails: each exits 0 or 1 with nothing on stderr."""
    folder, _ = folders
    path = save(_every_string(_controls), folder / "m.onnx") if strings == "controls" else _invalid_utf8(folder)
    for argv in _EVERY_FORMAT:
        out = cli.run([argv[0], str(path), *(str(path) if a == "SAME" else a for a in argv[1:])], tmp_path)
        assert out.code in (0, 1) and out.stderr == "", (argv, out.code, out.stderr)
        assert raw_controls(out.raw) == [], (argv, raw_controls(out.raw))
        assert all(not line.lstrip().startswith("::error::") for line in out.stdout.splitlines()), argv
        if "json" in argv:
            json.loads(out.stdout)
        if "jsonl" in argv:
            assert [json.loads(line) for line in out.stdout.splitlines()]
    out = cli.run(["scan", str(folder), "--jobs", "1"], tmp_path)  # its records, and the table on stderr
    assert out.code == 0 and raw_controls(out.raw) == [], (out.code, raw_controls(out.raw))
    assert [json.loads(line)["path"] for line in out.stdout.splitlines()] == [str(path)]


@pytest.mark.parametrize("strings", ["controls", "invalid_utf8"])
def test_a_baseline_of_hostile_names_is_escaped_and_still_accepts_them(strings, cli, folders, tmp_path):
    """check --write-baseline writes where each finding points: a file committed and reviewed, so no raw control
    character, bidi override or byte that is not UTF-8 in it (JSON's own escapes); read back, it accepts them."""
    folder, _ = folders
    path = save(_every_string(_controls), folder / "m.onnx") if strings == "controls" else _invalid_utf8(folder)
    baseline = tmp_path / "baseline.json"
    out = cli.run(["check", str(path), "--write-baseline", str(baseline)], tmp_path)
    assert out.code == 0 and raw_controls(out.raw) == [], (out.code, out.stderr)
    assert raw_controls(baseline.read_bytes()) == [], raw_controls(baseline.read_bytes())
    written = json.loads(baseline.read_text())["findings"]
    assert written and all(entry["rule"] == "OA210" for entry in written)  # the custom domain, named by its text
    out = cli.run(["check", str(path), "--baseline", str(baseline), "--format", "json"], tmp_path)
    assert out.code == 0 and json.loads(out.stdout)["baselined"] == len(written)


# ---------------------------------------------------------------- properties over mutated fixtures

FIXTURES = sorted(p for p in (MODELS / "torch").glob("*.onnx") if p.stat().st_size < 200_000)
_BYTES = {p: p.read_bytes() for p in FIXTURES}
_WORK = Path(tempfile.mkdtemp(prefix="onnxaudit-fuzz-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)


def _survives(data: bytes) -> None:
    """Loading, counting and checking either work or raise AuditError."""
    path = _WORK / "m.onnx"
    path.write_bytes(data)
    try:
        param_table(classify(load(path)))
    except AuditError as exc:
        assert "\n" not in str(exc)
    try:
        check(path)
    except AuditError as exc:
        assert "\n" not in str(exc)


# Deterministic 100 examples per property in the suite; ONNXAUDIT_FUZZ_EXAMPLES=5000 fuzzes for real.
_DEEP = int(os.environ.get("ONNXAUDIT_FUZZ_EXAMPLES", "0"))
_SETTINGS = settings(
    max_examples=_DEEP or 100, deadline=None, derandomize=not _DEEP, suppress_health_check=[HealthCheck.too_slow]
)


@_SETTINGS
@given(
    fixture=st.sampled_from(FIXTURES),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_byte_mutations_fail_cleanly(fixture, edits, cut):
    data = bytearray(_BYTES[fixture])
    for where, byte in edits:
        data[int(where * len(data))] = byte
    if cut is not None:
        data = data[: int(cut * len(data))]
    _survives(bytes(data))


_INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, -1, 2**31, 2**32 + 1, 2**62]))
_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", "..", "/etc/passwd", "::error::x", "a\nb", "\x1b[2J"]))


@_SETTINGS
@given(fixture=st.sampled_from(FIXTURES), data=st.data())
def test_field_mutations_fail_cleanly(fixture, data):
    m = onnx.ModelProto()
    m.ParseFromString(_BYTES[fixture])
    inits = m.graph.initializer
    kind = data.draw(st.sampled_from(["dims", "dtype", "external", "input", "opset", "ir", "name", "raw", "output"]))
    target = inits[data.draw(st.integers(0, len(inits) - 1))] if inits else None
    n = m.graph.node[data.draw(st.integers(0, len(m.graph.node) - 1))]
    if kind == "dims" and target is not None:
        del target.dims[:]
        target.dims.extend(data.draw(st.lists(_INT64, max_size=5)))
    elif kind == "dtype" and target is not None:
        target.data_type = data.draw(st.integers(-5, 40))
    elif kind == "external" and target is not None:
        target.data_location = TensorProto.EXTERNAL
        for key in data.draw(st.lists(st.sampled_from(["location", "offset", "length", "x"]), max_size=4)):
            target.external_data.add(key=key, value=data.draw(st.one_of(_TEXT, _INT64.map(str))))
    elif kind == "input" and n.input:
        n.input[data.draw(st.integers(0, len(n.input) - 1))] = data.draw(_TEXT)
    elif kind == "output" and n.output:
        n.output[0] = data.draw(st.one_of(_TEXT, st.sampled_from([i.name for i in inits] or ["x"])))
    elif kind == "opset":
        m.opset_import[0].version = data.draw(st.integers(-3, 10**6))
    elif kind == "ir":
        m.ir_version = data.draw(st.integers(-3, 10**6))
    elif kind == "name" and target is not None:
        target.name = data.draw(st.one_of(_TEXT, st.sampled_from([i.name for i in inits])))
    elif kind == "raw" and target is not None:
        target.raw_data = data.draw(st.binary(max_size=64))
    _survives(m.SerializeToString())


def test_a_file_swapped_between_check_and_open_is_refused(tmp_path, monkeypatch):
    """lstat sees one file, the descriptor another: open_beneath must notice (st_dev, st_ino)."""
    from onnxaudit.io import safeopen

    (tmp_path / "real.bin").write_bytes(b"x" * 8)
    (tmp_path / "other.bin").write_bytes(b"y" * 8)
    decoy = os.stat(tmp_path / "other.bin")
    monkeypatch.setattr(safeopen.os, "stat", lambda *args, **kwargs: decoy)
    dir_fd = safeopen.open_dir(tmp_path)
    try:
        with pytest.raises(safeopen.Refused, match="replaced"):
            safeopen.open_beneath(dir_fd, ["real.bin"])
    finally:
        os.close(dir_fd)


def test_model_symlinks_inside_the_folder(tmp_path):
    folder = tmp_path / "models"
    (folder / "v2").mkdir(parents=True)
    save(linear(init("W", [4, 4])), folder / "v2" / "m.onnx")
    (folder / "latest.onnx").symlink_to("v2/m.onnx")  # relative, inside: followed
    (folder / "chain.onnx").symlink_to(folder / "latest.onnx")  # absolute, two hops: followed
    assert load(folder / "chain.onnx").main.nodes
    (tmp_path / "elsewhere").mkdir()
    (folder / "out").symlink_to(tmp_path / "elsewhere")
    save(linear(init("W", [4, 4])), tmp_path / "elsewhere" / "m.onnx")
    (folder / "via_dir.onnx").symlink_to("out/m.onnx")  # a symlinked folder on the way: refused
    with pytest.raises(AuditError, match="symlink in its path"):
        load(folder / "via_dir.onnx")


# ---------------------------------------------------------------- the CLI over mutated fixtures

# Every small fixture of every exporter; ONNXAUDIT_CLI_FUZZ=N runs N cases instead of the suite's few
# (README: the longer run), ONNXAUDIT_CLI_FUZZ_SEED picks another sequence.
_CLI_FIXTURES = sorted(p for p in MODELS.rglob("*.onnx") if p.stat().st_size < 60_000)
_CLI_CASES = int(os.environ.get("ONNXAUDIT_CLI_FUZZ", "4"))
_CLI_SEED = int(os.environ.get("ONNXAUDIT_CLI_FUZZ_SEED", "17"))
_HOSTILE_BYTES = [b"\xff", b"\x1b", b"\x00", b"\n", b"\r", b"\x85", b"\xe2\x80\xae", b":", b"\x7f", b"\xc0"]
_CLI_COMMANDS = [
    ["summary", "--format", "text", "--explain"],
    ["summary", "--format", "json"],
    ["summary", "--format", "markdown", "--by", "tensor"],
    ["check", "--format", "text"],
    ["check", "--format", "json"],
    ["check", "--format", "markdown"],
    ["check", "--format", "github"],
    ["summary", "--format", "html"],
    ["check", "--format", "sarif"],
    ["check", "--format", "junit"],
    ["check", "--format", "jsonl"],
    ["verify", "--expect", "total=1"],
    ["verify", "--expect", "total=1", "--format", "json"],
    *(["diff", "--format", form, "SAME"] for form in ("text", "json", "markdown", "html")),
]


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One of: a printable run (a name, most likely) overwritten in place with hostile bytes of the same
    length, so the protobuf framing stays valid and the file still loads; random bytes overwritten; a cut."""
    out = bytearray(data)
    kind = rng.integers(3)
    if kind == 0:
        import re

        runs = [m.span() for m in re.finditer(rb"[ -~]{4,}", data)]
        for _ in range(int(rng.integers(1, 4))):
            if not runs:
                break
            start, end = runs[int(rng.integers(len(runs)))]
            fill = b"".join(_HOSTILE_BYTES[int(i)] for i in rng.integers(len(_HOSTILE_BYTES), size=end - start))
            out[start:end] = fill[: end - start]
    elif kind == 1:
        for _ in range(int(rng.integers(1, 9))):
            out[int(rng.integers(len(out)))] = int(rng.integers(256))
    else:
        del out[int(rng.integers(len(out))) :]
    return bytes(out)


@pytest.mark.parametrize("case", range(_CLI_CASES))
def test_cli_over_mutated_fixtures(case, cli, folders, tmp_path):
    """Exit 0, 1 or 2; an exit 2 is one stderr line naming the file; otherwise nothing on stderr; no
    output format writes a raw control character, a bidi override or a byte that is not UTF-8."""
    folder, canary = folders
    rng = np.random.default_rng([_CLI_SEED, case])
    source = _CLI_FIXTURES[int(rng.integers(len(_CLI_FIXTURES)))]
    path = folder / "fuzzed.onnx"
    path.write_bytes(_mutate(source.read_bytes(), rng))
    for k in rng.choice(len(_CLI_COMMANDS), size=2, replace=False):
        argv = [_CLI_COMMANDS[k][0], str(path), *(str(path) if a == "SAME" else a for a in _CLI_COMMANDS[k][1:])]
        out = cli.run(argv, tmp_path)
        where = (source.name, case, argv[0], argv[3])
        assert out.code in (0, 1, 2), (where, out.code, out.stderr)
        if out.code == 2:
            assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"onnxaudit: {path}: "), (where, out.stderr)
            # SARIF, JUnit and JSON Lines record an unusable file in the report CI reads; the others print nothing
            assert out.stdout == "" or argv[3] in ("sarif", "junit", "jsonl"), where
        else:
            assert out.stderr == "", (where, out.stderr)
        assert raw_controls(out.raw) == [], (where, raw_controls(out.raw))
    assert canary.touched() == []
