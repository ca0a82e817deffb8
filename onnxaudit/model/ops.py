"""What the pipeline knows about ONNX ops, in one place."""

from __future__ import annotations


def output_channels(op_type: str, weight_dims: tuple[int, ...], group: int = 1, trans_b: bool = False) -> int:
    """How many output channels (features) a product with this weight writes: a conv's filters, a
    ConvTranspose's dims[1] x group, a Gemm's or MatMul's last dim (first with transB)."""
    if op_type in ("Conv", "ConvInteger", "QLinearConv") or (op_type == "Gemm" and trans_b):
        return weight_dims[0]
    if op_type == "ConvTranspose" and len(weight_dims) > 1:
        return weight_dims[1] * group
    return weight_dims[-1]
