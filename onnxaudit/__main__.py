from __future__ import annotations

from onnxaudit.cli import console

console()
