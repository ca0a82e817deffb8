"""Keras and PyTorch views of the same counted tensors."""

from __future__ import annotations

from builders import audit_model, conv_bn_scaled, init, ints, model, node, value, with_training_info


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


def test_training_info_update_binding_decides_what_is_trainable(tmp_path):
    # W and temperature are updated by the file's training algorithm, so is BN's running mean;
    # the conv bias and BN gamma/beta are not: frozen
    m = with_training_info(conv_bn_scaled(), ["W", "temperature", "mean"])
    keras = audit_model(tmp_path, m)
    assert keras.totals.trainable == 2 * 3 * 3 * 3 + 2
    assert keras.totals.non_trainable == 2 + 2 + 2 + (2 + 2)  # B, gamma, beta frozen; mean, var statistics
    assert any("TrainingInfoProto.update_binding" in n and "3 initializers" in n for n in keras.notes)
    assert not any("cannot show frozen layers" in n for n in keras.notes)
    bias = next(t for t in keras.tensors if t.name == "B")
    assert bias.bucket == "non_trainable" and any(n.startswith("frozen") for n in bias.notes)
    torch = audit_model(tmp_path, m, convention="pytorch")
    assert torch.totals.trainable == (2 * 3 * 3 * 3 + 2) + (2 + 2 + 2)  # frozen ones are still parameters
    assert torch.totals.non_trainable == 2 + 2


def test_without_training_info_every_weight_is_trainable(tmp_path):
    report = audit_model(tmp_path, conv_bn_scaled())
    assert report.totals.non_trainable == 2 + 2
    assert any("cannot show frozen layers" in n for n in report.notes)
