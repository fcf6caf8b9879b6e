"""Matterport Mask R-CNN configuration: the inference settings of matterport's `Config`, its samples' presets,
and reading a config from a mapping, an object, a JSON file or a training script (parsed, never run).

Field names, defaults and the derived `IMAGE_SHAPE` / `IMAGE_META_SIZE` follow matterport's `mrcnn/config.py`
(Copyright (c) 2017 Matterport, Inc., MIT License).
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ...errors import MatterportConfigError
from .script_reader import read_script_config

RESIZE_MODES = ("square", "pad64", "crop", "none")
BACKBONES = ("resnet50", "resnet101")

# Matterport keys that only matter for training, and the values its Config computes in __init__: accepted, ignored.
TRAINING_KEYS = frozenset({
    "GPU_COUNT", "IMAGES_PER_GPU", "STEPS_PER_EPOCH", "VALIDATION_STEPS", "COMPUTE_BACKBONE_SHAPE",
    "RPN_TRAIN_ANCHORS_PER_IMAGE", "POST_NMS_ROIS_TRAINING", "USE_MINI_MASK", "MINI_MASK_SHAPE",
    "TRAIN_ROIS_PER_IMAGE", "ROI_POSITIVE_RATIO", "MAX_GT_INSTANCES", "LEARNING_RATE", "LEARNING_MOMENTUM",
    "WEIGHT_DECAY", "LOSS_WEIGHTS", "USE_RPN_ROIS", "TRAIN_BN", "GRADIENT_CLIP_NORM",
})
DERIVED_KEYS = frozenset({"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"})

COCO_CLASS_NAMES = (
    "BG", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

_POSITIVE_INTS = (
    "NUM_CLASSES", "FPN_CLASSIF_FC_LAYERS_SIZE", "TOP_DOWN_PYRAMID_SIZE", "RPN_ANCHOR_STRIDE", "PRE_NMS_LIMIT",
    "POST_NMS_ROIS_INFERENCE", "IMAGE_MAX_DIM", "IMAGE_CHANNEL_COUNT", "POOL_SIZE", "MASK_POOL_SIZE",
    "DETECTION_MAX_INSTANCES",
)
_FRACTIONS = ("RPN_NMS_THRESHOLD", "DETECTION_MIN_CONFIDENCE", "DETECTION_NMS_THRESHOLD")
# Sequence fields: (length or None for any, element check), elements as Python numbers.
_SEQUENCES: dict[str, tuple[int | None, str]] = {
    "BACKBONE_STRIDES": (5, "positive int"),
    "RPN_ANCHOR_SCALES": (5, "positive number"),
    "RPN_ANCHOR_RATIOS": (None, "positive number"),
    "MEAN_PIXEL": (None, "number"),
    "MASK_SHAPE": (2, "positive int"),
    "RPN_BBOX_STD_DEV": (4, "positive number"),
    "BBOX_STD_DEV": (4, "positive number"),
}


@dataclass(frozen=True)
class MatterportConfig:
    """Matterport's inference settings, under matterport's attribute names and with its defaults.

    Sequences are tuples. Inference runs one picture per call (matterport's BATCH_SIZE = 1). `CLASS_NAMES`
    (ours, optional) names the classes by id, index 0 being the background "BG".
    """

    NAME: str | None = None
    NUM_CLASSES: int = 1
    BACKBONE: str = "resnet101"
    BACKBONE_STRIDES: tuple[int, ...] = (4, 8, 16, 32, 64)
    FPN_CLASSIF_FC_LAYERS_SIZE: int = 1024
    TOP_DOWN_PYRAMID_SIZE: int = 256
    RPN_ANCHOR_SCALES: tuple[float, ...] = (32, 64, 128, 256, 512)
    RPN_ANCHOR_RATIOS: tuple[float, ...] = (0.5, 1, 2)
    RPN_ANCHOR_STRIDE: int = 1
    RPN_NMS_THRESHOLD: float = 0.7
    PRE_NMS_LIMIT: int = 6000
    POST_NMS_ROIS_INFERENCE: int = 1000
    IMAGE_RESIZE_MODE: str = "square"
    IMAGE_MIN_DIM: int = 800
    IMAGE_MAX_DIM: int = 1024
    IMAGE_MIN_SCALE: float = 0
    IMAGE_CHANNEL_COUNT: int = 3
    MEAN_PIXEL: tuple[float, ...] = (123.7, 116.8, 103.9)
    POOL_SIZE: int = 7
    MASK_POOL_SIZE: int = 14
    MASK_SHAPE: tuple[int, int] = (28, 28)
    RPN_BBOX_STD_DEV: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
    BBOX_STD_DEV: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
    DETECTION_MAX_INSTANCES: int = 100
    DETECTION_MIN_CONFIDENCE: float = 0.7
    DETECTION_NMS_THRESHOLD: float = 0.3
    CLASS_NAMES: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name, value in _normalised(self).items():
            object.__setattr__(self, name, value)

    @property
    def IMAGE_SHAPE(self) -> tuple[int, int, int]:
        """The network's nominal input shape, as matterport computes it (its anchors are laid out for it)."""
        side = self.IMAGE_MIN_DIM if self.IMAGE_RESIZE_MODE == "crop" else self.IMAGE_MAX_DIM
        return (side, side, self.IMAGE_CHANNEL_COUNT)

    @property
    def IMAGE_META_SIZE(self) -> int:
        """Length of matterport's image meta vector: id, original shape, shape, window, scale, active class ids."""
        return 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    @classmethod
    def preset(cls, name: str) -> MatterportConfig:
        """The inference config of one of matterport's samples: "coco", "balloon" or "nucleus"."""
        try:
            return PRESETS[name]
        except KeyError:
            raise MatterportConfigError(f"unknown matterport preset {name!r}: choose {', '.join(PRESETS)}") from None

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], source: str = "matterport config") -> MatterportConfig:
        """A config from matterport-named keys; training-only keys are ignored, any other unknown key is an error.
        `source` names where the mapping came from in error messages."""
        fields = {field.name for field in dataclasses.fields(cls)}
        values = {}
        for key, value in mapping.items():
            if key in fields:
                values[key] = value
            elif key not in TRAINING_KEYS and key not in DERIVED_KEYS:
                raise MatterportConfigError(f"{source}: unknown matterport config key {key!r}")
        if mapping.get("TRAIN_BN") is True:
            raise MatterportConfigError(f"{source}: TRAIN_BN True (batch norm in training mode at inference) is not supported")
        try:
            return cls(**values)
        except ValueError as error:
            raise MatterportConfigError(f"{source}: {error}") from None

    @classmethod
    def from_object(cls, obj: object) -> MatterportConfig:
        """A config from the UPPER_CASE attributes of an object or class, e.g. a matterport `Config` instance."""
        name = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        values = {key: getattr(obj, key) for key in dir(obj) if key.isupper() and not key.startswith("_")}
        return cls.from_mapping(values, source=f"config {name}")

    @classmethod
    def from_file(cls, path: str | Path) -> MatterportConfig:
        """A config from a `.json` object of matterport keys, or from the config class of a matterport training
        script `.py` (read as source, never executed)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MatterportConfigError(f"{path}: matterport config file not found") from None
        except OSError as error:
            raise MatterportConfigError(f"{path}: cannot read matterport config ({error.strerror})") from None
        except UnicodeDecodeError:
            raise MatterportConfigError(f"{path}: a matterport config must be UTF-8 text") from None
        if path.suffix.lower() == ".json":
            try:
                mapping = json.loads(text)
            except json.JSONDecodeError as error:
                raise MatterportConfigError(f"{path}: not valid JSON: {error}") from None
            if not isinstance(mapping, dict):
                raise MatterportConfigError(f"{path}: a matterport config must be a JSON object of settings")
        elif path.suffix.lower() == ".py":
            mapping = read_script_config(text, path, ignored_keys=TRAINING_KEYS | DERIVED_KEYS)
        else:
            raise MatterportConfigError(f"{path}: a matterport config file must be .json or .py")
        return cls.from_mapping(mapping, source=str(path))

    @classmethod
    def load(cls, spec: str | Path) -> MatterportConfig:
        """A preset name or a config file path, as `--matterport-config NAME|FILE` takes it."""
        if isinstance(spec, str) and spec in PRESETS:
            return PRESETS[spec]
        if not Path(spec).exists():
            raise MatterportConfigError(f"matterport config {str(spec)!r} is neither a preset ({', '.join(PRESETS)}) "
                             "nor an existing file")
        return cls.from_file(spec)

    def replace(self, **changes: Any) -> MatterportConfig:
        """A copy with some fields changed (validated like any config)."""
        return dataclasses.replace(self, **changes)


def _normalised(config: MatterportConfig) -> dict[str, Any]:
    """The config's values as plain Python values (tuples, ints, floats), or ValueError for the first bad one."""
    values = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    if values["NAME"] is not None and not isinstance(values["NAME"], str):
        raise MatterportConfigError(f"NAME must be a string, got {values['NAME']!r}")
    if values["BACKBONE"] not in BACKBONES:
        raise MatterportConfigError(f"BACKBONE {values['BACKBONE']!r} is not one of {', '.join(BACKBONES)}")
    if values["IMAGE_RESIZE_MODE"] not in RESIZE_MODES:
        raise MatterportConfigError(f"IMAGE_RESIZE_MODE {values['IMAGE_RESIZE_MODE']!r} is not one of "
                         f"{', '.join(RESIZE_MODES)}")
    for name in _POSITIVE_INTS:
        values[name] = _number(name, values[name], "positive int")
    values["IMAGE_MIN_DIM"] = _number("IMAGE_MIN_DIM", values["IMAGE_MIN_DIM"], "int >= 0")
    # matterport treats a missing minimum scale (None) as no minimum
    values["IMAGE_MIN_SCALE"] = _number("IMAGE_MIN_SCALE", values["IMAGE_MIN_SCALE"] or 0, "number >= 0")
    for name in _FRACTIONS:
        values[name] = _number(name, values[name], "number from 0 to 1")
    for name, (length, kind) in _SEQUENCES.items():
        values[name] = _sequence(name, values[name], length, kind)
    if len(values["MEAN_PIXEL"]) != values["IMAGE_CHANNEL_COUNT"]:
        raise MatterportConfigError(f"MEAN_PIXEL has {len(values['MEAN_PIXEL'])} values for IMAGE_CHANNEL_COUNT "
                         f"{values['IMAGE_CHANNEL_COUNT']}")
    mode = values["IMAGE_RESIZE_MODE"]
    side_name = "IMAGE_MIN_DIM" if mode == "crop" else "IMAGE_MAX_DIM"
    if values[side_name] % 64:
        raise MatterportConfigError(f"{side_name} {values[side_name]} must be a multiple of 64 (matterport halves the picture "
                         "six times)")
    if mode == "pad64" and values["IMAGE_MIN_DIM"] % 64:
        raise MatterportConfigError(f"IMAGE_MIN_DIM {values['IMAGE_MIN_DIM']} must be a multiple of 64 in pad64 mode")
    names = values["CLASS_NAMES"]
    if names is not None:
        if isinstance(names, str) or not all(isinstance(item, str) for item in names):
            raise MatterportConfigError("CLASS_NAMES must be a list of strings")
        values["CLASS_NAMES"] = tuple(names)
        if len(names) != values["NUM_CLASSES"]:
            raise MatterportConfigError(f"CLASS_NAMES has {len(names)} names for NUM_CLASSES {values['NUM_CLASSES']} "
                             "(the first name is the background, BG)")
    return values


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "positive int": lambda v: isinstance(v, int) and v > 0,
    "int >= 0": lambda v: isinstance(v, int) and v >= 0,
    "number": lambda v: True,
    "positive number": lambda v: v > 0,
    "number >= 0": lambda v: v >= 0,
    "number from 0 to 1": lambda v: 0 <= v <= 1,
}


