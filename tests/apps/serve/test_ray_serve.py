"""The same app as a Ray Serve deployment on a local Ray (2 CPUs, usage statistics off, one instance for the
module): one replica answers /v1/segment exactly as the Segmenter does in-process, and TF Serving's routes too."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from serve_helpers import picture, picture_bytes

from object_detection_utils import Segmenter, load_model
from object_detection_utils.coco_format import decode_mask

pytest.importorskip("fastapi", reason='the server needs its extra: pip install -e ".[serve]"')
httpx = pytest.importorskip("httpx", reason='the server tests need httpx: pip install -e ".[test]"')
pytest.importorskip("ray.serve", reason='--ray needs Ray Serve: pip install -e ".[ray]"')

from object_detection_utils.apps.serve.app import ServerSettings
from object_detection_utils.apps.serve.ray_serve import APP_NAME, ReplicaOptions, start
from object_detection_utils.predictor import SegmenterSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_serve_url(tiny_frozen_dir):
    import ray
    from ray import serve

    from object_detection_utils.apps.batch.ray_cluster import connect

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connect(num_cpus=2)
    try:
        start(SegmenterSpec(str(tiny_frozen_dir)), ServerSettings(token="ray-token"), ReplicaOptions(replicas=1),
              host="127.0.0.1", port=port)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_replica_answers_as_the_segmenter_does(ray_serve_url, tiny_frozen_dir):
    auth = {"Authorization": "Bearer ray-token"}
    answer = httpx.post(f"{ray_serve_url}/v1/segment", content=picture_bytes(40, 30, 255), headers=auth, timeout=60)
    assert answer.status_code == 200, answer.text
    want = Segmenter(load_model(tiny_frozen_dir)).segment(picture(40, 30, 255))
    body = answer.json()
    assert [i["class_name"] for i in body["instances"]] == list(want.class_names) == ["person", "dog", "car"]
    assert all(np.array_equal(decode_mask(i["mask"]), m) for i, m in zip(body["instances"], want.masks))
    status = httpx.get(f"{ray_serve_url}/v1/models/tiny_tf1_coco", headers=auth, timeout=60)
    assert status.json()["model_version_status"][0]["state"] == "AVAILABLE"
    assert httpx.get(f"{ray_serve_url}/readyz", timeout=60).json() == {"status": "ready", "model": "tiny_tf1_coco"}
    assert httpx.post(f"{ray_serve_url}/v1/segment", content=b"x", timeout=60).status_code == 401


def test_replica_options_become_deployment_options():
    assert ReplicaOptions(replicas=3).deployment_options() == {"ray_actor_options": {"num_cpus": 1.0},
                                                               "num_replicas": 3}
    assert ReplicaOptions(min_replicas=1, max_replicas=4, cpus=2).deployment_options() == {
        "ray_actor_options": {"num_cpus": 2}, "autoscaling_config": {"min_replicas": 1, "max_replicas": 4,
                                                                      "target_ongoing_requests": 2}}
    assert APP_NAME == "instance-segmentation"
