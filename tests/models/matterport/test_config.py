"""MatterportConfig: matterport's defaults, its samples' presets, and reading configs from mappings, objects, JSON
and training scripts (parsed, never run), with one-line errors for bad values."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pytest

from object_detection_utils.models.matterport.config import COCO_CLASS_NAMES, PRESETS, MatterportConfig

# mrcnn/config.py's Config, the inference settings
MATTERPORT_DEFAULTS = {
    "NAME": None, "NUM_CLASSES": 1, "BACKBONE": "resnet101", "BACKBONE_STRIDES": (4, 8, 16, 32, 64),
    "FPN_CLASSIF_FC_LAYERS_SIZE": 1024, "TOP_DOWN_PYRAMID_SIZE": 256, "RPN_ANCHOR_SCALES": (32, 64, 128, 256, 512),
    "RPN_ANCHOR_RATIOS": (0.5, 1, 2), "RPN_ANCHOR_STRIDE": 1, "RPN_NMS_THRESHOLD": 0.7, "PRE_NMS_LIMIT": 6000,
    "POST_NMS_ROIS_INFERENCE": 1000, "IMAGE_RESIZE_MODE": "square", "IMAGE_MIN_DIM": 800, "IMAGE_MAX_DIM": 1024,
    "IMAGE_MIN_SCALE": 0, "IMAGE_CHANNEL_COUNT": 3, "MEAN_PIXEL": (123.7, 116.8, 103.9), "POOL_SIZE": 7,
    "MASK_POOL_SIZE": 14, "MASK_SHAPE": (28, 28), "RPN_BBOX_STD_DEV": (0.1, 0.1, 0.2, 0.2),
    "BBOX_STD_DEV": (0.1, 0.1, 0.2, 0.2), "DETECTION_MAX_INSTANCES": 100, "DETECTION_MIN_CONFIDENCE": 0.7,
    "DETECTION_NMS_THRESHOLD": 0.3, "CLASS_NAMES": None,
}


def _values(config: MatterportConfig) -> dict:
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}


def test_defaults_are_matterports():
    config = MatterportConfig()
    assert _values(config) == MATTERPORT_DEFAULTS
    assert config.IMAGE_SHAPE == (1024, 1024, 3)
    assert config.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 1


@pytest.mark.parametrize(("mode", "shape"), [
    ("square", (1024, 1024, 3)), ("pad64", (1024, 1024, 3)), ("none", (1024, 1024, 3)), ("crop", (512, 512, 3)),
])
def test_image_shape_follows_the_resize_mode_as_matterport_computes_it(mode, shape):
    assert MatterportConfig(IMAGE_RESIZE_MODE=mode, IMAGE_MIN_DIM=512).IMAGE_SHAPE == shape


def test_image_meta_size_counts_the_classes():
    assert MatterportConfig(NUM_CLASSES=81).IMAGE_META_SIZE == 93


def test_coco_preset_is_the_demo_notebooks_inference_config_with_its_class_names():
    config = MatterportConfig.preset("coco")
    assert _values(config) == {**MATTERPORT_DEFAULTS, "NAME": "coco", "NUM_CLASSES": 81,
                               "CLASS_NAMES": COCO_CLASS_NAMES}
    assert len(COCO_CLASS_NAMES) == 81
    assert COCO_CLASS_NAMES[:4] == ("BG", "person", "bicycle", "car")
    # demo.ipynb: "the 'teddy bear' class is 78"
    assert COCO_CLASS_NAMES.index("teddy bear") == 78
    assert COCO_CLASS_NAMES[-3:] == ("teddy bear", "hair drier", "toothbrush")


def test_balloon_preset_is_balloon_py_inference_config():
    assert _values(MatterportConfig.preset("balloon")) == {
        **MATTERPORT_DEFAULTS, "NAME": "balloon", "NUM_CLASSES": 2, "DETECTION_MIN_CONFIDENCE": 0.9,
        "CLASS_NAMES": ("BG", "balloon"),
    }


def test_nucleus_preset_is_nucleus_inference_config():
    config = MatterportConfig.preset("nucleus")
    assert _values(config) == {
        **MATTERPORT_DEFAULTS, "NAME": "nucleus", "NUM_CLASSES": 2, "DETECTION_MIN_CONFIDENCE": 0,
        "BACKBONE": "resnet50", "IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": 512, "IMAGE_MAX_DIM": 512,
        "IMAGE_MIN_SCALE": 2.0, "RPN_ANCHOR_SCALES": (8, 16, 32, 64, 128), "POST_NMS_ROIS_INFERENCE": 2000,
        "RPN_NMS_THRESHOLD": 0.7, "MEAN_PIXEL": (43.53, 39.56, 48.22), "DETECTION_MAX_INSTANCES": 400,
        "CLASS_NAMES": ("BG", "nucleus"),
    }
    assert config.IMAGE_SHAPE == (512, 512, 3)


def test_presets_are_the_three_samples_and_unknown_names_fail():
    assert list(PRESETS) == ["coco", "balloon", "nucleus"]
    with pytest.raises(ValueError) as error:
        MatterportConfig.preset("shapes")
    assert str(error.value) == "unknown matterport preset 'shapes': choose coco, balloon, nucleus"


def test_load_takes_a_preset_name_or_a_file(tmp_path):
    assert MatterportConfig.load("balloon") is PRESETS["balloon"]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"NAME": "mine", "NUM_CLASSES": 3}))
    assert MatterportConfig.load(str(path)) == MatterportConfig(NAME="mine", NUM_CLASSES=3)
    assert MatterportConfig.load(path) == MatterportConfig(NAME="mine", NUM_CLASSES=3)
    with pytest.raises(ValueError) as error:
        MatterportConfig.load("cocoa")
    assert str(error.value) == ("matterport config 'cocoa' is neither a preset (coco, balloon, nucleus) "
                                "nor an existing file")


def test_from_mapping_makes_tuples_and_ignores_training_keys():
    config = MatterportConfig.from_mapping({
        "NUM_CLASSES": np.int64(3), "MEAN_PIXEL": np.array([1.5, 2.5, 3.5]), "RPN_ANCHOR_RATIOS": [1],
        "MASK_SHAPE": [28, 28], "LEARNING_RATE": 0.01, "STEPS_PER_EPOCH": 10, "IMAGES_PER_GPU": 2, "GPU_COUNT": 1,
        "LOSS_WEIGHTS": {"rpn_class_loss": 1.0}, "TRAIN_BN": False, "BATCH_SIZE": 2, "IMAGE_SHAPE": [1, 2, 3],
        "IMAGE_META_SIZE": 15, "CLASS_NAMES": ["BG", "a", "b"],
    })
    assert config == MatterportConfig(NUM_CLASSES=3, MEAN_PIXEL=(1.5, 2.5, 3.5), RPN_ANCHOR_RATIOS=(1,),
                                      CLASS_NAMES=("BG", "a", "b"))
    assert type(config.NUM_CLASSES) is int and type(config.MEAN_PIXEL[0]) is float
    assert config.IMAGE_SHAPE == (1024, 1024, 3)  # derived, never taken from the mapping


def test_from_mapping_rejects_an_unknown_key_naming_the_source():
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_mapping({"NUM_CLASES": 3}, source="my.json")
    assert str(error.value) == "my.json: unknown matterport config key 'NUM_CLASES'"
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_mapping({"num_classes": 3})
    assert str(error.value) == "matterport config: unknown matterport config key 'num_classes'"


def test_train_bn_true_changes_inference_and_is_refused():
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_mapping({"TRAIN_BN": True}, source="cfg")
    assert str(error.value) == "cfg: TRAIN_BN True (batch norm in training mode at inference) is not supported"
    assert MatterportConfig.from_mapping({"TRAIN_BN": None}) == MatterportConfig()


@pytest.mark.parametrize(("changes", "message"), [
    ({"IMAGE_RESIZE_MODE": "squre"}, "IMAGE_RESIZE_MODE 'squre' is not one of square, pad64, crop, none"),
    ({"BACKBONE": "resnet18"}, "BACKBONE 'resnet18' is not one of resnet50, resnet101"),
    ({"NUM_CLASSES": 0}, "NUM_CLASSES must be a positive int, got 0"),
    ({"NUM_CLASSES": 2.0}, "NUM_CLASSES must be a positive int, got 2.0"),
    ({"POST_NMS_ROIS_INFERENCE": True}, "POST_NMS_ROIS_INFERENCE must be a positive int, got True"),
    ({"DETECTION_MAX_INSTANCES": "100"}, "DETECTION_MAX_INSTANCES must be a positive int, got '100'"),
    ({"DETECTION_MIN_CONFIDENCE": 1.5}, "DETECTION_MIN_CONFIDENCE must be a number from 0 to 1, got 1.5"),
    ({"RPN_NMS_THRESHOLD": -0.1}, "RPN_NMS_THRESHOLD must be a number from 0 to 1, got -0.1"),
    ({"IMAGE_MIN_SCALE": -1}, "IMAGE_MIN_SCALE must be a number >= 0, got -1"),
    ({"IMAGE_MIN_DIM": -64}, "IMAGE_MIN_DIM must be a int >= 0, got -64"),
    ({"NAME": 3}, "NAME must be a string, got 3"),
    ({"RPN_ANCHOR_SCALES": (8, 16, 32)},
     "RPN_ANCHOR_SCALES must be a list of 5 values (positive number), got (8, 16, 32)"),
    ({"RPN_ANCHOR_RATIOS": ()}, "RPN_ANCHOR_RATIOS must be a list of values (positive number), got ()"),
    ({"RPN_ANCHOR_RATIOS": (0.5, 0)}, "RPN_ANCHOR_RATIOS must be a list of positive number values, got (0.5, 0)"),
    ({"BBOX_STD_DEV": 0.1}, "BBOX_STD_DEV must be a list of 4 values (positive number), got 0.1"),
    ({"MEAN_PIXEL": (1.0, 2.0)}, "MEAN_PIXEL has 2 values for IMAGE_CHANNEL_COUNT 3"),
    ({"IMAGE_MAX_DIM": 1000}, "IMAGE_MAX_DIM 1000 must be a multiple of 64 (matterport halves the picture six times)"),
    ({"IMAGE_RESIZE_MODE": "crop", "IMAGE_MIN_DIM": 500},
     "IMAGE_MIN_DIM 500 must be a multiple of 64 (matterport halves the picture six times)"),
    ({"IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": 800},
     "IMAGE_MIN_DIM 800 must be a multiple of 64 in pad64 mode"),
    ({"CLASS_NAMES": ("BG", "a")}, "CLASS_NAMES has 2 names for NUM_CLASSES 1 (the first name is the background, BG)"),
    ({"CLASS_NAMES": "BG"}, "CLASS_NAMES must be a list of strings"),
])
def test_bad_values_get_one_line(changes, message):
    with pytest.raises(ValueError) as error:
        MatterportConfig(**changes)
    assert str(error.value) == message
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_mapping(changes, source="cfg.json")
    assert str(error.value) == f"cfg.json: {message}"


def test_minimum_scale_none_means_no_minimum_and_zero_minimum_dimension_is_allowed_in_pad64():
    config = MatterportConfig(IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=0, IMAGE_MIN_SCALE=None)
    assert (config.IMAGE_MIN_DIM, config.IMAGE_MIN_SCALE) == (0, 0)


def test_replace_validates_and_configs_are_frozen_and_hashable():
    config = PRESETS["balloon"].replace(DETECTION_MIN_CONFIDENCE=0.5)
    assert config.DETECTION_MIN_CONFIDENCE == 0.5 and config.NAME == "balloon"
    with pytest.raises(ValueError, match="^DETECTION_MIN_CONFIDENCE must be a number from 0 to 1, got 2$"):
        config.replace(DETECTION_MIN_CONFIDENCE=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.NUM_CLASSES = 3
    assert len({config, PRESETS["balloon"].replace(DETECTION_MIN_CONFIDENCE=0.5)}) == 1


class _MatterportLikeConfig:
    """Shaped like mrcnn.config.Config: numpy arrays, lists, training keys, values computed in __init__."""

    NAME = None
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    BACKBONE = "resnet101"
    COMPUTE_BACKBONE_SHAPE = None
    NUM_CLASSES = 1
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]  # noqa: RUF012 - matterport's Config has mutable class attributes
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])
    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    MASK_SHAPE = [28, 28]  # noqa: RUF012
    LEARNING_RATE = 0.001
    LOSS_WEIGHTS = {"rpn_class_loss": 1.0}  # noqa: RUF012
    TRAIN_BN = False

    def __init__(self):
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        self.IMAGE_SHAPE = np.array([1024, 1024, 3])
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    def display(self):
        pass


class _ShapesConfig(_MatterportLikeConfig):
    NAME = "shapes"
    NUM_CLASSES = 1 + 3
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)


def test_from_object_reads_an_instance_or_a_class():
    expected = MatterportConfig(NAME="shapes", NUM_CLASSES=4, IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128,
                                RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128))
    assert MatterportConfig.from_object(_ShapesConfig()) == expected
    assert MatterportConfig.from_object(_ShapesConfig) == expected


def test_from_object_names_the_class_of_an_unknown_attribute():
    class Odd(_ShapesConfig):
        MY_SETTING = 3

    with pytest.raises(ValueError) as error:
        MatterportConfig.from_object(Odd())
    assert str(error.value) == "config Odd: unknown matterport config key 'MY_SETTING'"


def test_from_file_reads_json(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"NAME": "parts", "NUM_CLASSES": 5, "BACKBONE": "resnet50",
                                "IMAGE_RESIZE_MODE": "pad64", "IMAGE_MIN_DIM": 512, "RPN_ANCHOR_RATIOS": [0.5, 1, 2],
                                "STEPS_PER_EPOCH": 100,
                                "CLASS_NAMES": ["BG", "bolt", "nut", "washer", "screw"]}))
    assert MatterportConfig.from_file(path) == MatterportConfig(
        NAME="parts", NUM_CLASSES=5, BACKBONE="resnet50", IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=512,
        CLASS_NAMES=("BG", "bolt", "nut", "washer", "screw"))


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.json", "{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("list.json", "[1]", "a matterport config must be a JSON object of settings"),
    ("key.json", '{"NUM_CLASSES": 2, "DETECTION_MIN_CONFIDENCE": 0.5, "LABELS": ["a"]}',
     "unknown matterport config key 'LABELS'"),
    ("value.json", '{"NUM_CLASSES": -2}', "NUM_CLASSES must be a positive int, got -2"),
    ("cfg.yaml", "NUM_CLASSES: 2", "a matterport config file must be .json or .py"),
    ("broken.py", "class A(Config):\n    NUM_CLASSES = (\n", "not valid Python (line 2): '(' was never closed"),
    ("empty.py", "import os\nclass Helper:\n    X = 1\n", "no matterport Config subclass found"),
])
def test_bad_config_files_get_one_line_naming_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(tmp_path / "nope.py")
    assert str(error.value) == f"{tmp_path / 'nope.py'}: matterport config file not found"
    with pytest.raises(ValueError) as error:
        MatterportConfig.load(tmp_path)
    assert str(error.value) == f"{tmp_path}: cannot read matterport config (Is a directory)"
    (tmp_path / "latin1.py").write_bytes("NAME = 'caf\xe9'".encode("latin-1"))
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(tmp_path / "latin1.py")
    assert str(error.value) == f"{tmp_path / 'latin1.py'}: a matterport config must be UTF-8 text"


def test_a_callable_backbone_is_refused_not_dropped():
    class Custom(_ShapesConfig):
        @staticmethod
        def BACKBONE(image):  # matterport lets BACKBONE be a function
            return image

    with pytest.raises(ValueError, match="^config Custom: BACKBONE <function .*> is not one of resnet50, resnet101$"):
        MatterportConfig.from_object(Custom)


# A training script shaped like matterport's samples/balloon/balloon.py. Running it would fail at once (no mrcnn,
# and the guard below): reading it must not run it.
BALLOON_SCRIPT = textwrap.dedent('''\
    """Mask R-CNN: train on the toy balloon dataset."""
    import os
    import sys
    import numpy as np
    import skimage.draw

    ROOT_DIR = os.path.abspath("../../")
    sys.path.append(ROOT_DIR)
    from mrcnn.config import Config
    from mrcnn import model as modellib, utils

    raise SystemExit("this script must never run")

    class BalloonConfig(Config):
        """Configuration for training on the toy dataset."""
        # Give the configuration a recognizable name
        NAME = "balloon"

        # We use a GPU with 12GB memory, which can fit two images.
        IMAGES_PER_GPU = 2

        # Number of classes (including background)
        NUM_CLASSES = 1 + 1  # Background + balloon

        # Number of training steps per epoch
        STEPS_PER_EPOCH = 100

        # Skip detections with < 90% confidence
        DETECTION_MIN_CONFIDENCE = 0.9


    class BalloonDataset(utils.Dataset):
        def load_balloon(self, dataset_dir, subset):
            self.add_class("balloon", 1, "balloon")


    def train(model):
        dataset_train = BalloonDataset()


    if __name__ == '__main__':
        import argparse
        args = argparse.ArgumentParser().parse_args()
        if args.command == "train":
            config = BalloonConfig()
        else:
            class InferenceConfig(BalloonConfig):
                # Set batch size to 1 since we'll be running inference on
                # one image at a time. Batch size = GPU_COUNT * IMAGES_PER_GPU
                GPU_COUNT = 1
                IMAGES_PER_GPU = 1
            config = InferenceConfig()
        config.display()
''')

# Shaped like samples/nucleus/nucleus.py: module constants, a training config with expressions, an inference
# config deriving from it.
NUCLEUS_SCRIPT = textwrap.dedent('''\
    import numpy as np
    from mrcnn.config import Config

    VAL_IMAGE_IDS = [
        "0c2550a23b8a0f29a7575de8c61690d3c31bc897dd5ba66caec201d201a278c2",
        "92f31f591929a30e4309ab75185c96ff4314ce0a7ead2ed2c2171897ad1da0c7",
    ]

    class NucleusConfig(Config):
        """Configuration for training on the nucleus segmentation dataset."""
        NAME = "nucleus"
        IMAGES_PER_GPU = 6
        NUM_CLASSES = 1 + 1  # Background + nucleus
        STEPS_PER_EPOCH = (657 - len(VAL_IMAGE_IDS)) // IMAGES_PER_GPU
        VALIDATION_STEPS = max(1, len(VAL_IMAGE_IDS) // IMAGES_PER_GPU)
        DETECTION_MIN_CONFIDENCE = 0
        BACKBONE = "resnet50"
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 512
        IMAGE_MAX_DIM = 512
        IMAGE_MIN_SCALE = 2.0
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        POST_NMS_ROIS_TRAINING = 1000
        POST_NMS_ROIS_INFERENCE = 2000
        RPN_NMS_THRESHOLD = 0.9
        RPN_TRAIN_ANCHORS_PER_IMAGE = 64
        MEAN_PIXEL = np.array([43.53, 39.56, 48.22])
        USE_MINI_MASK = True
        MINI_MASK_SHAPE = (56, 56)  # (height, width) of the mini-mask
        TRAIN_ROIS_PER_IMAGE = 128
        MAX_GT_INSTANCES = 200
        DETECTION_MAX_INSTANCES = 400


    class NucleusInferenceConfig(NucleusConfig):
        # Set batch size to 1 to run one image at a time
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1
        # Don't resize imager for inferencing
        IMAGE_RESIZE_MODE = "pad64"
        # Non-max suppression threshold to filter RPN proposals.
        RPN_NMS_THRESHOLD = 0.7


    class NucleusDataset(object):
        pass
''')


def _script(tmp_path, text, name="train.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_balloon_training_script_gives_its_inference_config(tmp_path):
    config = MatterportConfig.from_file(_script(tmp_path, BALLOON_SCRIPT))
    assert config == PRESETS["balloon"].replace(CLASS_NAMES=None)


def test_a_nucleus_training_script_gives_its_inference_config(tmp_path):
    config = MatterportConfig.from_file(_script(tmp_path, NUCLEUS_SCRIPT))
    assert config == PRESETS["nucleus"].replace(CLASS_NAMES=None)


def test_without_an_inference_class_the_most_derived_config_is_read(tmp_path):
    text = NUCLEUS_SCRIPT.replace("NucleusInferenceConfig", "NucleusEvalConfig")
    assert MatterportConfig.from_file(_script(tmp_path, text)).IMAGE_RESIZE_MODE == "pad64"
    text = NUCLEUS_SCRIPT.split("class NucleusInferenceConfig")[0]
    config = MatterportConfig.from_file(_script(tmp_path, text))
    assert (config.IMAGE_RESIZE_MODE, config.RPN_NMS_THRESHOLD, config.IMAGE_SHAPE) == ("crop", 0.9, (512, 512, 3))


def test_script_expressions_names_arithmetic_and_aliases(tmp_path):
    text = textwrap.dedent('''\
        import numpy
        from mrcnn.config import Config as MRConfig
        N_PARTS = 4
        SIDE = 64 * 8

        class PartsConfig(MRConfig):
            NAME = "parts"
            GPU_COUNT = 2
            IMAGES_PER_GPU = GPU_COUNT * 2
            NUM_CLASSES = 1 + N_PARTS
            IMAGE_MAX_DIM = SIDE
            IMAGE_MIN_DIM = IMAGE_MAX_DIM // 2
            RPN_ANCHOR_SCALES = tuple(s for s in (8, 16, 32, 64, 128))
            MEAN_PIXEL = numpy.array([-1.0, +2, 3 ** 2])
            LEARNING_RATE = compute_rate()
            CLASS_NAMES = ["BG"] + ["part %d" % i for i in range(4)]
    ''')
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(_script(tmp_path, text))
    assert str(error.value) == (f"{tmp_path / 'train.py'}: line 13: RPN_ANCHOR_SCALES = tuple((s for s in (8, 16, 32, "
                                "64, 128))) cannot be read without running the script; write the value as a literal")
    text = text.replace("tuple(s for s in (8, 16, 32, 64, 128))", "(8, 16, 32, 64, 128)")
    text = text.replace('["BG"] + ["part %d" % i for i in range(4)]', '["BG"] + ["part"] * 4')
    config = MatterportConfig.from_file(_script(tmp_path, text))
    assert config == MatterportConfig(NAME="parts", NUM_CLASSES=5, IMAGE_MAX_DIM=512, IMAGE_MIN_DIM=256,
                                      RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128), MEAN_PIXEL=(-1.0, 2, 9),
                                      CLASS_NAMES=("BG", "part", "part", "part", "part"))


def test_a_subclass_overrides_its_base_and_an_unread_base_value_it_replaces(tmp_path):
    text = textwrap.dedent('''\
        from mrcnn import config
        class Base(config.Config):
            NUM_CLASSES = 1 + len(CLASSES)
            DETECTION_MIN_CONFIDENCE = 0.8
        class Mixin:
            POOL_SIZE = 5
        class InferenceConfig(Base, Mixin):
            NUM_CLASSES = 3
            DETECTION_MIN_CONFIDENCE = 0.5
    ''')
    # Mixin is no Config, so its POOL_SIZE is not read
    assert MatterportConfig.from_file(_script(tmp_path, text)) == MatterportConfig(
        NUM_CLASSES=3, DETECTION_MIN_CONFIDENCE=0.5)


def test_an_unread_inference_value_is_one_line(tmp_path):
    text = NUCLEUS_SCRIPT.replace("NUM_CLASSES = 1 + 1  # Background + nucleus", "NUM_CLASSES = 1 + len(CLASSES)")
    path = _script(tmp_path, text)
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(path)
    assert str(error.value) == (f"{path}: line 13: NUM_CLASSES = 1 + len(CLASSES) cannot be read without running the "
                                "script; write the value as a literal")


def test_an_unknown_key_in_a_script_names_the_key_and_the_file(tmp_path):
    path = _script(tmp_path, NUCLEUS_SCRIPT.replace("    IMAGES_PER_GPU = 1\n", "    IMAGES_PER_GPU = 1\n"
                                                                                  "    USE_OBJECTNESS = True\n"))
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(path)
    assert str(error.value) == f"{path}: unknown matterport config key 'USE_OBJECTNESS'"


def test_a_bad_value_in_a_script_names_the_file(tmp_path):
    path = _script(tmp_path, BALLOON_SCRIPT.replace("DETECTION_MIN_CONFIDENCE = 0.9", "DETECTION_MIN_CONFIDENCE = 90"))
    with pytest.raises(ValueError) as error:
        MatterportConfig.from_file(path)
    assert str(error.value) == f"{path}: DETECTION_MIN_CONFIDENCE must be a number from 0 to 1, got 90"


def test_load_reads_a_script_path(tmp_path):
    path = _script(tmp_path, BALLOON_SCRIPT)
    assert MatterportConfig.load(str(path)) == PRESETS["balloon"].replace(CLASS_NAMES=None)
