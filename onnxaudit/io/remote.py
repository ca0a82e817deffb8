"""Models at a URL (https://, s3://, ... through fsspec, the optional [remote] extra), read by byte ranges.

Only the structure is fetched: io/ranged.py serves the wire walk block by block, so a tensor's bytes are
skipped by their length, never asked for; external data files are never fetched. A server that ignores
Range (answers 200 with the whole body) is refused at the first probe, before any body is read; every
request has a timeout; the total fetched is capped. Every failure is one line naming the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from onnxaudit.errors import AuditError
from onnxaudit.io.ranged import BLOCK, FetchRefused, RangedBuffer
from onnxaudit.io.safeopen import Refused, relative_parts

if TYPE_CHECKING:
    from onnxaudit.io.external import Problem

MAX_FETCH = 1 << 28  # bytes of structure fetched at most (wire.MAX_LIGHT_BYTES bounds what is kept)
CONNECT_TIMEOUT = 15.0  # seconds
READ_TIMEOUT = 60.0  # seconds without a byte arriving
MAX_EXTERNAL_FILES = 1024  # external data files of a remote model asked for their size (a request each)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: object) -> bool:
    """A model named by URL (scheme://...), not a local path; `file://` stays local to safeopen's rules."""
    return isinstance(path, str) and bool(_URL.match(path)) and not path.lower().startswith("file://")


@dataclass
class RemoteRead:
    """What reading a remote model cost: for the report's limits line and its JSON."""

    url: str
    file_bytes: int
    fetched_bytes: int
    requests: int
    sampled_bytes: int = 0  # of fetched_bytes: read again to compare sampled values of possible tied copies

    def note(self) -> str:
        share = 100 * self.fetched_bytes / self.file_bytes if self.file_bytes else 0.0
        weights = "weight bytes and external data were not fetched"
        if self.sampled_bytes:
            weights = (
                f"{self.sampled_bytes:,} of them to compare possible copies (the structure again, then sampled "
                "weight values); external data was not fetched"
            )
        return (
            f"remote file: {self.fetched_bytes:,} of {self.file_bytes:,} bytes fetched ({share:.2f}%) in "
            f"{self.requests} ranged reads; {weights}"
        )


class RemoteFile:
    """An open remote file: size and read_at(offset, length), each read one ranged request."""

    def __init__(self, url: str) -> None:
        self.url = url
        fsspec = _fsspec(url)
        try:
            fs, path = fsspec.core.url_to_fs(url, **_options(url))
            handle = fs.open(path, "rb", cache_type="none", block_size=BLOCK)  # we cache, by blocks
        except FileNotFoundError:
            raise AuditError(f"{url}: no such file (not found on the server)") from None
        except Exception as exc:  # fsspec, aiohttp, botocore: each its own types; all mean "cannot open"
            raise AuditError(f"{url}: cannot open ({_reason(exc)})") from None
        size = getattr(handle, "size", None)
        if not isinstance(size, int):
            handle.close()
            raise AuditError(f"{url}: the server does not say the file's size; refusing to stream it whole")
        if size == 0:
            handle.close()
            raise AuditError(f"{url}: empty file")
        self._handle: Any = handle
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        try:
            self._handle.seek(offset)
            data = self._handle.read(length)
        except Exception as exc:
            raise FetchRefused(_reason(exc)) from None
        return bytes(data)

    def close(self) -> None:
        try:
            self._handle.close()
        except Exception:  # closing a read-only handle: nothing to save, nothing to report
            pass


def open_ranged(url: str) -> tuple[RemoteFile, RangedBuffer]:
    """The remote file and a RangedBuffer over it, after a probe that the server honours Range: one byte
    away from the start, which a server sending the whole body cannot answer (fsspec refuses the 200
    before reading its body). Raises AuditError naming the URL."""
    remote = RemoteFile(url)
    buf = RangedBuffer(remote.read_at, remote.size, max_fetch=MAX_FETCH)
    if remote.size > 1:
        try:
            remote.read_at(remote.size - 1, 1)
        except FetchRefused as exc:
            remote.close()
            raise AuditError(f"{url}: ranged read refused ({exc}); not downloading the whole file") from None
        buf.fetched, buf.requests = 1, 1
    return remote, buf


def list_models(prefix: str, suffix: str) -> list[str]:
    """Every file under the URL `prefix` (an object-store prefix or folder: s3://bucket/models/) whose name
    ends with `suffix`, as URLs in sorted order. Raises AuditError naming the prefix when it cannot be listed."""
    fsspec = _fsspec(prefix)
    scheme = prefix.split("://", 1)[0]
    if scheme.lower() in ("http", "https"):
        raise AuditError(
            f"{prefix}: a web server has no listing to trust; name the models in a file, one URL a line (--list FILE)"
        )
    try:
        fs, root = fsspec.core.url_to_fs(prefix, **_options(prefix))
        found = fs.find(root.rstrip("/"))
    except ImportError as exc:
        raise AuditError(f"{prefix}: {_reason(exc)}") from None
    except FileNotFoundError:
        raise AuditError(f"{prefix}: no such prefix (nothing found under it)") from None
    except Exception as exc:
        raise AuditError(f"{prefix}: cannot list ({_reason(exc)})") from None
    names = sorted(str(name) for name in found if str(name).lower().endswith(suffix))
    return [fs.unstrip_protocol(name) if hasattr(fs, "unstrip_protocol") else f"{scheme}://{name}" for name in names]


def external_url(model_url: str, location: str) -> str | Problem:
    """The URL of an external data file beside a remote model, when `location` stays under the model's
    prefix (no '..', no absolute path or URL, no other host); a location Problem otherwise."""
    from onnxaudit.io.external import Problem  # check's: a summary never loads io/external (nor io/datamap)

    if is_url(location) or location.startswith("//"):
        return Problem("location", "is a URL; refusing (must be relative, under the model's prefix)")
    try:
        parts = relative_parts(location)
    except Refused as exc:
        return Problem("location", str(exc))
    return model_url.rsplit("/", 1)[0] + "/" + "/".join(parts)


def _fsspec(url: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise AuditError(f"{url}: reading a URL needs the remote extra: pip install 'onnxaudit[remote]'") from None
    return fsspec


def _options(url: str) -> dict[str, Any]:
    """Timeouts per protocol: http(s) through aiohttp (fsspec's HTTP filesystem), s3 through botocore's
    config (s3fs). Other protocols (gs://, hf://, ...) use their fsspec package's own defaults."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("s3", "s3a"):
        timeouts = {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT, "retries": {"max_attempts": 2}}
        return {"config_kwargs": timeouts, "skip_instance_cache": True}
    if scheme in ("http", "https"):
        try:
            import aiohttp
        except ImportError:
            raise AuditError(f"{url}: reading http(s) needs aiohttp: pip install 'onnxaudit[remote]'") from None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        return {"client_kwargs": {"timeout": timeout}, "skip_instance_cache": True}
    return {"skip_instance_cache": True}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
