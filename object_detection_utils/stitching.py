"""Stitching the detections of tiles (and of a full-picture pass) back into one result for the picture.

Each pass saw the picture through a window. Two detections are one object when their masks
agree where both windows saw the picture: IoU inside the windows' shared region of at least `match_iou` (a
duplicate seen by two overlapping tiles, or the two halves of an object cut by a seam, which coincide in the
overlap), or, for a part cut off by its window's edge, at least `part_ios` of it inside the other (intersection
over the smaller). Where tiles only touch (no overlap), parts cut by the shared edge are one object when their
pixels along the edge agree. Objects are the connected groups of such pairs; each comes out as one instance
whose mask is the union of its parts, with the best part's score and the class of the best part seen whole
(a part cut by a tile edge often looks like another class: half a square is a triangle). Classes are not
compared unless `class_agnostic` is off: the model suppresses duplicates per class only, and the same object
found by two passes under two classes would otherwise come out twice (docs/TILES.md measures both choices).

Everything works on compact box-local masks (`BoxMasks`): memory grows with the objects, not the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .box_masks import BoxMasks, placed_overlap
from .detections import Detections
from .tiling import Window

DEFAULT_MATCH_IOU = 0.5
DEFAULT_PART_IOS = 0.8


@dataclass(frozen=True)
class StitchOptions:
    """When two detections are one object: mask IoU where both windows saw (`match_iou`), or the share of a part
    cut by its window's edge lying inside the other (`part_ios`); of any classes unless not `class_agnostic`."""

    match_iou: float = DEFAULT_MATCH_IOU
    part_ios: float = DEFAULT_PART_IOS
    class_agnostic: bool = True


@dataclass(frozen=True)
class _Candidates:
    """Every detection of every pass, in picture coordinates, with the window it was seen through."""

    boxes: np.ndarray  # (N, 4) float32 [x1, y1, x2, y2]
    class_ids: np.ndarray
    class_names: tuple[str, ...]
    scores: np.ndarray
    masks: BoxMasks
    windows: list[Window]
    truncated: np.ndarray  # (N,) bool: the mask touches an edge of its window that lies inside the picture


def _box_crops(boxes: np.ndarray, size: tuple[int, int]) -> BoxMasks:
    """Filled boxes as masks, for a model without masks: stitched by box overlap instead."""
    corners = np.floor(boxes[:, :2]).astype(np.int64)
    ends = np.ceil(boxes[:, 2:]).astype(np.int64)
    crops = [np.ones((max(0, y2 - y1), max(0, x2 - x1)), bool) for (x1, y1), (x2, y2) in zip(corners, ends)]
    return BoxMasks(crops, corners[:, ::-1], size)


def _gather(parts: Sequence[tuple[Window, Detections]], image_size: tuple[int, int]) -> _Candidates:
    height, width = image_size
    boxes, class_ids, names, scores, crops, offsets, windows = [], [], [], [], [], [], []
    for window, found in parts:
        shift = np.array([window.x0, window.y0, window.x0, window.y0], np.float32)
        boxes.append(found.boxes + shift)
        class_ids.append(found.class_ids)
        names += found.class_names
        scores.append(found.scores)
        local = found.box_masks if found.box_masks is not None else _box_crops(found.boxes, found.image_size)
        crops += local.crops
        offsets.append(local.offsets + [window.y0, window.x0])
        windows += [window] * len(found)
    masks = BoxMasks(crops, np.concatenate(offsets) if offsets else np.zeros((0, 2)), image_size)
    bounds = masks.bounds()
    edges = np.array([[w.x0, w.y0, w.x1, w.y1] for w in windows], np.int64).reshape(-1, 4)
    inner = (edges[:, :2] > 0, edges[:, 2] < width, edges[:, 3] < height)
    truncated = (
        ((bounds[:, 0] <= edges[:, 0]) & inner[0][:, 0])
        | ((bounds[:, 1] <= edges[:, 1]) & inner[0][:, 1])
        | ((bounds[:, 2] >= edges[:, 2]) & inner[1])
        | ((bounds[:, 3] >= edges[:, 3]) & inner[2])
    )
    truncated &= masks.areas() > 0
    return _Candidates(
        boxes=np.concatenate(boxes).astype(np.float32) if boxes else np.zeros((0, 4), np.float32),
        class_ids=np.concatenate(class_ids).astype(np.int32) if class_ids else np.zeros((0,), np.int32),
        class_names=tuple(names),
        scores=np.concatenate(scores).astype(np.float32) if scores else np.zeros((0,), np.float32),
        masks=masks,
        windows=windows,
        truncated=truncated,
    )


