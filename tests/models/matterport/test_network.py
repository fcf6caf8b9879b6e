"""The matterport network: its weight layout, anchors, the graph pieces on hand-made inputs, and a whole run."""

from __future__ import annotations

import math

import matterport_h5 as mh5
import numpy as np
import pytest
import tensorflow as tf

from object_detection_utils.models.matterport.config import MatterportConfig
from object_detection_utils.models.matterport.network import (
    MatterportNetwork,
    apply_box_deltas,
    backbone_shapes,
    clip_boxes,
    expected_weights,
    fold_batch_norm,
    propose,
    pyramid_anchors,
    pyramid_roi_align,
    refine_detections,
    roi_levels,
)


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_expected_weights_are_the_reference_layout(backbone):
    """Every layer and weight of the layout recorded from matterport's own model (tests/matterport/goldens)."""
    reference = mh5.Layout.named(backbone, 5).expected_weights()
    ours = expected_weights(MatterportConfig(NUM_CLASSES=5, BACKBONE=backbone))
    assert ours == reference
    assert len(ours) == {"resnet50": 133, "resnet101": 235}[backbone]


def test_expected_weights_follow_the_config():
    config = MatterportConfig(NUM_CLASSES=81, FPN_CLASSIF_FC_LAYERS_SIZE=512, TOP_DOWN_PYRAMID_SIZE=128,
                              RPN_ANCHOR_RATIOS=(0.5, 1), IMAGE_CHANNEL_COUNT=4, MEAN_PIXEL=(1, 2, 3, 4))
    shapes = expected_weights(config)
    assert shapes["conv1"]["kernel"] == (7, 7, 4, 64)
    assert shapes["fpn_c5p5"]["kernel"] == (1, 1, 2048, 128)
    assert shapes["rpn_class_raw"]["kernel"] == (1, 1, 512, 4)
    assert shapes["rpn_bbox_pred"]["bias"] == (8,)
    assert shapes["mrcnn_class_conv1"]["kernel"] == (7, 7, 128, 512)
    assert shapes["mrcnn_class_logits"]["kernel"] == (512, 81)
    assert shapes["mrcnn_bbox_fc"]["bias"] == (324,)
    assert shapes["mrcnn_mask_conv1"]["kernel"] == (3, 3, 128, 256)
    assert shapes["mrcnn_mask_deconv"]["kernel"] == (2, 2, 256, 256)
    assert shapes["mrcnn_mask"]["kernel"] == (1, 1, 256, 81)
    assert "res4w_branch2c" in shapes and "res4x_branch2c" not in shapes  # resnet101: 22 identity blocks


def test_anchors_for_a_coco_sized_picture():
    config = MatterportConfig()
    assert backbone_shapes(config, (1024, 1024)) == [(256, 256), (128, 128), (64, 64), (32, 32), (16, 16)]
    anchors = pyramid_anchors(config, (1024, 1024))
    assert anchors.shape == (261888, 4) and anchors.dtype == np.float32
    # scale 32, ratio 0.5 at (0, 0): 32 / sqrt(0.5) = 45.25... high, 32 * sqrt(0.5) = 22.62... wide
    half_h, half_w = 22.627416997969522, 11.313708498984761
    np.testing.assert_array_equal(
        anchors[0], np.float32([-half_h / 1023, -half_w / 1023, (half_h - 1) / 1023, (half_w - 1) / 1023]))
    # ratio 1 then 2 at the same place, then the next column 4 px to the right
    np.testing.assert_array_equal(anchors[1], np.float32([-16 / 1023, -16 / 1023, 15 / 1023, 15 / 1023]))
    np.testing.assert_array_equal(anchors[3], np.float32([-half_h / 1023, (4 - half_w) / 1023,
                                                          (half_h - 1) / 1023, (4 + half_w - 1) / 1023]))
    # the first anchor of P3: scale 64, ratio 0.5, at (0, 0)
    np.testing.assert_array_equal(anchors[256 * 256 * 3], np.float32([-2 * half_h / 1023, -2 * half_w / 1023,
                                                                      (2 * half_h - 1) / 1023,
                                                                      (2 * half_w - 1) / 1023]))
    # the last: scale 512, ratio 2, centre (960, 960) on P6
    last = 512 / math.sqrt(2) / 2, 512 * math.sqrt(2) / 2
    np.testing.assert_array_equal(anchors[-1], np.float32([(960 - last[0]) / 1023, (960 - last[1]) / 1023,
                                                           (960 + last[0] - 1) / 1023, (960 + last[1] - 1) / 1023]))


