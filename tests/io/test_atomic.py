"""io/atomic.py: a path only ever holds a finished file or folder, and the leftover cleaner knows its names."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from object_detection_utils.io.atomic import (
    atomic_directory,
    atomic_file,
    atomic_path,
    is_temp_name,
    remove_stale_temp_files,
    temp_path_beside,
    write_bytes_atomic,
    write_text_atomic,
)


@pytest.fixture
def umask():
    """Set the process umask for one test (the permission checks depend on it)."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_temp_path_beside_makes_an_empty_ordinary_file_with_a_temp_name(tmp_path, umask):
    umask(0o027)
    plain = temp_path_beside(tmp_path / "new" / "photo.jpg")
    video = temp_path_beside(tmp_path / "clip.mp4", keep_suffix=True)
    assert plain.parent == tmp_path / "new" and plain.read_bytes() == b"" and mode(plain) == 0o640
    assert plain.name.startswith(".photo.jpg.") and plain.name.endswith(".part") and is_temp_name(plain.name)
    assert video.name.startswith(".clip.") and video.name.endswith(".part.mp4") and is_temp_name(video.name)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_file_writes_with_ordinary_permissions(tmp_path, umask, mask, expected):
    umask(mask)
    with atomic_file(tmp_path / "out.bin") as file:
        file.write(b"complete")
        assert names(tmp_path) != ["out.bin"]  # still under its temporary name
    assert (tmp_path / "out.bin").read_bytes() == b"complete" and mode(tmp_path / "out.bin") == expected
    assert names(tmp_path) == ["out.bin"]


def test_atomic_file_text_mode_is_utf8_without_newline_translation(tmp_path):
    with atomic_file(tmp_path / "notes.txt", "w") as file:
        file.write("café\r\nline\n")
    assert (tmp_path / "notes.txt").read_bytes() == "café\r\nline\n".encode("utf-8")


def test_atomic_file_that_raises_leaves_the_old_file_and_no_temp_file(tmp_path):
    (tmp_path / "out.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"), atomic_file(tmp_path / "out.bin") as file:
        file.write(b"half of the new")
        raise RuntimeError("crash")
    assert (tmp_path / "out.bin").read_bytes() == b"old" and names(tmp_path) == ["out.bin"]


def test_atomic_path_renames_what_the_writer_wrote_by_name(tmp_path, umask):
    with atomic_path(tmp_path / "clip.mp4", keep_suffix=True) as temporary:
        assert temporary.suffix == ".mp4" and is_temp_name(temporary.name)
        temporary.write_bytes(b"frames")
    assert (tmp_path / "clip.mp4").read_bytes() == b"frames" and mode(tmp_path / "clip.mp4") == 0o644
    assert names(tmp_path) == ["clip.mp4"]


def test_atomic_path_that_raises_leaves_the_old_file_and_no_temp_file(tmp_path):
    (tmp_path / "data.tfrecord").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(tmp_path / "data.tfrecord") as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("crash")
    assert (tmp_path / "data.tfrecord").read_bytes() == b"old" and names(tmp_path) == ["data.tfrecord"]


def test_write_bytes_atomic_replaces_and_a_failed_write_keeps_the_old_file(tmp_path, umask):
    write_bytes_atomic(tmp_path / "a.bin", b"first")
    write_bytes_atomic(tmp_path / "a.bin", b"second")
    assert (tmp_path / "a.bin").read_bytes() == b"second" and mode(tmp_path / "a.bin") == 0o644
    with pytest.raises(TypeError):
        write_bytes_atomic(tmp_path / "a.bin", "text is not bytes")  # fails inside the temporary file
    assert (tmp_path / "a.bin").read_bytes() == b"second" and names(tmp_path) == ["a.bin"]


def test_write_text_atomic_writes_utf8_and_a_failed_rename_leaves_no_temp_file(tmp_path, umask):
    write_text_atomic(tmp_path / "card.md", "naïve\n")
    assert (tmp_path / "card.md").read_bytes() == "naïve\n".encode("utf-8") and mode(tmp_path / "card.md") == 0o644
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("kept")
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "taken", "cannot replace a folder")
    assert (tmp_path / "taken" / "inside").read_text() == "kept" and names(tmp_path) == ["card.md", "taken"]