def _touching_pairs(bounds: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, whose boxes [x1, y1, x2, y2] overlap or touch: a sweep along x, so the work grows
    with the pairs found rather than with the square of the count."""
    order = np.argsort(bounds[:, 0], kind="stable")
    starts = bounds[order, 0]
    pairs = []
    for rank, i in enumerate(order.tolist()):
        stop = int(np.searchsorted(starts, bounds[i, 2], side="right"))
        others = order[rank + 1 : stop]
        near = others[(bounds[others, 1] <= bounds[i, 3]) & (bounds[others, 3] >= bounds[i, 1])]
        pairs += [(min(i, j), max(i, j)) for j in near.tolist()]
    return pairs


def _pixels_in(masks: BoxMasks, index: int, region: Window) -> int:
    crop = masks.crops[index]
    y, x = (int(v) for v in masks.offsets[index])
    y0, x0 = max(region.y0 - y, 0), max(region.x0 - x, 0)
    y1, x1 = min(region.y1 - y, crop.shape[0]), min(region.x1 - x, crop.shape[1])
    return int(np.count_nonzero(crop[y0:y1, x0:x1])) if y1 > y0 and x1 > x0 else 0


def _intersection(masks: BoxMasks, a: int, b: int) -> int:
    return placed_overlap(masks.crops[a], tuple(masks.offsets[a].tolist()), masks.crops[b],
                          tuple(masks.offsets[b].tolist()))


def _seam_agrees(candidates: _Candidates, a: int, b: int, least: float) -> bool:
    """For windows that touch without overlapping: whether the two masks' pixels on either side of the shared
    edge agree (IoU of the two edge lines at least `least`)."""
    wa, wb = candidates.windows[a], candidates.windows[b]
    if wa.x1 == wb.x0 or wb.x1 == wa.x0:
        left, right = (a, b) if wa.x1 == wb.x0 else (b, a)
        y0, y1 = max(wa.y0, wb.y0), min(wa.y1, wb.y1)
        column = candidates.windows[left].x1
        lines = (Window(y0, column - 1, y1, column), Window(y0, column, y1, column + 1))
    elif wa.y1 == wb.y0 or wb.y1 == wa.y0:
        left, right = (a, b) if wa.y1 == wb.y0 else (b, a)
        x0, x1 = max(wa.x0, wb.x0), min(wa.x1, wb.x1)
        row = candidates.windows[left].y1
        lines = (Window(row - 1, x0, row, x1), Window(row, x0, row + 1, x1))
    else:
        return False
    if lines[0].y1 <= lines[0].y0 or lines[0].x1 <= lines[0].x0:
        return False
    first = candidates.masks.window(left, *lines[0]).ravel()
    second = candidates.masks.window(right, *lines[1]).ravel()
    union = np.count_nonzero(first | second)
    return union > 0 and np.count_nonzero(first & second) / union >= least


def _same_object(candidates: _Candidates, a: int, b: int, options: StitchOptions) -> bool:
    if not options.class_agnostic and candidates.class_ids[a] != candidates.class_ids[b]:
        return False
    masks = candidates.masks
    shared = candidates.windows[a].intersection(candidates.windows[b])
    if shared is None:
        return bool(candidates.truncated[a] and candidates.truncated[b]) and _seam_agrees(
            candidates, a, b, options.match_iou
        )
    inter = _intersection(masks, a, b)
    if inter == 0:
        return False
    seen_a, seen_b = _pixels_in(masks, a, shared), _pixels_in(masks, b, shared)
    if inter / (seen_a + seen_b - inter) >= options.match_iou:
        return True
    areas = (np.count_nonzero(masks.crops[a]), np.count_nonzero(masks.crops[b]))
    smaller = a if areas[0] <= areas[1] else b
    return bool(candidates.truncated[smaller]) and inter / min(areas) >= options.part_ios


def _groups(count: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Connected groups of `count` items joined by `pairs` (union-find), each sorted, ordered by first member."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _union_crop(masks: BoxMasks, bounds: np.ndarray, members: list[int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The union of several masks (their tight `bounds`, all masks') as one crop and its (y0, x0)."""
    bounds = bounds[members]
    filled = bounds[:, 2] > bounds[:, 0]
    if not filled.any():
        return np.zeros((0, 0), bool), (0, 0)
    x0, y0 = bounds[filled, 0].min(), bounds[filled, 1].min()
    x1, y1 = bounds[filled, 2].max(), bounds[filled, 3].max()
    union = np.zeros((y1 - y0, x1 - x0), bool)
    for i in members:
        crop = masks.crops[i]
        if crop.size:
            cy, cx = int(masks.offsets[i, 0]) - y0, int(masks.offsets[i, 1]) - x0
            union[cy : cy + crop.shape[0], cx : cx + crop.shape[1]] |= crop
    return union, (int(y0), int(x0))


def _naming_member(candidates: _Candidates, members: list[int]) -> int:
    """The member whose class the object takes: the best-scoring one seen whole, else the best-scoring one."""
    whole = [i for i in members if not candidates.truncated[i]] or members
    return whole[int(np.argmax(candidates.scores[whole]))]


def stitch(
    parts: Sequence[tuple[Window, Detections]],
    image_size: tuple[int, int],
    options: StitchOptions = StitchOptions(),
) -> Detections:
    """One picture's `Detections` from the detections of each window it was run through.

    `parts` pairs each window (a tile, or the whole picture for the full pass) with the detections found in it,
    in the window's own coordinates. Duplicates and the parts of an object cut by a seam come out as one
    instance: its mask the union of the parts, its box around theirs, its score the best part's, its class the
    best part's seen whole (not cut by a window edge). Instances
    are ordered by score, highest first. Masks stay None when the model has none (stitched by box then).
    """
    image_size = (int(image_size[0]), int(image_size[1]))
    with_masks = any(found.box_masks is not None for _, found in parts) or not parts
    candidates = _gather(parts, image_size)
    bounds = candidates.masks.bounds()
    pairs = [(a, b) for a, b in _touching_pairs(bounds) if _same_object(candidates, a, b, options)]
    groups = _groups(len(candidates.scores), pairs)
    crops, offsets = [], np.zeros((len(groups), 2), np.int64)
    boxes = np.zeros((len(groups), 4), np.float32)
    for g, members in enumerate(groups):
        crop, offsets[g] = _union_crop(candidates.masks, bounds, members)
        crops.append(crop)
        member_boxes = candidates.boxes[members]
        boxes[g] = (*member_boxes[:, :2].min(axis=0), *member_boxes[:, 2:].max(axis=0))
    best = np.array([members[int(np.argmax(candidates.scores[members]))] for members in groups], np.int64)
    named = np.array([_naming_member(candidates, members) for members in groups], np.int64)
    order = np.argsort(-candidates.scores[best], kind="stable")
    best, named = best[order], named[order]
    return Detections(
        boxes=boxes[order],
        class_ids=candidates.class_ids[named],
        class_names=tuple(candidates.class_names[i] for i in named.tolist()),
        scores=candidates.scores[best],
        masks=BoxMasks([crops[g] for g in order.tolist()], offsets[order], image_size) if with_masks else None,
        image_size=image_size,
    )