def _number(name: str, value: Any, kind: str) -> int | float:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not _CHECKS[kind](value):
        raise MatterportConfigError(f"{name} must be a {kind}, got {value!r}")
    return value


def _sequence(name: str, value: Any, length: int | None, kind: str) -> tuple:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not value or (length is not None and len(value) != length):
        size = f"{length} values" if length else "values"
        raise MatterportConfigError(f"{name} must be a list of {size} ({kind}), got {value!r}")
    try:
        return tuple(_number(name, item, kind) for item in value)
    except ValueError:
        raise MatterportConfigError(f"{name} must be a list of {kind} values, got {value!r}") from None


PRESETS: Mapping[str, MatterportConfig] = MappingProxyType({
    # samples/demo.ipynb's InferenceConfig over samples/coco/coco.py's CocoConfig: the demo's detection, not
    # coco.py's evaluation (DETECTION_MIN_CONFIDENCE 0 keeps every detection for mAP)
    "coco": MatterportConfig(NAME="coco", NUM_CLASSES=81, CLASS_NAMES=COCO_CLASS_NAMES),
    # samples/balloon/balloon.py, InferenceConfig
    "balloon": MatterportConfig(NAME="balloon", NUM_CLASSES=2, DETECTION_MIN_CONFIDENCE=0.9,
                                CLASS_NAMES=("BG", "balloon")),
    # samples/nucleus/nucleus.py, NucleusInferenceConfig
    "nucleus": MatterportConfig(
        NAME="nucleus", NUM_CLASSES=2, DETECTION_MIN_CONFIDENCE=0, BACKBONE="resnet50", IMAGE_RESIZE_MODE="pad64",
        IMAGE_MIN_DIM=512, IMAGE_MAX_DIM=512, IMAGE_MIN_SCALE=2.0, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128),
        POST_NMS_ROIS_INFERENCE=2000, RPN_NMS_THRESHOLD=0.7, MEAN_PIXEL=(43.53, 39.56, 48.22),
        DETECTION_MAX_INSTANCES=400, CLASS_NAMES=("BG", "nucleus"),
    ),
})
