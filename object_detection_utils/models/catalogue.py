"""The detection zoo's models: what each one is, where its archive lives, and its short alias."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

ZOO_BASE_URL = "http://download.tensorflow.org/models/object_detection"
ZOO_URL_ENV = "INSTANCE_SEGMENTATION_ZOO_URL"  # a mirror of ZOO_BASE_URL's tree (tests use a local server)


@dataclass(frozen=True)
class ZooModel:
    """One catalogued zoo model, with the figures the zoo publishes for it.

    `speed_ms` is the zoo's time per picture on its reference GPU (TF1: 600x600 on a Titan X; TF2: 1024x1024
    on a V100), and `box_map` / `mask_map` its COCO mAP[.5:.95]. The TF1 zoo publishes box mAP only, so
    `mask_map` is None there. `sha256` is the archive's digest when known; nobody has published them for the
    zoo, so they are None and the first download's digest is recorded instead (see download.py).
    """

    name: str
    alias: str
    archive_path: str  # under ZOO_BASE_URL
    kind: str  # "frozen_graph" (TF1) or "saved_model" (TF2)
    speed_ms: int
    box_map: float  # int where the zoo rounds to the nearest integer (TF1)
    mask_map: float | None
    has_masks: bool = True
    sha256: str | None = None

    @property
    def archive_name(self) -> str:
        return self.archive_path.rsplit("/", 1)[-1]

    @property
    def url(self) -> str:
        """The archive's URL, under $INSTANCE_SEGMENTATION_ZOO_URL when that names a mirror."""
        base = os.environ.get(ZOO_URL_ENV) or ZOO_BASE_URL
        return f"{base.rstrip('/')}/{self.archive_path}"


def _tf1(alias: str, date: str, speed_ms: int, box_map: float, has_masks: bool = True) -> ZooModel:
    name = f"{alias}_{date}"
    return ZooModel(name, alias, f"{name}.tar.gz", "frozen_graph", speed_ms, box_map, None, has_masks)


# Figures from research/object_detection/g3doc/tf1_detection_zoo.md and tf2_detection_zoo.md (tensorflow/models).
CATALOGUE: dict[str, ZooModel] = {model.name: model for model in (
    _tf1("mask_rcnn_inception_v2_coco", "2018_01_28", 79, 25),
    _tf1("mask_rcnn_resnet50_atrous_coco", "2018_01_28", 343, 29),
    _tf1("mask_rcnn_resnet101_atrous_coco", "2018_01_28", 470, 33),
    _tf1("mask_rcnn_inception_resnet_v2_atrous_coco", "2018_01_28", 771, 36),
    ZooModel("mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8", "mask_rcnn_inception_resnet_v2_1024x1024",
             "tf2/20200711/mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.tar.gz", "saved_model",
             301, 39.0, 34.6),
    # Boxes only: they run through the same code, the pictures just get no masks.
    _tf1("ssd_mobilenet_v2_coco", "2018_03_29", 31, 22, has_masks=False),
    _tf1("faster_rcnn_inception_v2_coco", "2018_01_28", 58, 28, has_masks=False),
    _tf1("faster_rcnn_resnet50_coco", "2018_01_28", 89, 30, has_masks=False),
)}
ALIASES: dict[str, str] = {model.alias: model.name for model in CATALOGUE.values()}


def catalogued(name: str) -> ZooModel | None:
    """The catalogue entry for a full zoo name or a short alias, else None."""
    return CATALOGUE.get(name) or CATALOGUE.get(ALIASES.get(name, ""))


def close_matches(name: str, count: int = 3) -> list[str]:
    """Catalogued names (full or alias) that look like `name`, best first."""
    return difflib.get_close_matches(name, [*CATALOGUE, *ALIASES], n=count, cutoff=0.6)
