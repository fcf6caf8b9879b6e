"""Tracking in the video loop: the tracker, the counting lines and zones, and what they draw and report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detections import Detections
from ..errors import TrackingInputError
from ..tracking.counting import LineCounter, ZoneCounter
from ..tracking.tracker import MaskTracker, TrackerOptions
from ..visualization.drawing import draw_polyline


def parse_points(text: str, what: str) -> tuple[tuple[float, float], ...]:
    """"x1,y1,x2,y2,..." -> ((x1, y1), (x2, y2), ...); a malformed list raises a one-line `TrackingInputError`."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or len(values) % 2 or not all(np.isfinite(values)):
        raise TrackingInputError(f"{what} {text!r}: expected x,y pairs of numbers, e.g. 10,20,300,20")
    return tuple(zip(values[0::2], values[1::2]))


def parse_count_line(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    points = parse_points(text, "--count-line")
    if len(points) != 2 or points[0] == points[1]:
        raise TrackingInputError(f"--count-line {text!r}: expected two distinct points x1,y1,x2,y2")
    return points[0], points[1]


def parse_zone(text: str) -> tuple[tuple[float, float], ...]:
    points = parse_points(text, "--zone")
    if len(points) < 3:
        raise TrackingInputError(f"--zone {text!r}: a zone needs at least 3 points, got {len(points)}")
    return points


@dataclass(frozen=True)
class TrackingOptions:
    """What a tracked video run counts (pixels of the source's frames)."""

    count_lines: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = ()
    zones: tuple[tuple[tuple[float, float], ...], ...] = ()
    tracker: TrackerOptions = field(default_factory=TrackerOptions)


class VideoTracking:
    """A tracker and its counters for one video run."""

    def __init__(self, options: TrackingOptions = TrackingOptions()) -> None:
        self.tracker = MaskTracker(options.tracker)
        self.lines = [LineCounter(start, end) for start, end in options.count_lines]
        self.zones = [ZoneCounter(polygon) for polygon in options.zones]
        self._checked = False

    def check_size(self, height: int, width: int) -> None:
        """Refuse a counting line or zone with a point outside a picture of this size."""
        shapes = [("--count-line", (line.start, line.end)) for line in self.lines]
        shapes += [("--zone", zone.polygon) for zone in self.zones]
        for option, points in shapes:
            for x, y in points:
                if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
                    raise TrackingInputError(
                        f"{option} point ({x:g}, {y:g}) is outside the {width}x{height} picture")

    def track(self, frame_index: int, detections: Detections) -> Detections:
        """This frame's detections of confirmed tracks, with track ids; counters updated."""
        if not self._checked:
            self.check_size(*detections.image_size)
            self._checked = True
        tracked = self.tracker.update(detections, frame_index)
        for counter in (*self.lines, *self.zones):
            counter.update(tracked)
        return tracked

    def draw(self, picture: np.ndarray) -> np.ndarray:
        """The counting lines and zones, each with its counts, drawn on a copy of `picture`."""
        for line in self.lines:
            picture = draw_polyline(picture, np.array([line.start, line.end]), False,
                                    f"in {line.total_in} out {line.total_out}")
        for zone in self.zones:
            picture = draw_polyline(picture, np.array(zone.polygon), True,
                                    f"now {sum(zone.inside_now.values())} seen {zone.total_seen}")
        return picture

    def summary(self) -> list[str]:
        """One line per counting line and zone."""
        return [counter.describe() for counter in (*self.lines, *self.zones)]
