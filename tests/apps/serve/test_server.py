"""The server's API on the tiny zoo-signature model (known outputs): /v1/segment in each mask format, per-request
filters, TF Serving's predict/status/metadata, health, metrics, the token, and a model failure that answers 500
while the server goes on. One server for the module (the tests only read)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image
from serve_helpers import one_json_error, picture, picture_bytes, running

from object_detection_utils import Segmenter, load_model
from object_detection_utils.coco_format import decode_mask

pytest.importorskip("fastapi", reason='the server needs its extra: pip install -e ".[serve]"')
httpx = pytest.importorskip("httpx", reason='the server tests need httpx: pip install -e ".[test]"')

from object_detection_utils.apps.serve.app import ServerSettings, create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAILING_WIDTH = 13  # the wrapped model raises on pictures this wide


@pytest.fixture(scope="module")
def model(tiny_frozen_dir):
    return load_model(tiny_frozen_dir)


@pytest.fixture(scope="module")
def server(model):
    def run(images):
        if images.shape[2] == FAILING_WIDTH:
            raise RuntimeError("simulated engine failure\nwith a second line")
        return model._run(images)

    failing = dataclasses.replace(model, _run=run)
    app = create_app(Segmenter(failing), ServerSettings(token=TOKEN, name="tiny"))
    with running(app) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        yield client


def expected(model, image: np.ndarray, min_score: float = 0.5, classes=None):
    return Segmenter(model, classes=classes, min_score=min_score).segment(image)


def test_multipart_upload_answers_the_segmenters_detections_with_rle_masks(client, model):
    answer = client.post("/v1/segment", files={"image": ("grey.png", picture_bytes(80, 60, 200))})
    assert answer.status_code == 200
    body = answer.json()
    want = expected(model, picture(80, 60, 200))
    assert (body["model"], body["image_size"], body["mask_format"]) == ("tiny", [60, 80], "rle")
    # rows 0 (0.95), 1 (0.80) and 2 (200 / 255 = 0.784); row 3 scores 0.30
    assert [i["class_name"] for i in body["instances"]] == ["person", "dog", "car"]
    assert [i["class_id"] for i in body["instances"]] == [1, 18, 3] == want.class_ids.tolist()
    assert [i["score"] for i in body["instances"]] == [0.95, 0.8, round(200 / 255, 5)]
    assert body["instances"][0]["box"] == [16.0, 6.0, 48.0, 30.0]  # (0.2, 0.1, 0.6, 0.5) of 80x60
    for instance, mask, area in zip(body["instances"], want.masks, want.areas):
        assert np.array_equal(decode_mask(instance["mask"]), mask)
        assert instance["area"] == int(area) == int(mask.sum())


def test_raw_body_with_query_filters(client, model):
    answer = client.post("/v1/segment?classes=dog,3&min_score=0.7", content=picture_bytes(80, 60, 200),
                         headers={"Content-Type": "image/png"})
    body = answer.json()
    assert [(i["class_name"], i["score"]) for i in body["instances"]] == [("dog", 0.8), ("car", round(200 / 255, 5))]
    answer = client.post("/v1/segment", data={"min_score": "0.9"}, files={"image": ("a.png", picture_bytes(80, 60, 10))})
    assert [i["class_name"] for i in answer.json()["instances"]] == ["person"]


def test_polygon_and_png_masks_are_the_same_masks(client, model):
    want = expected(model, picture(80, 60, 200))
    png = client.post("/v1/segment?mask_format=png", content=picture_bytes(80, 60, 200)).json()
    for instance, mask in zip(png["instances"], want.masks):
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(instance["mask"]))))
        assert np.array_equal(decoded, mask.astype(np.uint8) * 255)
    polygons = client.post("/v1/segment?mask_format=polygons", content=picture_bytes(80, 60, 200)).json()
    person = polygons["instances"][0]["mask"]
    ys, xs = np.nonzero(want.masks[0])
    assert len(person) == 1  # one part; its outline runs along the mask's outer pixels
    outline = np.array(person[0]).reshape(-1, 2)
    assert (outline.min(axis=0).tolist(), outline.max(axis=0).tolist()) == (
        [xs.min(), ys.min()], [xs.max(), ys.max()])


def test_tf_serving_row_format_with_nested_lists_and_b64(client, model):
    pixels = picture(20, 16, 128)
    row = client.post("/v1/models/tiny:predict", json={"instances": [pixels.tolist()]})
    b64 = client.post("/v1/models/tiny:predict",
                      json={"signature_name": "serving_default",
                            "instances": [{"b64": base64.b64encode(picture_bytes(20, 16, 128)).decode()}]})
    assert row.status_code == b64.status_code == 200
    assert row.text == b64.text
    (prediction,) = row.json()["predictions"]
    raw = model.predict(pixels)
    assert sorted(prediction) == sorted(raw)
    assert prediction["num_detections"] == 4.0 and '"num_detections":4.0' in row.text
    assert prediction["detection_classes"] == [1.0, 18.0, 3.0, 1.0, 88.0]
    assert prediction["detection_scores"][:2] == [0.95, 0.8] and '"detection_scores":[0.95,0.8,' in row.text
    assert np.array_equal(np.float32(prediction["detection_boxes"]), raw["detection_boxes"][0])
    assert np.array_equal(np.float32(prediction["detection_masks"]), raw["detection_masks"][0])


def test_tf_serving_columnar_format_keeps_the_batch_axis(client, model):
    dark, bright = picture(20, 16, 51), picture(20, 16, 204)
    answer = client.post("/v1/models/tiny/versions/1:predict",
                         json={"inputs": {"inputs": [dark.tolist(), bright.tolist()]}})
    outputs = answer.json()["outputs"]
    assert sorted(outputs) == ["detection_boxes", "detection_classes", "detection_masks", "detection_scores",
                               "num_detections"]
    assert outputs["num_detections"] == [4.0, 4.0]
    # row 2 scores mean / 255 of each picture, as the model computes it in float32 (0.200000018, written so)
    want = [model.predict(image)["detection_scores"][0, 2] for image in (dark, bright)]
    assert np.float32([scores[2] for scores in outputs["detection_scores"]]).tolist() == np.float32(want).tolist()
    assert np.float32(0.200000018) == want[0] and "0.200000018" in answer.text
    assert np.asarray(outputs["detection_masks"]).shape == (2, 5, 15, 15)


def test_tf_serving_status_metadata_and_errors(client):
    assert client.get("/v1/models/tiny").json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    metadata = client.get("/v1/models/tiny/metadata").json()
    assert metadata["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["inputs"]["dtype"] == "DT_UINT8"
    assert [d["size"] for d in signature["inputs"]["inputs"]["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"]
    assert sorted(signature["outputs"]) == ["detection_boxes", "detection_classes", "detection_masks",
                                            "detection_scores", "num_detections"]
    assert one_json_error(client.get("/v1/models/other"), 404) == "Could not find any versions of model other"
    assert one_json_error(client.post("/v1/models/other:predict", json={"instances": [[[[0, 0, 0]]]]}), 404) == (
        "Servable not found for request: Latest(other)")
    assert one_json_error(client.post("/v1/models/tiny:predict", json={"instances": [], "inputs": []}), 400) == (
        "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    assert one_json_error(client.post("/v1/models/tiny:predict", json={"signature_name": "x", "instances": [1]}),
                          400) == 'Serving signature name: "x" not found in signature def'
    assert one_json_error(client.post("/v1/models/tiny:predict", content=b"{nope"), 400).startswith("JSON Parse error")


def test_health_needs_no_token_and_metrics_count_requests(server, client):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready", "model": "tiny"}
    assert httpx.get(f"{server.url}/").text.startswith("<!doctype html>")
    client.post("/v1/segment", content=picture_bytes(8, 8, 0))
    metrics = client.get("/metrics").text
    for name in ("segmentation_requests_total", "segmentation_request_seconds_bucket", "segmentation_queue_depth",
                 "segmentation_model_seconds_count"):
        assert name in metrics
    assert 'segmentation_requests_total{route="/v1/segment",status="200"}' in metrics
    assert "segmentation_queue_depth 0.0" in metrics


def test_token_is_required_and_checked(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        for method, path in (("POST", "/v1/segment"), ("GET", "/metrics"), ("GET", "/v1/models/tiny")):
            answer = httpx.request(method, f"{server.url}{path}", headers=headers, content=picture_bytes(8, 8, 0))
            assert one_json_error(answer, 401).startswith("a valid bearer token is needed")
            assert answer.headers["www-authenticate"] == "Bearer"


def test_a_model_failure_answers_500_and_the_server_goes_on(client):
    failed = client.post("/v1/segment", content=picture_bytes(FAILING_WIDTH, 8, 0))
    assert one_json_error(failed, 500) == "the model failed on this picture: simulated engine failure"
    again = client.post("/v1/segment", content=picture_bytes(20, 8, 0))
    assert again.status_code == 200 and len(again.json()["instances"]) == 2
    assert client.get("/readyz").status_code == 200


def test_answers_are_json_throughout(client):
    answer = client.post("/v1/segment", content=picture_bytes(20, 8, 255))
    assert answer.headers["content-type"] == "application/json"
    assert json.loads(answer.text)["instances"][2]["score"] == 1.0
