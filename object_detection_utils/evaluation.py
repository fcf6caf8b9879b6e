"""COCO evaluation: box and mask AP with pycocotools, precision/recall/IoU at a score threshold, the report.

Ground truth is a COCO annotations JSON; predictions are COCO result entries exactly as
`coco_format.detections_to_coco` writes them. Metrics that COCO leaves undefined (-1: no ground truth in that
class or size range) are `None` here, `null` in the report.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .errors import EvaluationError
from .io.atomic import write_text_atomic
from .io.json_files import read_json

IOU_TYPES = ("bbox", "segm")
MATCH_IOU = 0.5
# COCOeval.stats, in order.
SUMMARY_KEYS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                "AR_1", "AR_10", "AR_100", "AR_small", "AR_medium", "AR_large")


def _quietly(function, *args):
    """pycocotools prints progress on stdout; keep it off ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def load_ground_truth(path: str | Path) -> COCO:
    """A pycocotools `COCO` of an annotations JSON; the `info`/`licenses` keys some files lack are added in memory."""
    path = Path(path)
    return ground_truth_from_dict(read_json(path, EvaluationError, "annotations"), source=str(path))


def ground_truth_from_dict(dataset: dict[str, Any], source: str = "annotations") -> COCO:
    """A pycocotools `COCO` of an annotations dict (`images`, `annotations`, `categories`)."""
    if not isinstance(dataset, dict):
        raise EvaluationError(f"{source}: not COCO annotations (expected an object with images and annotations)")
    missing = [key for key in ("images", "annotations", "categories") if key not in dataset]
    if missing:
        raise EvaluationError(f"{source}: not COCO annotations (missing {', '.join(missing)})")
    dataset = {"info": {}, "licenses": [], **dataset}
    coco = COCO()
    coco.dataset = dataset
    try:
        _quietly(coco.createIndex)
    except (KeyError, TypeError) as error:
        raise EvaluationError(f"{source}: malformed COCO annotations ({type(error).__name__}: {error})") from None
    return coco


def load_results(path: str | Path, ground_truth: COCO | None = None) -> list[dict[str, Any]]:
    """COCO result entries from a JSON file: a plain list of results, or the batch script's COCO file.

    The batch script's file is a dataset (`images` with `file_name`, `annotations` holding the results). Its
    image ids are renumbered to the ground truth's by file name, when `ground_truth` is given.
    """
    path = Path(path)
    data = read_json(path, EvaluationError, "results")
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        entries = data["annotations"]
        if ground_truth is not None and isinstance(data.get("images"), list):
            entries = _renumber_by_file_name(entries, data["images"], ground_truth)
    elif isinstance(data, list):
        entries = data
    else:
        raise EvaluationError(f"{path}: not COCO results (expected a list of detections or a COCO results file)")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"image_id", "category_id", "bbox", "score"} <= entry.keys():
            raise EvaluationError(
                f"{path}: entry {number} is not a COCO result (needs image_id, category_id, bbox, score)"
            )
    return entries


def _renumber_by_file_name(
    entries: list[dict[str, Any]], images: list[dict[str, Any]], ground_truth: COCO
) -> list[dict[str, Any]]:
    """Results with the ground truth's image ids, matched on the pictures' file names (base names)."""
    truth_ids = {Path(image["file_name"]).name: image["id"] for image in ground_truth.dataset["images"]}
    id_map = {
        image["id"]: truth_ids[Path(image["file_name"]).name]
        for image in images
        if "file_name" in image and Path(image["file_name"]).name in truth_ids
    }
    return [{**entry, "image_id": id_map.get(entry.get("image_id"), entry.get("image_id"))} for entry in entries]


def check_results(entries: list[dict[str, Any]], ground_truth: COCO, source: str = "results") -> None:
    """Refuse results that name pictures the annotations do not have (most likely a different numbering)."""
    known = set(ground_truth.getImgIds())
    unknown = sorted({entry["image_id"] for entry in entries} - known)
    if unknown:
        raise EvaluationError(
            f"{source}: {len(unknown)} image ids are not in the annotations (e.g. {unknown[0]}); "
            f"results must use the annotations' image ids"
        )


