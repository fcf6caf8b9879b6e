"""instance_segmentation_server.py run exactly as a user runs it: it loads the model, listens on 127.0.0.1, needs
the token from --token-file (over the environment's), and refuses a missing token file with one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from serve_helpers import picture_bytes

pytest.importorskip("fastapi", reason='the server needs its extra: pip install -e ".[serve]"')
httpx = pytest.importorskip("httpx", reason='the server tests need httpx: pip install -e ".[test]"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_script_serves_with_a_token_file(repo_root, tiny_frozen_dir, tmp_path):
    (tmp_path / "token").write_text("abc123\n")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(repo_root / "instance_segmentation_server.py"), "--model", str(tiny_frozen_dir),
         "--port", str(port), "--token-file", str(tmp_path / "token"), "--classes", "person,dog"],
        cwd=tmp_path, env={**os.environ, "INSTANCE_SEGMENTATION_TOKEN": "not-this-one"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:  # bounded wait for the model to load
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.post(f"{url}/v1/segment", content=picture_bytes(40, 30, 255),
                            headers={"Authorization": "Bearer abc123"})
        assert answer.status_code == 200, answer.text
        assert [i["class_name"] for i in answer.json()["instances"]] == ["person", "dog"]  # --classes holds
        assert httpx.post(f"{url}/v1/segment", content=b"x", headers={"Authorization": "Bearer not-this-one"}
                          ).status_code == 401
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    assert f"serving tiny_tf1_coco on http://127.0.0.1:{port}/ (token: yes)" in stderr
    assert "Traceback" not in stderr


def test_a_missing_token_file_fails_with_one_line_before_the_model_loads(run_headless, tmp_path):
    result = run_headless("instance_segmentation_server.py", "--token-file", str(tmp_path / "missing"))
    assert (result.returncode, result.stderr.strip()) == (
        2, f"error: {tmp_path / 'missing'}: cannot read the token file (No such file or directory)")