def test_anchor_stride_and_rectangular_pictures():
    config = MatterportConfig(RPN_ANCHOR_STRIDE=2, IMAGE_RESIZE_MODE="pad64", IMAGE_MIN_DIM=64)
    shapes = backbone_shapes(config, (192, 320))
    assert shapes == [(48, 80), (24, 40), (12, 20), (6, 10), (3, 5)]
    expected = sum(math.ceil(h / 2) * math.ceil(w / 2) for h, w in shapes) * 3
    assert pyramid_anchors(config, (192, 320)).shape == (expected, 4)


def test_box_deltas_and_clipping():
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.6]])
    deltas = tf.constant([[0.1, -0.1, math.log(2.0), 0.0]])
    # height 0.4 doubled around a centre moved 0.1 * 0.4 down; width 0.4 around a centre 0.04 to the left
    moved = apply_box_deltas(boxes, deltas).numpy()
    np.testing.assert_allclose(moved, [[-0.06, 0.16, 0.74, 0.56]], atol=1e-7)
    clipped = clip_boxes(tf.constant(moved), tf.constant([0.0, 0.2, 0.7, 1.0])).numpy()
    np.testing.assert_allclose(clipped, [[0.0, 0.2, 0.7, 0.56]], atol=1e-7)


def test_roi_levels_from_box_area():
    # 896 x 896 picture: a box of 224 pixels a side (0.25 normalised) belongs to P4, each halving one level down
    sides = [0.25, 0.125, 0.5, 0.0625, 0.03, 1.0, 0.0]
    boxes = tf.constant([[0.0, 0.0, s, s] for s in sides])
    assert roi_levels(boxes, 896.0 * 896.0).numpy().tolist() == [4, 3, 5, 2, 2, 5, 2]


def test_pyramid_roi_align_keeps_the_box_order():
    # each level's map holds its level number: the crops show which map every box was taken from
    maps = [tf.fill((1, 8, 8, 2), float(level)) for level in range(2, 6)]
    sides = [0.5, 0.0625, 0.25, 0.125, 0.25, 0.5]
    boxes = tf.constant([[0.0, 0.0, s, s] for s in sides])
    pooled = pyramid_roi_align(boxes, maps, 3, 896.0 * 896.0).numpy()
    assert pooled.shape == (6, 3, 3, 2)
    assert pooled[:, 1, 1, 0].tolist() == [5, 2, 4, 3, 4, 5]


def test_proposals_take_the_best_anchors_then_nms_then_pad():
    config = MatterportConfig(PRE_NMS_LIMIT=3, POST_NMS_ROIS_INFERENCE=4, RPN_NMS_THRESHOLD=0.5)
    anchors = tf.constant([[0.0, 0.0, 0.4, 0.4], [0.0, 0.0, 0.41, 0.4], [0.5, 0.5, 1.2, 0.9], [0.6, 0.6, 0.7, 0.7]])
    foreground = tf.constant([0.9, 0.8, 0.7, 0.1])
    probs = tf.stack([1 - foreground, foreground], axis=1)
    proposals = propose(probs, tf.zeros((4, 4)), anchors, config).numpy()
    # anchor 3 is not among the best 3, anchor 1 overlaps anchor 0, anchor 2 is clipped to the picture
    np.testing.assert_allclose(proposals, [[0, 0, 0.4, 0.4], [0.5, 0.5, 1.0, 0.9], [0, 0, 0, 0], [0, 0, 0, 0]],
                               atol=1e-7)


