"""The server's Prometheus metrics, in a registry of its own (several apps in one process keep theirs apart).

    segmentation_requests_total{route, status}   requests answered (499: the client left first)
    segmentation_request_seconds{route}          latency histogram, from arrival to the answer
    segmentation_queue_depth                     pictures waiting for the model
    segmentation_model_seconds                   time of each model call
    segmentation_batch_pictures                  pictures per model call
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServerMetrics:
    """The counters and histograms above; `queue_depth` is read when scraped."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("segmentation_requests", "Requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("segmentation_request_seconds", "Request latency, arrival to answer", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue = Gauge("segmentation_queue_depth", "Pictures waiting for the model", registry=self.registry)
        self.queue.set_function(queue_depth)
        self.model_seconds = Histogram("segmentation_model_seconds", "Time of each model call",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch = Histogram("segmentation_batch_pictures", "Pictures per model call",
                               buckets=(1, 2, 4, 8, 16, 32), registry=self.registry)

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def model_call(self, pictures: int, seconds: float) -> None:
        self.model_seconds.observe(seconds)
        self.batch.observe(pictures)

    def render(self) -> bytes:
        """The text exposition format Prometheus scrapes."""
        return generate_latest(self.registry)
