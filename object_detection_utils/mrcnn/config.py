"""Matterport's `mrcnn.config.Config`: settings as class attributes that a sample's subclass overrides.

Every attribute has matterport's name and default (the inference ones come from `MatterportConfig`, declared
once there); `__init__` computes BATCH_SIZE, IMAGE_SHAPE and IMAGE_META_SIZE as matterport's does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..models.matterport import MatterportConfig

# Settings matterport's Config has that only training reads, with matterport's defaults.
TRAINING_DEFAULTS: dict[str, Any] = {
    "GPU_COUNT": 1,
    "IMAGES_PER_GPU": 2,
    "STEPS_PER_EPOCH": 1000,
    "VALIDATION_STEPS": 50,
    "COMPUTE_BACKBONE_SHAPE": None,
    "RPN_TRAIN_ANCHORS_PER_IMAGE": 256,
    "POST_NMS_ROIS_TRAINING": 2000,
    "USE_MINI_MASK": True,
    "MINI_MASK_SHAPE": (56, 56),
    "TRAIN_ROIS_PER_IMAGE": 200,
    "ROI_POSITIVE_RATIO": 0.33,
    "MAX_GT_INSTANCES": 100,
    "LEARNING_RATE": 0.001,
    "LEARNING_MOMENTUM": 0.9,
    "WEIGHT_DECAY": 0.0001,
    "LOSS_WEIGHTS": {"rpn_class_loss": 1.0, "rpn_bbox_loss": 1.0, "mrcnn_class_loss": 1.0, "mrcnn_bbox_loss": 1.0,
                     "mrcnn_mask_loss": 1.0},
    "USE_RPN_ROIS": True,
    "TRAIN_BN": False,
    "GRADIENT_CLIP_NORM": 5.0,
}
# The container each sequence has in matterport's Config (code indexes, prints and does arithmetic on them).
_CONTAINERS = {"MEAN_PIXEL": np.array, "RPN_BBOX_STD_DEV": np.array, "BBOX_STD_DEV": np.array,
               "BACKBONE_STRIDES": list, "RPN_ANCHOR_RATIOS": list, "MASK_SHAPE": list}
_OURS_ONLY = {"CLASS_NAMES"}  # MatterportConfig fields matterport's Config does not have


class Config:
    """Matterport's base configuration; subclass it and override attributes, as matterport's samples do."""

    def __init__(self) -> None:
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        side = self.IMAGE_MIN_DIM if self.IMAGE_RESIZE_MODE == "crop" else self.IMAGE_MAX_DIM
        self.IMAGE_SHAPE = np.array([side, side, self.IMAGE_CHANNEL_COUNT])
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name, sorted."""
        return {name: getattr(self, name) for name in sorted(dir(self))
                if not name.startswith("__") and not callable(getattr(self, name))}

    def display(self) -> None:
        """Print every setting, one per line, as matterport's does."""
        print("\nConfigurations:")
        for name, value in self.to_dict().items():
            print(f"{name:30} {value}")
        print("\n")


def _matterport_defaults() -> dict[str, Any]:
    defaults = {field.name: field.default for field in dataclasses.fields(MatterportConfig)
                if field.name not in _OURS_ONLY}
    for name, container in _CONTAINERS.items():
        defaults[name] = container(defaults[name])
    return {**defaults, **TRAINING_DEFAULTS}


for _name, _value in _matterport_defaults().items():
    setattr(Config, _name, _value)