def test_proposal_deltas_are_scaled_by_the_rpn_std_dev():
    config = MatterportConfig(PRE_NMS_LIMIT=1, POST_NMS_ROIS_INFERENCE=1, RPN_BBOX_STD_DEV=(0.5, 0.1, 0.2, 0.2))
    probs = tf.constant([[0.0, 1.0]])
    proposals = propose(probs, tf.constant([[0.2, 0.0, 0.0, 0.0]]), tf.constant([[0.2, 0.2, 0.6, 0.6]]), config)
    np.testing.assert_allclose(proposals.numpy(), [[0.24, 0.2, 0.64, 0.6]], atol=1e-7)


def _hand_made_detections(config: MatterportConfig, window=(0.0, 0.0, 1.0, 1.0)) -> np.ndarray:
    rois = tf.constant([
        [0.1, 0.1, 0.5, 0.5],  # 0: class 1, 0.9
        [0.1, 0.1, 0.52, 0.5],  # 1: class 1, 0.8, overlaps 0: suppressed
        [0.1, 0.1, 0.5, 0.5],  # 2: class 2, 0.95, same box as 0 but another class: kept
        [0.6, 0.6, 0.9, 0.9],  # 3: background wins
        [0.6, 0.6, 0.9, 0.9],  # 4: class 1, 0.5: below the minimum confidence
        [0.6, 0.0, 0.9, 0.3],  # 5: class 3, 0.8
        [0.0, 0.6, 0.3, 0.9],  # 6: class 3, 0.8, the same score as 5, apart from it
    ])
    probs = np.zeros((7, 4), np.float32)
    for row, (class_id, score) in enumerate([(1, 0.9), (1, 0.8), (2, 0.95), (0, 0.6), (1, 0.5), (3, 0.8),
                                             (3, 0.8)]):
        probs[row, class_id] = score
        probs[row, [c for c in range(4) if c != class_id]] = (1 - score) / 3
    return refine_detections(rois, tf.constant(probs), tf.zeros((7, 4, 4)), tf.constant(window), config).numpy()


def test_detection_layer_on_hand_made_inputs():
    config = MatterportConfig(NUM_CLASSES=4, DETECTION_MAX_INSTANCES=6, DETECTION_MIN_CONFIDENCE=0.7,
                              DETECTION_NMS_THRESHOLD=0.3)
    detections = _hand_made_detections(config)
    assert detections.shape == (6, 6) and detections.dtype == np.float32
    np.testing.assert_allclose(detections, [
        [0.1, 0.1, 0.5, 0.5, 2, 0.95],
        [0.1, 0.1, 0.5, 0.5, 1, 0.9],
        [0.6, 0.0, 0.9, 0.3, 3, 0.8],  # equal scores: lower ROI index first
        [0.0, 0.6, 0.3, 0.9, 3, 0.8],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ], atol=1e-7)


def test_detection_layer_caps_clips_and_keeps_low_scores_without_a_minimum():
    config = MatterportConfig(NUM_CLASSES=4, DETECTION_MAX_INSTANCES=3, DETECTION_MIN_CONFIDENCE=0)
    detections = _hand_made_detections(config, window=(0.0, 0.0, 0.8, 0.8))
    np.testing.assert_allclose(detections, [
        [0.1, 0.1, 0.5, 0.5, 2, 0.95],
        [0.1, 0.1, 0.5, 0.5, 1, 0.9],
        [0.6, 0.0, 0.8, 0.3, 3, 0.8],  # clipped to the window
    ], atol=1e-7)
    config = config.replace(DETECTION_MAX_INSTANCES=10)
    assert _hand_made_detections(config)[:, 4].tolist() == [2, 1, 3, 3, 1, 0, 0, 0, 0, 0]  # 4 (0.5) now kept


def test_detection_layer_refines_with_the_class_deltas():
    config = MatterportConfig(NUM_CLASSES=2, DETECTION_MAX_INSTANCES=2, DETECTION_MIN_CONFIDENCE=0.5)
    deltas = np.zeros((1, 2, 4), np.float32)
    deltas[0, 1] = [1.0, 0.0, 0.0, 0.0]  # class 1: down by 1 * BBOX_STD_DEV 0.1 of the height
    deltas[0, 0] = [9.0, 9.0, 9.0, 9.0]  # the background's deltas are never used
    detections = refine_detections(tf.constant([[0.2, 0.2, 0.6, 0.6]]), tf.constant([[0.1, 0.9]]),
                                   tf.constant(deltas), tf.constant([0.0, 0.0, 1.0, 1.0]), config).numpy()
    np.testing.assert_allclose(detections[0], [0.24, 0.2, 0.64, 0.6, 1, 0.9], atol=1e-6)
    assert not detections[1].any()


