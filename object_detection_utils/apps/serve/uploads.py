"""A request's picture and fields: read within a size limit and a deadline, from a multipart form or a raw body.

The bytes stay in memory (never a file on disk, never a name taken from the request as a path) and are dropped
with the request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from .http_errors import HTTPError


@dataclass
class Upload:
    """A picture's bytes and the text fields sent with it (a form's, then the query string's)."""

    data: bytes
    fields: dict[str, str] = field(default_factory=dict)


async def read_body(request: Request, max_bytes: int, deadline: float) -> bytes:
    """The whole body, refused with 413 past `max_bytes` (by its Content-Length, or as it streams in) and with 408
    when it has not all arrived by `deadline` (`time.monotonic()`); `ClientDisconnect` when the client leaves."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPError(413, f"upload of {int(declared)} bytes is over the limit of {max_bytes} bytes")

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise HTTPError(413, f"upload is over the limit of {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise HTTPError(408, "the upload did not arrive in time") from None


async def read_upload(request: Request, max_bytes: int, deadline: float) -> Upload:
    """The picture of a `multipart/form-data` request (its first file) or of a raw body (any other type), with the
    form's text fields and the query parameters (the form's win)."""
    body = await read_body(request, max_bytes, deadline)
    fields = dict(request.query_params)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return Upload(body, fields)
    form = await Request(request.scope, _replay(body)).form(max_files=1, max_fields=16, max_part_size=max_bytes)
    data = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            await value.close()
        else:
            fields[name] = value
    await form.close()
    if data is None:
        raise HTTPError(400, "the form has no file: send the picture as a file field (e.g. -F image=@photo.jpg)")
    return Upload(data, fields)


def _replay(body: bytes):
    """An ASGI `receive` that gives `body` once, for parsing a body already read."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            raise ClientDisconnect()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
