"""Open a model file safely and read its structure into a ModelView: the one entry point of model/."""

from __future__ import annotations

import os
from pathlib import Path

from onnxaudit.errors import AuditError
from onnxaudit.io.budget import MAX_NODES
from onnxaudit.io.onnxcore import prepare_inference
from onnxaudit.io.ranged import RangedBuffer
from onnxaudit.io.remote import RemoteRead, is_url
from onnxaudit.model.build import MAX_INFER_NODES, StreamedMain, model_view
from onnxaudit.model.metadata import may_hold_module_scopes
from onnxaudit.model.read import NodeChunks, SizeHook, parse_model, read_model_bytes, read_without_weights
from onnxaudit.model.view import ModelView

READERS = ("wire", "protobuf")
__all__ = ["MAX_NODES", "READERS", "load"]


def load(
    path: str | os.PathLike[str],
    with_shapes: bool = True,
    reader: str = "wire",
    max_nodes: int = MAX_NODES,
    ranged: RangedBuffer | None = None,
) -> ModelView:
    """Open `path` safely and read its structure. Raises AuditError for unusable input.

    reader "wire" (default) never copies weight bytes and has no 2 GiB limit; "protobuf" parses
    the whole file with protobuf and is kept as the reference the wire reader is tested against.
    `ranged`: a URL's file already open (io/remote.open_ranged), read through it rather than opened again.
    """
    remote = is_url(path)
    path = str(path) if remote else Path(path)  # pathlib would fold a URL's '//'
    sizes: SizeHook | None = None
    fetched: RemoteRead | None = None
    streamed: StreamedMain | None = None
    if reader == "wire":
        # inference (in model_view) forks a child that would build onnx's schema registry: built here instead,
        # while the walk's own child runs
        prepare = prepare_inference if with_shapes else None
        # a graph of more nodes than are inferred: they are read while the walk goes on (StreamedMain)
        reading = StreamedMain(max_nodes)
        chunks = NodeChunks(reading.feed, MAX_INFER_NODES)
        model, file_bytes, sizes, scoped, fetched, ranged, from_chunks = read_without_weights(
            path, ranged, max_nodes, prepare, chunks
        )
        streamed = reading if from_chunks else None
    elif remote:
        raise ValueError("a URL is read by the wire reader only")
    elif reader == "protobuf":
        data = read_model_bytes(Path(path))
        model, file_bytes, scoped = parse_model(data, str(path)), len(data), may_hold_module_scopes(data)
        del data
    else:
        raise ValueError(f"unknown reader {reader!r} (choose from {', '.join(READERS)})")
    try:
        view = model_view(model, path, file_bytes, with_shapes, sizes, scoped, max_nodes, streamed)
    except AuditError as exc:
        raise AuditError(f"{path}: {exc}") from None
    except RecursionError:
        raise AuditError(f"{path}: model nesting is too deep to read") from None
    del model, sizes
    view.remote = fetched  # its note is written with the report (tied-copy sampling may add to it)
    view.ranged = ranged
    if sum(len(graph.nodes) for graph in view.graphs.values()) >= TRIM_NODES:
        _return_freed_memory()
    return view


# ModelProto's freed blocks are worth handing back from this many nodes: below it they are a few MB at most
# (0.7 MiB measured at 899 nodes), not worth importing ctypes and trimming (2 ms of a 0.2 s summary)
TRIM_NODES = 10_000


def _return_freed_memory() -> None:
    """Hand the parsed ModelProto's pages back to the system. protobuf frees it in many small blocks
    that glibc keeps mapped when later allocations sit above them (~90 MB at 100k nodes, held to the
    end of the run); malloc_trim releases free pages wherever they are. A no-op off glibc."""
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return
    trim(0)