def test_no_detection_at_all():
    config = MatterportConfig(NUM_CLASSES=2, DETECTION_MAX_INSTANCES=2)
    detections = refine_detections(tf.constant([[0.2, 0.2, 0.6, 0.6]]), tf.constant([[0.9, 0.1]]),
                                   tf.zeros((1, 2, 4)), tf.constant([0.0, 0.0, 1.0, 1.0]), config)
    assert not detections.numpy().any()


def test_batch_norm_folds_into_the_conv():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 6))
    kernel, bias = rng.normal(size=(1, 1, 6, 4)), rng.normal(size=4)
    bn = {"gamma": rng.uniform(0.5, 2, 4), "beta": rng.normal(size=4), "moving_mean": rng.normal(size=4),
          "moving_variance": rng.uniform(0.1, 2, 4)}
    conv_then_bn = ((x @ kernel[0, 0] + bias - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3)
                    * bn["gamma"] + bn["beta"])
    folded_kernel, folded_bias = fold_batch_norm(kernel, bias, bn)
    assert folded_kernel.dtype == np.float32 and folded_kernel.shape == (1, 1, 6, 4)
    np.testing.assert_allclose(x @ folded_kernel[0, 0] + folded_bias, conv_then_bn, rtol=1e-5, atol=1e-5)


def _small_config(**changes) -> MatterportConfig:
    return MatterportConfig(NUM_CLASSES=5, BACKBONE="resnet50", IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=128,
                            DETECTION_MIN_CONFIDENCE=0.3, POST_NMS_ROIS_INFERENCE=200, **changes)


@pytest.fixture(scope="module")
def small_weights() -> dict:
    return mh5.calibrated_weights(mh5.Layout.named("resnet50", 5), seed=15)


def test_set_weights_names_what_does_not_fit(small_weights):
    network = MatterportNetwork(_small_config())
    broken = {layer: dict(weights) for layer, weights in small_weights.items() if layer != "fpn_p3"}
    broken["mrcnn_mask"]["bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"fpn_p3/kernel.*mrcnn_mask/bias shape \(3,\) != \(5,\)"):
        network.set_weights(broken)
    with pytest.raises(RuntimeError, match="before set_weights"):
        network.detect(np.zeros((128, 128, 3), np.float32), (0, 0, 128, 128))


def test_a_whole_run(small_weights):
    network = MatterportNetwork(_small_config())
    network.set_weights(small_weights)
    picture = np.random.default_rng(0).normal(0, 60, (128, 128, 3)).astype(np.float32)
    detections, masks = network.detect(picture, (0, 0, 128, 128))
    assert detections.shape == (100, 6) and detections.dtype == np.float32
    count = int((detections[:, 4] > 0).sum())
    assert count > 0 and not detections[count:].any()
    assert masks.shape == (count, 28, 28) and masks.dtype == np.float32
    assert 0 <= masks.min() and masks.max() <= 1
    scores = detections[:count, 5]
    assert (np.diff(scores) <= 0).all() and scores.min() >= 0.3
    assert set(detections[:count, 4].astype(int)) <= {1, 2, 3, 4}
    boxes = detections[:count, :4]
    assert (boxes >= 0).all() and (boxes <= 1).all()

    again, again_masks = network.detect(picture, (0, 0, 128, 128))
    np.testing.assert_array_equal(again, detections)
    np.testing.assert_array_equal(again_masks, masks)
    network.detect(np.zeros((64, 128, 3), np.float32), (0, 0, 64, 128))
    assert network.traced_sizes == [(128, 128), (64, 128)]
    with pytest.raises(ValueError, match="multiples of 64, got 100x128"):
        network.detect(np.zeros((100, 128, 3), np.float32), (0, 0, 100, 128))
