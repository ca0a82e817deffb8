"""The hostile-input bombs of issue #17, each file under 20 MB: python benchmarks/bombs.py OUT_DIR."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import onnx  # noqa: E402
from builders import init, linear, model, node, value, varint  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402


def empty_nodes(n: int) -> bytes:
    m = linear(init("W", [4, 4]))
    graph = m.graph.SerializeToString() + b"\x0a\x00" * n  # n empty NodeProtos, 2 bytes each
    m.ClearField("graph")
    return m.SerializeToString() + b"\x3a" + varint(len(graph)) + graph


def concat(n: int) -> bytes:
    c = helper.make_tensor("c", TensorProto.INT64, [64], list(range(64)))
    nodes = [
        helper.make_node("Concat", ["c"] * n, ["cat"], name="cat", axis=0),
        node("Reshape", ["x", "cat"], ["r"], name="r"),
        node("MatMul", ["x", "W"], ["y"], name="fc"),
    ]
    return model(nodes, [value("x", ["N", 4])], [value("y", None)], [init("W", [4, 4]), c]).SerializeToString()


def nested_if(depth: int) -> bytes:
    def branch(level: int) -> onnx.GraphProto:
        inner = helper.make_node("Identity", ["x"], ["o"])
        if level > 0:
            inner = helper.make_node(
                "If", ["cond"], ["o"], then_branch=branch(level - 1), else_branch=branch(level - 1)
            )
        return helper.make_graph([inner], f"l{level}", [], [value("o", None)])

    top = helper.make_node("If", ["cond"], ["o"], then_branch=branch(depth - 1), else_branch=branch(depth - 1))
    inputs = [value("x", ["N", 4]), value("cond", [], TensorProto.BOOL)]
    nodes = [top, node("MatMul", ["x", "W"], ["y"], name="fc")]
    return model(nodes, inputs, [value("y", None), value("o", None)], [init("W", [4, 4])]).SerializeToString()


BOMBS = {
    "nodes_1m": lambda: empty_nodes(1_000_000),
    "nodes_9m": lambda: empty_nodes(9_000_000),
    "nodes_250k": lambda: empty_nodes(249_998),  # at the default --max-nodes
    "concat_1m": lambda: concat(1_000_000),
    "concat_3m": lambda: concat(3_000_000),
    "concat_999k": lambda: concat(999_990),  # at the default input limit
    "if_16": lambda: nested_if(16),
    "if_14": lambda: nested_if(14),
    "if_13": lambda: nested_if(13),
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, build in BOMBS.items():
        (out / f"{name}.onnx").write_bytes(build())
