"""A loopback HTTP server honouring Range, for measuring what auditing a model at a URL fetches.

    python benchmarks/serve.py DIR [--port 8765] [--log requests.jsonl]

Serves the regular files directly in DIR (no subfolders, no '..') on 127.0.0.1: HEAD and GET, a single
`bytes=a-b` / `bytes=a-` / `bytes=-n` Range answered 206, no Range answered 200 with the whole file. Each
request is one JSON line in --log: {"method", "path", "status", "range", "sent"} (`sent`: body bytes written),
so the bytes a command fetched are the sum of `sent` over the lines it caused. Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 1 << 20


class Handler(BaseHTTPRequestHandler):
    root: Path
    log: Path | None
    lock = threading.Lock()
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        name = self.path.split("?", 1)[0].lstrip("/")
        path = self.root / name
        if not name or "/" in name or name.startswith(".") or not path.is_file():
            self.send_error(404)
            self._record(404, None, 0)
            return
        size = path.stat().st_size
        start, end, status = 0, size, 200
        asked = self.headers.get("Range")
        if asked:
            match = _RANGE.match(asked.strip())
            if not match or (not match.group(1) and not match.group(2)):
                self.send_error(416)
                self._record(416, asked, 0)
                return
            first, last = match.groups()
            if first:
                start, end = int(first), min(size, int(last) + 1 if last else size)
            else:
                start, end = max(0, size - int(last)), size
            if start >= size or end <= start:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                self._record(416, asked, 0)
                return
            status = 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        sent = 0
        if body:
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    while sent < end - start:
                        piece = f.read(min(CHUNK, end - start - sent))
                        if not piece:
                            break
                        self.wfile.write(piece)
                        sent += len(piece)
            except OSError:  # the client hung up
                pass
        self._record(status, asked, sent)

    def _record(self, status: int, asked: str | None, sent: int) -> None:
        if self.log is None:
            return
        line = json.dumps({"method": self.command, "path": self.path, "status": status, "range": asked, "sent": sent})
        with self.lock, open(self.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder whose files are served")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    Handler.root, Handler.log = args.root.resolve(), args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving {args.root} on http://127.0.0.1:{server.server_address[1]}/ (pid {os.getpid()})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
