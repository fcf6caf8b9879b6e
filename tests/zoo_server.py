"""A local stand-in for download.tensorflow.org: http.server on 127.0.0.1 in a thread, with faults on demand."""

from __future__ import annotations

import io
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class ZooServer:
    """Serves `files` (URL path -> bytes) and records every request as (path, Range header).

    Faults: `truncate_next` sends only that many bytes of the next body and hangs up; `ranges=False` ignores
    Range requests (answers 200 with the whole file); `hold` (an Event) makes a request wait until it is set.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: list[tuple[str, str | None]] = []
        self.truncate_next: int | None = None
        self.ranges = True
        self.hold: threading.Event | None = None
        self.request_seen = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def archive_requests(self) -> list[tuple[str, str | None]]:
        return [request for request in self.requests if request[0].endswith(".tar.gz")]

    def stop(self) -> None:
        """Shut down and close the port: afterwards a connection is refused, as with no network."""
        if self.hold is not None:
            self.hold.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def _handler(server: ZooServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            requested_range = self.headers.get("Range")
            server.requests.append((self.path, requested_range))
            server.request_seen.set()
            if server.hold is not None:
                server.hold.wait(timeout=60)
            data = server.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", requested_range or "")
            if match and server.ranges:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if server.truncate_next is not None:
                body, server.truncate_next = body[: server.truncate_next], None
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # keep test output clean
            pass

    return Handler


def tar_gz(members: dict[str, Path | bytes]) -> bytes:
    """A .tar.gz in memory: archive name -> a file or folder to add (recursively), or the bytes of a file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, source in members.items():
            if isinstance(source, bytes):
                info = tarfile.TarInfo(name)
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            else:
                tar.add(source, arcname=name)
    return buffer.getvalue()
