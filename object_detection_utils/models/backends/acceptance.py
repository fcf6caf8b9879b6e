"""Acceptance by accuracy: a reduced-precision conversion (bf16, int8) is used when it finds what f32 finds.

The f32 parity gate (gate.py) demands every instance back, one by one, within tight tolerances; a reduced
precision moves borderline boxes a little and fails it without losing accuracy. Here the reduced-precision
model's detections are scored with COCO's mask AP against the f32 model's own detections as the ground truth
(no labels needed): `agreement` is 1.0 when it finds the same instances with the same masks, in the same score
order, and falls as it misses, adds or reshapes them.

    ground truth   the f32 model's instances scoring >= REFERENCE_MIN_SCORE (their pasted masks, their classes)
    results        the candidate's instances scoring >= RESULT_MIN_SCORE, with their scores
    accepted       agreement mask AP >= MIN_AGREEMENT, measured on at least MIN_INSTANCES reference instances

With fewer reference instances (a model with random weights finds nothing) accuracy cannot be judged and the
caller falls back to the precision's parity tolerance (gate.TOLERANCES).

Where the pictures come with labels (a `--calibration` folder that is a validation set: `validation_labels`),
the candidate must also keep its labelled mask AP within MAX_LABELLED_LOSS of the f32 model's on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pycocotools.coco import COCO

from ...coco_format import detections_to_coco
from ...detections import Detections
from ...errors import EvaluationError
from ...evaluation import coco_metrics, ground_truth_from_dict, load_ground_truth
from ...label_map import LabelMap
from ...model_contract import RawOutputs
from ...postprocess import detections_from_outputs

REFERENCE_MIN_SCORE = 0.3  # the gate's: instances a user at the default 0.5 could see, and the borderline below
RESULT_MIN_SCORE = 0.05  # candidates ranked down to here, so one that slips under 0.3 still counts
# bf16 on the trained shapes model scores 0.99 on the acceptance pictures; a conversion whose weights are
# perturbed by 1 % of their spread scores below 0.9 (docs/PERFORMANCE.md). 0.97 is mask AP lost to
# disagreement ~ 6x the 0.005 held-out loss allowed: agreement is the stricter of the two measures.
MIN_AGREEMENT = 0.97
MIN_INSTANCES = 20
MAX_LABELLED_LOSS = 0.005  # labelled mask AP a reduced precision may lose against f32 (issue 22's bound)
LABELS_FILE = "annotations.json"  # a validation set's COCO labels, in the pictures' folder or beside it


@dataclass(frozen=True)
class Acceptance:
    """The verdict on a reduced-precision conversion and its figures (JSON-ready, cached with it)."""

    passed: bool
    reason: str
    agreement_mask_ap: float | None  # None when it could not be judged
    agreement_box_ap: float | None
    pictures: int
    reference_instances: int
    labelled_mask_ap: float | None = None  # on the labelled pictures, where the pictures have labels
    reference_labelled_mask_ap: float | None = None  # the f32 model's there
    labelled_pictures: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Labels:
    """A validation set's labels for the acceptance pictures: its COCO ground truth and, per picture, its image id
    there (None for a picture it does not label)."""

    ground_truth: COCO
    image_ids: list[int | None]
    source: Path


def validation_labels(folder: Path, file_names: Sequence[str]) -> Labels | None:
    """The COCO labels of the pictures `file_names` in `folder`: `folder/annotations.json`, else the one beside
    the folder (`write_shapes_dataset`'s layout: `images/` and `annotations.json`); None when neither names any of
    them."""
    for candidate in (folder / LABELS_FILE, folder.parent / LABELS_FILE):
        if not candidate.is_file():
            continue
        try:
            ground_truth = load_ground_truth(candidate)
        except EvaluationError:
            continue
        by_name = {Path(image["file_name"]).name: image["id"] for image in ground_truth.dataset["images"]}
        image_ids = [by_name.get(Path(name).name) for name in file_names]
        if any(i is not None for i in image_ids):
            return Labels(ground_truth, image_ids, candidate)
    return None


def labelled_mask_ap(labels: Labels, detections: Sequence[Detections]) -> float | None:
    """COCO mask AP of `detections` (one per acceptance picture) against the labels, on the labelled pictures."""
    entries = [entry for image_id, found in zip(labels.image_ids, detections) if image_id is not None
               for entry in detections_to_coco(found, image_id)]
    ids = [image_id for image_id in labels.image_ids if image_id is not None]
    return coco_metrics(labels.ground_truth, entries, "segm", image_ids=ids)["summary"]["AP"]


def agreement(reference: Sequence[Detections], candidate: Sequence[Detections]) -> tuple[float | None, float | None]:
    """(mask AP, box AP) of `candidate`'s detections scored against `reference`'s as ground truth, picture by
    picture (filtered as the module docstring says; None when the reference has no instance)."""
    images = [{"id": i, "height": d.image_size[0], "width": d.image_size[1]} for i, d in enumerate(reference, 1)]
    entries = [
        [entry for i, pictures in enumerate(side, 1) for entry in detections_to_coco(pictures, i)]
        for side in (reference, candidate)
    ]
    return entries_agreement(images, *entries)


def entries_agreement(
    images: list[dict], reference: list[dict], candidate: list[dict]
) -> tuple[float | None, float | None]:
    """`agreement` of two models' COCO result entries (coco_format.detections_to_coco) on the `images` (COCO
    image records: id, height, width)."""
    truth = [
        {**entry, "id": number, "iscrowd": 0}
        for number, entry in enumerate((e for e in reference if e["score"] >= REFERENCE_MIN_SCORE), start=1)
    ]
    if not truth:
        return None, None
    results = [entry for entry in candidate if entry["score"] >= RESULT_MIN_SCORE]
    classes = sorted({entry["category_id"] for entry in truth + results})
    ground_truth = ground_truth_from_dict(
        {"images": images, "annotations": truth, "categories": [{"id": c, "name": str(c)} for c in classes]}
    )
    mask_ap, box_ap = (coco_metrics(ground_truth, results, kind)["summary"]["AP"] for kind in ("segm", "bbox"))
    return mask_ap, box_ap


def judge(
    reference: Sequence[Detections], candidate: Sequence[Detections], min_agreement: float = MIN_AGREEMENT,
    labels: Labels | None = None,
) -> Acceptance:
    """Accept `candidate` when its agreement mask AP with `reference` is at least `min_agreement` and, with
    `labels`, its labelled mask AP is within MAX_LABELLED_LOSS of `reference`'s."""
    instances = sum(int((d.scores >= REFERENCE_MIN_SCORE).sum()) for d in reference)
    mask_ap, box_ap = agreement(reference, candidate)
    if instances < MIN_INSTANCES or mask_ap is None:
        return Acceptance(
            False,
            f"too few instances to judge accuracy ({instances} < {MIN_INSTANCES})",
            None,
            None,
            len(reference),
            instances,
        )
    passed = mask_ap >= min_agreement
    relation = ">=" if passed else "<"
    reason = (
        f"agreement mask AP {mask_ap:.4f} {relation} {min_agreement:g} with f32 on {len(reference)} pictures "
        f"({instances} instances)"
    )
    if labels is None:
        return Acceptance(passed, reason, mask_ap, box_ap, len(reference), instances)
    found, expected = labelled_mask_ap(labels, candidate), labelled_mask_ap(labels, reference)
    count = sum(i is not None for i in labels.image_ids)
    kept = found is not None and expected is not None and found >= expected - MAX_LABELLED_LOSS
    loss = None if found is None or expected is None else expected - found
    reason += (f"; labelled mask AP {_figure(found)} against f32's {_figure(expected)} on {count} labelled pictures "
               f"({labels.source.name}): {'within' if kept else 'not within'} {MAX_LABELLED_LOSS:g}"
               + ("" if loss is None else f" (loss {loss:+.4f})"))
    return Acceptance(passed and kept, reason, mask_ap, box_ap, len(reference), instances, found, expected, count)


def _figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def detections_of(outputs: RawOutputs, image_size: tuple[int, int]) -> Detections:
    """One picture's detections in an engine's raw outputs, down to RESULT_MIN_SCORE (what `judge` compares)."""
    return detections_from_outputs(outputs, image_size, LabelMap({}), min_score=RESULT_MIN_SCORE)
