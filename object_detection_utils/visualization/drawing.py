"""Drawing `Detections` onto RGB pictures: translucent masks, outlines, boxes and "person 97%" labels.

Pure functions: they return a new picture and never change their input.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from ..detections import TRACK_ID, Detections


def _palette(count: int = 32) -> np.ndarray:
    """`count` well-separated saturated RGB colours (golden-ratio hue steps), the same on every run."""
    colours = []
    for i in range(count):
        hue = (i * 0.618033988749895) % 1.0
        value = 1.0 if i % 2 == 0 else 0.8
        colours.append([round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.85, value)])
    return np.array(colours, np.uint8)


PALETTE = _palette()


def instance_colors(detections: Detections, color_by: str = "instance") -> np.ndarray:
    """(N, 3) uint8 RGB colours: by position in the result ("instance"), by class id ("class") or by track id
    (`data["track_id"]`, "track").

    Colouring by class keeps a class's colour steady from one video frame to the next; by track, an object's.
    """
    if color_by == "class":
        keys = detections.class_ids.astype(np.int64)
    elif color_by == "instance":
        keys = np.arange(len(detections))
    elif color_by == "track" and TRACK_ID in detections.data:
        keys = detections.data[TRACK_ID].astype(np.int64)
    else:
        raise ValueError(f"color_by must be 'instance', 'class' or 'track' (with track ids), not {color_by!r}")
    return PALETTE[keys % len(PALETTE)]


def label_text(class_name: str, score: float) -> str:
    """The caption of one instance, e.g. "person 97%"."""
    return f"{class_name} {score:.0%}"


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    alpha: float = 0.45,
    boxes: bool = True,
    outlines: bool = True,
    labels: bool = True,
    color_by: str = "instance",
) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 RGB `image` with the detections drawn on it.

    Masks are painted largest first so small objects stay visible on top, then blended once.
    """
    if image.shape[:2] != detections.image_size:
        raise ValueError(f"picture is {image.shape[:2]} but detections are for {detections.image_size}")
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if len(detections) == 0:
        return canvas
    colors = instance_colors(detections, color_by)
    height, width = detections.image_size
    thickness = max(1, round(max(height, width) / 400))

    masks = detections.box_masks
    if masks is not None:  # painted crop by crop: no full-picture array per instance
        layer = np.zeros_like(canvas)
        covered = np.zeros((height, width), dtype=bool)
        for i in np.argsort(-detections.areas, kind="stable"):
            inside = masks.crops[i]
            if inside.size:
                y0, x0 = (int(v) for v in masks.offsets[i])
                y1, x1 = y0 + inside.shape[0], x0 + inside.shape[1]
                layer[y0:y1, x0:x1][inside] = colors[i]
                covered[y0:y1, x0:x1] |= inside
        blended = cv2.addWeighted(canvas, 1.0 - alpha, layer, alpha, 0.0)
        np.copyto(canvas, blended, where=covered[:, :, None])
        if outlines:
            for i, inside in enumerate(masks.crops):
                if inside.size:
                    y0, x0 = (int(v) for v in masks.offsets[i])
                    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL,
                                                   cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
                    cv2.drawContours(canvas, contours, -1, colors[i].tolist(), thickness, cv2.LINE_AA)

    for i in range(len(detections)):
        color = colors[i].tolist()
        x1, y1, x2, y2 = np.round(detections.boxes[i]).astype(int).tolist()
        if boxes:  # no thicker than a tenth of the object: small objects in large pictures stay visible
            line = max(1, min(thickness, round(min(x2 - x1, y2 - y1) / 10)))
            cv2.rectangle(canvas, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), color, line)
        if labels:
            text = label_text(detections.class_names[i], float(detections.scores[i]))
            if TRACK_ID in detections.data:
                text = f"#{int(detections.data[TRACK_ID][i])} {text}"
            _draw_label(canvas, text, (x1, y1), color, object_width=x2 - x1)
    return canvas


def _draw_label(canvas: np.ndarray, text: str, corner: tuple[int, int], color: list[int],
                object_width: int | None = None) -> None:
    """A filled caption box just above `corner` (inside the picture), text in black or white for contrast. The
    text grows with the picture, but with `object_width` no wider than 2.5 objects (down to a smallest readable
    size): in a large picture of small objects, picture-sized captions would hide them all."""
    height, width = canvas.shape[:2]
    scale = max(0.35, min(height, width) / 900)
    if object_width is not None:
        unit_width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0]
        scale = max(0.35, min(scale, 2.5 * object_width / max(unit_width, 1)))
    weight = max(1, round(scale * 1.5))
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
    x = min(max(corner[0], 0), max(width - text_w - 2, 0))
    y = corner[1] - text_h - baseline - 2
    y = max(y, 0) if y >= 0 else min(corner[1], max(height - text_h - baseline - 2, 0))
    cv2.rectangle(canvas, (x, y), (x + text_w + 2, y + text_h + baseline + 2), color, cv2.FILLED)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + 1, y + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, weight, cv2.LINE_AA)


def display_instances(image: np.ndarray, detections: Detections, title: str = "", ax=None, figsize=(12, 12)):
    """A matplotlib figure in the manner of matterport's `visualize.display_instances`.

    Dashed boxes, captions, and masks drawn as translucent fills with polygon outlines. Returns the
    figure; the caller shows or saves it. `ax` draws into an existing axes instead of a new figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    if ax is None:
        fig, ax = plt.subplots(1, figsize=figsize)
    else:
        fig = ax.figure
    height, width = detections.image_size
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)
    colors = instance_colors(detections).astype(np.float32) / 255.0
    shown = draw_detections(image, detections, boxes=False, outlines=False, labels=False)
    for i, instance in enumerate(detections):
        x1, y1, x2, y2 = instance.box
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7, linestyle="dashed",
                               edgecolor=colors[i], facecolor="none"))
        ax.text(x1, y1 + 8, label_text(instance.class_name, instance.score), color="w", size=11,
                backgroundcolor="none")
        if instance.mask is not None:
            contours, _ = cv2.findContours(instance.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            for contour in contours:
                ax.add_patch(Polygon(contour[:, 0, :], facecolor="none", edgecolor=colors[i]))
    ax.imshow(shown)
    return fig


def draw_caption(image: np.ndarray, text: str, corner: tuple[int, int] = (0, 0), color=(0, 0, 0)) -> np.ndarray:
    """A copy of `image` with `text` in a filled box just above `corner` (x, y), e.g. a video's fps line."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    _draw_label(canvas, text, corner, list(color))
    return canvas


def draw_polyline(image: np.ndarray, points: np.ndarray, closed: bool, text: str = "",
                  color: tuple[int, int, int] = (255, 255, 0)) -> np.ndarray:
    """A copy of `image` with a line through `points` (K, 2) x, y (a polygon when `closed`) and `text` at its start,
    e.g. a counting line or zone with its counts."""
    canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 300))
    corners = np.round(np.asarray(points, float)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [corners], closed, color, thickness, cv2.LINE_AA)
    if text:
        _draw_label(canvas, text, tuple(int(v) for v in corners[0, 0]), list(color))
    return canvas
