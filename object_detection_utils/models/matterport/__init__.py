"""Matterport Mask_RCNN `.h5` weights on today's TensorFlow: its config, its network (our own TF2 port) and its
pre- and post-processing, with `load_matterport(path)` tying them together."""

from .config import PRESETS, MatterportConfig
from .model import MatterportModel, load_matterport

__all__ = ["PRESETS", "MatterportConfig", "MatterportModel", "load_matterport"]
