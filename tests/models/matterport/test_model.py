"""load_matterport and MatterportModel: a weights file written in matterport's layout, loaded and run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matterport_h5 as mh5
import numpy as np
import pytest

from object_detection_utils.errors import ModelLoadError
from object_detection_utils.models.matterport import MatterportConfig, MatterportModel, load_matterport

REPO = Path(__file__).resolve().parents[3]
CONFIG = mh5.TEST_CONFIG


@pytest.fixture(scope="module")
def weights_file(matterport_weights):
    return matterport_weights


@pytest.fixture(scope="module")
def model(weights_file) -> MatterportModel:
    return load_matterport(weights_file, CONFIG)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (90, 150, 3), dtype=np.uint8)
    image[20:60, 30:100] = (200, 40, 40)
    return image


def test_detect_gives_matterports_result(model, picture):
    result = model.detect(picture)
    assert set(result) == {"rois", "class_ids", "scores", "masks"}
    count = len(result["class_ids"])
    assert count > 0
    assert result["rois"].shape == (count, 4) and result["rois"].dtype == np.int32
    assert result["class_ids"].dtype == np.int32 and set(result["class_ids"].tolist()) <= {1, 2, 3, 4}
    assert result["scores"].dtype == np.float32 and (np.diff(result["scores"]) <= 0).all()
    assert result["masks"].shape == (90, 150, count) and result["masks"].dtype == bool
    y1, x1, y2, x2 = result["rois"].T
    assert (y1 >= 0).all() and (x1 >= 0).all() and (y2 <= 90).all() and (x2 <= 150).all()
    assert ((y2 > y1) & (x2 > x1)).all()
    for index, (top, left, bottom, right) in enumerate(result["rois"]):
        outside = result["masks"][:, :, index].copy()
        outside[top:bottom, left:right] = False
        assert not outside.any()  # a mask never leaves its box


def test_raw_outputs_and_paste_masks_give_detect(model, picture):
    result = model.detect(picture)
    raw = model.raw_outputs(picture)
    count = len(result["class_ids"])
    assert raw["num_detections"].tolist() == [count]
    assert raw["detection_boxes"].shape == (1, count, 4) and raw["detection_boxes"].dtype == np.float32
    assert raw["detection_masks"].shape == (1, count, 28, 28)
    np.testing.assert_array_equal(np.round(raw["detection_boxes"][0] * [90, 150, 90, 150]), result["rois"])
    np.testing.assert_array_equal(raw["detection_classes"][0], result["class_ids"])
    np.testing.assert_array_equal(raw["detection_scores"][0], result["scores"])
    pasted = model.paste_masks(raw["detection_masks"][0], raw["detection_boxes"][0], 90, 150, 0.5)
    assert pasted.shape == (count, 90, 150) and pasted.dtype == bool
    np.testing.assert_array_equal(pasted, np.moveaxis(result["masks"], -1, 0))


def test_class_names(model, weights_file):
    assert model.class_names == ("BG", "person", "tie", "cup", "chair")
    inferred = load_matterport(weights_file, {k: v for k, v in CONFIG.items() if k != "CLASS_NAMES"})
    assert inferred.class_names == ("BG", "class 1", "class 2", "class 3", "class 4")


def test_the_config_comes_from_the_weights_when_none_is_given(weights_file):
    model = load_matterport(weights_file)
    assert model.config.NUM_CLASSES == 5 and model.config.BACKBONE == "resnet50"
    assert model.config.IMAGE_MAX_DIM == MatterportConfig().IMAGE_MAX_DIM


def test_configs_that_do_not_fit_are_one_clear_line(weights_file):
    with pytest.raises(ModelLoadError, match=r"NUM_CLASSES: config 81, weights 5") as error:
        load_matterport(weights_file, "coco")
    assert str(weights_file) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ModelLoadError, match="unknown matterport config key 'FOO'"):
        load_matterport(weights_file, {**CONFIG, "FOO": 1})
    with pytest.raises(ModelLoadError, match="neither a preset"):
        load_matterport(weights_file, "no-such-preset")


def test_excluding_a_layer_the_network_needs_is_refused(weights_file):
    with pytest.raises(ModelLoadError, match="excluded layers the network cannot run without: mrcnn_mask$"):
        load_matterport(weights_file, CONFIG, exclude=["mrcnn_mask"])


def test_pictures_of_the_wrong_shape_are_refused(model):
    with pytest.raises(ValueError, match=r"expects an \(H, W, 3\) picture, got shape \(90, 150\)"):
        model.detect(np.zeros((90, 150), np.uint8))


def test_a_molded_size_is_traced_once(weights_file, picture):
    model = load_matterport(weights_file, {**CONFIG, "IMAGE_RESIZE_MODE": "pad64"})
    model.detect(picture)
    model.detect(picture[::-1])
    model.detect(picture[:40])
    # 90x150 pads to 128x192; 40x150 scales up to 64 rows first (IMAGE_MIN_DIM), 64x240 pads to 64x256
    assert model.network.traced_sizes == [(128, 192), (64, 256)]


def test_no_detection_gives_empty_results(tmp_path):
    layout = mh5.Layout.named("resnet50", 5)
    weights = mh5.calibrated_weights(layout, seed=15)
    weights["mrcnn_class_logits"]["bias"] = np.float32([50, 0, 0, 0, 0])  # the background always wins
    model = load_matterport(mh5.write_matterport_h5(tmp_path / "background.h5", layout, weights), CONFIG)
    picture = np.zeros((50, 60, 3), np.uint8)
    result = model.detect(picture)
    assert result["rois"].shape == (0, 4) and result["class_ids"].shape == (0,) and result["scores"].shape == (0,)
    assert result["masks"].shape == (50, 60, 0) and result["masks"].dtype == bool
    raw = model.raw_outputs(picture)
    assert raw["num_detections"].tolist() == [0] and raw["detection_masks"].shape == (1, 0, 28, 28)
    assert model.paste_masks(raw["detection_masks"][0], raw["detection_boxes"][0], 50, 60, 0.5).shape == (0, 50, 60)


def test_a_run_prints_nothing_from_tensorflow(weights_file, tmp_path):
    """Grappler warns on fd 2 about the ROI crops when it first optimises a graph; a user never sees it."""
    script = tmp_path / "run.py"
    script.write_text(
        "import numpy as np\n"
        "from object_detection_utils.models.matterport import load_matterport\n"
        f"model = load_matterport({str(weights_file)!r}, {CONFIG!r})\n"
        "print(len(model.detect(np.zeros((50, 60, 3), np.uint8))['rois']))\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
