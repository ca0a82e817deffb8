"""Small shape arithmetic folded before static inference, so shapes after a computed Pad are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import ints, layer_row, model, node, value
from onnx import TensorProto, helper

from onnxaudit import audit
from onnxaudit.model import constfold, infer
from onnxaudit.model.constfold import fold_shape_arithmetic

TORCH = Path(__file__).resolve().parent.parent / "models" / "torch"


def test_torch_nofold_export_shapes_are_known_after_the_pad():
    report = audit(TORCH / "seed_cnn__legacy_nofold.onnx")
    assert layer_row(report, "pad").output_shape == ["batch", 3, 64 + 2 * 3, 64 + 2 * 3]
    assert layer_row(report, "conv0").output_shape == ["batch", 32, 64, 64]
    assert layer_row(report, "fc").output_shape == ["batch", 1]


def test_fold_replaces_chain_by_initializer_and_leaves_weights():
    m = model(
        [
            node("Shape", ["big"], ["s"]),
            node("Gather", ["s", "zero"], ["n"], axis=0),
            node("Mul", ["n", "two"], ["n2"]),
            node("ConstantOfShape", ["n2"], ["pads"], value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
            node("Pad", ["x", "pads"], ["y"]),
            node("MatMul", ["y", "big"], ["z"]),
        ],
        [value("x", ["N", 4])],
        [value("z", None)],
        [
            helper.make_tensor("big", TensorProto.FLOAT, [2, 4], np.ones(8, np.float32).tobytes(), raw=True),
            ints("zero", [0]),
            ints("two", [2]),
        ],
    )
    assert fold_shape_arithmetic(m) == 4
    assert [n.op_type for n in m.graph.node] == ["Pad", "MatMul"]
    folded = {i.name: list(np.frombuffer(i.raw_data, np.int64)) for i in m.graph.initializer if i.name == "pads"}
    assert folded == {"pads": [1, 1, 1, 1]}


def test_huge_shapes_are_never_materialized():
    """A ConstantOfShape / Expand / Range asking for 16 GiB is left to inference, not allocated."""
    import resource

    huge = [2**17, 2**15]  # 2**32 float32 elements
    m = model(
        [
            node("ConstantOfShape", ["big"], ["c"]),
            node("Expand", ["one", "big"], ["e"]),
            node("Range", ["zero", "limit", "step"], ["r"]),
            node("Add", ["c", "x"], ["y"]),
        ],
        [value("x", [1])],
        [value("y", None), value("e", None), value("r", None)],
        [ints("big", huge), ints("one", [1]), ints("zero", [0])]
        + [helper.make_tensor(n, TensorProto.INT64, [], [v]) for n, v in (("limit", 2**40), ("step", 1))],
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert fold_shape_arithmetic(m) == 0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB: far below 16 GiB


def test_inference_knows_every_op_constfold_can_fold():
    # infer.has_foldable_chain looks ahead with this list so that numpy is imported only when needed
    assert set(constfold._EVAL) | {"Shape"} == infer.FOLDABLE_OPS
    assert constfold.MAX_ELEMENTS == infer.FOLD_MAX_ELEMENTS


def test_a_concat_of_many_inputs_is_never_evaluated():
    """Inputs are concatenated before the result's size can be checked (1M inputs of a 64-element
    constant: 606 MiB from a 3 MB file), so an op with more than MAX_ELEMENTS inputs is never evaluated:
    not even a Concat of empty tensors, whose small result would otherwise be folded."""
    empty = helper.make_tensor("e", TensorProto.INT64, [0], [])
    for copies, folded in ((2, 1), (constfold.MAX_ELEMENTS, 1), (constfold.MAX_ELEMENTS + 1, 0), (10**5, 0)):
        m = model([node("Concat", ["e"] * copies, ["cat"], axis=0)], [], [value("cat", None)], [empty])
        assert fold_shape_arithmetic(m) == folded, copies


def test_division_by_zero_in_folded_arithmetic_warns_nowhere(recwarn):
    m = model(
        [node("Div", ["a", "z"], ["q"]), node("Reshape", ["x", "q"], ["y"])],
        [value("x", [2, 4])],
        [value("y", None)],
        [helper.make_tensor(n, TensorProto.FLOAT, [2], v) for n, v in (("a", [1.0, 0.0]), ("z", [0.0, 0.0]))],
    )
    with np.errstate(all="warn"):
        assert fold_shape_arithmetic(m) == 1
    assert [str(w.message) for w in recwarn] == []


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_tensor_conversions_match_numpy_helper_for_every_element_type():
    from onnx import _mapping, numpy_helper

    rng = np.random.default_rng(0)
    fast_types = 0
    for code, info in _mapping.TENSOR_TYPE_MAP.items():
        if code == TensorProto.STRING:
            continue
        values = rng.integers(0, 2, size=6).astype(info.np_dtype)  # 0 and 1 exist in every element type
        arr = values.reshape(2, 3)
        raw = numpy_helper.from_array(arr, "t")
        assert constfold.from_array(arr, "t") == raw, info.np_dtype
        assert _same(constfold.to_array(raw), numpy_helper.to_array(raw)), info.np_dtype
        assert constfold.np_dtype(code) == helper.tensor_dtype_to_np_dtype(code)
        fast_types += code in constfold._NP_DTYPES
        if code in (TensorProto.BFLOAT16, TensorProto.COMPLEX64, TensorProto.COMPLEX128) or info.np_dtype.itemsize < 1:
            continue
        typed = helper.make_tensor("t", code, [2, 3], values.tolist() if code != TensorProto.FLOAT16 else values)
        assert _same(constfold.to_array(typed), numpy_helper.to_array(typed)), info.np_dtype
    assert fast_types == len(constfold._NP_DTYPES) == 12  # the fast paths were all compared
    scalar = np.asarray(np.int64(-5))
    assert constfold.from_array(scalar, "s") == numpy_helper.from_array(scalar, "s")
    strided = np.arange(12, dtype=np.int64).reshape(3, 4).T  # not contiguous: bytes in C order, as onnx writes
    assert constfold.from_array(strided, "") == numpy_helper.from_array(strided)


def test_attribute_values_match_onnx_helper():
    n = helper.make_node(
        "Op",
        ["x"],
        ["y"],
        f=1.5,
        i=3,
        s="text",
        t=helper.make_tensor("v", TensorProto.INT64, [1], [7]),
        fs=[1.0, 2.0],
        is_=[1, 2],
        ss=["a", "b"],
        ts=[helper.make_tensor("v", TensorProto.INT64, [1], [7])],
        g=helper.make_graph([], "g", [], []),
    )
    n.attribute.append(helper.make_attribute_ref("r", 2))
    n.attribute.add(name="u")  # UNDEFINED
    for a in n.attribute:
        try:
            expected = helper.get_attribute_value(a)
        except ValueError as e:
            with pytest.raises(ValueError, match=str(e)[:20]):
                constfold.attribute_value(a)
            continue
        assert constfold.attribute_value(a) == expected, a.name
