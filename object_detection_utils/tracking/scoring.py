"""Scoring tracks against MOTS ground truth with TrackEval: HOTA, IDF1, MOTA and id switches, on boxes and masks.

The figures are TrackEval's own (`HOTA`, `CLEAR`, `Identity` metrics, and its box and mask IoU); this module
only turns MOTS objects into the per-frame ids and similarities those metrics take. On masks, CLEAR's sMOTA is
MOTS's sMOTSA. Evaluation is class-agnostic: a track matches ground truth of any class. Install the `track`
extra (`pip install "instance-segmentation[track]"`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .mots import MotsObject

FIGURES = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW", "sMOTSA")


def _trackeval() -> Any:
    try:
        import trackeval
    except ImportError:
        raise ImportError('trackeval is not installed: pip install "instance-segmentation[track]"') from None
    return trackeval


def _by_frame(objects: Iterable[MotsObject], frames: int) -> list[list[MotsObject]]:
    out: list[list[MotsObject]] = [[] for _ in range(frames)]
    for item in objects:
        if 0 <= item.frame < frames:
            out[item.frame].append(item)
    return out


def sequence_data(truth: Sequence[MotsObject], tracks: Sequence[MotsObject], on: str = "mask",
                  frames: range | None = None) -> dict[str, Any]:
    """TrackEval's input for one sequence (or the `frames` of it): ids renumbered from 0, and the similarity
    (mask or box IoU, as `on` says) of every ground-truth and tracked object of each frame."""
    base = _trackeval().datasets._base_dataset._BaseDataset
    if frames is None:
        frames = range(1 + max([o.frame for o in [*truth, *tracks]], default=-1))
    truth = [o for o in truth if o.frame in frames]
    tracks = [o for o in tracks if o.frame in frames]
    gt_by_frame = _by_frame((_shifted(o, frames.start) for o in truth), len(frames))
    tr_by_frame = _by_frame((_shifted(o, frames.start) for o in tracks), len(frames))
    gt_index = {i: k for k, i in enumerate(sorted({o.track_id for o in truth}))}
    tr_index = {i: k for k, i in enumerate(sorted({o.track_id for o in tracks}))}
    similarity = []
    for gt, tr in zip(gt_by_frame, tr_by_frame):
        if not gt or not tr:
            similarity.append(np.zeros((len(gt), len(tr))))
        elif on == "mask":
            similarity.append(base._calculate_mask_ious([o.rle for o in gt], [o.rle for o in tr], is_encoded=True))
        else:
            similarity.append(base._calculate_box_ious(_boxes(gt), _boxes(tr), box_format="xywh"))
    return {
        "num_timesteps": len(frames),
        "num_gt_ids": len(gt_index), "num_tracker_ids": len(tr_index),
        "num_gt_dets": len(truth), "num_tracker_dets": len(tracks),
        "gt_ids": [np.array([gt_index[o.track_id] for o in gt], int) for gt in gt_by_frame],
        "tracker_ids": [np.array([tr_index[o.track_id] for o in tr], int) for tr in tr_by_frame],
        "similarity_scores": similarity,
    }


def _shifted(item: MotsObject, start: int) -> MotsObject:
    return item if start == 0 else MotsObject(item.frame - start, item.track_id, item.class_id, item.height,
                                              item.width, item.counts)


def _boxes(objects: list[MotsObject]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return np.array([mask_utils.toBbox({"size": o.rle["size"], "counts": o.counts.encode("ascii")})
                     for o in objects], float).reshape(-1, 4)


def score_data(datasets: Sequence[dict[str, Any]]) -> dict[str, float]:
    """HOTA, DetA, AssA (at TrackEval's alpha average), IDF1, MOTA, IDSW and sMOTA over the given sequences."""
    metrics = _trackeval().metrics
    hota, clear, identity = metrics.HOTA(), metrics.CLEAR({"PRINT_CONFIG": False}), metrics.Identity(
        {"PRINT_CONFIG": False})
    results: dict[str, dict[str, Any]] = {"hota": {}, "clear": {}, "identity": {}}
    for index, data in enumerate(datasets):
        results["hota"][index] = hota.eval_sequence(data)
        results["clear"][index] = clear.eval_sequence(data)
        results["identity"][index] = identity.eval_sequence(data)
    h = hota.combine_sequences(results["hota"])
    c = clear.combine_sequences(results["clear"])
    i = identity.combine_sequences(results["identity"])
    return {"HOTA": float(np.mean(h["HOTA"])), "DetA": float(np.mean(h["DetA"])), "AssA": float(np.mean(h["AssA"])),
            "IDF1": float(i["IDF1"]), "MOTA": float(c["MOTA"]), "IDSW": int(c["IDSW"]), "sMOTSA": float(c["sMOTA"])}


def score_tracks(sequences: Sequence[tuple[Sequence[MotsObject], Sequence[MotsObject]]]) -> dict[str, dict[str, float]]:
    """Figures on boxes and on masks for (ground truth, tracks) pairs of sequences, combined as TrackEval does."""
    return {on: score_data([sequence_data(truth, tracks, on) for truth, tracks in sequences])
            for on in ("box", "mask")}
