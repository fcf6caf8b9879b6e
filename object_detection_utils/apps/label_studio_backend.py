"""A Label Studio ML backend: Label Studio asks our model for pre-annotations of the task being labelled.

    python -m object_detection_utils.apps.label_studio_backend --model MODEL --pictures photos/ --port 9090
    # Label Studio: project Settings -> Model -> Connect model -> http://127.0.0.1:9090

The routes are those label-studio-ml serves: `GET /health` (and `/`) -> `{"status": "UP", "model_class"}`,
`POST /setup` -> `{"model_version"}`, `POST /predict` with `{"tasks", "label_config", "project", "params"}` ->
`{"results": [one prediction per task]}` (`label_exports.label_studio.prediction`: brush masks, or polygons when
the labelling config's tag is `<PolygonLabels>`; only the classes the config lists). A task's picture is found
in --pictures by its URL's file name (as the Label Studio reader finds it), else fetched from the URL, relative
ones from --label-studio-url with --api-key. A small stdlib HTTP server, bound to 127.0.0.1 unless --host says
otherwise: it has no authentication of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import urllib.request
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree

import numpy as np

from ..errors import InstanceSegmentationError, first_line
from ..io.images import read_image
from ..label_exports import ExportOptions
from ..label_exports.label_studio import prediction
from ..predictor import Segmenter
from ..training.labels.label_studio import UPLOAD_PREFIX, picture_name
from . import cli

_log = logging.getLogger(__name__)
_AREA_TAGS = {"PolygonLabels": "polygons", "BrushLabels": "masks"}


@dataclass(frozen=True)
class LabellingConfig:
    """What a project's labelling config asks for: the tag names, polygons or masks, and the classes listed."""

    options: ExportOptions
    data_key: str = "image"
    labels: frozenset[str] | None = None  # None: every class


def read_labelling_config(config: str | None, base: ExportOptions) -> LabellingConfig:
    """The first `<PolygonLabels>` or `<BrushLabels>` tag of a Label Studio labelling config; `base` if none."""
    try:
        root = ElementTree.fromstring(config) if config else None
    except ElementTree.ParseError:
        root = None
    tag = next((e for e in root.iter() if e.tag in _AREA_TAGS), None) if root is not None else None
    if tag is None:
        return LabellingConfig(base)
    image = next((e for e in root.iter() if e.get("name") == tag.get("toName")), None)
    data_key = (image.get("value") or "$image").lstrip("$") if image is not None else "image"
    labels = frozenset(e.get("value") for e in tag.iter("Label") if e.get("value"))
    options = replace(base, shapes=_AREA_TAGS[tag.tag], from_name=tag.get("name", base.from_name),
                      to_name=tag.get("toName", base.to_name))
    return LabellingConfig(options, data_key, labels or None)


class Backend:
    """The model and where pictures come from; `predict` answers one `/predict` request."""

    def __init__(self, segmenter: Segmenter, pictures: Path | None = None, label_studio_url: str | None = None,
                 api_key: str | None = None, options: ExportOptions = ExportOptions()):
        self.segmenter, self.pictures, self.label_studio_url, self.api_key = segmenter, pictures, label_studio_url, \
            api_key
        self.options = replace(options, model_version=options.model_version or segmenter.name)
        self._lock = threading.Lock()  # one model call at a time

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        config = read_labelling_config(request.get("label_config"), self.options)
        results = []
        for task in request.get("tasks") or []:
            detections = self._segment(task, config.data_key)
            if config.labels is not None:
                detections = detections[np.array([name in config.labels for name in detections.class_names],
                                                 bool)]
            results.append(prediction(detections, config.options))
        return {"results": results}

    def _segment(self, task: dict[str, Any], data_key: str):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get(data_key), str):
            raise InstanceSegmentationError(f"task {task.get('id') if isinstance(task, dict) else task!r}: "
                                            f"no picture URL in data.{data_key}")
        image = self._picture(data[data_key], picture_name({"data": {"image": data[data_key]}}) or "")
        with self._lock:
            return self.segmenter(image)

    def _picture(self, url: str, name: str) -> np.ndarray:
        if self.pictures is not None:
            for candidate in (name, UPLOAD_PREFIX.sub("", name)):
                if candidate and (self.pictures / candidate).is_file():
                    return read_image(self.pictures / candidate)
        if url.startswith("/") and self.label_studio_url:
            url = urljoin(self.label_studio_url, url)
        if not url.startswith(("http://", "https://")):
            raise InstanceSegmentationError(f"{url}: not in --pictures and not a URL to fetch (give "
                                            "--pictures, or --label-studio-url for Label Studio's own URLs)")
        headers = {"Authorization": f"Token {self.api_key}"} if self.api_key else {}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response, \
                tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as file:
            file.write(response.read())
            file.flush()
            return read_image(file.name)


def make_server(backend: Backend, host: str = "127.0.0.1", port: int = 9090) -> ThreadingHTTPServer:
    """The HTTP server of `backend` (call `serve_forever()`; port 0 picks a free one: `server.server_port`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] in ("/", "/health"):
                self._answer(200, {"status": "UP", "model_class": "InstanceSegmentation"})
            elif self.path.split("?")[0] == "/metrics":
                self._answer(200, {})
            else:
                self._answer(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            route = self.path.split("?")[0]
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if route == "/predict":
                    self._answer(200, backend.predict(body))
                elif route == "/setup":
                    self._answer(200, {"model_version": backend.options.model_version})
                elif route == "/webhook":
                    self._answer(200, {"status": "Unknown event"})  # no training from Label Studio
                else:
                    self._answer(404, {"error": f"no route {route}"})
            except (json.JSONDecodeError, InstanceSegmentationError, OSError) as error:
                _log.warning("%s: %s", route, first_line(error))
                self._answer(400, {"error": first_line(error)})

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            _log.info("%s " + format, self.address_string(), *args)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9090, help="port (default: %(default)s, label-studio-ml's)")
    parser.add_argument("--pictures", type=Path, default=None, help="folder holding the tasks' pictures")
    parser.add_argument("--label-studio-url", default=None, help="Label Studio's address, for /data/... URLs")
    parser.add_argument("--api-key", default=None, help="a Label Studio access token, to fetch its pictures")
    cli.add_model_arguments(parser)
    args = cli.parse_args(parser, argv)
    if args.pictures is not None and not args.pictures.is_dir():
        raise InstanceSegmentationError(f"{args.pictures}: no such folder")
    segmenter = cli.segmenter_from_args(args)
    backend = Backend(segmenter, args.pictures, args.label_studio_url, args.api_key,
                      ExportOptions(model_version=Path(args.model).name))
    try:
        server = make_server(backend, args.host, args.port)
    except OSError as error:
        raise InstanceSegmentationError(f"{args.host}:{args.port}: cannot listen ({error.strerror})") from None
    print(f"Label Studio ML backend for {segmenter.name} on http://{args.host}:{server.server_port}",
          file=sys.stderr)
    with server:
        server.serve_forever()
    return 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
