"""A shape run's defaults, apart from options.py: the CLI's parser shows them without importing its dataclasses
(a summary that does not run the model never needs them)."""

from __future__ import annotations

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_MEMORY = 4 * 2**30
METHODS = ("profile", "outputs")
