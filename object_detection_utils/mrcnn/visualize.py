"""Matterport's `mrcnn.visualize` for inference results: `display_instances` with its signature and options,
`random_colors`, `apply_mask`, `display_images`, `display_top_masks`.

The drawing is matterport's (dashed boxes, "name 0.987" captions, masks blended at alpha 0.5 and truncated, mask
outlines); the outlines follow pixel edges (OpenCV) where matterport's scikit-image contours cut through them.
"""

from __future__ import annotations

import colorsys
import random
from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import MrcnnUsageError

Color = Sequence[float]  # RGB, each 0..1


def random_colors(N: int, bright: bool = True) -> list[tuple[float, float, float]]:
    """N distinct RGB colours (evenly spaced hues), in random order."""
    value = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / N, 1.0, value) for i in range(N)]
    random.shuffle(colors)
    return colors


def apply_mask(image: np.ndarray, mask: np.ndarray, color: Color, alpha: float = 0.5) -> np.ndarray:
    """Blend `color` into `image` where `mask` is 1, in place (values truncated to the image's dtype); returns
    the image."""
    covered = np.asarray(mask) == 1
    tint = alpha * np.asarray(color[:3], np.float64) * 255
    image[covered, :3] = image[covered, :3] * (1 - alpha) + tint
    return image


def display_instances(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray, class_ids: np.ndarray,
                      class_names: Sequence[str], scores: np.ndarray | None = None, title: str = "",
                      figsize: tuple[float, float] = (16, 16), ax=None, show_mask: bool = True,
                      show_bbox: bool = True, colors: Sequence[Color] | None = None,
                      captions: Sequence[str] | None = None) -> None:
    """Draw detections on an RGB picture with matplotlib, as matterport's: boxes [y1, x1, y2, x2] (N, 4), masks
    (H, W, N), class ids into `class_names`. Without `ax` a new figure is made and shown."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Rectangle

    count = len(boxes)
    if not count:
        print("\n*** No instances to display *** \n")
    elif not count == masks.shape[-1] == len(class_ids):
        raise MrcnnUsageError(f"display_instances: {count} boxes, {masks.shape[-1]} masks and {len(class_ids)} "
                              "class ids; they must be as many")
    auto_show = ax is None
    if auto_show:
        _, ax = plt.subplots(1, figsize=figsize)
    colors = random_colors(count) if colors is None or len(colors) == 0 else colors
    height, width = image.shape[:2]
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)

    shown = np.array(image, dtype=np.uint32)
    for i in range(count):
        if not np.any(boxes[i]):  # no box: the instance was lost, e.g. cropped away
            continue
        color = colors[i]
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7, linestyle="dashed",
                                   edgecolor=color, facecolor="none"))
        if captions:
            caption = captions[i]
        else:
            score = scores[i] if scores is not None else None
            # matterport shows the bare name for a score of 0 too
            caption = f"{class_names[class_ids[i]]} {score:.3f}" if score else class_names[class_ids[i]]
        ax.text(x1, y1 + 8, caption, color="w", size=11, backgroundcolor="none")
        mask = masks[:, :, i]
        if show_mask:
            apply_mask(shown, mask, color)
        # one collection per instance: a noisy mask has hundreds of outlines, and a patch each is slow
        ax.add_collection(PolyCollection(_outlines(mask), facecolors="none", edgecolors=[color]), autolim=False)
    ax.imshow(shown.astype(np.uint8))
    if auto_show:
        plt.show()


def _outlines(mask: np.ndarray) -> list[np.ndarray]:
    """(x, y) polygons along every outer and inner boundary of a mask."""
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return [contour[:, 0, :] for contour in contours if len(contour) > 1]


def display_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, cols: int = 4, cmap=None,
                   norm=None, interpolation=None) -> None:
    """Show pictures in a grid, `cols` per row, each with its title."""
    import matplotlib.pyplot as plt

    titles = titles if titles is not None else [""] * len(images)
    rows = len(images) // cols + 1
    plt.figure(figsize=(14, 14 * rows // cols))
    for position, (picture, caption) in enumerate(zip(images, titles), start=1):
        plt.subplot(rows, cols, position)
        plt.title(caption, fontsize=9)
        plt.axis("off")
        plt.imshow(np.asarray(picture).astype(np.uint8), cmap=cmap, norm=norm, interpolation=interpolation)
    plt.show()


def display_top_masks(image: np.ndarray, mask: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str],
                      limit: int = 4) -> None:
    """The picture, then for each of the `limit` classes covering the most pixels its instances' masks (each
    instance a shade), titled with the class name ("-" when fewer classes are present)."""
    class_ids = np.asarray(class_ids)
    present = np.unique(class_ids)
    areas = [int(mask[:, :, class_ids == class_id].sum()) for class_id in present]
    ranked = [int(class_id) for class_id, area in sorted(zip(present, areas), key=lambda item: item[1],
                                                         reverse=True) if area > 0]
    pictures, titles = [image], [f"H x W={image.shape[0]}x{image.shape[1]}"]
    for slot in range(limit):
        class_id = ranked[slot] if slot < len(ranked) else -1
        instances = mask[:, :, class_ids == class_id]
        pictures.append(np.sum(instances * np.arange(1, instances.shape[-1] + 1), axis=-1))
        titles.append(class_names[class_id] if class_id != -1 else "-")
    display_images(pictures, titles=titles, cols=limit + 1, cmap="Blues_r")
