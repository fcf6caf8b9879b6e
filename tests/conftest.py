"""Shared fixtures: the tiny zoo-signature models (built once per run) and the shared real data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import tiny_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"

# pytest-xdist (pyproject's addopts) hands each worker whole groups of tests: a module, so that its fixtures are built
# once, or modules that share a costly session fixture (the trained tiny model). The costliest groups go out first,
# so that the longest work starts first and the other workers fill in around it.
# The training group: every module that trains or reads the session's trained tiny model (a worker's second
# training run costs half its first, its model caches being warm).
SHARED_GROUPS = {"training/test_training.py": "training", "training/test_finetune.py": "training",
                 "training/test_label_formats.py": "training", "models/test_int8.py": "training"}
COSTLIEST_FIRST = ("training", "apps/test_ray_batch.py", "models/test_backends.py",
                   "apps/serve/test_ray_serve.py", "apps/test_matterport_scripts.py", "test_quiet.py",
                   "apps/test_batch_failures.py", "apps/test_batch.py", "io/test_video_failures.py")


def test_group(nodeid: str) -> str:
    """The group of a test: its module's path under tests/, or the group modules share (SHARED_GROUPS)."""
    module = nodeid.split("::", 1)[0].removeprefix("tests/")
    return SHARED_GROUPS.get(module, module)


def pytest_collection_modifyitems(config, items):
    """The costliest groups first (COSTLIEST_FIRST); the others in collection order."""
    order = {group: i for i, group in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: order.get(test_group(item.nodeid), len(order)))


def pytest_xdist_make_scheduler(config, log):
    """xdist's module-by-module scheduling, with SHARED_GROUPS' modules as one unit. (Its --dist loadgroup marks would
    do the same, but pytest 9.2 no longer lets xdist 3.8 rename the tests it groups.)"""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid)

    config.option.loadscopereorder = False  # keep COSTLIEST_FIRST's order, not the groups' sizes in tests
    return GroupScheduling(config, log)


def pytest_runtest_logfinish(nodeid, location):
    """With TEST_TIMELINE=<file>, one line per test: worker, start and end (seconds since the epoch), test id: which
    worker ran what and when, to see the suite's longest chain of work."""
    path = os.environ.get("TEST_TIMELINE")
    if path:
        started = _STARTED.pop(nodeid, None)
        with open(path, "a") as file:
            file.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}\t{started}\t{time.time():.2f}\t{nodeid}\n")


_STARTED: dict[str, str] = {}


def pytest_runtest_logstart(nodeid, location):
    if os.environ.get("TEST_TIMELINE"):
        _STARTED[nodeid] = f"{time.time():.2f}"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test away from the user's real model cache, and from downloading real zoo models."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("INSTANCE_SEGMENTATION_CACHE", str(cache))
    monkeypatch.delenv("INSTANCE_SEGMENTATION_MODELS_DIR", raising=False)
    monkeypatch.setenv("INSTANCE_SEGMENTATION_ZOO_URL", "http://127.0.0.1:1")  # refused at once


@pytest.fixture(scope="session")
def tiny_frozen_dir(tmp_path_factory) -> Path:
    """A TF1 zoo folder: frozen_inference_graph.pb with `image_tensor` in, masks out."""
    return tiny_model.build_frozen_graph(tmp_path_factory.mktemp("models") / "tiny_tf1_coco")


@pytest.fixture(scope="session")
def tiny_saved_dir(tmp_path_factory) -> Path:
    """A TF2 zoo folder: saved_model/ with `input_tensor` in, masks out."""
    return tiny_model.build_saved_model(tmp_path_factory.mktemp("models") / "tiny_tf2_coco")


@pytest.fixture(scope="session")
def tiny_boxes_only_dir(tmp_path_factory) -> Path:
    """A TF1 zoo folder of a model without a mask head."""
    return tiny_model.build_frozen_graph(tmp_path_factory.mktemp("models") / "tiny_boxes", with_masks=False)


@pytest.fixture(scope="session", params=["frozen_graph", "saved_model"])
def tiny_model_dir(request, tiny_frozen_dir, tiny_saved_dir) -> Path:
    """Each tiny model format in turn."""
    return tiny_frozen_dir if request.param == "frozen_graph" else tiny_saved_dir


