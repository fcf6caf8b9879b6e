"""Quiet runs: a script's stderr holds our own lines only, nothing from TensorFlow's C++ side."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib import cbook

REPO = Path(__file__).resolve().parent.parent
TRAINED_MODEL = REPO.parent / "shared" / "models" / "shapes-r18-128"
PICTURE = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))

# Lines written by TensorFlow's own logging ("2026-01-01 10:00:00.123456: E tensorflow/..."), by absl's
# ("I0000 00:00:...", "W1125 ..."), and the notices both print.
NATIVE_LOG = re.compile(
    r"^[IWEF]\d{4} |^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |tensorflow/|oneDNN|cpu_feature_guard"
    r"|WARNING: All log messages before absl"
)


def stderr_lines(stderr: str) -> list[str]:
    """The lines of `stderr`, a progress bar's redraws (after carriage returns) counted as lines."""
    return [line for line in re.split(r"[\r\n]+", stderr) if line.strip()]


def foreign_lines(stderr: str, ours: list[str]) -> list[str]:
    """The lines that none of the patterns `ours` matches in full."""
    return [line for line in stderr_lines(stderr) if not any(re.fullmatch(p, line) for p in ours)]


@pytest.fixture(params=["tiny_frozen_dir", "tiny_saved_dir", "trained"])
def model_dir(request) -> Path:
    """Each tiny model format, and the trained model whose first run made TensorFlow print an error line."""
    if request.param != "trained":
        return request.getfixturevalue(request.param)
    if not (TRAINED_MODEL / "saved_model").is_dir():
        pytest.skip(f"the trained model is not available: {TRAINED_MODEL} is absent")
    return TRAINED_MODEL


def user_env(**changes: str) -> dict[str, str]:
    """The environment as a user has it: without the log level conftest.py sets for the tests themselves."""
    return {**{name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}, **changes}


def run_script(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=user_env(),
                          capture_output=True, text=True, timeout=600)


def assert_only_ours(stderr: str, ours: list[str]) -> None:
    native = [line for line in stderr_lines(stderr) if NATIVE_LOG.search(line)]
    assert native == [], f"TensorFlow printed on stderr:\n{stderr}"
    assert foreign_lines(stderr, ours) == [], f"stderr holds lines that are not ours:\n{stderr}"


def test_single_picture_run_is_quiet(model_dir, tmp_path):
    result = run_script("instance_segmentation.py", ["--no-display", "--model", str(model_dir), "-i", str(PICTURE)],
                        tmp_path)
    assert result.returncode == 0, result.stderr
    saved = Path("segmented_images") / PICTURE.name
    assert (tmp_path / saved).is_file()
    assert_only_ours(result.stderr, [
        rf"\d+ instances in \d+\.\d\ds with {re.escape(model_dir.name)}; saved {re.escape(str(saved))}"])


def test_folder_run_is_quiet(model_dir, tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for name in ("first.jpg", "second.jpg"):
        shutil.copyfile(PICTURE, pictures / name)
    result = run_script("instance_segmentation_images.py", ["--model", str(model_dir), "-i", "pictures"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert_only_ours(result.stderr, [
        r"segmenting: +\d+%\|[^|]*\| [0-2]/2 \[[^\]]*\]",
        rf"done 2, skipped 0, failed 0 in \d+\.\ds \(\d+\.\d\d pictures/s\) with {re.escape(model_dir.name)}; "
        r"outputs in segmented_images",
    ])


def test_the_check_catches_what_tensorflow_prints():
    ours = [r"\d+ instances in \d+\.\d\ds with m; saved out\.png"]
    printed = (
        "2026-11-25 09:41:24.503604: E tensorflow/core/util/util.cc:131] oneDNN supports DT_BOOL only on "
        "platforms with AVX-512. Falling back to the default Eigen-based implementation if present.\n"
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1732527684.503604   12345 cpu_feature_guard.cc:210] This TensorFlow binary is optimized\n"
        "W1125 09:41:24.503604 140 grappler.cc:10] a line\n"
        "3 instances in 0.07s with m; saved out.png\n"
    )
    lines = stderr_lines(printed)
    assert [bool(NATIVE_LOG.search(line)) for line in lines] == [True, True, True, True, False]
    assert foreign_lines(printed, ours) == lines[:4]


def test_the_log_level_is_set_at_the_first_tensorflow_import_and_a_users_own_wins(tiny_frozen_dir):
    code = (
        "import os, sys\n"
        "import instance_segmentation, instance_segmentation_images\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), 'tensorflow' in sys.modules)\n"
        "from object_detection_utils.models.loading import load_local_model\n"
        "load_local_model(sys.argv[1], warm_up=False)\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
    )
    for env, expected in ((user_env(), "None False\n3\n"), (user_env(TF_CPP_MIN_LOG_LEVEL="1"), "1 False\n1\n")):
        result = subprocess.run([sys.executable, "-c", code, str(tiny_frozen_dir)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected
