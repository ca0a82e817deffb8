"""onnxaudit: count, classify and explain every parameter of an ONNX file."""

from __future__ import annotations

from onnxaudit.api import audit
from onnxaudit.errors import AuditError
from onnxaudit.report.build import SCHEMA_VERSION, Report

__all__ = ["AuditError", "Report", "SCHEMA_VERSION", "audit"]
__version__ = "0.1.0"
