"""Masks -> polygons: exact pixel edges, holes, separate parts, simplification; checked by pycocotools drawing."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from object_detection_utils.label_exports import mask_to_polygons
from object_detection_utils.label_exports.polygons import join_polygons


def drawn(polygons, height, width) -> np.ndarray:
    """The pixels pycocotools (what training and COCO tools use) fills for polygons."""
    rles = mask_utils.frPyObjects([p.ravel().tolist() for p in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def test_a_square_becomes_its_four_pixel_corners():
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    (polygon,) = mask_to_polygons(mask)
    assert sorted(map(tuple, polygon.tolist())) == [(3.0, 2.0), (3.0, 5.0), (7.0, 2.0), (7.0, 5.0)]


def test_one_pixel_a_hole_and_a_diagonal_touch_come_back_exactly():
    mask = np.zeros((12, 16), bool)
    mask[1:9, 1:9] = True
    mask[3:6, 4:6] = False          # a hole
    mask[10, 12] = mask[9, 13] = mask[8, 14] = True  # one part of pixels touching only at corners (8-connected)
    mask[11, 1] = True              # a one-pixel part
    polygons = mask_to_polygons(mask, tolerance=0)
    assert len(polygons) == 3
    assert (4.5, 3.0) in map(tuple, polygons[0].tolist())  # the hole joined in (its corners cut, no pixel centre)
    assert sorted(map(tuple, polygons[2].tolist())) == [(1.0, 11.0), (1.0, 12.0), (2.0, 11.0), (2.0, 12.0)]
    assert np.array_equal(drawn(polygons, 12, 16), mask)
    assert np.array_equal(drawn([join_polygons(polygons)], 12, 16), mask)  # one polygon, as YOLO needs


def test_the_default_tolerance_keeps_every_pixel_and_drops_points():
    yy, xx = np.mgrid[:60, :80]
    mask = (xx - 40) ** 2 / 30 ** 2 + (yy - 30) ** 2 / 20 ** 2 <= 1  # an ellipse: staircases everywhere
    exact = mask_to_polygons(mask, tolerance=0)[0]
    default = mask_to_polygons(mask)[0]
    assert len(default) < 0.75 * len(exact)
    assert np.array_equal(drawn([default], 60, 80), mask)
    coarse = mask_to_polygons(mask, tolerance=1.0)[0]
    assert len(coarse) < 0.2 * len(exact)
    iou = (drawn([coarse], 60, 80) & mask).sum() / (drawn([coarse], 60, 80) | mask).sum()
    assert 0.95 < iou < 1


def test_an_empty_mask_has_no_polygon():
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []
