"""`MaskTracker`: who is who across video frames, ByteTrack's way with masks in the cost.

Each frame's `Detections` go in; out come the detections that belong to confirmed tracks, each with its
`data["track_id"]` (1, 2, ...), masks kept. Association, per frame:

1. confirmed tracks (active or lost) against high-score detections;
2. confirmed tracks still unmatched and seen last frame against low-score detections (keeps them alive
   through a partial occlusion that lowers the score);
3. tentative tracks against the high-score detections left; a tentative track that misses is dropped;
4. high-score detections still left start tentative tracks, confirmed after `confirm_hits` matches in a row.

The similarity of a track and a detection is the box IoU of the Kalman prediction, averaged with the mask IoU
of the track's last mask moved to the prediction, when both have masks: where two objects cross, their boxes
overlap much more than their shapes do. Detections of tentative tracks are left out of the output, so no
output ever holds an instance without an id. Time is in video frames: `update(detections, frame_index)` with
skipped frames predicts over the gap and does not count them as misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..detections import TRACK_ID, Detections
from . import kalman
from .similarity import MaskCrop, box_iou, mask_crops, mask_iou


@dataclass(frozen=True)
class TrackerOptions:
    """Thresholds of `MaskTracker` (scores are the model's, similarities in [0, 1])."""

    high_score: float = 0.5  # detections at or above this take part in the first stage and start tracks
    low_score: float = 0.1  # detections below this are ignored
    new_track_score: float = 0.6  # an unmatched detection starts a track only from this score
    match_similarity: float = 0.2  # least similarity of a match in the first stage
    low_match_similarity: float = 0.4  # ... with a low-score detection
    tentative_match_similarity: float = 0.3  # ... of a tentative track
    confirm_hits: int = 2  # matches in a row that confirm a track (tracks of the first frame are confirmed at once)
    max_lost_frames: int = 30  # video frames a confirmed track may go unseen before it ends
    mask_weight: float = 0.5  # weight of the mask IoU in the similarity where there are masks
    other_class_factor: float = 0.5  # similarity multiplied by this when the classes differ


@dataclass
class _Track:
    track_id: int  # 0 while tentative
    hits: int
    last_frame: int
    class_id: int
    mask: MaskCrop | None
    mask_centre: np.ndarray = field(default_factory=lambda: np.zeros(2))  # box centre when the mask was taken


class MaskTracker:
    """Tracks instances across frames; see the module's description. One tracker per video."""

    def __init__(self, options: TrackerOptions = TrackerOptions()) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        """Forget every track and start ids from 1 again."""
        self._tracks: list[_Track] = []
        self._states = np.zeros((0, 8))
        self._covariances = np.zeros((0, 8, 8))
        self._next_id = 1
        self._frame: int | None = None
        self._first_frame = True

    @property
    def active_ids(self) -> list[int]:
        """Ids of the confirmed tracks seen in the latest frame."""
        return [t.track_id for t in self._tracks if t.track_id and t.last_frame == self._frame]

    def update(self, detections: Detections, frame_index: int | None = None) -> Detections:
        """The detections of confirmed tracks, with `data["track_id"]`; `frame_index` defaults to the next frame."""
        frame = (0 if self._frame is None else self._frame + 1) if frame_index is None else int(frame_index)
        step = 1 if self._frame is None else max(frame - self._frame, 0)
        self._frame = frame
        options = self.options
        keep = detections.scores >= options.low_score
        self._keep([not t.track_id or frame - t.last_frame <= options.max_lost_frames for t in self._tracks])
        if self._tracks:
            self._states, self._covariances = kalman.predict(self._states, self._covariances,
                                                              np.full(len(self._tracks), step))
        predicted = kalman.states_to_boxes(self._states)
        crops = self._crops(detections)
        high = np.flatnonzero(keep & (detections.scores >= options.high_score))
        low = np.flatnonzero(keep & (detections.scores < options.high_score))
        confirmed = [i for i, t in enumerate(self._tracks) if t.track_id]
        tentative = [i for i, t in enumerate(self._tracks) if not t.track_id]

        matches, left_tracks, left_high = self._associate(confirmed, high, predicted, detections, crops,
                                                          options.match_similarity)
        recent = [i for i in left_tracks if self._tracks[i].last_frame + step >= frame]
        low_matches, _, _ = self._associate(recent, low, predicted, detections, crops, options.low_match_similarity)
        tentative_matches, _, left_high = self._associate(tentative, left_high, predicted, detections, crops,
                                                          options.tentative_match_similarity)
        matches += low_matches + tentative_matches
        self._apply(matches, detections, crops, frame)
        output = [(j, self._tracks[i].track_id) for i, j in matches if self._tracks[i].track_id]
        for j in left_high:
            if detections.scores[j] >= options.new_track_score:
                track = self._start(j, detections, crops, frame)
                if track.track_id:
                    output.append((int(j), track.track_id))
        self._first_frame = False
        self._keep([t.track_id > 0 or t.last_frame == frame for t in self._tracks])  # tentative: no miss allowed
        output.sort()
        indices = np.array([j for j, _ in output], int)
        ids = np.array([i for _, i in output], np.int64)
        if len(indices) == len(detections):
            result = Detections(detections.boxes, detections.class_ids, detections.class_names, detections.scores,
                                detections.box_masks, detections.image_size, {**detections.data})
        else:
            result = detections[indices]
        result.data[TRACK_ID] = ids
        return result

    def _crops(self, detections: Detections) -> list[MaskCrop] | None:
        if detections.box_masks is None or self.options.mask_weight == 0:
            return None
        return mask_crops(detections.box_masks)

    def _associate(self, tracks: list[int], candidates: np.ndarray, predicted: np.ndarray, detections: Detections,
                   crops: list[MaskCrop] | None, least: float) -> tuple[list[tuple[int, int]], list[int], np.ndarray]:
        """Optimal matches (track index, detection index) of similarity >= `least`; the tracks and detections left."""
        candidates = np.asarray(candidates, int)
        if not tracks or not len(candidates):
            return [], list(tracks), candidates
        similarity = box_iou(predicted[tracks], detections.boxes[candidates])
        track_crops = [self._tracks[i].mask for i in tracks]
        if crops is not None and all(c is not None for c in track_crops):
            centres = np.array([self._tracks[i].mask_centre for i in tracks])
            shifts = np.round(self._states[tracks, :2] - centres).astype(int)  # each mask moves with its box
            masks = mask_iou(track_crops, shifts, [crops[j] for j in candidates], similarity > 0)
            similarity = (1 - self.options.mask_weight) * similarity + self.options.mask_weight * masks
        classes = np.array([self._tracks[i].class_id for i in tracks])
        similarity = np.where(classes[:, None] == detections.class_ids[candidates][None, :], similarity,
                              similarity * self.options.other_class_factor)
        rows, cols = linear_sum_assignment(similarity, maximize=True)
        good = similarity[rows, cols] >= least
        matches = [(tracks[r], int(candidates[c])) for r, c in zip(rows[good], cols[good])]
        matched_rows, matched_cols = set(rows[good].tolist()), set(cols[good].tolist())
        left_tracks = [t for k, t in enumerate(tracks) if k not in matched_rows]
        left = candidates[[k for k in range(len(candidates)) if k not in matched_cols]]
        return matches, left_tracks, left

    def _apply(self, matches: list[tuple[int, int]], detections: Detections, crops: list[MaskCrop] | None,
               frame: int) -> None:
        if not matches:
            return
        rows = np.array([i for i, _ in matches])
        measurements = kalman.boxes_to_measurements(detections.boxes[[j for _, j in matches]])
        self._states[rows], self._covariances[rows] = kalman.update(self._states[rows], self._covariances[rows],
                                                                     measurements)
        for (i, j), measured in zip(matches, measurements):
            track = self._tracks[i]
            track.hits += 1  # a tentative track is dropped at its first miss: its hits are in a row
            track.last_frame = frame
            track.class_id = int(detections.class_ids[j])
            if crops is not None:
                track.mask, track.mask_centre = crops[j], measured[:2]
            if not track.track_id and track.hits >= self.options.confirm_hits:
                track.track_id = self._new_id()

    def _start(self, j: int, detections: Detections, crops: list[MaskCrop] | None, frame: int) -> _Track:
        measurement = kalman.boxes_to_measurements(detections.boxes[j:j + 1])
        state, covariance = kalman.initiate(measurement)
        self._states = np.concatenate([self._states, state])
        self._covariances = np.concatenate([self._covariances, covariance])
        confirmed_now = self._first_frame or self.options.confirm_hits <= 1
        track = _Track(self._new_id() if confirmed_now else 0, 1, frame, int(detections.class_ids[j]),
                       None if crops is None else crops[j], measurement[0, :2])
        self._tracks.append(track)
        return track

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _keep(self, alive: list[bool]) -> None:
        if not all(alive):
            rows = [i for i, keep in enumerate(alive) if keep]
            self._tracks = [self._tracks[i] for i in rows]
            self._states, self._covariances = self._states[rows], self._covariances[rows]
