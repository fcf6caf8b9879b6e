"""Counting tracked objects: crossings of a line (in and out, per class) and presence in a polygon zone.

Both take the tracked detections of each frame (`data["track_id"]`) and follow each track's box centre. A
crossing is a move of the centre from one side of the line to the other through the segment itself; each track
counts at most once per direction, however often it turns back. supervision's `LineZone` counts a track again on
every crossing and counts instances without an id, so it is not used here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detections import TRACK_ID, Detections


def box_centres(detections: Detections) -> np.ndarray:
    """(N, 2) x, y centres of the boxes."""
    return (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2


def _side(start: np.ndarray, end: np.ndarray, points: np.ndarray) -> np.ndarray:
    """+1 right of the line start -> end (in picture coordinates, y down), -1 left, 0 on it."""
    direction = end - start
    return np.sign(direction[0] * (points[..., 1] - start[1]) - direction[1] * (points[..., 0] - start[0]))


def segments_cross(a: np.ndarray, b: np.ndarray, start: np.ndarray, end: np.ndarray) -> bool:
    """Whether the move a -> b passes through the segment start -> end (touching counts)."""
    side_a, side_b = _side(start, end, np.stack([a, b]))
    ends = _side(a, b, np.stack([start, end]))
    return bool(side_a * side_b <= 0 and ends[0] * ends[1] <= 0 and side_a != side_b)


@dataclass
class LineCounter:
    """In/out counts per class over the segment `start` -> `end`: "in" is a move from its left to its right
    (seen walking from start to end; with y down, left of a line drawn left to right is above it)."""

    start: tuple[float, float]
    end: tuple[float, float]
    counted_in: dict[str, int] = field(default_factory=dict)  # class name -> tracks that crossed in
    counted_out: dict[str, int] = field(default_factory=dict)
    _last: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # track id -> its last centre off the line
    _done: set[tuple[int, str]] = field(default_factory=set, repr=False)  # (track id, direction) already counted

    def update(self, detections: Detections) -> list[tuple[int, str]]:
        """Follow this frame's tracks; the (track id, "in" | "out") crossings that counted now."""
        start, end = np.asarray(self.start, float), np.asarray(self.end, float)
        counted = []
        for track_id, name, centre in zip(detections.data[TRACK_ID], detections.class_names, box_centres(detections)):
            track_id = int(track_id)
            if _side(start, end, centre) == 0:
                continue  # on the line: wait for the side it leaves to
            before = self._last.get(track_id)
            self._last[track_id] = centre
            if before is None or not segments_cross(before, centre, start, end):
                continue
            direction = "in" if _side(start, end, before) < 0 else "out"
            if (track_id, direction) in self._done:
                continue
            self._done.add((track_id, direction))
            totals = self.counted_in if direction == "in" else self.counted_out
            totals[name] = totals.get(name, 0) + 1
            counted.append((track_id, direction))
        return counted

    @property
    def total_in(self) -> int:
        return sum(self.counted_in.values())

    @property
    def total_out(self) -> int:
        return sum(self.counted_out.values())

    def describe(self) -> str:
        per_class = ", ".join(f"{name} {self.counted_in.get(name, 0)}/{self.counted_out.get(name, 0)}"
                              for name in sorted({*self.counted_in, *self.counted_out}))
        return f"line {self.start}-{self.end}: in {self.total_in}, out {self.total_out}" + (
            f" (in/out: {per_class})" if per_class else "")


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each of `points` (N, 2) lies inside `polygon` (K, 2), by the even-odd rule."""
    points, polygon = np.asarray(points, float).reshape(-1, 2), np.asarray(polygon, float)
    x, y = points[:, 0:1], points[:, 1:2]
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    spans = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return np.count_nonzero(spans & (x < crossing_x), axis=1) % 2 == 1


@dataclass
class ZoneCounter:
    """Tracks inside a polygon now, and every distinct track that has been inside, per class."""

    polygon: tuple[tuple[float, float], ...]
    inside_now: dict[str, int] = field(default_factory=dict)
    seen: dict[str, set[int]] = field(default_factory=dict)  # class name -> ids of tracks seen inside

    def update(self, detections: Detections) -> np.ndarray:
        """Follow this frame's tracks; (N,) bool, which are inside."""
        inside = points_in_polygon(box_centres(detections), np.asarray(self.polygon, float))
        self.inside_now = {}
        for track_id, name in zip(detections.data[TRACK_ID][inside], np.array(detections.class_names, object)[inside]):
            self.inside_now[name] = self.inside_now.get(name, 0) + 1
            self.seen.setdefault(name, set()).add(int(track_id))
        return inside

    @property
    def total_seen(self) -> int:
        return sum(len(ids) for ids in self.seen.values())

    def describe(self) -> str:
        per_class = ", ".join(f"{name} {len(ids)}" for name, ids in sorted(self.seen.items()))
        return (f"zone {len(self.polygon)} points: inside now {sum(self.inside_now.values())}, "
                f"seen {self.total_seen}" + (f" ({per_class})" if per_class else ""))
