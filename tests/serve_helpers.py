"""What the server tests share (tests/apps/serve/): a server running on a free loopback port in a thread of the test
process, pictures, and the check of a one-line JSON error."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class RunningServer:
    url: str
    port: int
    app: object


@contextmanager
def running(app) -> Iterator[RunningServer]:
    """`app` served by uvicorn on 127.0.0.1 (a free port) until the block ends; its lifespan runs as in production."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):  # started within seconds; a bounded wait, not a timing assumption
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "the test server did not start"
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", port, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def picture_bytes(width: int, height: int, fill: int, suffix: str = "png") -> bytes:
    """A one-colour picture's file bytes (PNG lossless, so the server sees exactly these pixels)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (fill, fill, fill)).save(buffer, format=suffix.upper())
    return buffer.getvalue()


def picture(width: int, height: int, fill: int) -> np.ndarray:
    return np.full((height, width, 3), fill, np.uint8)


def one_json_error(response, status: int) -> str:
    """The error message of a one-line JSON error answer with `status`."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text and "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    return body["error"]
