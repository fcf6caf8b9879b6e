"""A matterport Mask R-CNN `.h5` as a model: config + weights + network + matterport's pre- and post-processing.

`MatterportModel.detect(image)` returns what matterport's `model.detect([image])[0]` returns; `raw_outputs` gives
the same detections in the zoo's output format, and `paste_masks` turns its box masks into picture masks the
way matterport unmolds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ModelLoadError
from ..tensorflow_runtime import import_tensorflow
from .config import MatterportConfig
from .h5_weights import infer_config, match_weights, read_keras_h5
from .preprocessing import (
    Unmolded,
    mold_image,
    paste_masks,
    paste_pixel_masks,
    resize_image,
    unmold_detections,
)

if TYPE_CHECKING:
    from .network import MatterportNetwork

ConfigSpec = MatterportConfig | str | Path | Mapping[str, Any] | None


class MatterportModel:
    """Matterport's inference model on loaded weights; one RGB picture (H, W, IMAGE_CHANNEL_COUNT) per call."""

    def __init__(self, config: MatterportConfig, network: MatterportNetwork) -> None:
        self.config = config
        self.network = network

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class name by id, "BG" first: the config's CLASS_NAMES, else "class 1", "class 2", ..."""
        if self.config.CLASS_NAMES is not None:
            return self.config.CLASS_NAMES
        return ("BG", *(f"class {i}" for i in range(1, self.config.NUM_CLASSES)))

    def detect(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """As matterport's `model.detect([image])[0]`: rois (N, 4) int32 [y1, x1, y2, x2] in picture pixels,
        class_ids (N,) int32, scores (N,) float32, masks (H, W, N) bool."""
        image = self._checked(image)
        found = self._run(image)
        masks = paste_pixel_masks(found.box_masks, found.rois, *image.shape[:2])
        return {"rois": found.rois, "class_ids": found.class_ids, "scores": found.scores,
                "masks": np.moveaxis(masks, 0, -1)}

    def raw_outputs(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """The same detections in the zoo's format, batch axis 1: detection_boxes (1, N, 4) = rois / (H, W, H, W),
        detection_scores (1, N), detection_classes (1, N) float, num_detections (1,), detection_masks
        (1, N, mh, mw) float32 box masks of the detected class."""
        image = self._checked(image)
        found = self._run(image)
        height, width = image.shape[:2]
        boxes = found.rois.astype(np.float32) / np.array([height, width, height, width], np.float32)
        return {
            "detection_boxes": boxes[None],
            "detection_scores": found.scores.astype(np.float32)[None],
            "detection_classes": found.class_ids.astype(np.float32)[None],
            "num_detections": np.array([len(found.rois)], np.float32),
            "detection_masks": found.box_masks.astype(np.float32)[None],
        }

    paste_masks = staticmethod(paste_masks)

    def _checked(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        channels = self.config.IMAGE_CHANNEL_COUNT
        if image.ndim != 3 or image.shape[2] != channels or min(image.shape[:2]) < 1:
            raise ValueError(f"matterport model expects an (H, W, {channels}) picture, got shape {image.shape}")
        return image

    def _run(self, image: np.ndarray) -> Unmolded:
        config = self.config
        resized = resize_image(image, config.IMAGE_RESIZE_MODE, config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM,
                               config.IMAGE_MIN_SCALE)
        molded = mold_image(resized.image, config.MEAN_PIXEL)
        detections, box_masks = self.network.detect(molded, resized.window)
        return unmold_detections(detections, box_masks, image.shape[:2], molded.shape[:2], resized.window)


def resolve_config(config: ConfigSpec) -> MatterportConfig | None:
    """A MatterportConfig from a config, a preset name or config file, or a mapping of matterport keys
    (MatterportConfigError, a ModelLoadError, when it cannot be one)."""
    if config is None or isinstance(config, MatterportConfig):
        return config
    if isinstance(config, Mapping):
        return MatterportConfig.from_mapping(config)
    return MatterportConfig.load(config)


def load_matterport(path: str | Path, config: ConfigSpec = None, exclude: Iterable[str] = ()) -> MatterportModel:
    """Load matterport Mask R-CNN weights (a Keras 2 `.h5`) into our network.

    `config` is a MatterportConfig, a preset name ("coco", "balloon", "nucleus"), a config file (.json or a
    training script .py) or a mapping of matterport keys; None infers the architecture from the weights.
    `exclude` names layers (or regular expressions) of the file to leave out, as matterport's load_weights.
    Wrong files and configs raise ModelLoadError with one line per problem.
    """
    path = Path(path)
    exclude = tuple(exclude)
    found = read_keras_h5(path)
    resolved = infer_config(found, resolve_config(config), path, exclude)
    import_tensorflow()  # before the network module imports it: sets TensorFlow's log level and GPU memory growth
    from .network import MatterportNetwork

    network = MatterportNetwork(resolved)
    expected = network.expected_weights()
    weights = match_weights(expected, found, path, exclude)
    left_out = [layer for layer in expected if layer not in weights]
    if left_out:
        raise ModelLoadError(f"{path}: excluded layers the network cannot run without: {', '.join(left_out)}")
    network.set_weights(weights)
    return MatterportModel(resolved, network)
