"""Bad requests, each answered with one JSON error line and the right status while the server stays up and keeps
nothing: not a picture, a truncated picture, a decompression bomb, an upload over the limit, an unknown class,
a wrong token, a client leaving mid-upload, a slow client, a full queue."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest
from serve_helpers import one_json_error, picture_bytes, running

from object_detection_utils import Segmenter, load_model

pytest.importorskip("fastapi", reason='the server needs its extra: pip install -e ".[serve]"')
httpx = pytest.importorskip("httpx", reason='the server tests need httpx: pip install -e ".[test]"')

from object_detection_utils.apps.serve.app import ServerSettings, create_app

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BYTES = 50_000
MAX_PIXELS = 50 * 50


@pytest.fixture(scope="module")
def model(tiny_frozen_dir):
    return load_model(tiny_frozen_dir)


@pytest.fixture(scope="module")
def server(model):
    settings = ServerSettings(max_upload_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, token=TOKEN, timeout=60)
    with running(create_app(Segmenter(model), settings)) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def still_serving(request):
    """After each test: the server answers a good picture and holds nothing in its queue."""
    yield
    if "client" in request.fixturenames:
        client = request.getfixturevalue("client")
        assert client.post("/v1/segment", content=picture_bytes(10, 10, 0)).status_code == 200
        assert request.getfixturevalue("server").app.state.queue.depth == 0


def test_not_a_picture(client):
    assert one_json_error(client.post("/v1/segment", content=b"just some text"), 400) == (
        "upload: not a picture (unrecognised format)")
    assert one_json_error(client.post("/v1/segment", content=b""), 400) == "upload: empty file (0 bytes)"


def test_truncated_picture(client):
    data = picture_bytes(60, 40, 77, "jpeg")
    assert one_json_error(client.post("/v1/segment", content=data[: len(data) // 2]), 400).startswith(
        "upload: unreadable picture")


def test_decompression_bomb_is_refused_before_decoding(client, png_declaring):
    message = one_json_error(client.post("/v1/segment", content=png_declaring(40_000, 40_000)), 413)
    assert message.startswith(f"upload: 40000x40000 pixels is over the limit of {MAX_PIXELS} pixels")


def test_upload_over_the_limit_by_length_and_by_stream(client):
    big = b"\0" * (MAX_BYTES + 1)
    assert one_json_error(client.post("/v1/segment", content=big), 413) == (
        f"upload of {MAX_BYTES + 1} bytes is over the limit of {MAX_BYTES} bytes")

    def chunked():  # no Content-Length: counted as it streams in
        for _ in range(MAX_BYTES // 1000 + 2):
            yield b"\0" * 1000

    assert one_json_error(client.post("/v1/segment", content=chunked()), 413) == (
        f"upload is over the limit of {MAX_BYTES} bytes")
    rows = [[[0, 0, 0]] * 51] * 50  # 51x50 as TF Serving's nested lists: over the pixel limit
    assert one_json_error(client.post("/v1/models/tiny_tf1_coco:predict", json={"instances": [rows]}), 413) == (
        f"a 51x50 picture is over the limit of {MAX_PIXELS} pixels")


def test_unknown_class_and_bad_options(client):
    image = picture_bytes(10, 10, 0)
    assert "nosuchclass" in one_json_error(client.post("/v1/segment?classes=person,nosuchclass", content=image), 400)
    assert one_json_error(client.post("/v1/segment?min_score=2", content=image), 400) == (
        "min_score '2' is not a number from 0 to 1")
    assert one_json_error(client.post("/v1/segment?mask_format=svg", content=image), 400) == (
        "mask_format 'svg' is not one of rle, polygons, png")
    assert one_json_error(client.post("/v1/segment", files={"min_score": (None, "0.5")}), 400).startswith(
        "the form has no file")


def test_wrong_token(server, client):
    answer = httpx.post(f"{server.url}/v1/segment", content=picture_bytes(10, 10, 0),
                        headers={"Authorization": "Bearer t0ken-but-longer"})
    assert one_json_error(answer, 401).startswith("a valid bearer token is needed")


def _raw_request(port: int, body_sent: bytes, declared: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                       + b"\r\nContent-Type: image/png\r\nContent-Length: " + str(declared).encode() + b"\r\n\r\n"
                       + body_sent)
    return connection


def _client_gone_count(client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('segmentation_requests_total{route="/v1/segment",status="499"}'):
            return float(line.split()[-1])
    return 0.0


def test_client_disconnecting_mid_upload(server, client):
    before = _client_gone_count(client)
    connection = _raw_request(server.port, picture_bytes(50, 50, 0)[:40], declared=5000)
    connection.close()
    for _ in range(1000):  # until the server has seen the disconnect (bounded)
        if _client_gone_count(client) == before + 1:
            break
        threading.Event().wait(0.01)
    assert _client_gone_count(client) == before + 1
    assert server.app.state.queue.depth == 0


def test_slow_client_gets_408_and_others_are_served_meanwhile(model):
    settings = ServerSettings(timeout=0.5)
    with running(create_app(Segmenter(model), settings)) as slow_server:
        connection = _raw_request(slow_server.port, b"\x89PNG", declared=5000)  # and never the rest
        served = httpx.post(f"{slow_server.url}/v1/segment", content=picture_bytes(10, 10, 0), timeout=30)
        assert served.status_code == 200
        connection.settimeout(30)
        answer = connection.recv(65536).decode()
        connection.close()
        head, _, body = answer.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408 ")
        assert body == '{"error":"the upload did not arrive in time"}'


def test_full_queue_answers_503_with_retry_after(model):
    release, running_call = threading.Event(), threading.Event()

    def blocking_run(images):
        running_call.set()
        release.wait(30)
        return model._run(images)

    blocked = dataclasses.replace(model, _run=blocking_run)
    app = create_app(Segmenter(blocked), ServerSettings(queue_size=1))
    with running(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        answers = []
        first = threading.Thread(target=lambda: answers.append(client.post("/v1/segment", content=picture_bytes(9, 9, 0))))
        first.start()
        assert running_call.wait(30)  # the first picture is in the model
        second = threading.Thread(target=lambda: answers.append(client.post("/v1/segment", content=picture_bytes(9, 9, 0))))
        second.start()
        for _ in range(3000):  # until the second waits in the queue (bounded)
            if app.state.queue.depth == 1:
                break
            threading.Event().wait(0.01)
        assert app.state.queue.depth == 1
        refused = client.post("/v1/segment", content=picture_bytes(9, 9, 0))
        assert one_json_error(refused, 503) == "the server is busy: try again shortly"
        assert refused.headers["retry-after"] == "1"
        assert client.get("/readyz").status_code == 503
        release.set()
        first.join(30)
        second.join(30)
        assert [a.status_code for a in answers] == [200, 200]
        assert client.get("/readyz").status_code == 200
