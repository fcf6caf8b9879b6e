"""Running a `Segmenter` over the pictures a COCO annotations file lists: result entries ready for evaluation."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from tqdm import tqdm

from .errors import ImageReadError
from .io.images import read_image
from .predictor import Segmenter


@dataclass
class Predictions:
    """COCO result entries over the pictures that could be read, with the time each picture took."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def predict_annotated_pictures(
    segmenter: Segmenter,
    ground_truth: COCO,
    images_dir: Path,
    image_ids: list[int],
    progress: bool = True,
) -> Predictions:
    """Segment the annotated pictures `image_ids`; unreadable pictures or ones of another size are skipped.

    Seconds count inference and post-processing, not reading the picture.
    """
    predictions = Predictions()
    for image_id in tqdm(image_ids, desc=segmenter.name, unit="picture", file=sys.stderr, leave=False,
                         disable=not progress):
        info = ground_truth.imgs[image_id]
        path = images_dir / info["file_name"]
        try:
            image = read_image(path)
        except ImageReadError as error:
            problem = str(error)
        else:
            if image.shape[:2] == (info["height"], info["width"]):
                start = time.perf_counter()
                detections = segmenter(image)
                predictions.seconds.append(time.perf_counter() - start)
                predictions.entries.extend(detections.to_coco(image_id))
                predictions.image_ids.append(image_id)
                continue
            problem = (f"{path}: picture is {image.shape[1]}x{image.shape[0]}, "
                       f"the annotations say {info['width']}x{info['height']}")
        predictions.skipped.append(problem)
        tqdm.write(f"skipped: {problem}", file=sys.stderr)
    return predictions
