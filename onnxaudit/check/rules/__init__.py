"""Every rule `onnxaudit check` knows, one family per module, gathered into one registry.

A new rule: write its emitter and `Rule(...)` in the module of its family (or a new module listed here),
add a test that makes it fire, and regenerate the README's table (`python -m onnxaudit.check.docs --write`).
"""

from __future__ import annotations

from onnxaudit.check.registry import Registry
from onnxaudit.check.rules import batchnorm, copies, fileformat, limits, ops, structure, tensors, values

REGISTRY = Registry(
    (
        *values.RULES,
        *copies.RULES,
        *batchnorm.RULES,
        *tensors.RULES,
        *structure.RULES,
        *ops.RULES,
        *fileformat.RULES,
        *limits.RULES,
    )
)

__all__ = ["REGISTRY"]
