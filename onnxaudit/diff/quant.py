"""How a layer's weights are stored: float, or quantized (which integer width, QDQ or QOperator).

Read from the Report's tensor rows alone: a counted tensor's stored dtype, the op that consumes it
(DequantizeLinear: QDQ; QLinearConv, QGemm, ConvInteger, MatMulNBits...: QOperator) and, for packed
storage (MatMulNBits' 4-bit blocks), the bits per element its bytes show.
"""

from __future__ import annotations

import re
from functools import lru_cache

from onnxaudit.model.ops import QDQ_OPS, QOPERATOR_WEIGHT_OPS, QUANTIZED_ACTIVATION_OP, QUANTIZED_FLOAT_OP
from onnxaudit.report.build import TensorRow

_INTEGERS = {"int8", "uint8", "int4", "uint4", "int16", "uint16", "int2", "uint2"}
FLOAT_OP = QUANTIZED_FLOAT_OP | QUANTIZED_ACTIVATION_OP


def float_ops(ops: list[str]) -> tuple[str, ...]:
    """The layer's ops as the float model has them: quantized ops named by their float op, the
    quantize/dequantize steps and the Cast/Mul that rescale an integer product left out. One tuple shared by
    the rows of one op list (500,000 rows of two files at the node limit)."""
    return _float_ops(tuple(ops))


@lru_cache(maxsize=4096)  # rows repeat a few op lists (250k rows of one op: one answer)
def _float_ops(ops: tuple[str, ...]) -> tuple[str, ...]:
    out = [FLOAT_OP.get(op, op) for op in ops if op not in QDQ_OPS and op != "DynamicQuantizeLinear"]
    if any(op.endswith("Integer") for op in ops):  # ConvInteger's int32 product is cast and scaled back
        out = [op for op in out if op not in ("Cast", "Mul")]
    return tuple(dict.fromkeys(out))


def _consumer_ops(t: TensorRow) -> set[str]:
    return {c.split(" ", 1)[0] for c in t.consumers}


# the count stage's note on MatMulNBits' storage: N x blocks x bytes per block, and the logical N x K
_PACKED = re.compile(r"packed storage (\d+)x(\d+)x(\d+); logical (\d+)x(\d+)")


def _width(t: TensorRow) -> str | None:
    for note in t.notes:
        found = _PACKED.match(note)
        if found:
            _, blocks, blob, _, k = map(int, found.groups())
            # blocks of a power-of-two size cover K; their bytes hold that many elements
            block = 1 << max(0, -(-k // blocks) - 1).bit_length()
            return f"{blob * 8 // block}-bit packed" if blob * 8 % block == 0 else "packed"
        if note.startswith("packed storage"):
            return "packed"
    return t.dtype if t.dtype in _INTEGERS else None


def quantization(tensors: list[TensorRow]) -> str | None:
    """`int8 QDQ`, `uint8 QOperator`, `4-bit packed QOperator`, or None for a layer stored in float.
    Only weights decide (a quantized bias is int32 in both formats)."""
    found = []
    for t in tensors:
        if t.bucket is None or t.role == "bias":
            continue
        width = _width(t)
        if width is None:
            continue
        used = _consumer_ops(t)
        scheme = "QDQ" if used & QDQ_OPS else "QOperator" if used & QOPERATOR_WEIGHT_OPS else "integer"
        found.append(f"{width} {scheme}")
    return ", ".join(dict.fromkeys(found)) or None
