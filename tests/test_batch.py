"""Folder batches: every picture format, exact outputs, COCO JSON, summary, resume, bad files, kill and Ctrl+C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_model
from PIL import Image
from pycocotools.coco import COCO

from object_detection_utils import load_model, read_image, run_inference_for_single_image
from object_detection_utils.apps.batch import (
    JOURNAL_NAME,
    BatchOptions,
    Journal,
    coco_image_ids,
    find_pictures,
    run_batch,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "instance_segmentation_images.py"

# name -> (mode, fill value): the tiny model reports row 2 ("car") only when mean(picture) / 255 >= 0.5.
GOOD = {
    "a.jpg": ("RGB", 60),
    "b.png": ("RGB", 220),
    "c.bmp": ("RGB", 90),
    "d.webp": ("RGB", 200),
    "gray.png": ("L", 210),
    "rgba.png": ("RGBA", 40),
    "sub/e.jpg": ("RGB", 230),
    "sub/deeper/000000000139.png": ("RGB", 30),
}
SIZES = dict(zip(GOOD, [(48, 64), (52, 68), (54, 70), (58, 72), (60, 74), (62, 78), (64, 80), (68, 82)]))  # (h, w)


def expected_instances(name: str) -> int:
    return 3 if GOOD[name][1] / 255 >= 0.5 else 2


@pytest.fixture()
def mixed_folder(tmp_path) -> Path:
    folder = tmp_path / "pictures"
    for name, (mode, value) in GOOD.items():
        height, width = SIZES[name]
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fill = value if mode == "L" else (value,) * (4 if mode == "RGBA" else 3)
        Image.new(mode, (width, height), fill).save(path, **({"lossless": True} if name.endswith(".webp") else {}))
    (folder / "broken.jpg").write_bytes(b"this is not a picture")
    whole = (folder / "b.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.txt").write_text("not a picture suffix: ignored")
    return folder


@pytest.fixture(scope="module")
def model(tiny_frozen_dir):
    return load_model(tiny_frozen_dir)


def _options(out: Path, **changes) -> BatchOptions:
    return BatchOptions(output_dir=out, overlay=True, masks=True, coco_json=out / "results.json",
                        summary=out / "summary.csv", **changes)


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_finding_pictures_keeps_picture_suffixes_and_mirrors_subfolders(mixed_folder):
    flat = [p.name for p in find_pictures([mixed_folder])]
    assert flat == ["a.jpg", "b.png", "broken.jpg", "c.bmp", "d.webp", "gray.png", "rgba.png", "truncated.png"]
    deep = {p.name for p in find_pictures([mixed_folder], recursive=True)}
    assert deep == set(GOOD) | {"broken.jpg", "truncated.png"}
    globbed = [p.name for p in find_pictures([str(mixed_folder / "**" / "*.png")])]
    assert globbed == ["b.png", "gray.png", "rgba.png", "sub/deeper/000000000139.png", "truncated.png"]
    assert [p.name for p in find_pictures([mixed_folder / "c.bmp"])] == ["c.bmp"]
    inside = find_pictures([mixed_folder], recursive=True, exclude=mixed_folder / "sub")  # e.g. the output folder
    assert {p.name for p in inside} == set(GOOD) - {"sub/e.jpg", "sub/deeper/000000000139.png"} | {
        "broken.jpg", "truncated.png"}


def test_a_mixed_folder_gives_exact_outputs_and_reports_the_bad_files(model, mixed_folder, tmp_path):
    out = tmp_path / "out"
    pictures = find_pictures([mixed_folder], recursive=True)
    report = run_batch(model, pictures, _options(out), progress=False, log=lambda line: None)

    assert (report.done, report.skipped, report.failed, report.interrupted) == (8, 0, 2, False)
    failures = dict(report.failures)
    assert set(failures) == {"broken.jpg", "truncated.png"}
    assert "not a picture" in failures["broken.jpg"] and "truncated.png: unreadable" in failures["truncated.png"]

    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".masks/" not in p.as_posix()}
    assert files == set(GOOD) | {JOURNAL_NAME, "results.json", "summary.csv"}  # one overlay per good picture
    for name in GOOD:
        assert read_image(out / name).shape == (*SIZES[name], 3)  # complete, readable pictures
        mask_files = sorted((out / f"{name}.masks").iterdir())
        expected_names = ["000_person.png", "001_dog.png", "002_car.png"][: expected_instances(name)]
        assert [p.name for p in mask_files] == expected_names
        expected = run_inference_for_single_image(model, read_image(mixed_folder / name))
        for row, path in enumerate(mask_files):
            np.testing.assert_array_equal(np.asarray(Image.open(path)) > 0, expected.masks[row])
    for row in range(2):  # and worked out independently of the code, on the picture where that is exact
        mask = np.asarray(Image.open(out / "a.jpg.masks" / ["000_person.png", "001_dog.png"][row])) > 0
        np.testing.assert_array_equal(mask, tiny_model.expected_full_mask(row, *SIZES["a.jpg"]))
    assert not _temp_files(out)

    coco = COCO(str(out / "results.json"))
    images = {image["file_name"]: image for image in coco.dataset["images"]}
    assert set(images) == set(GOOD)
    assert images["sub/deeper/000000000139.png"]["id"] == 139  # COCO's numeric file names keep their id
    assert len({image["id"] for image in images.values()}) == len(GOOD)
    for name, image in images.items():
        assert (image["height"], image["width"]) == SIZES[name]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        expected = run_inference_for_single_image(model, read_image(mixed_folder / name))
        assert [a["category_id"] for a in annotations] == expected.class_ids.tolist()
        for annotation, mask in zip(annotations, expected.masks):
            np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), mask)
            assert annotation["area"] == int(mask.sum())
    results = coco.loadRes(coco.dataset["annotations"])  # usable as detection results under the same ids
    assert len(results.getAnnIds()) == sum(expected_instances(name) for name in GOOD)
    assert {c["id"]: c["name"] for c in coco.dataset["categories"]}[18] == "dog"

    with open(out / "summary.csv", newline="") as file:
        rows = {row["file"]: row for row in csv.DictReader(file)}
    assert set(rows) == set(GOOD) | {"broken.jpg", "truncated.png"}
    for name in GOOD:
        assert int(rows[name]["instances"]) == expected_instances(name)
        assert (rows[name]["n_person"], rows[name]["n_dog"]) == ("1", "1")
        assert rows[name]["n_car"] == ("1" if expected_instances(name) == 3 else "0")
        assert float(rows[name]["inference_seconds"]) > 0
    assert "not a picture" in rows["broken.jpg"]["error"]


def test_a_rerun_skips_complete_pictures_and_redoes_changed_or_missing_ones(model, mixed_folder, tmp_path):
    out = tmp_path / "out"
    pictures = find_pictures([mixed_folder], recursive=True)
    quiet = {"progress": False, "log": lambda line: None}
    run_batch(model, pictures, _options(out), **quiet)
    stamps = {name: (out / name).stat().st_mtime_ns for name in GOOD}

    again = run_batch(model, pictures, _options(out), **quiet)
    assert (again.done, again.skipped, again.failed) == (0, 8, 2)
    assert {name: (out / name).stat().st_mtime_ns for name in GOOD} == stamps
    assert len(COCO(str(out / "results.json")).dataset["annotations"]) == 20  # earlier runs' results kept

    (out / "a.jpg").unlink()  # an output gone
    Image.new("RGB", (10, 12), (250, 250, 250)).save(mixed_folder / "c.bmp")  # a source changed
    partial = run_batch(model, pictures, _options(out), **quiet)
    assert (partial.done, partial.skipped) == (2, 6)
    assert read_image(out / "c.bmp").shape == (12, 10, 3)
    assert len(list((out / "c.bmp.masks").iterdir())) == 3  # brighter now: the car row is back

    stricter = run_batch(model, pictures, _options(out, min_score=0.9), **quiet)  # other settings: redone
    assert (stricter.done, stricter.skipped) == (8, 0)
    assert [p.name for p in (out / "a.jpg.masks").iterdir()] == ["000_person.png"]  # stale masks removed

    forced = run_batch(model, pictures, _options(out, min_score=0.9, overwrite=True), **quiet)
    assert (forced.done, forced.skipped) == (8, 0)


def test_a_journal_line_cut_short_is_ignored_and_dropped(tmp_path):
    path = tmp_path / JOURNAL_NAME
    good = {"file": "a.jpg", "settings": {}, "kinds": [], "outputs": [], "coco": []}
    path.write_text(json.dumps(good) + "\n" + '{"file": "b.jpg", "sett')
    journal = Journal(path)
    assert [r["file"] for r in journal.records(["a.jpg", "b.jpg"])] == ["a.jpg"]
    journal.append({**good, "file": "c.jpg"})
    assert [json.loads(line)["file"] for line in path.read_text().splitlines()] == ["a.jpg", "c.jpg"]


def test_coco_image_ids_are_stable_numeric_stems_else_a_running_index():
    ids = coco_image_ids(["b.jpg", "000000000002.jpg", "a.jpg", "x/000000000002.png", "000000397133.jpg"])
    assert ids == {"000000000002.jpg": 2, "000000397133.jpg": 397133, "a.jpg": 1, "b.jpg": 3,
                   "x/000000000002.png": 4}


def test_the_script_exits_non_zero_with_a_summary_when_a_file_failed(tiny_frozen_dir, mixed_folder, tmp_path,
                                                                      capsys):
    import instance_segmentation_images

    out = tmp_path / "out"
    code = instance_segmentation_images.main(
        ["-i", str(mixed_folder), "-o", str(out), "--model", str(tiny_frozen_dir), "--no-progress",
         "--summary", str(out / "summary.jsonl"), "--classes", "person"])
    assert code == 1
    stderr = capsys.readouterr().err
    assert "done 6, skipped 0, failed 2" in stderr and "pictures/s" in stderr
    assert "broken.jpg: not a picture" in stderr
    lines = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert [line["counts"] for line in lines if "counts" in line] == [{"person": 1}] * 6
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a.jpg", "b.png", "c.bmp", "d.webp", "gray.png", "rgba.png", "summary.jsonl"]


# ---------------------------------------------------------------------------------------------- processes

PICTURES_IN_SLOW_RUN = 40


def _build_slow_model(folder: Path, iterations: int = 40, size: int = 384) -> Path:
    """The tiny model's outputs, made to wait on a chain of matrix products (~0.1 s a picture)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        outputs = tiny_model._outputs(tf, images, with_masks=True)
        x = tf.fill([size, size], tf.reduce_mean(tf.cast(images, tf.float32)) / 255.0 / size)
        for _ in range(iterations):
            x = tf.tanh(tf.matmul(x, x) + 0.1)
        outputs["detection_scores"] = outputs["detection_scores"] + 0.0 * tf.reduce_min(x)
        for name, tensor in outputs.items():
            tf.identity(tensor, name=name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    return folder


@pytest.fixture(scope="module")
def slow_model_dir(tmp_path_factory) -> Path:
    return _build_slow_model(tmp_path_factory.mktemp("models") / "slow")


@pytest.fixture()
def many_pictures(tmp_path) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(PICTURES_IN_SLOW_RUN):
        Image.new("RGB", (96, 64), (i * 6, 100, 50)).save(folder / f"p{i:03d}.png")
    return folder


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_records(journal: Path, count: int, process: subprocess.Popen, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.is_file():
            lines = journal.read_bytes().count(b"\n")
            if lines >= count:
                return lines
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be stopped: {process.communicate()[1][-2000:]}")
        time.sleep(0.01)
    process.kill()
    pytest.fail("the run made no progress")


@pytest.mark.slow
def test_a_killed_run_leaves_no_partial_output_and_the_rerun_completes(slow_model_dir, many_pictures, tmp_path):
    out = tmp_path / "out"
    args = ["-i", str(many_pictures), "-o", str(out), "--model", str(slow_model_dir), "--no-progress",
            "--coco-json", str(out / "results.json")]
    process = _start(args, tmp_path)
    _wait_for_records(out / JOURNAL_NAME, 5, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    journal = [json.loads(line) for line in (out / JOURNAL_NAME).read_text().splitlines()]
    assert 5 <= len(journal) < PICTURES_IN_SLOW_RUN
    visible = sorted(p for p in out.iterdir() if p.suffix == ".png" and not p.name.startswith("."))
    assert len(visible) >= len(journal)  # every recorded picture's overlay is there...
    for path in visible:
        assert read_image(path).shape == (64, 96, 3)  # ...and none is half-written
    assert not (out / "results.json").exists()  # run files are written whole at the end, or not at all

    rerun = _start(args, tmp_path)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    done = PICTURES_IN_SLOW_RUN - len(journal)
    assert f"done {done}, skipped {len(journal)}, failed 0" in stderr
    assert not _temp_files(out)
    assert len([p for p in out.iterdir() if p.suffix == ".png"]) == PICTURES_IN_SLOW_RUN
    assert len(COCO(str(out / "results.json")).dataset["images"]) == PICTURES_IN_SLOW_RUN


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_keeping_the_finished_outputs(slow_model_dir, many_pictures, tmp_path):
    out = tmp_path / "out"
    process = _start(["-i", str(many_pictures), "-o", str(out), "--model", str(slow_model_dir), "--no-progress",
                      "--summary", str(out / "summary.csv")], tmp_path)
    _wait_for_records(out / JOURNAL_NAME, 3, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "interrupted: done" in stderr and "Traceback" not in stderr
    recorded = [json.loads(line)["file"] for line in (out / JOURNAL_NAME).read_text().splitlines()]
    assert 3 <= len(recorded) < PICTURES_IN_SLOW_RUN
    overlays = sorted(p.name for p in out.iterdir() if p.suffix == ".png")
    assert overlays == sorted(recorded)  # what was in flight was finished and recorded, nothing more
    with open(out / "summary.csv", newline="") as file:
        assert [row["file"] for row in csv.DictReader(file)] == recorded
    assert not _temp_files(out)
