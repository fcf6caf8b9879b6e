"""object_detection_utils.mrcnn.model: matterport's MaskRCNN API on our port, held to matterport's goldens, and
the one-line errors a matterport user meets."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matterport_code import changed_imports

from object_detection_utils.errors import MatterportConfigError, ModelLoadError, MrcnnUsageError
from object_detection_utils.models.matterport import PRESETS
from object_detection_utils.mrcnn import model as modellib
from object_detection_utils.mrcnn.config import Config

# The seed snippet of issue 27, as its user wrote it for matterport.
SEED = """\
from mrcnn import model as modellib, visualize, utils
from mrcnn.config import Config
model = modellib.MaskRCNN(mode="inference", config=Config(), model_dir='./')
model.load_weights('path/to/weights.h5', by_name=True)
results = model.detect([image], verbose=1)
visualize.display_instances(image, results[0]['rois'], results[0]['masks'], results[0]['class_ids'], class_names, results[0]['scores'])
"""
CLASS_NAMES = ["BG", "person", "tie", "cup", "chair"]


@pytest.fixture
def model(golden_model) -> modellib.MaskRCNN:
    return golden_model


def _seed(weights) -> str:
    source, changed = changed_imports(SEED)
    assert changed == 2
    return source.replace("path/to/weights.h5", str(weights))


def test_the_seed_snippet_runs_with_its_imports_changed(matterport_weights, golden_config, picture, assert_golden,
                                                       capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"image": picture, "class_names": CLASS_NAMES}
    # the seed's bare Config() (NUM_CLASSES 1, resnet101, IMAGES_PER_GPU 2) fits no real weights, in matterport
    # either: its user meets one line naming the layers
    with pytest.raises(ModelLoadError) as error:
        exec(_seed(matterport_weights), dict(namespace))  # noqa: S102 (the seed snippet under test)
    assert str(error.value) == (
        f"{matterport_weights}: the config does not match the weights: NUM_CLASSES: config 1, weights 5 (layer "
        "mrcnn_class_logits); BACKBONE: config 'resnet101', weights 'resnet50' (layers res4*)")
    # with the user's own Config subclass in its place it runs, and gives matterport's detections
    namespace["Config"] = golden_config
    snippet = _seed(matterport_weights).replace("from object_detection_utils.mrcnn.config import Config\n", "")
    exec(snippet, namespace)  # noqa: S102
    assert len(namespace["results"]) == 1
    assert_golden(namespace["results"][0])
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == [
        "Processing 1 images",
        "image                    shape: (600, 512, 3)         min:    0.00000  max:  255.00000  uint8",
    ]


def test_detect_checks_the_batch_as_matterport(model, picture, golden_config):
    with pytest.raises(MrcnnUsageError) as error:
        model.detect([picture, picture])
    assert str(error.value) == ("detect() got 2 pictures but BATCH_SIZE is 1 (GPU_COUNT 1 x IMAGES_PER_GPU 1); as "
                                "matterport, pass 1 or set IMAGES_PER_GPU = 2 in the config")
    with pytest.raises(MrcnnUsageError, match=r"^detect\(\) takes a list of pictures, got one array of shape "
                                              r"\(600, 512, 3\): pass \[image\]$"):
        model.detect(picture)
    pair = type("PairConfig", (golden_config,), {"IMAGES_PER_GPU": 2})
    unloaded = modellib.MaskRCNN(mode="inference", config=pair(), model_dir=".")
    with pytest.raises(MrcnnUsageError) as error:
        unloaded.detect([picture])
    assert str(error.value) == ("detect() got 1 picture but BATCH_SIZE is 2 (GPU_COUNT 1 x IMAGES_PER_GPU 2); as "
                                "matterport, pass 2 or set IMAGES_PER_GPU = 1 in the config")


def test_a_batch_of_two_gives_one_result_each(golden_config, matterport_weights, model, picture, assert_golden):
    pair = type("PairConfig", (golden_config,), {"IMAGES_PER_GPU": 2})
    twice = modellib.MaskRCNN(mode="inference", config=pair(), model_dir=".")
    twice._model = model._model  # the same loaded network: this checks the batching, not loading again
    results = twice.detect([picture, picture])
    assert len(results) == 2
    for result in results:
        assert_golden(result)


def test_training_mode_points_to_our_training_command():
    with pytest.raises(MrcnnUsageError) as error:
        modellib.MaskRCNN(mode="training", config=Config(), model_dir=".")
    assert str(error.value) == (
        "mode='training' is not supported by object_detection_utils.mrcnn: train with `python "
        "instance_segmentation_train.py train --labels FOLDER --model-dir DIR` (docs/TRAINING.md) and run the "
        "exported model with this package's detection scripts")
    with pytest.raises(MrcnnUsageError, match=r"^mode must be 'inference', got 'infer'$"):
        modellib.MaskRCNN(mode="infer", config=Config(), model_dir=".")


def test_weights_that_do_not_fit_the_config_are_one_line(matterport_weights, golden_config):
    coco_sized = type("CocoSized", (golden_config,), {"NUM_CLASSES": 81})
    model = modellib.MaskRCNN(mode="inference", config=coco_sized(), model_dir=".")
    with pytest.raises(ModelLoadError) as error:
        model.load_weights(matterport_weights, by_name=True)
    assert str(error.value) == (f"{matterport_weights}: the config does not match the weights: NUM_CLASSES: config "
                                "81, weights 5 (layer mrcnn_class_logits)")
    # excluding the heads, as matterport's samples do to fine-tune, leaves a network that cannot run
    with pytest.raises(ModelLoadError) as error:
        model.load_weights(matterport_weights, by_name=True, exclude=["mrcnn_class_logits", "mrcnn_bbox_fc",
                                                                      "mrcnn_bbox", "mrcnn_mask"])
    assert str(error.value) == (f"{matterport_weights}: excluded layers the network cannot run without: "
                                "mrcnn_class_logits, mrcnn_bbox_fc, mrcnn_mask")
    with pytest.raises(ModelLoadError, match=r": no such weights file$"):
        model.load_weights("missing.h5", by_name=True)


def test_a_config_matterport_cannot_take_is_one_line_naming_the_class():
    odd = type("OddConfig", (Config,), {"IMAGE_MAX_DIM": 1000, "MY_OWN_SETTING": 3})
    with pytest.raises(MatterportConfigError) as error:
        modellib.MaskRCNN(mode="inference", config=odd(), model_dir=".")
    assert str(error.value) == ("config OddConfig: IMAGE_MAX_DIM 1000 must be a multiple of 64 (matterport halves the "
                                "picture six times)")


def test_matterports_sample_configs_are_our_presets():
    class CocoInference(Config):  # samples/coco/coco.py's CocoConfig with the demo's InferenceConfig
        NAME, IMAGES_PER_GPU, NUM_CLASSES = "coco", 1, 1 + 80

    class BalloonInference(Config):  # samples/balloon/balloon.py's BalloonConfig and its InferenceConfig
        NAME, NUM_CLASSES, STEPS_PER_EPOCH, DETECTION_MIN_CONFIDENCE = "balloon", 1 + 1, 100, 0.9
        GPU_COUNT, IMAGES_PER_GPU = 1, 1

    for config, preset in ((CocoInference(), "coco"), (BalloonInference(), "balloon")):
        assert modellib.to_matterport_config(config) == PRESETS[preset].replace(CLASS_NAMES=None)


def test_keras_model_is_a_read_only_view_of_the_weights(model, matterport_weights, capsys):
    import h5py

    keras_model = model.keras_model
    with h5py.File(matterport_weights) as file:
        kernel = file["mrcnn_class_logits"]["mrcnn_class_logits"]["kernel:0"][()]
    np.testing.assert_array_equal(keras_model.get_layer("mrcnn_class_logits").get_weights()[0], kernel)
    assert keras_model.layers[0].name == "conv1" and len(keras_model.layers) == 133
    assert keras_model.count_params() == 44_679_088
    keras_model.summary()
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"conv1 +\(7, 7, 3, 64\), \(64,\) +9,472", printed[0])
    assert printed[-1] == "Total params: 44,679,088"
    with pytest.raises(MrcnnUsageError, match=r"^keras_model.fit is not available: keras_model is a read-only view"):
        _ = keras_model.fit
    with pytest.raises(MrcnnUsageError, match=r"^no weights loaded: call model.load_weights\(path, by_name=True\) "):
        _ = modellib.MaskRCNN(mode="inference", config=Config(), model_dir=".").keras_model


def test_find_last_finds_matterports_newest_checkpoint(golden_config, tmp_path):
    model = modellib.MaskRCNN(mode="inference", config=golden_config(), model_dir=tmp_path)
    with pytest.raises(ModelLoadError, match=r": no model folder starting with 'golden'$"):
        model.find_last()
    for run in ("golden20240101T0000", "golden20240202T0000"):
        (tmp_path / run).mkdir()
    with pytest.raises(ModelLoadError, match=r"golden20240202T0000: no weights file starting with 'mask_rcnn'$"):
        model.find_last()
    for epoch in ("0001", "0002"):
        (tmp_path / "golden20240202T0000" / f"mask_rcnn_golden_{epoch}.h5").touch()
    assert model.find_last() == str(tmp_path / "golden20240202T0000" / "mask_rcnn_golden_0002.h5")
