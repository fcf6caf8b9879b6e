"""Mask and box AP of a loaded model on COCO-annotated pictures, through the same inference path as the scripts."""

from __future__ import annotations

import contextlib
import io

from tqdm import tqdm

from ..coco_results import detections_to_coco
from ..errors import ImageReadError
from ..image_io import read_image
from ..inference import run_inference_for_single_image
from ..model import SegmentationModel
from .tfrecords import CocoDataset


def coco_ap(model: SegmentationModel, dataset: CocoDataset, image_ids: list[int] | None = None,
            min_score: float = 0.05, progress: bool = True) -> dict[str, float]:
    """{"mask_AP", "mask_AP50", "mask_AP75", "box_AP", "box_AP50", "box_AP75"} over `image_ids` (default: all).

    The model's class ids must be the annotations' category ids (true for a model trained on them).
    """
    from pycocotools.cocoeval import COCOeval

    coco = dataset.load()
    image_ids = sorted(coco.getImgIds()) if image_ids is None else list(image_ids)
    results = []
    for image_id in tqdm(image_ids, desc="evaluating", unit="picture", disable=not progress):
        try:
            image = read_image(dataset.images / coco.imgs[image_id]["file_name"])
        except ImageReadError as error:
            tqdm.write(f"skipped: {error}")
            continue
        detections = run_inference_for_single_image(model, image, min_score=min_score)
        results.extend(detections_to_coco(detections, image_id))
    scores = {}
    for iou_type, prefix in (("segm", "mask"), ("bbox", "box")):
        if not results:
            scores.update({f"{prefix}_AP": 0.0, f"{prefix}_AP50": 0.0, f"{prefix}_AP75": 0.0})
            continue
        entries = results if iou_type == "segm" else [{k: v for k, v in r.items() if k != "segmentation"}
                                                       for r in results]
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(coco, coco.loadRes(entries), iou_type)
            evaluation.params.imgIds = image_ids
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        # COCOeval reports -1 where there is nothing to measure.
        ap, ap50, ap75 = (max(float(v), 0.0) for v in evaluation.stats[:3])
        scores.update({f"{prefix}_AP": ap, f"{prefix}_AP50": ap50, f"{prefix}_AP75": ap75})
    return scores