@pytest.fixture(scope="session")
def tiny_training_run(tmp_path_factory) -> dict:
    """The whole training job, once for the run: two real steps of a tiny Mask R-CNN (ResNet10, 64 px, light heads)
    on 6 generated shapes pictures, its export and validation. Its folders are read by tests/training; a test that
    trains on or changes them works on a copy. Skips unless tf-models-official is installed."""
    pytest.importorskip("official.vision", reason="tf-models-official is not installed (pip install -e '.[train]'): "
                                                  "training tests skipped")
    from object_detection_utils.shapes import write_shapes_dataset
    from object_detection_utils.training.pipeline import options_for, run_training, split_dataset
    from object_detection_utils.training.tfrecords import CocoDataset

    root = tmp_path_factory.mktemp("training")
    annotations = write_shapes_dataset(root / "shapes", count=6, seed=4, size=(64, 64), progress=False)
    dataset = CocoDataset(annotations, root / "shapes" / "images")
    split = split_dataset(dataset)
    options, label_map = options_for(dataset, steps=2, **tiny_model.TINY_TRAINING)
    summary = run_training(split, options, label_map, root / "run", root / "export", progress=False)
    return {"root": root, "dataset": dataset, "split": split, "options": options, "summary": summary,
            "run": root / "run", "records": root / "run" / "data" / "train.tfrecord", "export": root / "export"}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real pictures, COCO annotations and label maps (tests using it skip when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real pictures not available: {SHARED_DATA} is absent")
    return SHARED_DATA


def _trained_model_folders() -> list[Path]:
    if not SHARED_MODELS.is_dir():
        return []
    return sorted(p for p in SHARED_MODELS.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture(params=_trained_model_folders() or [None], ids=lambda p: p.name if p else "none")
def trained_model_dir(request) -> Path:
    """Each real trained model folder in ../shared/models in turn (the test skips when there is none)."""
    if request.param is None:
        pytest.skip(f"no trained model in {SHARED_MODELS}")
    return request.param


@pytest.fixture(scope="session")
def openvino_conversion(tmp_path_factory):
    """`openvino_conversion(model_dir)`: a model cache folder holding `model_dir` converted to OpenVINO f32 and
    gated. Each model is converted once for the whole run: the first xdist worker to ask converts, under a file
    lock, and the others find its cache (a conversion costs a TensorFlow child process and half a minute)."""
    import fcntl
    import hashlib

    if "PYTEST_XDIST_WORKER" in os.environ:  # the workers' folders share their parent, one per run
        shared = tmp_path_factory.getbasetemp().parent
    else:
        shared = tmp_path_factory.getbasetemp()

    def convert(model_dir: Path) -> Path:
        from object_detection_utils.models.zoo import load_model

        cache = shared / f"openvino_cache_{hashlib.sha256(str(model_dir).encode()).hexdigest()[:12]}"
        with open(f"{cache}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (cache / "openvino").is_dir():
                with pytest.MonkeyPatch.context() as patch:
                    patch.setenv("INSTANCE_SEGMENTATION_CACHE", str(cache))
                    load_model(model_dir, backend="openvino", warm_up=False)
        return cache

    return convert


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder, where the scripts live."""
    return REPO


@pytest.fixture(scope="session")
def png_declaring():
    """`png_declaring(width, height)`: the bytes of a PNG file of a few dozen bytes that declares that many
    grayscale pixels and holds almost none: a decompression bomb, as far as a header goes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def make(width: int, height: int) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
            + chunk(b"IEND", b"")

    return make


@pytest.fixture(scope="session")
def matterport_weights(tmp_path_factory) -> Path:
    """A matterport `.h5` (resnet50, 5 classes) in Keras 2's exact layout, with seeded calibrated weights
    (tests/matterport_h5.py); its `TEST_CONFIG` runs it small."""
    import matterport_h5

    layout = matterport_h5.Layout.named("resnet50", 5)
    path = tmp_path_factory.mktemp("matterport") / "mask_rcnn_test.h5"
    return matterport_h5.write_matterport_h5(path, layout, matterport_h5.calibrated_weights(layout, seed=15))


@pytest.fixture(scope="session")
def matterport_config_file(tmp_path_factory) -> Path:
    """matterport_h5's `TEST_CONFIG` as the .json a user passes to --matterport-config."""
    import json

    import matterport_h5

    path = tmp_path_factory.mktemp("matterport_config") / "test_config.json"
    path.write_text(json.dumps(matterport_h5.TEST_CONFIG), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def run_headless():
    """`run_headless(script, *args, cwd=REPO, timeout=300)`: one of the repository's scripts in a fresh process
    without a display, as a user runs it; the CompletedProcess with its text output."""
    import subprocess
    import sys

    def run(script: str, *args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "MPLBACKEND": "Agg"}
        env.pop("DISPLAY", None)
        return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def read_video():
    """`read_video(path)`: every frame (BGR) of a video file, its frame rate and (width, height)."""
    import cv2

    def read(path: Path):
        capture = cv2.VideoCapture(str(path))
        assert capture.isOpened(), f"{path} does not open as a video"
        fps = capture.get(cv2.CAP_PROP_FPS)
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        return frames, fps, size

    return read
