"""Test-time export options: CPU-friendly defaults for new exports, Model Garden's for exports made before them."""

from __future__ import annotations

import importlib.util
import json

import pytest

from object_detection_utils.errors import InstanceSegmentationError
from object_detection_utils.models.export_options import OPTIONS_FILE, TrainOptions, experiment_config


def test_new_options_are_cpu_friendly_and_round_trip(tmp_path):
    zoo = TrainOptions(num_classes=91, backbone="resnet50", input_size=640, heads="zoo")
    assert (zoo.proposals_at_test, zoo.nms, zoo.mask_detections) == (300, "batched", 100)
    assert TrainOptions(num_classes=4).proposals_at_test == 100  # light heads keep their 100
    zoo.save(tmp_path)
    assert TrainOptions.load(tmp_path) == zoo


@pytest.mark.parametrize("heads, proposals", [("zoo", 1000), ("light", 100)])
def test_options_written_before_them_load_as_model_gardens(tmp_path, heads, proposals):
    (tmp_path / OPTIONS_FILE).write_text(json.dumps({"num_classes": 4, "heads": heads}))
    options = TrainOptions.load(tmp_path)
    assert (options.proposals_at_test, options.nms, options.mask_detections) == (proposals, "v2", 100)


def test_bad_test_options_are_refused_in_one_line():
    with pytest.raises(InstanceSegmentationError, match="^nms must be one of batched, v1, v2, not 'v3'$"):
        TrainOptions(num_classes=4, nms="v3")
    with pytest.raises(InstanceSegmentationError, match="mask detections 1 or more"):
        TrainOptions(num_classes=4, mask_detections=0)


@pytest.mark.skipif(importlib.util.find_spec("official") is None, reason="Model Garden is not installed (train extra)")
def test_test_options_reach_the_model_garden_config():
    import official.vision.registry_imports  # noqa: F401  (registers maskrcnn_resnetfpn_coco)

    model = experiment_config(TrainOptions(num_classes=4, heads="zoo", test_proposals=500, nms="v1",
                                           mask_detections=20)).task.model
    assert model.roi_generator.test_num_proposals == 500
    assert (model.detection_generator.nms_version, model.detection_generator.max_num_detections) == ("v1", 20)
    light = experiment_config(TrainOptions(num_classes=4)).task.model
    assert (light.roi_generator.test_num_proposals, light.roi_generator.test_pre_nms_top_k) == (100, 500)
    assert light.detection_generator.nms_version == "batched"
