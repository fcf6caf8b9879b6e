"""object_detection_utils.mrcnn.utils without matterport's code: the download offline, boxes and overlaps of small
masks, and Dataset as matterport's samples go through pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from object_detection_utils.errors import NoConnection
from object_detection_utils.mrcnn import utils


def test_download_trained_weights_offline_is_one_line(tmp_path, monkeypatch, capsys):
    url = "http://127.0.0.1:1/mask_rcnn_coco.h5"
    monkeypatch.setattr(utils, "COCO_MODEL_URL", url)
    target = tmp_path / "mask_rcnn_coco.h5"
    with pytest.raises(NoConnection) as error:
        utils.download_trained_weights(target, verbose=0)
    assert str(error.value).startswith(f"{url}: cannot connect (")
    assert str(error.value).endswith(f"); offline? download it on a connected machine and put it at {target}")
    assert "\n" not in str(error.value) and not target.exists()


def test_boxes_and_overlaps_of_small_masks():
    masks = np.zeros((5, 6, 3), bool)
    masks[1:3, 2:5, 0] = True
    masks[1:4, 2:3, 1] = True
    np.testing.assert_array_equal(utils.extract_bboxes(masks), [[1, 2, 3, 5], [1, 2, 4, 3], [0, 0, 0, 0]])
    np.testing.assert_allclose(utils.compute_overlaps_masks(masks[..., :2], masks[..., :2]),
                               [[1, 2 / 7], [2 / 7, 1]])
    assert utils.compute_overlaps_masks(masks[..., :0], masks).shape == (0, 3)


def test_dataset_lists_pictures_as_matterports_samples_use_it(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(gray).save(tmp_path / "a.png")
    dataset = utils.Dataset()
    dataset.add_class("shapes", 1, "circle,round")
    dataset.add_class("shapes", 1, "circle")  # added once
    dataset.add_class("shapes", 2, "square")
    dataset.add_image("shapes", image_id="a", path=str(tmp_path / "a.png"), width=4)
    dataset.prepare()
    assert dataset.class_names == ["BG", "circle", "square"]
    assert dataset.image_ids.tolist() == [0] and dataset.image_info[0]["width"] == 4
    assert dataset.map_source_class_id("shapes.2") == 2 and dataset.get_source_class_id(2, "shapes") == 2
    np.testing.assert_array_equal(dataset.load_image(0), np.repeat(gray[..., None], 3, axis=-1))
