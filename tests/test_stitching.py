"""Stitching tiles back into whole instances, on hand-made masks with exact expected results."""

from __future__ import annotations

import numpy as np
import pytest

from object_detection_utils.box_masks import BoxMasks
from object_detection_utils.detections import Detections
from object_detection_utils.errors import InstanceSegmentationError
from object_detection_utils.masks import masks_to_boxes
from object_detection_utils.stitching import stitch
from object_detection_utils.tiling import (
    TileOptions,
    Window,
    full_pass_picture,
    min_tile_size,
    tile_size_for,
    tile_windows,
)


def rectangle(size: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def seen_through(
    window: Window, picture_masks: list[np.ndarray], scores: list[float], class_ids: list[int] | None = None
) -> tuple[Window, Detections]:
    """What a perfect model finds in `window`: each picture mask cut to the window, in window coordinates."""
    local = [mask[window.y0 : window.y1, window.x0 : window.x1] for mask in picture_masks]
    keep = [i for i, mask in enumerate(local) if mask.any()]
    masks = np.stack([local[i] for i in keep]) if keep else np.zeros((0, window.height, window.width), bool)
    ids = np.array([(class_ids or [1] * len(scores))[i] for i in keep], np.int32)
    found = Detections(
        masks_to_boxes(masks),
        ids,
        tuple(f"class{c}" for c in ids),
        np.array([scores[i] for i in keep], np.float32),
        masks,
        (window.height, window.width),
    )
    return window, found


def test_tile_windows_spread_evenly_flush_with_the_edges():
    assert tile_windows(10, 20, 12, 0.2) == [Window(0, 0, 10, 12), Window(0, 8, 10, 20)]
    assert tile_windows(100, 100, 40, 0.25) == [Window(y, x, y + 40, x + 40) for y in (0, 30, 60) for x in (0, 30, 60)]
    assert tile_windows(30, 50, 64, 0.2) == [Window(0, 0, 30, 50)]


def test_the_full_pass_sees_a_huge_picture_shrunk():
    image = np.zeros((1000, 4000, 3), np.uint8)
    image[:, 2000:] = 200
    shrunk = full_pass_picture(image)
    assert shrunk.shape == (512, 2048, 3) and shrunk[0, 1023, 0] == 0 and shrunk[0, 1024, 0] == 200
    small = np.zeros((300, 2048, 3), np.uint8)
    assert full_pass_picture(small) is small


def test_bad_tile_options_are_refused_in_one_line():
    with pytest.raises(InstanceSegmentationError, match=r"overlap must be in \[0, 0.9\), not 0.9"):
        TileOptions(size=128, overlap=0.9)
    with pytest.raises(InstanceSegmentationError, match="overlap must be in"):
        TileOptions(overlap=-0.1)
    assert min_tile_size(128) == 32 and min_tile_size(1024) == 256 and min_tile_size(None) == 32
    with pytest.raises(InstanceSegmentationError, match="tile size 200 px is below this model's minimum, 256 px"):
        tile_size_for(TileOptions(size=200), 1024)
    assert tile_size_for(TileOptions(), 128) == 128 and tile_size_for(TileOptions(size=300), 128) == 300


def test_an_object_across_one_seam_comes_out_whole_with_the_best_score():
    size = (10, 20)
    bar = rectangle(size, (2, 7), (5, 16))
    parts = [seen_through(window, [bar], [score]) for window, score in zip(tile_windows(*size, 12, 0.2), (0.6, 0.9))]
    assert [len(found) for _, found in parts] == [1, 1]
    result = stitch(parts, size)
    assert len(result) == 1
    np.testing.assert_array_equal(result.masks[0], bar)
    np.testing.assert_array_equal(result.boxes, [[5, 2, 16, 7]])
    assert result.scores.tolist() == [pytest.approx(0.9)] and result.class_names == ("class1",)


def test_an_object_across_the_corner_of_four_tiles_comes_out_whole():
    size = (20, 20)
    disc = np.hypot(*np.mgrid[:20, :20] - 9.5) <= 6
    windows = tile_windows(*size, 12, 0.2)
    assert len(windows) == 4
    parts = [seen_through(window, [disc], [0.5 + 0.1 * k]) for k, window in enumerate(windows)]
    result = stitch(parts, size)
    assert len(result) == 1 and result.scores.tolist() == [pytest.approx(0.8)]
    np.testing.assert_array_equal(result.masks[0], disc)


def test_two_touching_objects_across_a_seam_stay_two():
    size = (10, 20)
    left, right = rectangle(size, (2, 8), (3, 10)), rectangle(size, (2, 8), (10, 17))
    parts = [seen_through(window, [left, right], [0.7, 0.8]) for window in tile_windows(*size, 12, 0.2)]
    result = stitch(parts, size)
    assert len(result) == 2
    np.testing.assert_array_equal(result.masks, [right, left])  # by score
    np.testing.assert_array_equal(result.boxes, [[10, 2, 17, 8], [3, 2, 10, 8]])


def test_touching_objects_of_different_classes_and_a_duplicate_of_the_full_pass():
    size = (10, 20)
    a, b = rectangle(size, (1, 9), (2, 11)), rectangle(size, (1, 9), (11, 18))
    parts = [seen_through(window, [a, b], [0.9, 0.6], [1, 2]) for window in tile_windows(*size, 12, 0.2)]
    parts.append(seen_through(Window(0, 0, *size), [a, b], [0.95, 0.5], [1, 2]))  # the full pass finds both
    result = stitch(parts, size)
    assert result.class_ids.tolist() == [1, 2] and result.scores.tolist() == pytest.approx([0.95, 0.6])
    np.testing.assert_array_equal(result.masks, [a, b])


def test_without_overlap_the_parts_meeting_at_the_seam_are_joined():
    size = (10, 20)
    bar = rectangle(size, (3, 6), (4, 15))
    windows = tile_windows(*size, 10, 0.0)
    assert windows == [Window(0, 0, 10, 10), Window(0, 10, 10, 20)]
    result = stitch([seen_through(window, [bar], [0.7]) for window in windows], size)
    assert len(result) == 1
    np.testing.assert_array_equal(result.masks[0], bar)


def test_box_masks_round_trip_and_write_coco_rle_from_the_crops():
    from object_detection_utils.coco_format import encode_mask

    size = (7, 9)
    dense = np.stack([rectangle(size, (1, 4), (2, 5)), np.zeros(size, bool), rectangle(size, (0, 7), (8, 9))])
    dense[0, 2, 3] = False
    compact = BoxMasks.from_dense(dense)
    assert [crop.shape for crop in compact.crops] == [(3, 3), (0, 0), (7, 1)]
    assert compact.offsets.tolist() == [[1, 2], [0, 0], [0, 8]] and compact.areas().tolist() == [8, 0, 7]
    np.testing.assert_array_equal(compact.to_dense(), dense)
    assert [compact.rle(i) for i in range(3)] == [encode_mask(mask) for mask in dense]
    # one at a time (a journal's RLEs decoded for a label export): the same crops, none holding on to a whole mask
    each = BoxMasks.from_each((mask.copy() for mask in dense), size)
    assert each.equals(compact) and all(crop.base is None or crop.base.nbytes == crop.nbytes for crop in each.crops)
