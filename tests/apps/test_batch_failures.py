"""The batch script against the world around the pictures: a full disk, a read-only folder, a second run on the
same folder, a decompression bomb. Each failure is made for real (a small tmpfs, or a file-size limit)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from object_detection_utils.apps.batch import JOURNAL_NAME
from object_detection_utils.apps.batch.output_folder import claim_output_folder
from object_detection_utils.io.atomic import is_temp_name

SMALL_DISK = 400 * 1024  # the tmpfs: a few noise overlays fill it
FILE_SIZE_LIMIT = 150 * 1024  # without tmpfs: RLIMIT_FSIZE, over which one noise overlay goes


def _script(repo_root: Path, *args: str, preexec=None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo_root / "instance_segmentation_images.py"), "--no-progress",
                           *args], capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


def _mount_tmpfs(folder: Path, size: int, read_only: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.fixture
def pictures(tmp_path) -> Path:
    """Three plain pictures (tiny PNG overlays), then six of noise (overlays of about 190 kB each)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(folder / f"a{i}.png")
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / f"b{i}.png")
    return folder


def _temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if is_temp_name(path.name)]


def _journal(folder: Path) -> list[dict]:
    lines = (folder / JOURNAL_NAME).read_bytes().splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:  # a line the full disk cut short, which the journal ignores
            pass
    return records


def test_a_full_disk_stops_with_one_line_keeps_finished_pictures_and_resumes(
        repo_root, tiny_frozen_dir, pictures, tmp_path):
    out = tmp_path / "out"
    mounted = _mount_tmpfs(out, SMALL_DISK)
    try:
        preexec = None if mounted else _limit_file_size
        args = ["-i", str(pictures), "-o", str(out), "--model", str(tiny_frozen_dir),
                "--coco-json", str(out / "results.json")]
        full = _script(repo_root, *args, preexec=preexec)
        assert full.returncode == 2, full.stderr
        errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
        cause = "No space left on device" if mounted else "File too large"
        assert len(errors) == 1 and f"{out}/" in errors[0] and cause in errors[0], full.stderr
        assert "run again to resume" in errors[0]
        finished = _journal(out)
        assert 3 <= len(finished) < 9
        for record in finished:  # every recorded picture's overlay is whole
            overlay = cv2.imread(str(out / record["outputs"][0]))
            assert overlay is not None and overlay.shape[:2] == (record["height"], record["width"])
        assert _temp_files(out) == []
        assert not (out / "results.json").exists()  # not written from a run that stopped short

        if mounted:
            subprocess.run(["mount", "-o", f"remount,size={64 << 20}", str(out)], check=True)
        resumed = _script(repo_root, *args)
        assert resumed.returncode == 0, resumed.stderr
        assert f"done {9 - len(finished)}, skipped {len(finished)}, failed 0" in resumed.stderr
        coco = json.loads((out / "results.json").read_text())
        assert len(coco["images"]) == 9
        assert _temp_files(out) == []
    finally:
        if mounted:
            _unmount(out)


def test_a_read_only_output_folder_fails_before_the_model_loads(repo_root, pictures, tmp_path):
    out = tmp_path / "read-only"
    if _mount_tmpfs(out, 1 << 20, read_only=True):
        preexec, cause = None, "Read-only file system"
    else:  # no mounts here: a folder this process may not write, as an ordinary user
        out.mkdir(exist_ok=True)
        out.chmod(0o555)
        preexec, cause = (lambda: (os.setgid(65534), os.setuid(65534))), "Permission denied"
        pictures.parent.chmod(0o755)
    try:
        # A model that does not exist: had the model been loaded first, the error would be about it.
        done = _script(repo_root, "-i", str(pictures), "-o", str(out), "--model", str(tmp_path / "no-model"),
                       preexec=preexec)
    finally:
        _unmount(out)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {out}: cannot write outputs there ({cause})"


def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(repo_root, pictures, tmp_path):
    out = tmp_path / "out"
    with claim_output_folder(out):  # this process is the run in progress
        done = _script(repo_root, "-i", str(pictures), "-o", str(out), "--model", str(tmp_path / "no-model"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {out}: another batch run is writing there (pid {os.getpid()} on ")
    assert "wait for it to end or choose another output folder" in done.stderr


def test_a_killed_run_leaves_no_lock_behind(repo_root, tiny_frozen_dir, pictures, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from object_detection_utils.apps.batch.output_folder import claim_output_folder\n"
         "with claim_output_folder(sys.argv[1]):\n    print('claimed', flush=True)\n    time.sleep(600)\n",
         str(out)], stdout=subprocess.PIPE, text=True, cwd=repo_root)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        holder.kill()
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    done = _script(repo_root, "-i", str(pictures), "-o", str(out), "--model", str(tiny_frozen_dir))
    assert done.returncode == 0, done.stderr
    assert "done 9, skipped 0, failed 0" in done.stderr


def test_a_decompression_bomb_is_refused_by_name_and_the_rest_done(repo_root, tiny_frozen_dir, pictures, tmp_path,
                                                                    png_declaring):
    bomb = pictures / "bomb.png"
    bomb.write_bytes(png_declaring(50_000, 50_000))  # 2.5 GB of pixels in a few dozen bytes
    done = _script(repo_root, "-i", str(pictures), "-o", str(tmp_path / "out"), "--model", str(tiny_frozen_dir),
                   "--max-pixels", str(20_000 * 20_000))
    assert done.returncode == 1, done.stderr
    assert f"failed: {bomb}: 50000x50000 pixels is over the limit of 400000000 pixels" in done.stderr
    assert "done 9, skipped 0, failed 1" in done.stderr
