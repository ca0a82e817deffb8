"""diff: what changed between two exports of a model, layer by layer (Reports in, a DiffReport out)."""

from __future__ import annotations

from onnxaudit.diff.compare import diff_reports
from onnxaudit.diff.result import DIFF_SCHEMA_VERSION, DiffReport, LayerDiff, TensorDiff
from onnxaudit.diff.values import DEFAULT_BUDGET, MODES, ValuesMode

__all__ = [
    "DEFAULT_BUDGET",
    "DIFF_SCHEMA_VERSION",
    "DiffReport",
    "LayerDiff",
    "MODES",
    "TensorDiff",
    "ValuesMode",
    "diff_reports",
]
