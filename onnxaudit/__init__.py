"""onnxaudit: count, classify and explain every parameter of an ONNX file.

The typed library API (the CLI calls the same functions):

    report = onnxaudit.audit("model.onnx", convention="pytorch")     # -> Report
    result = onnxaudit.check("model.onnx", fail_on="warning")        # -> CheckReport
    changes = onnxaudit.compare("old.onnx", "new.onnx")              # -> DiffReport

Importing the package loads nothing but its error type: each name below is imported on first use, so
`import onnxaudit` costs no onnx, onnxruntime or rule modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from onnxaudit._version import __version__
from onnxaudit.errors import AuditError

if TYPE_CHECKING:
    from onnxaudit.api import Convention, Grouping, audit, compare
    from onnxaudit.check.runner import CheckReport, FailOn, check
    from onnxaudit.diff.result import DiffReport
    from onnxaudit.report.build import SCHEMA_VERSION, Report
    from onnxaudit.shapes.options import ShapeOptions

__all__ = [
    "SCHEMA_VERSION",
    "AuditError",
    "CheckReport",
    "Convention",
    "DiffReport",
    "FailOn",
    "Grouping",
    "Report",
    "ShapeOptions",
    "__version__",
    "audit",
    "check",
    "compare",
]

_WHERE = {
    "audit": "onnxaudit.api",
    "compare": "onnxaudit.api",
    "DiffReport": "onnxaudit.diff.result",
    "Convention": "onnxaudit.api",
    "Grouping": "onnxaudit.api",
    "CheckReport": "onnxaudit.check.runner",
    "FailOn": "onnxaudit.check.runner",
    "Report": "onnxaudit.report.build",
    "SCHEMA_VERSION": "onnxaudit.report.build",
    "ShapeOptions": "onnxaudit.shapes.options",
}


def __getattr__(name: str) -> Any:
    """PEP 562: the public names, imported on first use."""
    if name == "check":
        # the subpackage, callable (check/__init__.py): importing it sets this attribute anyway
        return importlib.import_module("onnxaudit.check")
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'onnxaudit' has no attribute {name!r}")
