"""Shared builders of small ONNX graphs for the tests (one place, not copied between tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_RNG = np.random.default_rng(1234)


def init(name: str, dims: Sequence[int], dtype: type = np.float32) -> onnx.TensorProto:
    """An initializer with non-trivial random values (exporters drop zeros; we keep them honest)."""
    if np.issubdtype(dtype, np.integer):
        values = _RNG.integers(-8, 8, size=tuple(dims)).astype(dtype)
    else:
        values = (_RNG.random(tuple(dims)) + 0.5).astype(dtype)
    return numpy_helper.from_array(values, name)


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def value(name: str, shape: Sequence[int | str | None] | None, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 17,
    ir_version: int = 8,
    extra_opsets: dict[str, int] | None = None,
    functions: Sequence[onnx.FunctionProto] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    m = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    m.ir_version = ir_version
    return m


def save(m: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(m.SerializeToString())
    return path


def seed_cnn(axis_typo: bool = False) -> onnx.ModelProto:
    """The DESIGN.md seed_cnn made of ONNX ops: Pad, Conv, BN, Relu, MaxPool, Flatten, Gemm.

    With axis_typo, BN normalizes the 64 rows (Keras axis=-3 on NHWC) instead of the channels:
    built as Transpose -> BN over 64 -> Transpose back.
    """
    c = 64 if axis_typo else 32
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["p"], name="zero_padding2d"),
        helper.make_node("Conv", ["p", "conv0.W", "conv0.B"], ["c"], name="conv0", kernel_shape=[7, 7]),
    ]
    if axis_typo:
        nodes += [
            helper.make_node("Transpose", ["c"], ["ct"], name="bn0_in", perm=[0, 2, 1, 3]),
            helper.make_node("BatchNormalization", ["ct", "g", "b", "m", "v"], ["bt"], name="bn0"),
            helper.make_node("Transpose", ["bt"], ["bn"], name="bn0_out", perm=[0, 2, 1, 3]),
        ]
    else:
        nodes.append(helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], name="bn0"))
    nodes += [
        helper.make_node("Relu", ["bn"], ["r"], name="re_lu"),
        helper.make_node("MaxPool", ["r"], ["mp"], name="max_pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["mp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.W", "fc.B"], ["y0"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["y0"], ["y"], name="sigmoid"),
    ]
    inits = [
        ints("pads", [0, 0, 3, 3, 0, 0, 3, 3]),
        init("conv0.W", [32, 3, 7, 7]),
        init("conv0.B", [32]),
        init("g", [c]),
        init("b", [c]),
        init("m", [c]),
        init("v", [c]),
        init("fc.W", [1, 32 * 32 * 32]),
        init("fc.B", [1]),
    ]
    return model(nodes, [value("input", ["N", 3, 64, 64])], [value("y", ["N", 1])], inits)


def audit_model(tmp_path: Path, m: onnx.ModelProto, name: str = "m.onnx", **kwargs):
    """Save `m` under tmp_path and audit it through the public API."""
    from onnxaudit import audit

    return audit(save(m, tmp_path / name), **kwargs)


def tensor_row(report, name: str):
    """The report's row for tensor `name` (fails the test if absent)."""
    matches = [t for t in report.tensors if t.name == name]
    assert len(matches) == 1, f"{name!r}: {len(matches)} rows in {[t.name for t in report.tensors]}"
    return matches[0]


def layer_row(report, name: str):
    matches = [r for r in report.rows if r.name == name]
    assert len(matches) == 1, f"{name!r}: {len(matches)} rows in {[r.name for r in report.rows]}"
    return matches[0]


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None, **attrs) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=name or outputs[0], **attrs)
