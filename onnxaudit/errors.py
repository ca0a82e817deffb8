"""The project's own error type: every unusable input ends here, as one line."""

from __future__ import annotations


class AuditError(Exception):
    """An input onnxaudit cannot use. ``str(err)`` is the one line shown to the user."""

    exit_code = 2


class UsageError(AuditError):
    """The command line itself is wrong (bad flag value, unknown convention)."""
