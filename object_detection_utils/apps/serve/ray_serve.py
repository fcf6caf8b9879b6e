"""The server's app as a Ray Serve deployment: each replica loads the model once and runs the same FastAPI app
(its own model queue and metrics), behind Ray Serve's HTTP proxy.

    start(spec, settings, ReplicaOptions(min_replicas=1, max_replicas=4), port=8501)   # on a connected Ray
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ...errors import InstanceSegmentationError
from ...predictor import SegmenterSpec
from ..batch.ray_cluster import connect
from .app import ServerSettings

APP_NAME = "instance-segmentation"


@dataclass(frozen=True)
class ReplicaOptions:
    """A fixed number of `replicas`, or autoscaling between `min_replicas` and `max_replicas` (either given);
    `cpus` logical CPUs reserved per replica."""

    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    cpus: float = 1.0

    def deployment_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": self.cpus}}
        if self.min_replicas is None and self.max_replicas is None:
            options["num_replicas"] = self.replicas
        else:
            low = self.min_replicas if self.min_replicas is not None else 1
            high = self.max_replicas if self.max_replicas is not None else max(low, self.replicas)
            if not 0 <= low <= high or high < 1:
                raise InstanceSegmentationError(f"replicas: need 0 <= --min-replicas <= --max-replicas, 1 or more; "
                                                f"got {low} and {high}")
            options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high,
                                             "target_ongoing_requests": 2}
        return options


def build(spec: SegmenterSpec, settings: ServerSettings, replicas: ReplicaOptions) -> Any:
    """The bound Ray Serve application (`serve.run` takes it)."""
    from ray import serve

    @serve.deployment(name="segmenter", **replicas.deployment_options())
    @serve.ingress()
    class Segmentation:
        def __init__(self, spec: SegmenterSpec, settings: ServerSettings) -> None:
            from .app import create_app

            self._app = create_app(spec.load(), settings)

        def __serve_build_asgi_app__(self) -> Any:
            return self._app

    return Segmentation.bind(spec, settings)


def start(spec: SegmenterSpec, settings: ServerSettings, replicas: ReplicaOptions, host: str = "127.0.0.1",
          port: int = 8501) -> None:
    """Deploy on the Ray this process is connected to, its HTTP proxy on `host:port`; returns once replicas are
    up (a model that fails to load fails here)."""
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    try:
        serve.run(build(spec, settings, replicas), name=APP_NAME, route_prefix="/")
    except Exception as error:  # Ray wraps a replica's failure to start in its own types
        raise InstanceSegmentationError(f"Ray Serve could not start the server: {str(error).strip().splitlines()[-1]}"
                                        ) from None


def serve_forever(spec: SegmenterSpec, settings: ServerSettings, replicas: ReplicaOptions, address: str | None,
                  host: str, port: int) -> int:
    """The --ray command: connect (or start a local Ray), deploy, and serve until Ctrl+C, then take it down."""
    from ray import serve

    connect(address)
    start(spec, settings, replicas, host, port)
    print(f"serving {spec.model} on Ray Serve at http://{host}:{port}/ ; Ctrl+C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.delete(APP_NAME)
    return 0
