"""The arithmetic shown by --explain."""

from __future__ import annotations

from builders import audit_model, init, layer_row, model, node, value


def test_conv_and_bn_formulas(tmp_path):
    from builders import seed_cnn

    report = audit_model(tmp_path, seed_cnn())
    assert layer_row(report, "conv0").explain == f"Conv 32x3x7x7 + 32 = {32 * 3 * 7 * 7 + 32:,}"
    assert layer_row(report, "bn0").explain == (
        f"BatchNormalization 4 x 32 = {4 * 32} (gamma, beta | mean, var) [{2 * 32} non-trainable]"
    )


def test_layernorm_formula_and_pytorch_wording(tmp_path):
    m = model(
        [node("LayerNormalization", ["x", "s", "b"], ["y"], name="norm")],
        [value("x", ["N", 8])],
        [value("y", ["N", 8])],
        [init("s", [8]), init("b", [8])],
    )
    assert layer_row(audit_model(tmp_path, m), "norm").explain == "LayerNormalization 2 x 8 = 16 (scale, bias)"
    bn = model(
        [node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], name="bn")],
        [value("x", ["N", 3, 2, 2])],
        [value("y", ["N", 3, 2, 2])],
        [init(n, [3]) for n in "gbmv"],
    )
    row = layer_row(audit_model(tmp_path, bn, convention="pytorch"), "bn")
    assert row.explain.endswith("[6 buffers]")
