"""Generated videos of moving shapes with exact per-frame instance masks and identities (tracking ground truth).

Every object follows a piecewise-linear path through waypoints (so it changes speed and turns), is drawn in a
fixed depth order (later objects pass in front and hide earlier ones), and may enter or leave the picture. Each
sequence holds, besides random movers: pairs that meet at the same point at the same time from different
directions (crossings, one hiding the other), one object that crosses, turns back and crosses again, and a pair
of near-identical neighbours (same kind, colour and size) moving side by side. Everything follows from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detections import Detections
from .masks import masks_to_boxes
from .shapes import SHAPE_CLASSES, _distinct_color, _shape_mask

MIN_VISIBLE_PIXELS = 30  # an object showing fewer pixels than this is not in the ground truth of that frame


@dataclass(frozen=True)
class MovingShape:
    """One object: what it looks like and where it is at each frame (linear between waypoints)."""

    track_id: int
    class_id: int
    color: np.ndarray | None  # (3,) uint8 RGB, or None for one drawn against the background
    radius: int
    angle: float
    times: np.ndarray  # (K,) increasing frame indices of the waypoints
    points: np.ndarray  # (K, 2) x, y at those frames

    def position(self, frame: int) -> tuple[float, float] | None:
        """The centre at `frame`, or None outside the object's lifetime."""
        if frame < self.times[0] or frame > self.times[-1]:
            return None
        return float(np.interp(frame, self.times, self.points[:, 0])), float(np.interp(frame, self.times, self.points[:, 1]))


@dataclass(frozen=True)
class Crossing:
    """Two objects meeting at one point: their ids and the frame they meet."""

    first: int
    second: int
    frame: int


@dataclass(frozen=True)
class ShapesSequence:
    """A generated video: frames, and per frame the visible masks, track ids and classes of the ground truth."""

    seed: int
    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB each
    masks: list[np.ndarray]  # (N_t, H, W) bool, visible parts
    track_ids: list[np.ndarray]  # (N_t,) int
    class_ids: list[np.ndarray]  # (N_t,) int32
    shapes: tuple[MovingShape, ...]
    crossings: tuple[Crossing, ...]


def _edge_point(rng: np.random.Generator, size: tuple[int, int], margin: float) -> np.ndarray:
    """A point just outside a random edge of the picture."""
    height, width = size
    side = int(rng.integers(4))
    along = rng.uniform(0.15, 0.85)
    return np.array([(along * width, -margin), (width + margin, along * height),
                     (along * width, height + margin), (-margin, along * height)][side])


def _inside(rng: np.random.Generator, size: tuple[int, int], border: float) -> np.ndarray:
    height, width = size
    return np.array([rng.uniform(border, width - border), rng.uniform(border, height - border)])