def _results_coco(ground_truth: COCO, entries: list[dict[str, Any]], iou_type: str) -> COCO:
    """The results as a pycocotools `COCO`; copies, since `loadRes` writes into the entries."""
    entries = copy.deepcopy(entries)
    if iou_type == "segm":
        # With a bbox present, loadRes takes the box area as the instance area, which moves masks between the
        # small/medium/large ranges; without it, the mask area is used (as detectron2 does).
        for entry in entries:
            entry.pop("bbox", None)
            # loadRes takes masks as RLE only; annToRLE also turns polygons and uncompressed RLE into it
            entry["segmentation"] = ground_truth.annToRLE(entry)
    if entries:
        return _quietly(ground_truth.loadRes, entries)
    empty = COCO()
    empty.dataset = {"images": list(ground_truth.dataset["images"]),
                     "categories": copy.deepcopy(ground_truth.dataset["categories"]), "annotations": []}
    _quietly(empty.createIndex)
    return empty


def _undefined_to_none(value: float) -> float | None:
    return None if value < 0 else float(value)


def coco_metrics(
    ground_truth: COCO, entries: list[dict[str, Any]], iou_type: str, image_ids: list[int] | None = None
) -> dict[str, Any]:
    """COCOeval of one IoU type ("bbox" or "segm") over `image_ids` (default: all annotated pictures).

    Returns `summary` (AP, AP50, AP75, AP_small/medium/large, AR_1/10/100, AR_small/medium/large),
    `per_class_ap` (class name -> AP over IoU 0.50:0.95, all sizes, 100 detections), and `pr_curve`: the
    precision at each of COCO's 101 recall thresholds, averaged over classes, at IoU 0.50 and 0.75.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    evaluator = COCOeval(ground_truth, _results_coco(ground_truth, entries, iou_type), iou_type)
    if image_ids is not None:
        evaluator.params.imgIds = sorted(image_ids)
    _quietly(evaluator.evaluate)
    _quietly(evaluator.accumulate)
    _quietly(evaluator.summarize)
    precision = evaluator.eval["precision"]  # (IoU thresholds, recall thresholds, classes, areas, max dets)
    per_class = {}
    for k, category_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[ground_truth.cats[category_id]["name"]] = float(values.mean()) if values.size else None
    iou_thresholds = list(np.round(evaluator.params.iouThrs, 2))
    return {
        "summary": {key: _undefined_to_none(value) for key, value in zip(SUMMARY_KEYS, evaluator.stats)},
        "per_class_ap": per_class,
        "pr_curve": {
            "recall": [round(float(r), 2) for r in evaluator.params.recThrs],
            "precision_iou50": _class_mean_precision(precision[iou_thresholds.index(0.5), :, :, 0, -1]),
            "precision_iou75": _class_mean_precision(precision[iou_thresholds.index(0.75), :, :, 0, -1]),
        },
    }


def _class_mean_precision(precision: np.ndarray) -> list[float | None]:
    """(recall thresholds, classes) -> the mean over classes with ground truth, per recall threshold."""
    curve = []
    for row in precision:
        defined = row[row > -1]
        curve.append(float(defined.mean()) if defined.size else None)
    return curve


def threshold_metrics(
    ground_truth: COCO,
    entries: list[dict[str, Any]],
    iou_type: str,
    score_threshold: float,
    image_ids: list[int] | None = None,
) -> dict[str, Any]:
    """Precision, recall and mean IoU of the detections scoring at least `score_threshold`.

    Per picture and class, detections are taken highest score first and each is matched greedily to the
    unmatched ground-truth instance it overlaps most, if that IoU is at least 0.5. A detection that matches
    nothing but lies on a crowd region is ignored, as COCO does; detections of classes the annotations do not
    have are left out. Mean IoU is over the matched pairs.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    image_ids = sorted(ground_truth.getImgIds() if image_ids is None else image_ids)
    category_ids = set(ground_truth.getCatIds())
    detections: dict[int, dict[int, list[dict[str, Any]]]] = {}  # image id -> category id -> entries
    for entry in entries:
        if entry["score"] >= score_threshold and entry["category_id"] in category_ids:
            detections.setdefault(entry["image_id"], {}).setdefault(entry["category_id"], []).append(entry)

    true_positives = false_positives = false_negatives = 0
    matched_ious: list[float] = []
    for image_id in image_ids:
        annotations = ground_truth.loadAnns(ground_truth.getAnnIds(imgIds=image_id))
        found_here = detections.get(image_id, {})
        for category_id in sorted({a["category_id"] for a in annotations} | found_here.keys()):
            truths = [a for a in annotations if a["category_id"] == category_id]
            found = sorted(found_here.get(category_id, []), key=lambda e: -e["score"])
            if not truths:
                false_positives += len(found)
                continue
            if not found:
                false_negatives += sum(1 for a in truths if not a.get("iscrowd", 0))
                continue
            crowd = [bool(a.get("iscrowd", 0)) for a in truths]
            if iou_type == "bbox":
                ious = mask_utils.iou([e["bbox"] for e in found], [a["bbox"] for a in truths], crowd)
            else:
                # annToRLE takes polygons, uncompressed and compressed RLE alike
                ious = mask_utils.iou([ground_truth.annToRLE(e) for e in found],
                                      [ground_truth.annToRLE(a) for a in truths], crowd)
            ious = np.asarray(ious, np.float64).reshape(len(found), len(truths))
            taken = np.array(crowd)  # crowd regions are never matched one-to-one
            for row in ious:
                candidates = np.where(~taken & (row >= MATCH_IOU), row, -1.0)
                best = int(np.argmax(candidates))
                if candidates[best] >= MATCH_IOU:
                    taken[best] = True
                    true_positives += 1
                    matched_ious.append(float(row[best]))
                elif not any(c and iou >= MATCH_IOU for c, iou in zip(crowd, row)):
                    false_positives += 1
            false_negatives += int((~taken).sum())
    detected = true_positives + false_positives
    relevant = true_positives + false_negatives
    return {
        "score_threshold": float(score_threshold),
        "precision": true_positives / detected if detected else None,
        "recall": true_positives / relevant if relevant else None,
        "mean_iou": float(np.mean(matched_ious)) if matched_ious else None,
        "true_positives": true_positives,
        "false_positives": false_positives,
        "false_negatives": false_negatives,
    }


