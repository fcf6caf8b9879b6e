"""The model's queue: one thread runs the model; requests wait in a bounded queue, and pictures of the same size
that are waiting together go through the model in one call when the model takes batches.

Nothing waits for a batch to fill: a lone request runs at once, and batches form only when requests pile up
behind a running one, so batching adds no latency. A full queue refuses at once (`QueueFull`: the server
answers 503), instead of letting requests pile up past any timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ...model_contract import LoadedModel, RawOutputs

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue holds as many pictures as it may."""


@dataclass
class _Job:
    image: np.ndarray
    future: Future[RawOutputs]


class ModelQueue:
    """`submit(picture)` -> a future of the model's raw outputs for it (batch axis of 1).

    Args:
        model: the loaded model; only this queue's thread calls it.
        capacity: pictures that may wait (not counting those in the model).
        max_batch: most pictures per model call; 1 when the model does not take batches (`model.batched`).
        on_batch: called with (pictures, seconds) after each model call, for metrics.
    """

    def __init__(self, model: LoadedModel, capacity: int = 32, max_batch: int = 8,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        if capacity < 1 or max_batch < 1:
            raise ValueError(f"queue capacity and batch size must be at least 1, got {capacity} and {max_batch}")
        self.model = model
        self.capacity = capacity
        self.max_batch = max_batch if model.batched else 1
        self._on_batch = on_batch
        self._waiting: deque[_Job] = deque()
        self._condition = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="model-queue", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Pictures waiting for the model."""
        return len(self._waiting)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def submit(self, image: np.ndarray) -> Future[RawOutputs]:
        """Queue one (H, W, 3) uint8 RGB picture; raises `QueueFull` when `capacity` pictures already wait."""
        job = _Job(image, Future())
        with self._condition:
            if self._closed:
                raise RuntimeError("the model queue is closed")
            if len(self._waiting) >= self.capacity:
                raise QueueFull(f"{len(self._waiting)} pictures are waiting for the model")
            self._waiting.append(job)
            self._condition.notify()
        return job.future

    def close(self) -> None:
        """Stop after the model call in progress; waiting pictures are cancelled."""
        with self._condition:
            self._closed = True
            for job in self._waiting:
                job.future.cancel()
            self._waiting.clear()
            self._condition.notify()
        self._thread.join()

    def _next_batch(self) -> list[_Job] | None:
        """The oldest waiting picture and the waiting pictures of its size, up to `max_batch`; None when closed."""
        with self._condition:
            while not self._waiting and not self._closed:
                self._condition.wait()
            if self._closed:
                return None
            first = self._waiting.popleft()
            batch = [first]
            if self.max_batch > 1:
                others = deque()
                while self._waiting:
                    job = self._waiting.popleft()
                    same = len(batch) < self.max_batch and job.image.shape == first.image.shape
                    (batch if same else others).append(job)
                self._waiting = others
        # a request that gave up (timeout, client gone) is dropped here, before it costs a model call
        return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            start = time.perf_counter()
            try:
                outputs = self.model.predict_batch(np.stack([job.image for job in batch]))
            except Exception as error:  # one bad call must not stop the server: each request answers 500
                log.exception("model call failed on %d picture(s)", len(batch))
                for job in batch:
                    job.future.set_exception(error)
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - start)
            for i, job in enumerate(batch):
                job.future.set_result({name: value[i : i + 1] for name, value in outputs.items()})
