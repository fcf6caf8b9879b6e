"""Errors as HTTP answers: one JSON line `{"error": "..."}` with a status, never a traceback (TF Serving's shape)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse


class HTTPError(Exception):
    """A request that ends with `status` and `message`; `headers` go with the answer (e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """`{"error": message}` on one line (line breaks in the message become spaces)."""
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=dict(headers or {}))
