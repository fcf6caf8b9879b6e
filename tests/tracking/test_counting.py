"""Counting over a line and in a zone, on tracks with known paths: exact counts."""

from __future__ import annotations

import numpy as np

from object_detection_utils.detections import TRACK_ID, Detections
from object_detection_utils.tracking.counting import LineCounter, ZoneCounter, points_in_polygon


def frame(*tracks: tuple[int, str, float, float]) -> Detections:
    """Tracked detections of (id, class name, centre x, centre y), boxes 4x4 around the centres."""
    n = len(tracks)
    centres = np.array([(x, y) for _, _, x, y in tracks], np.float32).reshape(-1, 2)
    return Detections(np.concatenate([centres - 2, centres + 2], axis=1), np.ones(n, np.int32),
                      tuple(name for _, name, _, _ in tracks), np.ones(n, np.float32), None, (100, 100),
                      {TRACK_ID: np.array([i for i, *_ in tracks], np.int64)})


def run(counter, path: list[list[tuple[int, str, float, float]]]) -> list:
    return [counter.update(frame(*tracks)) for tracks in path]


def test_a_track_crossing_turning_back_and_crossing_again_counts_once_each_way():
    line = LineCounter((50, 10), (50, 90))  # walking down it, its left is x > 50: "in" is right to left
    xs = [60, 55, 45, 40, 48, 52, 58, 45, 40, 55]  # in, out, in again, out again
    events = run(line, [[(7, "car", x, 50)] for x in xs])
    assert [e for e in events if e] == [[(7, "in")], [(7, "out")]]
    assert (line.counted_in, line.counted_out) == ({"car": 1}, {"car": 1})


def test_two_tracks_crossing_together_count_two_and_classes_apart():
    line = LineCounter((50, 10), (50, 90))
    run(line, [[(1, "car", 60, 30), (2, "person", 61, 40)], [(1, "car", 40, 30), (2, "person", 39, 40)]])
    assert (line.counted_in, line.counted_out) == ({"car": 1, "person": 1}, {})
    assert (line.total_in, line.total_out) == (2, 0)


def test_passing_beyond_the_end_of_the_segment_or_touching_it_is_no_crossing():
    line = LineCounter((50, 10), (50, 90))
    run(line, [[(1, "car", 60, 95)], [(1, "car", 40, 95)],  # below the segment's end
               [(2, "car", 60, 50)], [(2, "car", 50, 50)], [(2, "car", 60, 50)]])  # onto the line and back
    assert (line.total_in, line.total_out) == (0, 0)
    run(line, [[(2, "car", 50, 50)], [(2, "car", 40, 50)]])  # from the line on, it left the side it came from
    assert line.counted_in == {"car": 1}


def test_a_new_track_on_the_far_side_is_not_a_crossing():
    line = LineCounter((50, 10), (50, 90))
    run(line, [[(1, "car", 60, 50)], [(2, "car", 40, 50)]])  # a different id: two objects, none crossing
    assert (line.total_in, line.total_out) == (0, 0)


def test_zone_counts_inside_now_and_distinct_tracks_seen():
    zone = ZoneCounter(((10, 10), (60, 10), (60, 60), (10, 60)))
    run(zone, [[(1, "car", 20, 20), (2, "car", 80, 80)], [(1, "car", 30, 20), (2, "car", 50, 50)],
               [(1, "car", 70, 20), (2, "car", 50, 55), (3, "person", 15, 15)]])
    assert zone.inside_now == {"car": 1, "person": 1}
    assert {name: sorted(ids) for name, ids in zone.seen.items()} == {"car": [1, 2], "person": [3]}
    assert zone.total_seen == 3


def test_points_in_a_concave_polygon():
    u_shape = np.array([(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)])
    points = np.array([(5, 20), (15, 20), (25, 20), (15, 5), (35, 5)])
    assert points_in_polygon(points, u_shape).tolist() == [True, False, True, True, False]
