"""The parity gate: a converted model is used only if it finds the same instances as TensorFlow does.

On a few pictures, every detection scoring at least `min_score` on either side must have a partner on the
other side with the same class, a score within `score`, a box IoU of at least `box_iou` and a pasted-mask IoU of
at least `mask_iou` (masks pasted into the picture at the 0.5 threshold, as the scripts draw them). A partner may
score down to `min_score - score`, so an instance at the threshold's edge does not fail the gate by itself.
The converted parts' raw outputs are compared too (`part_error`, relative to the part's largest value), so a
model that finds nothing on the gate's pictures (random weights) is still checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ...detections import Detections
from ...label_map import LabelMap
from ...model_contract import RawOutputs
from ...postprocess import detections_from_outputs

GATE_MIN_SCORE = 0.3


@dataclass(frozen=True)
class Tolerance:
    """How far a converted model may be from TensorFlow and still pass."""

    score: float
    box_iou: float
    mask_iou: float
    part_error: float


TOLERANCES = {
    "f32": Tolerance(score=1e-3, box_iou=0.99, mask_iou=0.99, part_error=1e-3),
    # bf16 keeps 8 bits of mantissa: its own, stated tolerance (docs/PERFORMANCE.md).
    "bf16": Tolerance(score=0.02, box_iou=0.97, mask_iou=0.95, part_error=0.05),
}


@dataclass
class GateResult:
    """The gate's verdict and what it saw (JSON-ready, cached with the conversion)."""

    passed: bool
    reason: str  # why it failed, or a summary of what passed
    pictures: int = 0
    matched: int = 0
    worst: dict[str, float] = field(default_factory=dict)  # largest |Δscore|, smallest IoUs, largest part errors

    def to_dict(self) -> dict:
        return asdict(self)


def relative_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """max |reference - candidate| / max |reference| (absolute when the reference is all zeros)."""
    reference = np.asarray(reference, np.float64)
    scale = float(np.abs(reference).max()) if reference.size else 0.0
    difference = float(np.abs(reference - np.asarray(candidate, np.float64)).max()) if reference.size else 0.0
    return difference / scale if scale > 0 else difference


def run_gate(
    reference: Callable[[np.ndarray], RawOutputs],
    candidate: Callable[[np.ndarray], RawOutputs],
    pictures: Sequence[np.ndarray],
    tolerance: Tolerance,
    part_errors: Callable[[], dict[str, float]] | None = None,
    min_score: float = GATE_MIN_SCORE,
) -> GateResult:
    """Run both models on each (H, W, 3) uint8 picture and compare; `part_errors` reports the converted parts'
    largest relative errors seen while `candidate` ran (see module docstring)."""
    labels = LabelMap({})
    worst = {"score_difference": 0.0, "box_iou": 1.0, "mask_iou": 1.0}
    matched = 0
    for number, picture in enumerate(pictures):
        size = picture.shape[:2]
        floor = max(min_score - tolerance.score, 0.0)
        found = [detections_from_outputs(run(picture[None]), size, labels, min_score=floor)
                 for run in (reference, candidate)]
        failure, pairs = _compare(found[0], found[1], min_score, tolerance, worst)
        if failure:
            return GateResult(False, f"picture {number + 1}: {failure}", number + 1, matched, worst)
        matched += pairs
    if part_errors is not None:
        for part, error in part_errors().items():
            worst[f"{part}_error"] = error
            if not error <= tolerance.part_error:  # also catches NaN
                return GateResult(False, f"{part}: relative error {error:.2g} > {tolerance.part_error:g}",
                                  len(pictures), matched, worst)
    return GateResult(True, f"{matched} instances on {len(pictures)} pictures match", len(pictures), matched, worst)


def _compare(reference: Detections, candidate: Detections, min_score: float, tolerance: Tolerance,
             worst: dict[str, float]) -> tuple[str, int]:
    """('', pairs matched) when every instance at `min_score` or more has a partner both ways, else the failure."""
    for side, first, second in (("TensorFlow", reference, candidate), ("converted", candidate, reference)):
        for i in np.flatnonzero(first.scores >= min_score):
            partner, iou = _partner(first, i, second)
            if partner is None:
                return (f"{side} instance {i} (class {first.class_ids[i]}, score {first.scores[i]:.3f}) "
                        "has no partner of its class"), 0
            difference = abs(float(first.scores[i]) - float(second.scores[partner]))
            mask_iou = _iou(first.masks[i], second.masks[partner]) if first.masks is not None else 1.0
            worst["score_difference"] = max(worst["score_difference"], difference)
            worst["box_iou"] = min(worst["box_iou"], iou)
            worst["mask_iou"] = min(worst["mask_iou"], mask_iou)
            if difference > tolerance.score or iou < tolerance.box_iou or mask_iou < tolerance.mask_iou:
                return (f"{side} instance {i} (class {first.class_ids[i]}): |Δscore| {difference:.2g}, "
                        f"box IoU {iou:.4f}, mask IoU {mask_iou:.4f}"), 0
    return "", int((reference.scores >= min_score).sum())


def _partner(detections: Detections, index: int, others: Detections) -> tuple[int | None, float]:
    """The instance of `others` of the same class whose box overlaps `detections[index]`'s most."""
    best, best_iou = None, 0.0
    for j in np.flatnonzero(others.class_ids == detections.class_ids[index]):
        iou = _box_iou(detections.boxes[index], others.boxes[j])
        if iou > best_iou:
            best, best_iou = int(j), iou
    return best, best_iou


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 1.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
