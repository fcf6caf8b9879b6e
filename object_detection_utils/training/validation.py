"""Mask and box AP of a trained model on its validation pictures, through the evaluation module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycocotools.coco import COCO

from ..dataset_predictions import predict_annotated_pictures
from ..evaluation import evaluate_results
from ..model_contract import LoadedModel
from ..predictor import Segmenter
from .tfrecords import CocoDataset


@dataclass(frozen=True)
class Validation:
    """AP figures of one model on annotated pictures, the predictions and the annotations they were measured on."""

    scores: dict[str, float]  # mask_AP, mask_AP50, mask_AP75, box_AP, box_AP50, box_AP75
    predictions: list[dict[str, Any]]  # COCO result entries
    ground_truth: COCO


def validate(model: LoadedModel, dataset: CocoDataset, image_ids: list[int] | None = None,
             min_score: float = 0.05, progress: bool = True) -> Validation:
    """Run `model` over `image_ids` of `dataset` (default: all) and measure mask and box AP, AP50, AP75.

    The model's class ids must be the annotations' category ids (true for a model trained on them). Figures
    COCO leaves undefined (nothing to measure) count as 0.
    """
    ground_truth = dataset.load()
    image_ids = sorted(ground_truth.getImgIds()) if image_ids is None else list(image_ids)
    segmenter = Segmenter(model, min_score=min_score)
    predictions = predict_annotated_pictures(segmenter, ground_truth, dataset.images, image_ids, progress=progress)
    run = evaluate_results(ground_truth, predictions.entries, model.name, image_ids=image_ids,
                           with_masks=model.has_masks)
    scores = {}
    for iou_type, prefix in (("segm", "mask"), ("bbox", "box")):
        summary = run.metrics.get(iou_type, {}).get("summary", {})
        scores.update({f"{prefix}_{key}": summary.get(key) or 0.0 for key in ("AP", "AP50", "AP75")})
    return Validation(scores, predictions.entries, ground_truth)
