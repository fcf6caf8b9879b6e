"""Drawing: masks blended where they are and nowhere else, largest first, labels, matterport figure."""

from __future__ import annotations

import numpy as np
import pytest

from object_detection_utils.detections import Detections
from object_detection_utils.visualization.drawing import (
    PALETTE,
    display_instances,
    draw_detections,
    instance_colors,
    label_text,
)


def _detections(height=60, width=80) -> Detections:
    masks = np.zeros((2, height, width), bool)
    masks[0, 10:50, 10:70] = True  # large
    masks[1, 20:30, 20:30] = True  # small, inside the large one
    return Detections(
        boxes=np.array([[10, 10, 70, 50], [20, 20, 30, 30]], np.float32),
        class_ids=np.array([1, 18], np.int32),
        class_names=("person", "dog"),
        scores=np.array([0.97, 0.6], np.float32),
        masks=masks,
        image_size=(height, width),
    )


def test_masks_blend_once_with_the_smaller_object_on_top():
    image = np.full((60, 80, 3), 100, np.uint8)
    detections = _detections()
    drawn = draw_detections(image, detections, alpha=0.5, boxes=False, outlines=False, labels=False)
    colors = instance_colors(detections).astype(float)
    np.testing.assert_array_equal(drawn[0, 0], [100, 100, 100])  # outside every mask: untouched
    np.testing.assert_array_equal(drawn[40, 60], np.round(100 * 0.5 + colors[0] * 0.5))
    np.testing.assert_array_equal(drawn[25, 25], np.round(100 * 0.5 + colors[1] * 0.5))  # small wins, blended once
    assert (image == 100).all()  # the input is not changed


def test_boxes_outlines_and_labels_change_only_their_pixels():
    image = np.zeros((60, 80, 3), np.uint8)
    detections = _detections()
    plain = draw_detections(image, detections, boxes=False, outlines=False, labels=False)
    with_boxes = draw_detections(image, detections, outlines=False, labels=False)
    assert (with_boxes[10, 10:70] == instance_colors(detections)[0]).all()  # top edge of the first box
    assert (with_boxes[55:, :] == plain[55:, :]).all()
    with_labels = draw_detections(image, detections, boxes=False, outlines=False)
    assert (with_labels[:10] != plain[:10]).any()  # the caption sits above the first box


def test_captions_and_boxes_of_small_objects_in_a_large_picture_stay_their_size():
    """A 2000 px picture (tiles): a 20 px object's caption is the smallest readable one, not picture-sized, and its
    box line thin; a 1000 px object's caption still grows with the picture."""
    size = 2000
    masks = np.zeros((2, size, size), bool)
    masks[0, 1000:1020, 1000:1020] = True
    masks[1, 100:900, 100:1100] = True
    detections = Detections(boxes=np.array([[1000, 1000, 1020, 1020], [100, 100, 1100, 900]], np.float32),
                            class_ids=np.array([1, 1], np.int32), class_names=("triangle", "triangle"),
                            scores=np.array([1.0, 1.0], np.float32), masks=masks, image_size=(size, size))
    image = np.zeros((size, size, 3), np.uint8)
    plain = draw_detections(image, detections, boxes=False, outlines=False, labels=False)

    def changed(drawn, rows, columns):  # the bounding box of the pixels drawing changed there
        ys, xs = np.nonzero((drawn[rows, columns] != plain[rows, columns]).any(axis=2))
        return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1

    labelled = draw_detections(image, detections, boxes=False, outlines=False)
    small_high, small_wide = changed(labelled, slice(900, 1000), slice(1000, 1500))
    assert small_high <= 16 and small_wide <= 110  # "triangle 100%" at 0.35, not at 2.2 (500 px wide)
    large_high, large_wide = changed(labelled, slice(0, 100), slice(100, 1500))
    assert large_high >= 50 and large_wide >= 400
    boxed = draw_detections(image, detections, outlines=False, labels=False)
    assert (boxed[1000:1020, 1000:1020] != plain[1000:1020, 1000:1020]).any(axis=2)[10, :].sum() == 2 * 2  # 2 px


def test_empty_detections_return_an_unchanged_copy():
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    drawn = draw_detections(image, Detections.empty((30, 40)))
    np.testing.assert_array_equal(drawn, image)
    assert drawn is not image


def test_size_mismatch_is_refused():
    with pytest.raises(ValueError, match="picture is"):
        draw_detections(np.zeros((10, 10, 3), np.uint8), _detections())


def test_colours_are_stable_by_instance_or_by_class():
    detections = _detections()
    np.testing.assert_array_equal(instance_colors(detections), PALETTE[[0, 1]])
    np.testing.assert_array_equal(instance_colors(detections, "class"), PALETTE[[1, 18]])
    assert len({tuple(c) for c in PALETTE.tolist()}) == len(PALETTE)


def test_label_text():
    assert label_text("person", 0.974) == "person 97%"


def test_matterport_style_figure_draws_every_instance():
    import matplotlib

    matplotlib.use("Agg")
    figure = display_instances(np.zeros((60, 80, 3), np.uint8), _detections(), title="t")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.texts] == ["person 97%", "dog 60%"]
    assert len(axes.patches) == 4  # a dashed box and a mask outline per instance
    import matplotlib.pyplot as plt

    plt.close(figure)
