"""Opening files so that what was checked is what gets read.

Paths are walked from a directory descriptor one component at a time with O_NOFOLLOW, the last
component is lstat'ed before it is opened (a FIFO or a device is never opened at all), and the opened
descriptor is fstat'ed and compared with what was checked (st_dev, st_ino), so swapping a file or a
symlink between the check and the open makes the open fail instead of reading something else.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from onnxaudit.errors import AuditError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)
# Folders are only walked through, never listed: O_PATH needs no read permission on them (Linux).
_WALK = getattr(os, "O_PATH", os.O_RDONLY)
MAX_SYMLINK_HOPS = 8


class Refused(Exception):
    """A path we will not open; ``str(err)`` says why in a few words."""


@dataclass(frozen=True)
class OpenFile:
    fd: int
    size: int
    dev: int
    ino: int
    nlink: int


def relative_parts(location: str) -> list[str]:
    """The components of a location that must stay inside its folder; raises Refused otherwise."""
    if not location:
        raise Refused("empty location")
    if "\x00" in location:
        raise Refused("location contains a NUL byte")
    if "\\" in location:
        raise Refused("location contains a backslash (a Windows path separator)")
    if location.startswith("/") or (len(location) > 1 and location[1] == ":"):
        raise Refused("absolute path")
    parts = [p for p in location.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused("'..' leaves the model's folder")
    if not parts:
        raise Refused("location names the folder itself")
    return parts


def open_dir(path: Path) -> int:
    """A descriptor of the folder the user named (symlinks the user wrote in it are theirs to follow)."""
    return os.open(path, _WALK | _DIRECTORY | _CLOEXEC)


def open_beneath(dir_fd: int, parts: list[str], allow_hardlinks: bool = False) -> OpenFile:
    """Open the regular file at `parts` under `dir_fd` without following any symlink. The caller
    closes the returned descriptor. Raises Refused with the reason."""
    current = dir_fd
    owned: list[int] = []
    try:
        for part in parts[:-1]:
            try:
                current = os.open(part, _WALK | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=current)
            except OSError as exc:
                raise Refused(_why(exc, f"folder {part!r}", _is_link(current, part))) from None
            owned.append(current)
        name = parts[-1]
        try:
            before = os.stat(name, dir_fd=current, follow_symlinks=False)
        except OSError as exc:
            raise Refused(_why(exc, "file")) from None
        _require_regular(before, allow_hardlinks)
        try:
            # O_NONBLOCK: should the entry become a FIFO after the lstat, open must not wait for a writer
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | _NOCTTY | _CLOEXEC, dir_fd=current)
        except OSError as exc:
            raise Refused(_why(exc, "file")) from None
        try:
            after = os.fstat(fd)
            _require_regular(after, allow_hardlinks)
            if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
                raise Refused("file was replaced while being opened")
        except BaseException:
            os.close(fd)
            raise
        return OpenFile(fd, after.st_size, after.st_dev, after.st_ino, after.st_nlink)
    finally:
        for fd in owned:
            os.close(fd)


def _require_regular(info: os.stat_result, allow_hardlinks: bool) -> None:
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        raise Refused("is a symlink")
    if stat.S_ISDIR(mode):
        raise Refused("is a directory")
    if stat.S_ISFIFO(mode):
        raise Refused("is a FIFO")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise Refused("is a device")
    if not stat.S_ISREG(mode):
        raise Refused("is not a regular file")
    if not allow_hardlinks and info.st_nlink > 1:
        raise Refused(f"is a hard link ({info.st_nlink} names for one file)")


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _why(exc: OSError, what: str, link: bool = False) -> str:
    if exc.errno == errno.ENOENT:
        return f"{what} does not exist"
    if exc.errno == errno.ELOOP or link:  # O_PATH | O_NOFOLLOW opens the link itself: ENOTDIR
        return f"{what} is a symlink"
    if exc.errno == errno.ENOTDIR:
        return f"{what} is not a folder"
    return f"{what}: {exc.strerror}"


def open_model(path: str | os.PathLike[str]) -> OpenFile:
    """The model file the user named, opened for reading. A symlink is followed only while it stays in
    the folder the user named (relative or absolute, a few hops at most); a hard link is allowed,
    because the user named this file. Raises AuditError with the one line to show."""
    path = Path(path)
    name = str(path)
    if path.name in ("", ".", ".."):  # "/", ".", "..": a folder, never a file
        raise AuditError(f"{name}: is a directory, not a model file")
    folder = path.parent
    try:
        dir_fd = open_dir(folder)
    except FileNotFoundError:
        raise AuditError(f"{name}: no such file") from None
    except OSError as exc:
        raise AuditError(f"{name}: cannot open its folder ({exc.strerror})") from None
    try:
        parts = [path.name]
        for _ in range(MAX_SYMLINK_HOPS):
            target = _symlink_target(dir_fd, parts)
            if target is None:
                break
            parts = _inside(folder, parts, target, name)
        else:
            raise AuditError(f"{name}: too many levels of symlinks")
        try:
            opened = open_beneath(dir_fd, parts, allow_hardlinks=True)
        except Refused as exc:
            raise AuditError(f"{name}: {_model_reason(str(exc))}") from None
    finally:
        os.close(dir_fd)
    if opened.size == 0:
        os.close(opened.fd)
        raise AuditError(f"{name}: empty file")
    return opened


def _symlink_target(dir_fd: int, parts: list[str]) -> str | None:
    """The link text when the last component of `parts` is a symlink (no earlier one may be)."""
    current = dir_fd
    owned: list[int] = []
    try:
        for part in parts[:-1]:
            try:
                current = os.open(part, _WALK | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=current)
            except OSError:
                return None  # open_beneath reports it
            owned.append(current)
        try:
            return os.readlink(parts[-1], dir_fd=current)
        except OSError:
            return None
    finally:
        for fd in owned:
            os.close(fd)


def _inside(folder: Path, parts: list[str], target: str, name: str) -> list[str]:
    """A symlink's target as components under `folder`, or AuditError when it leaves the folder."""
    real_folder = os.path.realpath(folder)
    link_dir = os.path.join(real_folder, *parts[:-1])
    resolved = os.path.normpath(os.path.join(link_dir, target))
    relative = os.path.relpath(resolved, real_folder)
    if relative == "." or relative.startswith(".." + os.sep) or relative == ".." or os.path.isabs(relative):
        raise AuditError(f"{name}: symlink points outside its folder; refusing to follow")
    return relative.split(os.sep)


def _model_reason(reason: str) -> str:
    if reason == "is a directory":
        return "is a directory, not a model file"
    if reason in ("is a FIFO", "is a device"):
        return f"not a regular file ({reason[3:]})"
    if reason == "is not a regular file":
        return "not a regular file (a socket or other special file)"
    if reason == "file does not exist":
        return "no such file"
    if reason.startswith("folder ") and "symlink" in reason:
        return f"a symlink in its path ({reason}); refusing to follow"
    return reason
