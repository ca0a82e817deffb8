from __future__ import annotations

from onnxaudit.cli.main import entry

entry()
