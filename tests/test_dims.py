"""Checked dims arithmetic: Python ints, never wrapped numpy results."""

from __future__ import annotations

import pytest
from onnx import TensorProto

from onnxaudit.errors import AuditError
from onnxaudit.io.dims import byte_size, dtype_name, element_count


def test_element_count_is_exact_python_int():
    assert element_count([2**20, 2**20, 2**10]) == 2**50
    assert element_count([]) == 1


@pytest.mark.parametrize("dims", [[-4, -4], [3, -1], [2**40, 2**40], [1.5]])
def test_negative_absurd_or_non_integer_dims_are_errors(dims):
    with pytest.raises(AuditError):
        element_count(dims)


def test_packed_types_round_up_to_bytes():
    assert byte_size(TensorProto.INT4, 3) == 2
    assert byte_size(TensorProto.FLOAT, 3) == 12
    assert byte_size(TensorProto.STRING, 3) is None
    assert dtype_name(TensorProto.FLOAT16) == "float16" and dtype_name(999) == "dtype(999)"
