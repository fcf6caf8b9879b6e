"""instance_segmentation.py exactly as a user runs it, and its main() in-process for the finer cases."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tiny_model
from PIL import Image

import instance_segmentation
from object_detection_utils import read_image
from object_detection_utils.apps.single_image import default_output_path


@pytest.fixture()
def run_script(run_headless):
    """Runs instance_segmentation.py in a fresh process without a display, as a user would."""
    return functools.partial(run_headless, "instance_segmentation.py", timeout=180)


def test_script_as_a_user_runs_it(run_script, tiny_frozen_dir, tmp_path):
    result = run_script("--model", str(tiny_frozen_dir), "--no-display", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("grace_hopper.jpg\tperson\t0.95\tbox=(102, 60, 307, 300)\tarea=48960px")
    assert "\tdog\t0.80\t" in lines[1]
    output = tmp_path / "segmented_images" / "grace_hopper.jpg"  # the default output place
    assert read_image(output).shape == (600, 512, 3)
    assert "2 instances" in result.stderr and str(output.relative_to(tmp_path)) in result.stderr


def test_saved_picture_has_the_masks_drawn(tiny_saved_dir, tmp_path):
    picture = np.full((104, 164, 3), 30, np.uint8)
    Image.fromarray(picture).save(tmp_path / "in.png")
    code = instance_segmentation.main(
        ["-i", str(tmp_path / "in.png"), "--model", str(tiny_saved_dir), "-o", str(tmp_path / "out.png"),
         "--no-display"]
    )
    assert code == 0
    out = read_image(tmp_path / "out.png")
    person = tiny_model.expected_full_mask(0, 104, 164)
    # Below the person box (y > 52) and left of the dog box (x < 82) nothing is drawn: no mask, box or label.
    assert (out[56:, :78] == 30).all()
    assert (out[60:100, 90:110] != 30).any(axis=-1).all()  # dog mask: left half of its box
    assert (out[60:100, 130:160] == 30).all()  # right half of the dog box: mask is empty there
    inner = np.zeros_like(person)
    inner[15:48, 40:95] = True  # well inside the person box, away from the outline
    assert (out[inner] != 30).any(axis=1).all()


def test_class_and_score_filters_from_the_command_line(tiny_frozen_dir, tmp_path, capsys):
    Image.fromarray(np.full((50, 50, 3), 230, np.uint8)).save(tmp_path / "bright.png")
    args = ["-i", str(tmp_path / "bright.png"), "--model", str(tiny_frozen_dir), "-o", str(tmp_path / "o.png"),
            "--no-display"]
    assert instance_segmentation.main([*args, "--classes", "car,dog"]) == 0
    assert [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()] == ["dog", "car"]
    assert instance_segmentation.main([*args, "--min-score", "0.92"]) == 0
    assert [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()] == ["person"]
    assert instance_segmentation.main([*args, "--classes", "toothbrush"]) == 0
    assert capsys.readouterr().out.strip().endswith("no instances found")


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("not a picture"), "not a picture"),
        (lambda p: None, "no such file"),
    ],
)
def test_bad_picture_is_one_line_and_exit_2(run_script, tiny_frozen_dir, tmp_path, make_input, message):
    picture = tmp_path / "bad.jpg"
    make_input(picture)
    result = run_script("-i", str(picture), "--model", str(tiny_frozen_dir), "--no-display", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {picture}: {message}" or (
        result.stderr.count("\n") == 1 and message in result.stderr and str(picture) in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_bad_model_and_bad_class_are_one_line(run_script, tiny_frozen_dir, tmp_path):
    missing = run_script("--model", str(tmp_path / "none"), "--no-display", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'none'}: no such model file or folder"
    unknown_class = run_script("--model", str(tiny_frozen_dir), "--classes", "unicorn", "--no-display", cwd=tmp_path)
    assert unknown_class.returncode == 2 and unknown_class.stderr.startswith("error: unknown class 'unicorn'")


def test_unsupported_output_type(run_script, tiny_frozen_dir, tmp_path):
    result = run_script("--model", str(tiny_frozen_dir), "-o", str(tmp_path / "x.txt"), "--no-display")
    assert result.returncode == 2 and "unsupported output picture type '.txt'" in result.stderr


def test_no_windows_without_a_display(tiny_frozen_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    import object_detection_utils.visualization.display as display

    def must_not_open(*args, **kwargs):
        raise AssertionError("a window was opened without a display")

    monkeypatch.setattr(display, "Window", must_not_open)
    assert instance_segmentation.main(["--model", str(tiny_frozen_dir), "-o", str(tmp_path / "o.jpg")]) == 0


def test_default_output_keeps_writable_types_else_png(tmp_path):
    assert default_output_path(tmp_path / "a.webp").name == "a.webp"
    assert default_output_path(tmp_path / "scan.xyz").name == "scan.png"
