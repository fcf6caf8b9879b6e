"""Folder batches: every picture format, exact outputs, COCO JSON, summary, resume, bad files, kill and Ctrl+C."""

from __future__ import annotations

import csv
import json
import os
import select
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

from object_detection_utils import Segmenter, load_model, read_image
from object_detection_utils.apps.batch import (
    JOURNAL_NAME,
    BatchOptions,
    Journal,
    PipelineOptions,
    find_pictures,
    run_batch,
)
from object_detection_utils.apps.batch.output_folder import LOCK_NAME
from object_detection_utils.io.atomic import is_temp_name

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


@pytest.fixture(scope="module")
def segmenter(model):
    return Segmenter(model)


def _options(out: Path, **changes) -> BatchOptions:
    return BatchOptions(output_dir=out, overlay=True, masks=True, coco_json=out / "results.json",
                        summary=out / "summary.csv", **changes)


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_temp_name(p.name)]


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


def test_a_mixed_folder_gives_exact_outputs_and_reports_the_bad_files(segmenter, mixed_folder, tmp_path):
    out = tmp_path / "out"
    pictures = find_pictures([mixed_folder], recursive=True)
    report = run_batch(segmenter, pictures, _options(out), PipelineOptions(progress=False), log=lambda line: None)

    assert (report.done, report.skipped, report.failed, report.interrupted) == (8, 0, 2, False)
    failures = dict(report.failures)
    assert set(failures) == {"broken.jpg", "truncated.png"}
    assert "not a picture" in failures["broken.jpg"] and "truncated.png: unreadable" in failures["truncated.png"]

    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".masks/" not in p.as_posix()}
    assert files == set(GOOD) | {JOURNAL_NAME, LOCK_NAME, "results.json", "summary.csv"}  # an overlay per picture
    for name in GOOD:
        assert read_image(out / name).shape == (*SIZES[name], 3)  # complete, readable pictures
        mask_files = sorted((out / f"{name}.masks").iterdir())
        expected_names = ["000_person.png", "001_dog.png", "002_car.png"][: expected_instances(name)]
        assert [p.name for p in mask_files] == expected_names
        expected = segmenter(read_image(mixed_folder / name))
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
        expected = segmenter(read_image(mixed_folder / name))
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


def test_a_rerun_skips_complete_pictures_and_redoes_changed_or_missing_ones(segmenter, mixed_folder, tmp_path):
    out = tmp_path / "out"
    pictures = find_pictures([mixed_folder], recursive=True)
    quiet = {"pipeline": PipelineOptions(progress=False), "log": lambda line: None}
    run_batch(segmenter, pictures, _options(out), **quiet)
    stamps = {name: (out / name).stat().st_mtime_ns for name in GOOD}

    again = run_batch(segmenter, pictures, _options(out), **quiet)
    assert (again.done, again.skipped, again.failed) == (0, 8, 2)
    assert {name: (out / name).stat().st_mtime_ns for name in GOOD} == stamps
    assert len(COCO(str(out / "results.json")).dataset["annotations"]) == 20  # earlier runs' results kept

    (out / "a.jpg").unlink()  # an output gone
    Image.new("RGB", (10, 12), (250, 250, 250)).save(mixed_folder / "c.bmp")  # a source changed
    partial = run_batch(segmenter, pictures, _options(out), **quiet)
    assert (partial.done, partial.skipped) == (2, 6)
    assert read_image(out / "c.bmp").shape == (12, 10, 3)
    assert len(list((out / "c.bmp.masks").iterdir())) == 3  # brighter now: the car row is back

    strict = Segmenter(segmenter.model, min_score=0.9)
    stricter = run_batch(strict, pictures, _options(out), **quiet)  # other settings: redone
    assert (stricter.done, stricter.skipped) == (8, 0)
    assert [p.name for p in (out / "a.jpg.masks").iterdir()] == ["000_person.png"]  # stale masks removed

    forced = run_batch(strict, pictures, _options(out, overwrite=True), **quiet)
    assert (forced.done, forced.skipped) == (8, 0)


def test_a_journal_line_cut_short_is_ignored_and_dropped(tmp_path):
    path = tmp_path / JOURNAL_NAME
    good = {"file": "a.jpg", "settings": {}, "kinds": [], "outputs": [], "coco": []}
    path.write_text(json.dumps(good) + "\n" + '{"file": "b.jpg", "sett')
    journal = Journal(path)
    assert [r["file"] for r in journal.records(["a.jpg", "b.jpg"])] == ["a.jpg"]
    journal.append({**good, "file": "c.jpg"})
    assert [json.loads(line)["file"] for line in path.read_text().splitlines()] == ["a.jpg", "c.jpg"]


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
# The script runs in its own process, held at known points: its model waits at a gate before each picture.

PICTURES_IN_PROCESS_RUN = 8


@pytest.fixture()
def gated_run(tmp_path) -> tuple[Path, Path, Path]:
    """(pictures folder, gated model folder, gates folder): each picture has a closed gate."""
    folder, model, gates = tiny_model.write_gated_run(tmp_path, PICTURES_IN_PROCESS_RUN)
    for i in range(PICTURES_IN_PROCESS_RUN):
        os.mkfifo(gates / str(tiny_model.gate_key(i)))
    return folder, model, gates


