"""What every loaded model is and gives, whatever runs it: the zoo's output names, raw outputs, mask pasting.

The contract between the engines (models/: TensorFlow, OpenVINO, matterport's port) and what reads their
outputs (postprocess, the back ends' gate, the batch jobs). No TensorFlow here: drivers and writers import it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .box_masks import BoxMasks
from .label_map import LabelMap
from .masks import reframe_box_masks_compact

# The detection zoo's names: a frozen graph's file and input, and the outputs every detection model gives.
FROZEN_GRAPH_NAME = "frozen_inference_graph.pb"
FROZEN_INPUT = "image_tensor"
REQUIRED_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
MASK_OUTPUT = "detection_masks"

RawOutputs = dict[str, np.ndarray]
# paste_masks(box_masks, boxes, height, width, threshold) -> the picture's masks: compact `BoxMasks` (the zoo's
# reframing) or an (N, H, W) bool array (matterport's unmolding)
MaskPaster = Callable[[np.ndarray, np.ndarray, int, int, float], "np.ndarray | BoxMasks"]


@dataclass(frozen=True)
class KeptInstances:
    """Which detections a reader keeps (a `Segmenter`'s filters): an engine may compute masks for these only."""

    min_score: float
    class_ids: tuple[int, ...] | None = None  # None keeps every class

    def keeps(self, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Bool per detection: its score is at least `min_score` and its (integer) class is kept."""
        keep = np.asarray(scores, np.float32) >= np.float32(self.min_score)
        if self.class_ids is not None:
            keep &= np.isin(classes, np.asarray(self.class_ids, np.int64))
        return keep


@dataclass
class LoadedModel:
    """A loaded model: RGB uint8 pictures in, the zoo's raw output arrays out.

    The graph is imported once; every call goes through the same function, so a picture costs one graph
    execution and nothing else. Outputs keep the batch axis: `detection_boxes` is (B, N, 4).
    `paste_masks(box_masks, boxes, height, width, threshold)` turns `detection_masks` into picture masks
    the way the model's own code does (the zoo's reframing; matterport's unmolding for its `.h5` models).
    """

    name: str
    source: Path
    kind: str  # "frozen_graph", "saved_model" or "matterport_h5"
    label_map: LabelMap
    has_masks: bool
    _run: Callable[[np.ndarray], RawOutputs] = field(repr=False)
    backend: str = "tensorflow"  # the engine that runs it: "tensorflow", "openvino f32" or "openvino bf16"
    batched: bool = False  # one engine call takes several pictures (else `predict_batch` runs them one by one)
    masks_where_kept: bool = False  # `_run(images, kept=...)` computes masks for the kept detections only
    paste_masks: MaskPaster = field(default=reframe_box_masks_compact, repr=False)
    load_seconds: float = 0.0
    warmup_seconds: float = 0.0

    def predict_batch(self, images: np.ndarray, kept: KeptInstances | None = None) -> RawOutputs:
        """Run a (B, H, W, 3) uint8 batch of same-size RGB pictures; returns numpy outputs with a batch axis.

        With `kept`, an engine that can (`masks_where_kept`) runs the mask head only on the detections `kept`
        keeps; the others' masks are left empty (all zeros). Everything else is the same.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected a (B, H, W, 3) uint8 RGB batch, got {images.shape} {images.dtype}")
        if kept is not None and self.masks_where_kept:
            return self._run(images, kept=kept)
        return self._run(images)

    def predict(self, image: np.ndarray, kept: KeptInstances | None = None) -> RawOutputs:
        """Run one (H, W, 3) uint8 RGB picture; outputs keep a batch axis of 1 (`kept`: see `predict_batch`)."""
        return self.predict_batch(np.asarray(image)[None], kept)

    def warm_up(self, size: tuple[int, int] = (320, 320)) -> float:
        """One call on a blank picture, so the first real picture does not pay for the engine's start-up."""
        start = time.perf_counter()
        self.predict(np.full((*size, 3), 128, np.uint8))
        self.warmup_seconds = time.perf_counter() - start
        return self.warmup_seconds


@dataclass(frozen=True)
class ModelDescription:
    """A model as found on disk, before anything runs it: what a driver needs to read its outputs.

    `kind` is "frozen_graph", "saved_model" or "matterport_h5"; `target` the file or folder an engine loads
    (`source` itself for matterport); `source` is the extracted folder for a zoo archive.
    """

    name: str
    source: Path
    kind: str
    target: Path
    label_map: LabelMap
    paste_masks: MaskPaster = field(default=reframe_box_masks_compact, repr=False)


@dataclass(frozen=True)
class EngineRun:
    """Another engine's runner for a described model (models/backends), in place of TensorFlow's."""

    run: Callable[..., RawOutputs]
    has_masks: bool
    backend: str  # e.g. "openvino f32"
    masks_where_kept: bool = False  # `run(images, kept=KeptInstances)` is understood
    batched: bool = False  # one `run` takes several same-size pictures at once