def test_atomic_directory_appears_complete_with_ordinary_permissions(tmp_path, umask):
    with atomic_directory(tmp_path / "model") as staging:
        assert is_temp_name(staging.name) and staging.parent == tmp_path
        (staging / "weights").write_bytes(b"w")
        assert not (tmp_path / "model").exists()
    assert names(tmp_path / "model") == ["weights"] and mode(tmp_path / "model") == 0o755
    assert names(tmp_path) == ["model"]


def test_atomic_directory_that_raises_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="crash"), atomic_directory(tmp_path / "model") as staging:
        (staging / "weights").write_bytes(b"half")
        raise RuntimeError("crash")
    assert names(tmp_path) == []


def test_atomic_directory_keeps_a_folder_another_process_completed_meanwhile(tmp_path):
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "ours").write_text("ours")
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "theirs").write_text("theirs")
    assert names(tmp_path / "model") == ["theirs"] and names(tmp_path) == ["model"]


def test_atomic_directory_replace_keeps_the_old_folder_until_the_new_one_is_complete(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "old_weights").write_text("old")
    with atomic_directory(tmp_path / "export", replace=True) as staging:
        (staging / "new_weights").write_text("new")
        assert names(tmp_path / "export") == ["old_weights"]  # still usable while the new one is written
    assert names(tmp_path / "export") == ["new_weights"] and names(tmp_path) == ["export"]

    with pytest.raises(RuntimeError, match="crash"), atomic_directory(tmp_path / "export", replace=True) as staging:
        (staging / "broken").write_text("half")
        raise RuntimeError("crash")
    assert names(tmp_path / "export") == ["new_weights"] and names(tmp_path) == ["export"]


def test_is_temp_name_accepts_exactly_the_names_the_module_makes(tmp_path):
    made = [temp_path_beside(tmp_path / "photo.jpg").name, temp_path_beside(tmp_path / "clip.mp4", True).name,
            temp_path_beside(tmp_path / "noext").name, temp_path_beside(tmp_path / ".hidden.json").name]
    with atomic_directory(tmp_path / "model") as staging:
        made.append(staging.name)
    assert all(is_temp_name(name) for name in made), made
    refused = [".x.part", "photo.part", ".a.b.png", "photo.jpg.abc123.part", ".photo.jpg.abc123.part.tar.gz",
               ".photo.jpg.ABC123.part", ".photo.jpg.abc.part", ".photo.jpg.abc-123.part", ".part", "..abc123.part",
               ".photo.jpg.abc123.partial", "photo.jpg"]
    assert [name for name in refused if is_temp_name(name)] == []


CHILD = """
import sys
from pathlib import Path
from object_detection_utils.io.atomic import atomic_directory, atomic_file

folder = Path(sys.argv[1])
with atomic_file(folder / "result.bin") as file, atomic_directory(folder / "models" / "m") as staging:
    file.write(b"half of the result")
    file.flush()
    (staging / "weights").write_bytes(b"half of the weights")
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.read()  # wait here until killed
"""


def test_remove_stale_temp_files_cleans_what_a_killed_process_left_and_nothing_else(tmp_path, repo_root):
    (tmp_path / "models").mkdir()
    keep = ["result.bin", "notes.part", ".x.part", ".a.b.png", "models/m/weights", "models/.hidden", "data.part/x"]
    for name in keep:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("keep")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=repo_root, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n", child.stderr.read().decode()
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        child.kill()
        child.communicate()
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if is_temp_name(p.name))
    assert len(left) == 2 and left[0].startswith(".result.bin.") and left[1].startswith("models/.m.")

    assert remove_stale_temp_files(tmp_path) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)
    assert remove_stale_temp_files(tmp_path) == 0
    assert remove_stale_temp_files(tmp_path / "absent") == 0
