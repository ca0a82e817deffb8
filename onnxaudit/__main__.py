from __future__ import annotations

import sys

from onnxaudit.cli.main import main

sys.exit(main())