def plan_shapes(rng: np.random.Generator, frames: int, size: tuple[int, int], movers: int = 5,
                crossings: int = 3) -> tuple[list[MovingShape], list[Crossing]]:
    """The objects of one sequence: crossing pairs, a turn-back, near-identical neighbours and random movers."""
    height, width = size
    short = min(size)
    plans: list[tuple[int, int, float, np.ndarray, np.ndarray, np.ndarray | None]] = []

    def radius() -> int:
        return int(rng.integers(short // 14, short // 8))

    def add(times: np.ndarray, points: np.ndarray, class_id: int | None = None, r: int | None = None,
            color: np.ndarray | None = None) -> int:
        plans.append((int(rng.integers(1, 4)) if class_id is None else class_id, radius() if r is None else r,
                      float(rng.uniform(0, 2 * np.pi)), times, points, color))
        return len(plans)

    events: list[Crossing] = []
    for _ in range(crossings):  # two objects reach the meeting point at the same frame from different sides
        meet = _inside(rng, size, short / 4)
        frame = int(rng.integers(frames // 5, 4 * frames // 5))
        ids = []
        for _ in range(2):
            start, end = _edge_point(rng, size, short / 6), _edge_point(rng, size, short / 6)
            speed = rng.uniform(1.0, 2.5)  # pixels a frame
            t0 = frame - int(np.linalg.norm(meet - start) / speed)
            t1 = frame + int(np.linalg.norm(end - meet) / (speed * rng.uniform(0.6, 1.6)))  # a speed change
            ids.append(add(np.array([t0, frame, t1]), np.stack([start, meet, end])))
        events.append(Crossing(ids[0], ids[1], frame))
    # One object crosses the middle line of the picture, turns back, and crosses it again.
    y = rng.uniform(0.3, 0.7) * height
    t = np.sort(rng.choice(np.arange(5, frames - 5), 3, replace=False))
    add(np.concatenate([[0], t, [frames - 1]]),
        np.array([[0.2 * width, y], [0.75 * width, y], [0.3 * width, y + 5], [0.8 * width, y - 5],
                  [0.8 * width, y - 5]]))
    # Near-identical neighbours: same kind, colour and size, side by side, same path.
    class_id, r, color = int(rng.integers(1, 4)), radius(), rng.integers(0, 256, 3).astype(np.uint8)
    start, end = _edge_point(rng, size, short / 6), _edge_point(rng, size, short / 6)
    direction = (end - start) / max(np.linalg.norm(end - start), 1e-6)
    offset = np.array([-direction[1], direction[0]]) * 2.6 * r
    t0 = int(rng.integers(0, frames // 3))
    t1 = t0 + int(np.linalg.norm(end - start) / rng.uniform(0.8, 1.6))
    for side in (0, 1):
        add(np.array([t0, t1]), np.stack([start, end]) + side * offset, class_id, r, color)
    for _ in range(movers):  # random paths through a few inside points, possibly entering or leaving
        count = int(rng.integers(2, 5))
        points = [_inside(rng, size, short / 8) for _ in range(count)]
        if rng.random() < 0.5:
            points.insert(0, _edge_point(rng, size, short / 6))
        if rng.random() < 0.5:
            points.append(_edge_point(rng, size, short / 6))
        points_array = np.stack(points)
        steps = np.linalg.norm(np.diff(points_array, axis=0), axis=1) / rng.uniform(0.5, 3.0, len(points) - 1)
        start = int(rng.integers(0, frames // 2))
        add(start + np.concatenate([[0], np.cumsum(np.maximum(steps, 1)).astype(int)]), points_array)
    shapes = []
    order = rng.permutation(len(plans))  # depth: shapes later in the list pass in front
    for track_id in order + 1:
        class_id, r, angle, times, points, color = plans[track_id - 1]
        shapes.append(MovingShape(int(track_id), class_id, color, r, angle, times.astype(float), points))
    return shapes, events


def generate_sequence(seed: int, frames: int = 150, size: tuple[int, int] = (192, 256)) -> ShapesSequence:
    """A sequence of `frames` pictures of `size` = (height, width), its objects and ground truth, from `seed`."""
    rng = np.random.default_rng(seed)
    plan, crossings = plan_shapes(rng, frames, size)
    return render_sequence(plan, frames, size, rng, seed, crossings)


def render_sequence(plan: list[MovingShape], frames: int, size: tuple[int, int], rng: np.random.Generator,
                    seed: int = -1, crossings: tuple[Crossing, ...] | list[Crossing] = ()) -> ShapesSequence:
    """Draw planned objects (back to front) on a background from `rng`: the frames and their ground truth."""
    background = rng.integers(0, 256, 3).astype(np.uint8)
    colors = {shape.track_id: shape.color if shape.color is not None else _distinct_color(rng, background)
              for shape in plan}
    for shape in plan:  # a fixed colour too close to the background is replaced
        if np.linalg.norm(colors[shape.track_id].astype(float) - background) < 80:
            colors[shape.track_id] = _distinct_color(rng, background)
    out_frames, out_masks, out_ids, out_classes = [], [], [], []
    for t in range(frames):
        image = np.empty((*size, 3), np.uint8)
        image[:] = background
        visible: list[np.ndarray] = []
        ids: list[int] = []
        classes: list[int] = []
        for shape in plan:  # back to front
            centre = shape.position(t)
            if centre is None:
                continue
            mask = _shape_mask(SHAPE_CLASSES[shape.class_id], (round(centre[0]), round(centre[1])), shape.radius,
                               shape.angle, size)
            if not mask.any():
                continue
            visible = [m & ~mask for m in visible]
            visible.append(mask)
            ids.append(shape.track_id)
            classes.append(shape.class_id)
            image[mask] = colors[shape.track_id]
        keep = [i for i, m in enumerate(visible) if m.sum() >= MIN_VISIBLE_PIXELS]
        out_frames.append(image)
        out_masks.append(np.stack([visible[i] for i in keep]) if keep else np.zeros((0, *size), bool))
        out_ids.append(np.array([ids[i] for i in keep], int))
        out_classes.append(np.array([classes[i] for i in keep], np.int32))
    return ShapesSequence(seed, out_frames, out_masks, out_ids, out_classes, tuple(plan), tuple(crossings))


def truth_detections(sequence: ShapesSequence, frame: int) -> Detections:
    """The ground truth of one frame as `Detections`: visible masks, their tight boxes, score 1, no track ids."""
    masks, class_ids = sequence.masks[frame], sequence.class_ids[frame]
    return Detections(masks_to_boxes(masks), class_ids, tuple(SHAPE_CLASSES[int(c)] for c in class_ids),
                      np.ones(len(class_ids), np.float32), masks, masks.shape[1:])
