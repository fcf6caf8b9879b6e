"""The Label Studio ML backend, started on a free port and asked as Label Studio asks (label-studio-ml's routes
and request bodies); its answers read back by our Label Studio reader into the model's own masks."""

from __future__ import annotations

import json
import threading
import urllib.request

import numpy as np
import pytest
from PIL import Image

from object_detection_utils import Segmenter, load_model, read_image
from object_detection_utils.apps.label_studio_backend import Backend, make_server
from object_detection_utils.label_exports import ExportOptions
from object_detection_utils.training.labels.round_trip import read_detections

POLYGON_CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <PolygonLabels name="label" toName="image" strokeWidth="3" pointSize="small" opacity="0.9">
    <Label value="person" background="red"/>
    <Label value="dog" background="blue"/>
  </PolygonLabels>
</View>"""
BRUSH_CONFIG = """<View>
  <Image name="photo" value="$img"/>
  <BrushLabels name="tag" toName="photo"><Label value="person"/><Label value="dog"/><Label value="car"/></BrushLabels>
</View>"""


@pytest.fixture(scope="module")
def segmenter(tiny_frozen_dir):
    return Segmenter(load_model(tiny_frozen_dir))


@pytest.fixture()
def server(segmenter, tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (64, 48), (220,) * 3).save(pictures / "b.png")  # bright: person, dog and car
    backend = Backend(segmenter, pictures, options=ExportOptions(model_version="tiny"))
    server = make_server(backend, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", pictures
    server.shutdown()
    server.server_close()


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_and_setup_answer_as_label_studio_ml(server):
    url, _ = server
    assert call(f"{url}/health") == (200, {"status": "UP", "model_class": "InstanceSegmentation"})
    assert call(f"{url}/setup", {"project": "3.1712345678", "schema": POLYGON_CONFIG, "hostname":
                                 "http://localhost:8080", "access_token": "x", "model_version": None}) == (
        200, {"model_version": "tiny"})


def test_predict_answers_polygons_of_the_configured_classes(server, segmenter, tmp_path):
    url, pictures = server
    task = {"id": 11, "data": {"image": "/data/upload/3/0a1b2c3d-b.png"}, "annotations": [], "predictions": []}
    status, answer = call(f"{url}/predict", {"tasks": [task], "model_version": None, "project": "3.1712345678",
                                             "label_config": POLYGON_CONFIG, "params": {"login": None,
                                                                                        "password": None,
                                                                                        "context": None}})
    assert status == 200
    (result,) = answer["results"]
    assert result["model_version"] == "tiny"
    assert [(r["type"], r["from_name"], r["to_name"], r["value"]["polygonlabels"]) for r in result["result"]] == [
        ("polygonlabels", "label", "image", ["person"]), ("polygonlabels", "label", "image", ["dog"])]  # no car
    (tmp_path / "tasks.json").write_text(json.dumps([{**task, "predictions": [result]}]))
    back = read_detections(tmp_path / "tasks.json", "label-studio", pictures)["b.png"]
    expected = segmenter(read_image(pictures / "b.png"))[:2]
    assert np.array_equal(back.masks, expected.masks) and back.class_names == ("person", "dog")


def test_predict_answers_brush_masks_for_a_brush_config_and_400_for_a_missing_picture(server):
    url, _ = server
    status, answer = call(f"{url}/predict", {"tasks": [{"id": 1, "data": {"img": "/data/local-files/?d=b.png"}}],
                                             "label_config": BRUSH_CONFIG, "project": "1.1"})
    assert status == 200
    results = answer["results"][0]["result"]
    assert [(r["type"], r["from_name"], r["to_name"]) for r in results] == [("brushlabels", "tag", "photo")] * 3
    status, answer = call(f"{url}/predict", {"tasks": [{"id": 2, "data": {"img": "missing.png"}}],
                                             "label_config": BRUSH_CONFIG})
    assert status == 400 and "missing.png: not in --pictures" in answer["error"]
