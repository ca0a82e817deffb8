"""Keras and PyTorch views of the same counted tensors."""

from __future__ import annotations

from builders import audit_model, init, ints, model, node, value


def _bn_model():
    return model(
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn")],
        [value("x", ["N", 5, 2, 2])],
        [value("y", ["N", 5, 2, 2])],
        [init(n, [5]) for n in "gbmv"] + [ints("bn.num_batches_tracked", [3])],
    )


def test_keras_view(tmp_path):
    report = audit_model(tmp_path, _bn_model())
    assert (report.totals.trainable, report.totals.non_trainable) == (2 * 5, 2 * 5)
    assert report.trainable_label == "Trainable" and "frozen" in report.notes[0]


def test_pytorch_view_says_num_batches_tracked(tmp_path):
    report = audit_model(tmp_path, _bn_model(), convention="pytorch")
    assert (report.totals.trainable, report.totals.non_trainable) == (2 * 5, 2 * 5)
    assert report.non_trainable_label == "Buffers"
    assert any("num_batches_tracked" in n and "1 here" in n for n in report.notes)