class HeldPicture:
    """A picture whose model call waits at its gate until `release`."""

    def __init__(self, gates: Path, i: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
        """Wait until picture i reaches its gate; fail at once if the process ends, or after `timeout` s."""
        self._fd = os.open(gates / str(tiny_model.gate_key(i)), os.O_RDONLY | os.O_NONBLOCK)
        deadline = time.monotonic() + timeout
        while not select.select([self._fd], [], [], 0.5)[0]:
            if process.poll() is not None:
                os.close(self._fd)
                stderr = process.communicate()[1]
                pytest.fail(f"the run ended before picture {i} reached the model: {stderr[-2000:]}")
            if time.monotonic() > deadline:
                os.close(self._fd)
                process.kill()
                pytest.fail(f"picture {i} did not reach the model in {timeout:.0f}s")

    def release(self) -> None:
        """Let the model call finish: read the gate until the model closes it."""
        assert tiny_model.drain_gate(self._fd) == tiny_model.GATE_PAYLOAD

    def abandon(self) -> None:
        os.close(self._fd)


def _start(repo_root: Path, args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(repo_root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(repo_root / "instance_segmentation_images.py"), *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _release_pictures(gates: Path, count: int, process: subprocess.Popen) -> None:
    for i in range(count):
        HeldPicture(gates, i, process).release()


def _wait_for_files(paths: list[Path], process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run did not write {[str(p) for p in paths if not p.exists()]}")
        time.sleep(0.05)


def _journal_files(out: Path) -> list[str]:
    return [json.loads(line)["file"] for line in (out / JOURNAL_NAME).read_text().splitlines()]


@pytest.mark.slow
def test_a_killed_run_leaves_no_partial_output_and_the_rerun_completes(repo_root, gated_run, tmp_path):
    pictures, model_dir, gates = gated_run
    out = tmp_path / "out"
    args = ["-i", str(pictures), "-o", str(out), "--model", str(model_dir), "--no-progress",
            "--coco-json", str(out / "results.json")]
    process = _start(repo_root, args, tmp_path)
    try:
        _release_pictures(gates, 4, process)
        held = HeldPicture(gates, 4, process)  # the 5th picture is in the model when the run is killed
        _wait_for_files([out / tiny_model.gated_picture_name(i) for i in range(4)], process)  # written by the writer threads
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        held.abandon()
    finally:
        process.kill()

    # Pictures 0-3 went through the model and their overlays were written; the journal records those whose
    # writes the pipeline had collected (how many depends on the writer threads).
    finished = [tiny_model.gated_picture_name(i) for i in range(4)]
    recorded = _journal_files(out) if (out / JOURNAL_NAME).exists() else []
    assert recorded == finished[: len(recorded)]  # whole records, in input order
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == finished
    for name in finished:
        assert read_image(out / name).shape == (64, 96, 3)  # complete pictures
    assert not _temp_files(out)
    assert not (out / "results.json").exists()  # run files are written whole at the end, or not at all

    # The rerun passes every gate, except that running a recorded picture again fails it (a folder is in the way).
    for i in range(PICTURES_IN_PROCESS_RUN):
        gate = gates / str(tiny_model.gate_key(i))
        gate.unlink()
        if tiny_model.gated_picture_name(i) in recorded:
            gate.mkdir()
    stamps = {name: (out / name).stat().st_mtime_ns for name in recorded}
    rerun = _start(repo_root, args, tmp_path)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert f"done {PICTURES_IN_PROCESS_RUN - len(recorded)}, skipped {len(recorded)}, failed 0" in stderr
    assert {name: (out / name).stat().st_mtime_ns for name in recorded} == stamps
    assert not _temp_files(out)
    every = [tiny_model.gated_picture_name(i) for i in range(PICTURES_IN_PROCESS_RUN)]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == every
    assert _journal_files(out) == every  # the rerun appended the others after the killed run's records
    assert sorted(image["file_name"] for image in COCO(str(out / "results.json")).dataset["images"]) == every


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_keeping_the_finished_outputs(repo_root, gated_run, tmp_path):
    pictures, model_dir, gates = gated_run
    out = tmp_path / "out"
    process = _start(repo_root, ["-i", str(pictures), "-o", str(out), "--model", str(model_dir), "--no-progress",
                                 "--summary", str(out / "summary.csv")], tmp_path)
    try:
        _release_pictures(gates, 3, process)
        held = HeldPicture(gates, 3, process)
        process.send_signal(signal.SIGINT)  # Ctrl+C while the 4th picture is in the model
        held.release()
        stdout, stderr = process.communicate(timeout=120)  # the 5th picture's gate stays closed: it must not start
    finally:
        process.kill()

    assert process.returncode == 130, stderr
    assert "interrupted: done 4, skipped 0, failed 0" in stderr and "Traceback" not in stderr
    finished = [tiny_model.gated_picture_name(i) for i in range(4)]  # the picture in flight was finished and recorded, no more
    assert _journal_files(out) == finished
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == finished
    with open(out / "summary.csv", newline="") as file:
        assert [row["file"] for row in csv.DictReader(file)] == finished
    assert not _temp_files(out)


@pytest.mark.parametrize("images_folder", ["absent", "empty"])
def test_run_with_its_defaults_and_no_pictures_says_what_to_do(repo_root, tmp_path, images_folder):
    if images_folder == "empty":
        (tmp_path / "images").mkdir()
    done = subprocess.run([sys.executable, str(repo_root / "instance_segmentation_images.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr == ("error: no pictures found in images/ (the default input): put pictures there, or pass "
                           "-i FOLDER_OR_GLOB (e.g. -i photos/ or -i 'shots/**/*.jpg')\n")
