"""onnxaudit/copies.py: whether a stored weight is another stored weight again, from sampled values
read in real files on disk (embedded raw data only)."""

from __future__ import annotations

import numpy as np
from builders import array, external, model, node, save, value
from onnx import TensorProto, helper

from onnxaudit.frameworks.copies import RECIPROCAL, settle_copies, settle_pairs
from onnxaudit.io.datamap import MAIN

_RNG = np.random.default_rng(11)
W = _RNG.random((16, 12), dtype=np.float32) + 0.5


def _file(tmp_path, *tensors):
    """A graph that reads each tensor once (Identity), saved as a real file."""
    nodes = [node("Identity", [t.name], [f"out{i}"]) for i, t in enumerate(tensors)]
    outputs = [value(f"out{i}", None) for i in range(len(tensors))]
    return save(model(nodes, [], outputs, list(tensors)), tmp_path / "m.onnx")


def test_a_transposed_copy_agrees_and_another_matrix_does_not(tmp_path):
    other = _RNG.random((12, 16), dtype=np.float32)
    path = _file(tmp_path, array("w", W), array("t", W.T.copy()), array("u", other))
    assert settle_copies(path, {"t": "w", "u": "w"}, {}) == {"t": True, "u": False}


def test_a_copy_in_the_same_layout(tmp_path):
    path = _file(tmp_path, array("w", W), array("again", W.copy()), array("t", W.T.copy()))
    # the same-layout question is asked of each pair as given: a transposed copy is not one
    assert settle_copies(path, {}, {"again": "w", "t": "w"}) == {"again": True, "t": False}


def test_a_reshaped_copy_is_one_in_the_same_layout(tmp_path):
    """`W.view(out, -1)` folded at export (spectral_norm's sigma): the same elements in the same order."""
    conv = W.reshape(16, 3, 2, 2)
    path = _file(tmp_path, array("w", conv), array("flat", W.copy()), array("other", W[::-1].copy()))
    assert settle_copies(path, {}, {"flat": "w", "other": "w"}) == {"flat": True, "other": False}


def test_one_value_everywhere_is_no_evidence(tmp_path):
    ones = np.ones((16, 12), dtype=np.float32)
    path = _file(tmp_path, array("w", ones), array("t", ones.T.copy()))
    assert settle_copies(path, {"t": "w"}, {}) == {}


def test_external_or_typed_data_stays_undecided(tmp_path):
    (tmp_path / "t.bin").write_bytes(W.T.tobytes())
    typed = helper.make_tensor("f", TensorProto.FLOAT, [12, 16], W.T.flatten().tolist())  # float_data, not raw
    path = _file(tmp_path, array("w", W), external("t", [12, 16], "t.bin"), typed)
    assert settle_copies(path, {"t": "w", "f": "w"}, {}) == {}


def test_a_file_that_cannot_be_opened_settles_nothing(tmp_path):
    assert settle_copies(tmp_path / "missing.onnx", {"t": "w"}, {}) == {}


def _main(*names):
    return [(MAIN, name) for name in names]


def test_a_reciprocal_agrees_within_rounding_and_other_values_do_not(tmp_path):
    """A Snake's 1 / (alpha + 1e-9) folded at export: each element the original's reciprocal, rounded."""
    alpha = _RNG.random((1, 8, 1), dtype=np.float32) * 0.1 + 0.05
    inverse = (1.0 / (alpha + 1e-9)).astype(np.float32)
    other = inverse * np.float32(1.001)
    half = alpha.astype(np.float16)
    path = _file(
        tmp_path, array("alpha", alpha), array("inv", inverse), array("other", other),
        array("half", half), array("half_inv", (1 / half).astype(np.float16)), array("ints", np.arange(8)),
        array("ints_inv", np.arange(8)),
    )  # fmt: skip
    alpha_key, inv, other_key, half_key, half_inv, ints, ints_inv = _main(
        "alpha", "inv", "other", "half", "half_inv", "ints", "ints_inv"
    )
    asked = [(inv, alpha_key, RECIPROCAL), (other_key, alpha_key, RECIPROCAL), (half_inv, half_key, RECIPROCAL)]
    asked.append((ints_inv, ints, RECIPROCAL))  # no float: not asked
    assert settle_pairs(path, asked) == {
        (inv, alpha_key): True,
        (other_key, alpha_key): False,
        (half_inv, half_key): True,
    }
