"""Quantized forms counted as the float ops they stand for: the same multiply-accumulates, whatever the
integer width. QDQ models need nothing here: their Conv/MatMul/Gemm read DequantizeLinear's outputs and are
counted as float ops; QuantizeLinear/DequantizeLinear themselves are conversions, not counted.
"""

from __future__ import annotations

from functools import partial

from onnxaudit.cost.base import CostFn
from onnxaudit.cost.conv import conv_macs
from onnxaudit.cost.matmul import gemm_macs, matmul_macs

COSTS: dict[str, CostFn] = {
    "ConvInteger": conv_macs,  # x, w, x_zero_point, w_zero_point
    "QLinearConv": partial(conv_macs, w=3),  # x, x_scale, x_zp, w, ...
    "MatMulInteger": matmul_macs,
    "QLinearMatMul": partial(matmul_macs, b=3),  # a, a_scale, a_zp, b, ...
    "QGemm": gemm_macs,  # com.microsoft: a, a_scale, a_zp, b, ...
    "DynamicQuantizeMatMul": matmul_macs,
    "MatMulIntegerToFloat": matmul_macs,
}
