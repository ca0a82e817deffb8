"""Names read from a file, as text.

protobuf (upb) hands back a string field holding invalid UTF-8 as ``bytes``. Such a name must stay
usable as a key and visible when printed, so it becomes ``str`` with the bad bytes kept as lone
surrogates (``surrogateescape``); ``render.escape`` shows them as ``\\xNN``.
"""

from __future__ import annotations


def as_text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def key(scope: str | bytes, name: str | bytes) -> tuple[str, str]:
    """A (scope, name) key that is the same whether the name arrived as str or bytes."""
    return (as_text(scope), as_text(name))


def quoted(name: str | bytes) -> str:
    """'name' for a message; the renderer escapes whatever the name holds."""
    return f"'{as_text(name)}'"
