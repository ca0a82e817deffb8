from __future__ import annotations

import sys

from onnxaudit.cli import main

sys.exit(main())
