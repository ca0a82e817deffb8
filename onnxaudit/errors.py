"""The project's own error type: every unusable input ends here, as one line."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class AuditError(Exception):
    """An input onnxaudit cannot use. ``str(err)`` is the one line shown to the user."""

    exit_code = 2

    def naming(self, path: str | os.PathLike[str]) -> AuditError:
        """This error with the file's name in front, unless it starts with it already (or is a usage error)."""
        text, name = str(self), os.fspath(path)
        if isinstance(self, UsageError) or text.startswith((name, os.path.normpath(name))):
            return self
        named = type(self)(f"{name}: {text}")
        named.exit_code = self.exit_code
        return named


class UsageError(AuditError):
    """The command line itself is wrong (bad flag value, unknown convention)."""


def names_the_file(
    func: Callable[Concatenate[str | os.PathLike[str], P], R],
) -> Callable[Concatenate[str | os.PathLike[str], P], R]:
    """The one place an entry point's AuditError gets the file's name: a message raised deep in counting
    ("tensor 'W' has a negative dim -1") still tells a scan of 1,000 files which one. A path ending in a
    separator names a folder: refused here, before pathlib drops the separator and opens the file."""

    @functools.wraps(func)
    def wrapper(path: str | os.PathLike[str], /, *args: P.args, **kwargs: P.kwargs) -> R:
        if os.fspath(path).endswith(os.sep):
            raise AuditError(f"{os.fspath(path)}: ends in '{os.sep}', which names a folder, not a model file")
        try:
            return func(path, *args, **kwargs)
        except AuditError as exc:
            raise exc.naming(path) from None

    return wrapper
