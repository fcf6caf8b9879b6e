"""`Segmenter(tiles=...)` and --tile on the picture script, with a fake model that finds white rectangles exactly."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from object_detection_utils.apps import cli, single_image
from object_detection_utils.errors import InstanceSegmentationError
from object_detection_utils.io.images import write_image
from object_detection_utils.label_map import LabelMap
from object_detection_utils.model_contract import LoadedModel
from object_detection_utils.predictor import Segmenter, TiledOutputs
from object_detection_utils.tiling import TileOptions


def rectangles_model(source, calls: list[int]) -> LoadedModel:
    """Finds each white rectangle of a picture as one instance, box-relative mask all ones (pasted exactly)."""

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(len(images))
        batch = len(images)
        outputs = {
            "detection_boxes": np.zeros((batch, 10, 4), np.float32),
            "detection_scores": np.zeros((batch, 10), np.float32),
            "detection_classes": np.ones((batch, 10), np.float32),
            "num_detections": np.zeros(batch, np.float32),
            "detection_masks": np.ones((batch, 10, 8, 8), np.float32),
        }
        for b, image in enumerate(images):
            height, width = image.shape[:2]
            count, _, stats, _ = cv2.connectedComponentsWithStats((image[:, :, 0] == 255).astype(np.uint8))
            for k, (x, y, w, h, _) in enumerate(stats[1:]):
                outputs["detection_boxes"][b, k] = (y / height, x / width, (y + h) / height, (x + w) / width)
                outputs["detection_scores"][b, k] = 0.9 - 0.01 * k
            outputs["num_detections"][b] = count - 1
        return outputs

    return LoadedModel("rectangles", source, "saved_model", LabelMap({1: "thing"}), True, run, batched=True)


@pytest.fixture
def picture() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """200 x 300, a bar across the seam between the first two tile columns, a square inside the last tile."""
    image = np.zeros((200, 300, 3), np.uint8)
    rectangles = [(20, 60, 40, 150), (150, 250, 170, 280)]  # y0, x0, y1, x1
    for y0, x0, y1, x1 in rectangles:
        image[y0:y1, x0:x1] = 255
    return image, rectangles


def test_tiles_run_in_batches_and_stitch_a_cut_object_whole(tmp_path, picture):
    image, rectangles = picture
    calls: list[int] = []
    segmenter = Segmenter(rectangles_model(tmp_path, calls), tiles=TileOptions(size=128, overlap=0.25, batch=4))
    assert segmenter.tile_size == 128  # no input size on disk: auto would be 640, the size given wins
    raw = segmenter.predict(image)
    assert isinstance(raw, TiledOutputs) and [len(found) for _, found in raw.parts] == [2, 1, 1, 0, 0, 0, 1]
    assert calls == [1, 4, 2]  # the full pass alone, then six 128 px tiles in batches of four
    found = segmenter.postprocess(raw, image.shape[:2])
    assert len(found) == 2 and found.class_names == ("thing", "thing")
    expected = np.zeros((2, 200, 300), bool)
    for mask, (y0, x0, y1, x1) in zip(expected, rectangles):
        mask[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(found.masks, expected)
    np.testing.assert_array_equal(found.boxes, [[60, 20, 150, 40], [250, 150, 280, 170]])
    assert segmenter.settings["tiles"] == {"size": 128, "overlap": 0.25, "full_pass": True}
    assert segmenter.describe_tiles() == "tiles 128 px, overlap 0.25, plus a full-picture pass"
    assert segmenter.segment(image).same_as(found)
    # The Ray job ships a worker's tiled outputs to the driver, which stitches them.
    assert segmenter.postprocess(pickle.loads(pickle.dumps(raw)), image.shape[:2]).same_as(found)


def test_a_tile_below_the_models_minimum_is_refused_when_built(tmp_path):
    (tmp_path / "training_options.json").write_text(json.dumps({"input_size": 512}))
    with pytest.raises(InstanceSegmentationError, match="tile size 64 px is below this model's minimum, 128 px"):
        Segmenter(rectangles_model(tmp_path, []), tiles=TileOptions(size=64))
    assert Segmenter(rectangles_model(tmp_path, []), tiles=TileOptions()).tile_size == 512  # auto


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--tile", "128", "--tile-overlap", "0.9"], "error: tile overlap must be in [0, 0.9), not 0.9\n"),
        (["--tile", "16"], "error: tile size 16 px is below the smallest tile, 32 px\n"),
        (["--tile", "large"], "error: --tile must be a size in pixels or 'auto', not 'large'\n"),
    ],
)
def test_bad_tile_arguments_get_one_line_and_exit_2(tmp_path, capsys, option, message):
    write_image(tmp_path / "picture.png", np.zeros((40, 40, 3), np.uint8))
    argv = ["-i", str(tmp_path / "picture.png"), "--no-display", "-o", str(tmp_path / "out.png"), *option]
    assert cli.run_main(single_image.main, argv) == 2
    assert capsys.readouterr().err == message
