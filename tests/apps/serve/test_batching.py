"""The model queue: pictures waiting together of one size share a model call (for models that take batches), each
gets its own outputs back, a full queue refuses at once, a failed call fails only its pictures."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager

import numpy as np
import pytest
from serve_helpers import picture

from object_detection_utils import load_model
from object_detection_utils.apps.serve.batching import ModelQueue, QueueFull


@pytest.fixture(scope="module")
def model(tiny_frozen_dir):
    return load_model(tiny_frozen_dir)


class Gate:
    """A model wrapper that records each call's batch shape and holds the first call until released."""

    def __init__(self, model):
        self.calls: list[tuple[int, ...]] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.model = dataclasses.replace(model, _run=self.run)
        self._run = model._run

    def run(self, images):
        self.calls.append(images.shape)
        self.entered.set()
        assert self.release.wait(30)
        if images.shape[2] == 13:
            raise RuntimeError("engine failure")
        return self._run(images)


@contextmanager
def gated_queue(model, capacity: int, max_batch: int):
    """A queue on a `Gate`d model whose first call is running (held) when the block starts; closed after."""
    gate = Gate(model)
    queue = ModelQueue(gate.model, capacity=capacity, max_batch=max_batch)
    try:
        yield gate, queue
    finally:
        gate.release.set()
        queue.close()


def _wait_depth(queue: ModelQueue, depth: int) -> None:
    for _ in range(3000):
        if queue.depth == depth:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"queue depth stayed {queue.depth}, expected {depth}")


def test_same_size_pictures_waiting_together_share_one_call_and_get_their_own_outputs(model):
    with gated_queue(model, capacity=8, max_batch=8) as (gate, queue):
        first = queue.submit(picture(20, 10, 0))
        assert gate.entered.wait(30)
        a1, b, a2 = (queue.submit(picture(20, 10, 51)), queue.submit(picture(30, 10, 102)),
                     queue.submit(picture(20, 10, 204)))
        gate.release.set()
        scores = [f.result(30)["detection_scores"][0, 2] for f in (first, a1, b, a2)]
        assert gate.calls == [(1, 10, 20, 3), (2, 10, 20, 3), (1, 10, 30, 3)]
        want = [model.predict(picture(w, 10, fill))["detection_scores"][0, 2]
                for w, fill in ((20, 0), (20, 51), (30, 102), (20, 204))]
        assert np.float32(scores).tolist() == np.float32(want).tolist()
        assert first.result()["detection_boxes"].shape == (1, 5, 4)


def test_a_model_that_takes_one_picture_per_call_is_never_batched(tiny_saved_dir):
    queue = ModelQueue(load_model(tiny_saved_dir, warm_up=False), capacity=4, max_batch=8)
    try:
        assert queue.max_batch == 1
    finally:
        queue.close()


def test_full_queue_refuses_at_once_and_a_failure_fails_only_its_pictures(model):
    with gated_queue(model, capacity=1, max_batch=1) as (gate, queue):
        running = queue.submit(picture(13, 10, 0))
        assert gate.entered.wait(30)
        waiting = queue.submit(picture(20, 10, 0))
        _wait_depth(queue, 1)
        with pytest.raises(QueueFull):
            queue.submit(picture(20, 10, 0))
        gate.release.set()
        with pytest.raises(RuntimeError, match="engine failure"):
            running.result(30)
        assert waiting.result(30)["num_detections"].tolist() == [4.0]


def test_a_cancelled_request_costs_no_model_call(model):
    with gated_queue(model, capacity=4, max_batch=1) as (gate, queue):
        queue.submit(picture(20, 10, 0))
        assert gate.entered.wait(30)
        gone = queue.submit(picture(20, 10, 1))
        assert gone.cancel()  # the client gave up while it waited
        kept = queue.submit(picture(20, 10, 2))
        gate.release.set()
        kept.result(30)
        assert len(gate.calls) == 2