@dataclass
class EvaluationRun:
    """The metrics of one model (or one results file) on the evaluated pictures."""

    source: str
    num_images: int
    metrics: dict[str, dict[str, Any]]  # "bbox" and, for masks, "segm": coco_metrics + "at_threshold"
    seconds_per_image: float | None = None  # inference + post-processing, None for a results file
    skipped: list[str] = field(default_factory=list)  # one line per picture that could not be evaluated

    def ap(self, iou_type: str, key: str = "AP") -> float | None:
        """A summary figure, e.g. `run.ap("segm", "AP50")`; None when that IoU type was not evaluated."""
        return self.metrics[iou_type]["summary"][key] if iou_type in self.metrics else None


@dataclass
class EvaluationReport:
    """What `evaluate` writes: the inputs and one run per model or results file."""

    annotations: str
    images: str | None
    score_threshold: float
    runs: list[EvaluationRun]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        return cls(**{**data, "runs": [EvaluationRun(**run) for run in data["runs"]]})


def evaluate_results(
    ground_truth: COCO,
    entries: list[dict[str, Any]],
    source: str,
    score_threshold: float = 0.5,
    image_ids: list[int] | None = None,
    seconds_per_image: float | None = None,
    skipped: list[str] | None = None,
    with_masks: bool | None = None,
) -> EvaluationRun:
    """Box metrics, and mask metrics when `with_masks` (default: when every entry has a segmentation)."""
    image_ids = sorted(ground_truth.getImgIds() if image_ids is None else image_ids)
    iou_types = ["bbox"]
    if with_masks is None:
        with_masks = bool(entries) and all("segmentation" in entry for entry in entries)
    if with_masks:
        iou_types.append("segm")
    metrics = {}
    for iou_type in iou_types:
        metrics[iou_type] = coco_metrics(ground_truth, entries, iou_type, image_ids)
        metrics[iou_type]["at_threshold"] = threshold_metrics(
            ground_truth, entries, iou_type, score_threshold, image_ids
        )
    return EvaluationRun(source=source, num_images=len(image_ids), metrics=metrics,
                         seconds_per_image=seconds_per_image, skipped=list(skipped or []))


def write_report(path: str | Path, report: EvaluationReport) -> None:
    """The report as indented JSON, written atomically."""
    write_text_atomic(path, json.dumps(report.to_dict(), indent=1) + "\n")


def read_report(path: str | Path) -> EvaluationReport:
    return EvaluationReport.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
