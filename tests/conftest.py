from __future__ import annotations

import sys
from pathlib import Path

# The shared graph builders live beside the tests (tests/builders.py).
sys.path.insert(0, str(Path(__file__).parent))
