"""instance-segmentation: Mask R-CNN models from the TensorFlow detection zoo, without TensorFlow code.

    from object_detection_utils import Segmenter, draw_detections, read_image

    segmenter = Segmenter.load("mask_rcnn_inception_v2_coco_2018_01_28", classes=["person"])  # name or path
    image = read_image("street.jpg")                               # RGB uint8, EXIF-upright
    detections = segmenter(image)
    picture = draw_detections(image, detections)
"""

from __future__ import annotations

from pathlib import Path

from .detections import Detections, Instance
from .errors import ImageReadError, InstanceSegmentationError, LabelMapError, ModelLoadError
from .io.images import read_image, write_image
from .label_map import COCO_LABELS, LabelMap
from .masks import masks_to_boxes, reframe_box_masks
from .model_contract import LoadedModel
from .models.zoo import DEFAULT_MODEL, find_model, load_model
from .postprocess import detections_from_outputs
from .predictor import Segmenter, SegmenterSpec, run_inference_for_single_image
from .visualization.drawing import display_instances, draw_detections

__all__ = [
    "COCO_LABELS", "DEFAULT_MODEL", "Detections", "ImageReadError", "Instance", "InstanceSegmentationError",
    "LabelMap", "LabelMapError", "LoadedModel", "ModelLoadError", "Segmenter", "SegmenterSpec", "detections_from_outputs",
    "display_instances", "draw_detections", "find_model", "load_model", "masks_to_boxes", "read_image",
    "reframe_box_masks", "run_inference_for_single_image", "sample_image_path", "write_image",
]


def sample_image_path() -> Path:
    """matplotlib's sample photo of Grace Hopper: a real picture that every installation has."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
