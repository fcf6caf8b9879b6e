"""The server's routes, on FastAPI: one loaded `Segmenter` behind a bounded model queue.

    POST /v1/segment                        a picture (multipart or raw body) -> Detections as JSON (answers.py)
    POST /v1/models/{name}[/versions/1]:predict     TF Serving's predict (tf_serving.py)
    GET  /v1/models/{name}[/versions/1][/metadata]  TF Serving's model status and metadata
    GET  /healthz, /readyz                  alive; ready for pictures (no token needed)
    GET  /metrics                           Prometheus (metrics.py)
    GET  /                                  the page to try the model (static/)

With a token, every route but the health checks and the page's files needs `Authorization: Bearer <token>`.
Every error is one JSON line, `{"error": "..."}`, with its status; a model failure answers 500 and the server
goes on serving.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import ImageReadError, LabelMapError, PictureSizeError, PictureTooLargeError, first_line
from ...io.images import DEFAULT_MAX_PIXELS, decode_image
from ...model_contract import RawOutputs
from ...predictor import Segmenter, split_classes
from . import tf_serving
from .answers import MASK_FORMATS, detections_to_json
from .batching import ModelQueue, QueueFull
from .http_errors import HTTPError, error_response
from .metrics import CONTENT_TYPE, ServerMetrics
from .uploads import read_body, read_upload

log = logging.getLogger(__name__)

CLIENT_GONE = 499  # nginx's status for a client that closed the connection before the answer: metrics only
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript"),
              "/page.css": ("page.css", "text/css")}


@dataclass(frozen=True)
class ServerSettings:
    """What the server allows: upload bytes and picture pixels, seconds per request, the model queue, the token.

    `name` is the model's name in TF Serving's URLs (default: the model's own name).
    """

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout: float = 30.0
    queue_size: int = 32
    max_batch: int = 8
    token: str | None = None
    name: str | None = None


def create_app(segmenter: Segmenter, settings: ServerSettings = ServerSettings()) -> FastAPI:
    """The server's ASGI app around a loaded segmenter (its filters are each request's defaults)."""
    model = segmenter.model
    name = settings.name or segmenter.name
    metrics = ServerMetrics(queue_depth=lambda: queue.depth)
    queue = ModelQueue(model, settings.queue_size, settings.max_batch, on_batch=metrics.model_call)
    pages = {path: (resources.files(__package__).joinpath("static", file).read_bytes(), kind)
             for path, (file, kind) in PAGE_FILES.items()}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(queue.close)

    app = FastAPI(title="instance-segmentation", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.add_middleware(_Observe, metrics=metrics)
    _add_error_handlers(app)

    def authorize(request: Request) -> None:
        if settings.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
            raise HTTPError(401, "a valid bearer token is needed: Authorization: Bearer <token>",
                            {"WWW-Authenticate": "Bearer"})

    protected = [Depends(authorize)]

    async def run_model(image: np.ndarray, deadline: float) -> RawOutputs:
        try:
            future = queue.submit(image)
        except QueueFull:
            raise HTTPError(503, "the server is busy: try again shortly", {"Retry-After": "1"}) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise HTTPError(504, f"no answer within the request timeout of {settings.timeout:g}s") from None
        except PictureSizeError as error:
            raise HTTPError(400, str(error)) from None
        except Exception as error:  # TensorFlow raises many types: this request fails, the server goes on
            raise HTTPError(500, f"the model failed on this picture: {first_line(error)}") from None

    async def decode(data: bytes, label: str) -> np.ndarray:
        try:
            return await run_in_threadpool(decode_image, data, label, settings.max_pixels)
        except PictureTooLargeError as error:
            raise HTTPError(413, str(error)) from None
        except ImageReadError as error:
            raise HTTPError(400, str(error)) from None

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if not queue.alive:
            return error_response(503, "the model is not running")
        if queue.depth >= queue.capacity:
            return error_response(503, "the model queue is full", {"Retry-After": "1"})
        return JSONResponse({"status": "ready", "model": name})

    @app.get("/metrics", dependencies=protected)
    async def metrics_route() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    for path, (content, kind) in pages.items():
        app.add_api_route(path, _static(content, kind), methods=["GET"], include_in_schema=False)

    @app.post("/v1/segment", dependencies=protected)
    async def segment(request: Request) -> Response:
        deadline = time.monotonic() + settings.timeout
        try:
            upload = await read_upload(request, settings.max_upload_bytes, deadline)
        except ClientDisconnect:
            return Response(status_code=CLIENT_GONE)
        mask_format = upload.fields.get("mask_format", "rle")
        if mask_format not in MASK_FORMATS:
            raise HTTPError(400, f"mask_format {mask_format!r} is not one of {', '.join(MASK_FORMATS)}")
        request_segmenter = _request_segmenter(segmenter, upload.fields)
        image = await decode(upload.data, "upload")
        outputs = await run_model(image, deadline)
        detections = await run_in_threadpool(request_segmenter.postprocess, outputs, image.shape[:2])
        answer = await run_in_threadpool(detections_to_json, detections, name, mask_format)
        return JSONResponse(answer)

    def check_servable(requested: str, version: str | None) -> None:
        if requested != name or version not in (None, tf_serving.VERSION):
            which = f"Latest({requested})" if version is None else f"Specific({requested}, {version})"
            raise HTTPError(404, f"Servable not found for request: {which}")

    async def predict(request: Request, model_name: str, version: str | None) -> Response:
        check_servable(model_name, version)
        deadline = time.monotonic() + settings.timeout
        try:
            body = await read_body(request, settings.max_upload_bytes, deadline)
        except ClientDisconnect:
            return Response(status_code=CLIENT_GONE)
        try:
            parsed = json.loads(body)
        except ValueError as error:
            raise HTTPError(400, f"JSON Parse error: {first_line(error)}") from None
        del body
        call = tf_serving.parse_predict(parsed, tf_serving.input_name(model))
        del parsed
        images = [p if isinstance(p, np.ndarray) else await decode(p, f"picture {i}")
                  for i, p in enumerate(call.pictures)]
        for image in images:
            if image.shape[0] * image.shape[1] > settings.max_pixels:
                raise HTTPError(413, f"a {image.shape[1]}x{image.shape[0]} picture is over the limit of "
                                     f"{settings.max_pixels} pixels")
        outputs = await asyncio.gather(*(run_model(image, deadline) for image in images))
        return Response(await run_in_threadpool(tf_serving.predict_answer, outputs, call.row_format),
                        media_type="application/json")

    @app.post("/v1/models/{model_name}:predict", dependencies=protected)
    async def predict_latest(request: Request, model_name: str) -> Response:
        return await predict(request, model_name, None)

    @app.post("/v1/models/{model_name}/versions/{version}:predict", dependencies=protected)
    async def predict_version(request: Request, model_name: str, version: str) -> Response:
        return await predict(request, model_name, version)

    @app.get("/v1/models/{model_name}", dependencies=protected)
    @app.get("/v1/models/{model_name}/versions/{version}", dependencies=protected)
    async def status(model_name: str, version: str | None = None) -> dict:
        if model_name != name:
            raise HTTPError(404, f"Could not find any versions of model {model_name}")
        check_servable(model_name, version)
        return tf_serving.model_status(name)

    @app.get("/v1/models/{model_name}/metadata", dependencies=protected)
    @app.get("/v1/models/{model_name}/versions/{version}/metadata", dependencies=protected)
    async def metadata(model_name: str, version: str | None = None) -> dict:
        check_servable(model_name, version)
        return tf_serving.model_metadata(name, model)

    app.state.queue = queue
    app.state.metrics = metrics
    return app


def _request_segmenter(segmenter: Segmenter, fields: dict[str, str]) -> Segmenter:
    """The server's segmenter with a request's `classes` (ids or names, within the served ones) and
    `min_score`; HTTPError 400 for an unknown class or a score outside 0..1."""
    classes = segmenter.class_ids
    if fields.get("classes", "").strip():
        try:
            wanted = segmenter.label_map.resolve(split_classes(fields["classes"]))
        except LabelMapError as error:
            raise HTTPError(400, str(error)) from None
        outside = sorted(set(wanted) - set(classes)) if classes is not None else []
        if outside:
            raise HTTPError(400, f"classes {outside} are not served here (served: {sorted(classes)})")
        classes = tuple(wanted)
    min_score = segmenter.min_score
    if "min_score" in fields:
        try:
            min_score = float(fields["min_score"])
        except ValueError:
            min_score = float("nan")
        if not 0.0 <= min_score <= 1.0:
            raise HTTPError(400, f"min_score {fields['min_score']!r} is not a number from 0 to 1")
    return Segmenter(segmenter.model, classes, min_score, segmenter.mask_threshold, segmenter.bgr)


def _static(content: bytes, media_type: str):
    async def page() -> Response:
        return Response(content, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return page


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as one JSON line; an unexpected one is logged here with its traceback, and answered 500."""

    @app.exception_handler(HTTPError)
    async def http_error(request: Request, error: HTTPError) -> Response:
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, error: StarletteHTTPException) -> Response:
        return error_response(error.status_code, str(error.detail), error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return error_response(400, f"bad request: {problems}")


class _Observe:
    """ASGI middleware: each request's route, status and latency into the metrics, and any error that escaped
    the handlers answered as a JSON 500 (logged with its traceback here, never sent)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = CLIENT_GONE

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception as error:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            status = 500
            await error_response(500, f"internal error: {first_line(error)}")(scope, receive, send)
        finally:
            route = scope.get("route")
            self.metrics.request(getattr(route, "path", "unmatched"), status, time.perf_counter() - start)
