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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ...coco_format import detections_to_coco
from ...detections import Detections
from ...evaluation import coco_metrics, ground_truth_from_dict
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


@dataclass(frozen=True)
class Acceptance:
    """The verdict on a reduced-precision conversion and its figures (JSON-ready, cached with it)."""

    passed: bool
    reason: str
    agreement_mask_ap: float | None  # None when it could not be judged
    agreement_box_ap: float | None
    pictures: int
    reference_instances: int

    def to_dict(self) -> dict:
        return asdict(self)


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
    reference: Sequence[Detections], candidate: Sequence[Detections], min_agreement: float = MIN_AGREEMENT
) -> Acceptance:
    """Accept `candidate` when its agreement mask AP with `reference` is at least `min_agreement`."""
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
    return Acceptance(passed, reason, mask_ap, box_ap, len(reference), instances)


def detections_of(outputs: RawOutputs, image_size: tuple[int, int]) -> Detections:
    """One picture's detections in an engine's raw outputs, down to RESULT_MIN_SCORE (what `judge` compares)."""
    return detections_from_outputs(outputs, image_size, LabelMap({}), min_score=RESULT_MIN_SCORE)
