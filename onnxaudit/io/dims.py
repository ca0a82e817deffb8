"""Checked arithmetic over tensor dims and dtypes: Python ints only, never wrapped numpy results."""

from __future__ import annotations

from collections.abc import Iterable

from onnxaudit.errors import AuditError
from onnxaudit.io.onnxcore import TensorProto

# Beyond this many elements a tensor cannot exist on any machine; such dims are corrupt, not big.
MAX_ELEMENTS = 2**53

# Bits per element, so packed types (int4, int2, fp4, fp6) get honest byte sizes.
DTYPE_BITS: dict[int, int] = {
    TensorProto.FLOAT: 32,
    TensorProto.UINT8: 8,
    TensorProto.INT8: 8,
    TensorProto.UINT16: 16,
    TensorProto.INT16: 16,
    TensorProto.INT32: 32,
    TensorProto.INT64: 64,
    TensorProto.BOOL: 8,
    TensorProto.FLOAT16: 16,
    TensorProto.DOUBLE: 64,
    TensorProto.UINT32: 32,
    TensorProto.UINT64: 64,
    TensorProto.COMPLEX64: 64,
    TensorProto.COMPLEX128: 128,
    TensorProto.BFLOAT16: 16,
    TensorProto.FLOAT8E4M3FN: 8,
    TensorProto.FLOAT8E4M3FNUZ: 8,
    TensorProto.FLOAT8E5M2: 8,
    TensorProto.FLOAT8E5M2FNUZ: 8,
    TensorProto.UINT4: 4,
    TensorProto.INT4: 4,
    TensorProto.FLOAT4E2M1: 4,
    TensorProto.FLOAT8E8M0: 8,
    25: 2,  # UINT2
    26: 2,  # INT2
    27: 6,  # FLOAT6E2M3
    28: 6,  # FLOAT6E3M2
}

INTEGER_DTYPES = frozenset(
    {
        TensorProto.UINT8,
        TensorProto.INT8,
        TensorProto.UINT16,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.UINT32,
        TensorProto.UINT64,
        TensorProto.UINT4,
        TensorProto.INT4,
        25,
        26,
    }
)


def dtype_name(dtype: int) -> str:
    """'float32'-style name of an ONNX element type, or 'dtype(N)' for unknown codes."""
    names: dict[int, str] = {
        TensorProto.FLOAT: "float32",
        TensorProto.DOUBLE: "float64",
        TensorProto.FLOAT16: "float16",
        TensorProto.BFLOAT16: "bfloat16",
        TensorProto.BOOL: "bool",
        TensorProto.STRING: "string",
    }
    if dtype in names:
        return names[dtype]
    try:
        return TensorProto.DataType.Name(dtype).lower()
    except ValueError:
        return f"dtype({dtype})"


def element_count(dims: Iterable[object], what: str = "tensor") -> int:
    """Product of dims as a Python int; negative or absurd dims raise AuditError."""
    count = 1
    for dim in dims:
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise AuditError(f"{what} has a non-integer dim {dim!r}")
        if dim < 0:
            raise AuditError(f"{what} has a negative dim {dim}")
        count *= dim
        if count > MAX_ELEMENTS:
            raise AuditError(f"{what} has dims whose product exceeds 2**53 elements")
    return count


def byte_size(dtype: int, elements: int) -> int | None:
    """Bytes needed for `elements` items of `dtype` (packed types round up), None if unknown."""
    bits = DTYPE_BITS.get(dtype)
    if bits is None:
        return None
    return (elements * bits + 7) // 8
