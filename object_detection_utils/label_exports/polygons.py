"""Masks -> polygons that rasterise back to the same pixels: holes and separate parts kept, optional simplification.

A polygon here is an (N, 2) float array of (x, y) points on pixel *corners* (pixel (x, y) is the square from
(x, y) to (x + 1, y + 1)), the convention of pycocotools and of every labelling tool we export to. OpenCV traces
the outline on the mask upsampled twice and dilated by one half-pixel to the right and down, so its points fall
on the pixels' edges rather than their centres: the polygons are the mask's exact boundary, which pycocotools
draws back into the same pixels (measured on every COCO mask of ../shared/data: docs/LABELS.md).

`tolerance` (pixels) is Douglas-Peucker's: no point of the simplified outline lies further than that from the
exact one. Up to 0.25 the pixels stay the same (a pixel's centre is 0.5 from its edge); above, they start to
change.

Polygon formats have no holes, and some (Label Studio, YOLO) have no instance made of several polygons: a hole is
joined to its outline, and parts to each other, by a zero-width cut (one edge walked there and back), which
fills the same pixels under both the even-odd and the non-zero rule.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_TOLERANCE = 0.25  # pixels: the largest simplification that keeps every pixel (see above)


def mask_to_polygons(mask: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> list[np.ndarray]:
    """One polygon per separate part of an (H, W) bool mask, its holes joined in; largest part first."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return []
    left, top = int(xs.min()), int(ys.min())
    crop = mask[top:ys.max() + 1, left:xs.max() + 1].astype(np.uint8)
    doubled = np.kron(crop, np.ones((2, 2), np.uint8))
    corners = np.zeros((doubled.shape[0] + 1, doubled.shape[1] + 1), np.uint8)  # each pixel and its 2x2 corner grid
    for dy in (0, 1):
        for dx in (0, 1):
            corners[dy:dy + doubled.shape[0], dx:dx + doubled.shape[1]] |= doubled
    contours, hierarchy = cv2.findContours(corners, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, 2 * tolerance, True)
        rings.append(contour.reshape(-1, 2) / 2 + (left, top))
    parents = hierarchy[0][:, 3]
    polygons = []
    for i in np.flatnonzero(parents == -1):
        polygon = rings[i]
        for hole in (rings[j] for j in np.flatnonzero(parents == i)):
            polygon = _join(polygon, hole)
        if len(polygon) >= 3:
            polygons.append(polygon)
    return sorted(polygons, key=lambda p: -abs(_area(p)))


def join_polygons(polygons: list[np.ndarray]) -> np.ndarray:
    """One polygon covering the same pixels as several, each joined to the nearest one before it."""
    joined = polygons[0]
    for polygon in polygons[1:]:
        joined = _join(joined, polygon)
    return joined


def _join(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """`outer`, then at its point nearest to `inner` a cut to `inner`, all of `inner`, and the cut back."""
    distances = ((outer[:, None, :] - inner[None, :, :]) ** 2).sum(axis=-1)
    a, b = np.unravel_index(int(distances.argmin()), distances.shape)
    inner = np.roll(inner, -b, axis=0)
    return np.concatenate([outer[:a + 1], inner, inner[:1], outer[a:]])


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
