"""Matterport Mask R-CNN's inference network in TensorFlow 2: ResNet50/101 + FPN, RPN, proposals, pyramid ROI
align, classifier and mask heads, detection layer.

Written after matterport's Mask_RCNN (MIT licence, Copyright (c) 2017 Matterport, Inc.), mrcnn/model.py: the same
layers under the same names, the same anchors and the same order of operations where results depend on it
(box deltas, level assignment, top-k and NMS tie-breaking, detection order). Differences that do not change
results: batch norm is folded into the convolution before it, the per-ROI heads run with the ROIs as the batch
(matterport's TimeDistributed), and the mask head runs on the real detections only.

One picture per call, traced once per molded picture size (`tf.function`), on a GPU when TensorFlow sees one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from ...errors import PictureSizeError
from ..tensorflow_runtime import native_stderr_silenced
from .config import MatterportConfig

BN_EPSILON = 1e-3  # Keras' BatchNormalization default, which matterport's BatchNorm keeps
BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
MASK_HEAD_DEPTH = 256  # matterport's mask head width, independent of TOP_DOWN_PYRAMID_SIZE
RPN_DEPTH = 512
RESNET_IDENTITY_BLOCKS = {"resnet50": (2, 3, 5, 2), "resnet101": (2, 3, 22, 2)}  # blocks after each stage's "a"
RESNET_FILTERS = ((64, 64, 256), (128, 128, 512), (256, 256, 1024), (512, 512, 2048))

WeightShapes = dict[str, dict[str, tuple[int, ...]]]
Weights = Mapping[str, Mapping[str, np.ndarray]]


# ---- anchors (numpy, as matterport's utils.generate_pyramid_anchors and norm_boxes) ----

def backbone_shapes(config: MatterportConfig, image_shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Feature map size per pyramid level for a molded picture of `image_shape` (height, width)."""
    return [(math.ceil(image_shape[0] / s), math.ceil(image_shape[1] / s)) for s in config.BACKBONE_STRIDES]


def pyramid_anchors(config: MatterportConfig, image_shape: tuple[int, int]) -> np.ndarray:
    """All anchors, (A, 4) float32 [y1, x1, y2, x2] normalised on the molded picture, in the RPN's output order:
    level by level, then row, column and ratio."""
    ratios = np.asarray(config.RPN_ANCHOR_RATIOS, dtype=np.float64)
    levels = []
    for scale, stride, (rows, cols) in zip(config.RPN_ANCHOR_SCALES, config.BACKBONE_STRIDES,
                                           backbone_shapes(config, image_shape)):
        heights = scale / np.sqrt(ratios)
        widths = scale * np.sqrt(ratios)
        ys = np.arange(0, rows, config.RPN_ANCHOR_STRIDE) * stride
        xs = np.arange(0, cols, config.RPN_ANCHOR_STRIDE) * stride
        cy = np.broadcast_to(ys[:, None, None], (ys.size, xs.size, ratios.size)).reshape(-1)
        cx = np.broadcast_to(xs[None, :, None], (ys.size, xs.size, ratios.size)).reshape(-1)
        h = np.broadcast_to(heights, (ys.size, xs.size, ratios.size)).reshape(-1)
        w = np.broadcast_to(widths, (ys.size, xs.size, ratios.size)).reshape(-1)
        levels.append(np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=1))
    boxes = np.concatenate(levels)
    height, width = image_shape
    scale = np.array([height - 1, width - 1, height - 1, width - 1])
    return ((boxes - np.array([0, 0, 1, 1])) / scale).astype(np.float32)


# ---- weight layout ----

def _resnet_blocks(backbone: str) -> list[tuple[int, str, tuple[int, int, int], bool]]:
    """(stage, block letter, filters, is the conv block) of every residual block, in order."""
    blocks = []
    for stage, (identity_count, filters) in enumerate(zip(RESNET_IDENTITY_BLOCKS[backbone], RESNET_FILTERS), 2):
        blocks.append((stage, "a", filters, True))
        blocks += [(stage, chr(ord("b") + i), filters, False) for i in range(identity_count)]
    return blocks


def _conv_bn_pairs(config: MatterportConfig) -> list[tuple[str, str]]:
    """(convolution, the batch norm right after it) for every folded pair."""
    pairs = [("conv1", "bn_conv1")]
    for stage, block, _, is_conv_block in _resnet_blocks(config.BACKBONE):
        for branch in ("2a", "2b", "2c", *(("1",) if is_conv_block else ())):
            pairs.append((f"res{stage}{block}_branch{branch}", f"bn{stage}{block}_branch{branch}"))
    pairs += [("mrcnn_class_conv1", "mrcnn_class_bn1"), ("mrcnn_class_conv2", "mrcnn_class_bn2")]
    pairs += [(f"mrcnn_mask_conv{i}", f"mrcnn_mask_bn{i}") for i in range(1, 5)]
    return pairs


def expected_weights(config: MatterportConfig) -> WeightShapes:
    """Every weight matterport's inference model holds: layer name -> short weight name -> shape."""
    layout: WeightShapes = {}

    def conv(name: str, size: int, depth_in: int, depth_out: int) -> None:
        layout[name] = {"kernel": (size, size, depth_in, depth_out), "bias": (depth_out,)}

    def bn(name: str, depth: int) -> None:
        layout[name] = {weight: (depth,) for weight in BN_WEIGHTS}

    conv("conv1", 7, config.IMAGE_CHANNEL_COUNT, 64)
    bn("bn_conv1", 64)
    depth = 64
    for stage, block, (f1, f2, f3), is_conv_block in _resnet_blocks(config.BACKBONE):
        prefix, bn_prefix = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
        for branch, size, d_in, d_out in (("2a", 1, depth, f1), ("2b", 3, f1, f2), ("2c", 1, f2, f3)):
            conv(prefix + branch, size, d_in, d_out)
            bn(bn_prefix + branch, d_out)
        if is_conv_block:
            conv(prefix + "1", 1, depth, f3)
            bn(bn_prefix + "1", f3)
        depth = f3
    pyramid = config.TOP_DOWN_PYRAMID_SIZE
    for level, depth_in in ((5, 2048), (4, 1024), (3, 512), (2, 256)):
        conv(f"fpn_c{level}p{level}", 1, depth_in, pyramid)
    for level in (2, 3, 4, 5):
        conv(f"fpn_p{level}", 3, pyramid, pyramid)
    anchors = len(config.RPN_ANCHOR_RATIOS)
    conv("rpn_conv_shared", 3, pyramid, RPN_DEPTH)
    conv("rpn_class_raw", 1, RPN_DEPTH, 2 * anchors)
    conv("rpn_bbox_pred", 1, RPN_DEPTH, 4 * anchors)
    fc, classes = config.FPN_CLASSIF_FC_LAYERS_SIZE, config.NUM_CLASSES
    conv("mrcnn_class_conv1", config.POOL_SIZE, pyramid, fc)
    bn("mrcnn_class_bn1", fc)
    conv("mrcnn_class_conv2", 1, fc, fc)
    bn("mrcnn_class_bn2", fc)
    layout["mrcnn_class_logits"] = {"kernel": (fc, classes), "bias": (classes,)}
    layout["mrcnn_bbox_fc"] = {"kernel": (fc, 4 * classes), "bias": (4 * classes,)}
    depth = pyramid
    for i in range(1, 5):
        conv(f"mrcnn_mask_conv{i}", 3, depth, MASK_HEAD_DEPTH)
        bn(f"mrcnn_mask_bn{i}", MASK_HEAD_DEPTH)
        depth = MASK_HEAD_DEPTH
    # Conv2DTranspose keeps its kernel as (height, width, output depth, input depth)
    layout["mrcnn_mask_deconv"] = {"kernel": (2, 2, MASK_HEAD_DEPTH, MASK_HEAD_DEPTH), "bias": (MASK_HEAD_DEPTH,)}
    conv("mrcnn_mask", 1, MASK_HEAD_DEPTH, classes)
    return layout


def fold_batch_norm(
    kernel: np.ndarray, bias: np.ndarray, bn: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """A convolution followed by inference-mode batch norm as one convolution (float64 maths, float32 result)."""
    scale = np.asarray(bn["gamma"], np.float64) / np.sqrt(np.asarray(bn["moving_variance"], np.float64) + BN_EPSILON)
    folded_kernel = np.asarray(kernel, np.float64) * scale
    folded_bias = (np.asarray(bias, np.float64) - bn["moving_mean"]) * scale + bn["beta"]
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


# ---- graph pieces (plain functions of tensors) ----

def apply_box_deltas(boxes: tf.Tensor, deltas: tf.Tensor) -> tf.Tensor:
    """Shift and scale (N, 4) boxes by (N, 4) deltas [dy, dx, log dh, log dw], in matterport's order of ops."""
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height
    center_x = boxes[:, 1] + 0.5 * width
    center_y += deltas[:, 0] * height
    center_x += deltas[:, 1] * width
    height *= tf.exp(deltas[:, 2])
    width *= tf.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return tf.stack([y1, x1, y1 + height, x1 + width], axis=1)


def clip_boxes(boxes: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Clip (N, 4) boxes to a [y1, x1, y2, x2] window."""
    low = tf.stack([window[0], window[1], window[0], window[1]])
    high = tf.stack([window[2], window[3], window[2], window[3]])
    return tf.maximum(tf.minimum(boxes, high), low)


def roi_levels(boxes: tf.Tensor, image_area: float) -> tf.Tensor:
    """Pyramid level (2..5) of each normalised box, from its area, as matterport assigns it (224 px -> P4)."""
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    ratio = tf.sqrt(height * width) / (224.0 / tf.sqrt(tf.constant(image_area, tf.float32)))
    level = tf.math.log(ratio) / tf.math.log(2.0)
    return tf.minimum(5, tf.maximum(2, 4 + tf.cast(tf.round(level), tf.int32)))


def pyramid_roi_align(
    boxes: tf.Tensor, feature_maps: list[tf.Tensor], pool_size: int, image_area: float
) -> tf.Tensor:
    """(N, pool, pool, depth) bilinear crops of each box from its level's feature map (P2..P5), in box order."""
    levels = roi_levels(boxes, image_area)
    positions, pooled = [], []
    for level, feature_map in zip(range(2, 6), feature_maps):
        where = tf.cast(tf.where(tf.equal(levels, level))[:, 0], tf.int32)
        level_boxes = tf.gather(boxes, where)
        positions.append(where)
        pooled.append(tf.image.crop_and_resize(
            feature_map, level_boxes, tf.zeros_like(where), (pool_size, pool_size), method="bilinear"))
    return tf.dynamic_stitch(positions, pooled)


def propose(probs: tf.Tensor, deltas: tf.Tensor, anchors: tf.Tensor, config: MatterportConfig) -> tf.Tensor:
    """Matterport's ProposalLayer: the PRE_NMS_LIMIT best anchors by foreground score, refined by their deltas
    and clipped to the picture, NMS, zero-padded to POST_NMS_ROIS_INFERENCE rows."""
    scores = probs[:, 1]
    deltas = deltas * tf.constant(config.RPN_BBOX_STD_DEV, tf.float32)
    top = tf.math.top_k(scores, min(config.PRE_NMS_LIMIT, int(anchors.shape[0])), sorted=True).indices
    scores = tf.gather(scores, top)
    boxes = apply_box_deltas(tf.gather(anchors, top), tf.gather(deltas, top))
    boxes = clip_boxes(boxes, tf.constant([0.0, 0.0, 1.0, 1.0]))
    count = config.POST_NMS_ROIS_INFERENCE
    keep = tf.image.non_max_suppression(boxes, scores, count, config.RPN_NMS_THRESHOLD)
    proposals = tf.gather(boxes, keep)
    return tf.pad(proposals, [[0, count - tf.shape(proposals)[0]], [0, 0]])


def refine_detections(
    rois: tf.Tensor, probs: tf.Tensor, deltas: tf.Tensor, window: tf.Tensor, config: MatterportConfig
) -> tf.Tensor:
    """Matterport's refine_detections_graph: best class per ROI, its box refined and clipped to the window,
    per-class NMS, then the top DETECTION_MAX_INSTANCES by score (ties: lower ROI index first)."""
    limit = config.DETECTION_MAX_INSTANCES
    class_ids = tf.argmax(probs, axis=1, output_type=tf.int32)
    pick = tf.stack([tf.range(tf.shape(probs)[0]), class_ids], axis=1)
    scores = tf.gather_nd(probs, pick)
    refined = apply_box_deltas(rois, tf.gather_nd(deltas, pick) * tf.constant(config.BBOX_STD_DEV, tf.float32))
    refined = clip_boxes(refined, window)

    wanted = class_ids > 0
    if config.DETECTION_MIN_CONFIDENCE:
        wanted &= scores >= config.DETECTION_MIN_CONFIDENCE
    keep = tf.where(wanted)[:, 0]
    keep_classes = tf.gather(class_ids, keep)
    keep_scores = tf.gather(scores, keep)
    keep_boxes = tf.gather(refined, keep)

    def class_nms(class_id: tf.Tensor) -> tf.Tensor:
        members = tf.where(tf.equal(keep_classes, class_id))[:, 0]
        chosen = tf.image.non_max_suppression(
            tf.gather(keep_boxes, members), tf.gather(keep_scores, members), limit,
            config.DETECTION_NMS_THRESHOLD)
        chosen = tf.gather(keep, tf.gather(members, chosen))
        return tf.pad(chosen, [[0, limit - tf.shape(chosen)[0]]], constant_values=-1)

    per_class = tf.map_fn(class_nms, tf.unique(keep_classes)[0],
                          fn_output_signature=tf.TensorSpec((limit,), tf.int64))
    survivors = tf.reshape(per_class, (-1,))
    survivors = tf.sort(tf.boolean_mask(survivors, survivors > -1))
    survivor_scores = tf.gather(scores, survivors)
    top = tf.math.top_k(survivor_scores, tf.minimum(tf.shape(survivors)[0], limit), sorted=True).indices
    final = tf.gather(survivors, top)
    detections = tf.concat([
        tf.gather(refined, final),
        tf.cast(tf.gather(class_ids, final), tf.float32)[:, None],
        tf.gather(scores, final)[:, None],
    ], axis=1)
    return tf.pad(detections, [[0, limit - tf.shape(detections)[0]], [0, 0]])


# ---- the network ----

class MatterportNetwork:
    """Matterport's inference model for one config; weights by matterport's layer names.

    `detect(molded, window)` takes one molded picture (H, W, C) float32 (H and W multiples of 64) and its window
    in pixels, and returns the detection layer's (D, 6) float32 rows [y1, x1, y2, x2, class_id, score]
    (normalised, zero rows after the last detection; D = DETECTION_MAX_INSTANCES) and the (N, mh, mw) float32
    mask of each of the N real detections' class.
    """

    def __init__(self, config: MatterportConfig) -> None:
        self.config = config
        self._params: dict[str, tuple[tf.Variable, ...]] = {}
        self._functions: dict[tuple[int, int], object] = {}

    @property
    def traced_sizes(self) -> list[tuple[int, int]]:
        """The molded sizes (height, width) traced so far, in order: one graph each, reused for every picture."""
        return list(self._functions)

    def expected_weights(self) -> WeightShapes:
        """Layer name -> short weight name -> shape, for every weight the network needs."""
        return expected_weights(self.config)

    def set_weights(self, weights: Weights) -> None:
        """Load weights (layer name -> short weight name -> array), folding each batch norm into its conv."""
        expected = self.expected_weights()
        problems = [f"{layer}/{name}" for layer, shapes in expected.items() for name in shapes
                    if name not in weights.get(layer, {})]
        problems += [f"{layer}/{name} shape {np.shape(weights[layer][name])} != {shape}"
                     for layer, shapes in expected.items() for name, shape in shapes.items()
                     if name in weights.get(layer, {}) and tuple(np.shape(weights[layer][name])) != shape]
        if problems:
            raise ValueError(f"matterport weights do not fit the network: {', '.join(problems[:5])}"
                             + (f" and {len(problems) - 5} more" if len(problems) > 5 else ""))
        arrays: dict[str, tuple[np.ndarray, ...]] = {}
        folded_bns = set()
        for conv, bn in _conv_bn_pairs(self.config):
            arrays[conv] = fold_batch_norm(weights[conv]["kernel"], weights[conv]["bias"], weights[bn])
            folded_bns.add(bn)
        for layer in expected:
            if layer not in arrays and layer not in folded_bns:
                arrays[layer] = (np.asarray(weights[layer]["kernel"], np.float32),
                                 np.asarray(weights[layer]["bias"], np.float32))
        fc = self.config.FPN_CLASSIF_FC_LAYERS_SIZE
        kernel, bias = arrays["mrcnn_class_conv1"]  # a 7x7 valid conv on 7x7 crops: a dense layer
        arrays["mrcnn_class_conv1"] = (kernel.reshape(-1, fc), bias)
        kernel, bias = arrays["mrcnn_class_conv2"]
        arrays["mrcnn_class_conv2"] = (kernel.reshape(fc, fc), bias)
        self._params = {name: tuple(tf.Variable(a, trainable=False, name=name) for a in pair)
                        for name, pair in arrays.items()}
        self._functions.clear()

    def detect(self, molded: np.ndarray, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Run one molded picture; see the class docstring for the results."""
        if not self._params:
            raise RuntimeError("MatterportNetwork.detect called before set_weights")
        height, width = molded.shape[:2]
        if height % 64 or width % 64:
            raise PictureSizeError(f"matterport's network needs a molded picture whose sides are multiples of 64, "
                                   f"got {height}x{width} (IMAGE_RESIZE_MODE {self.config.IMAGE_RESIZE_MODE!r}; "
                                   "'square' or 'pad64' take any size)")
        function = self._functions.get((height, width))
        quiet = contextlib.nullcontext()
        if function is None:
            function = self._functions[(height, width)] = self._trace(height, width, molded.shape[2])
            # Grappler's cost model prints a warning straight to fd 2 for every ROI crop (a box count it cannot
            # know) when it first optimises the graph; anything that fails is still raised, with that output.
            quiet = native_stderr_silenced()
        with quiet:
            detections, masks = function(tf.constant(molded, tf.float32), tf.constant(window, tf.float32))
        return detections.numpy(), masks.numpy()

    def _trace(self, height: int, width: int, channels: int):
        anchors = pyramid_anchors(self.config, (height, width))

        @tf.function(jit_compile=False, autograph=False)
        def run(molded: tf.Tensor, window_pixels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return self._graph(molded, window_pixels, tf.constant(anchors), height * width)

        return run.get_concrete_function(
            tf.TensorSpec((height, width, channels), tf.float32), tf.TensorSpec((4,), tf.float32))

    # -- layers --

    def _conv(self, x: tf.Tensor, name: str, stride: int = 1, padding: str = "SAME", relu: bool = False):
        kernel, bias = self._params[name]
        x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, stride, padding), bias)
        return tf.nn.relu(x) if relu else x

    def _dense(self, x: tf.Tensor, name: str) -> tf.Tensor:
        kernel, bias = self._params[name]
        return tf.nn.bias_add(tf.matmul(x, kernel), bias)

    def _block(self, x: tf.Tensor, stage: int, block: str, is_conv_block: bool) -> tf.Tensor:
        prefix = f"res{stage}{block}_branch"
        stride = 2 if is_conv_block and stage > 2 else 1
        y = self._conv(x, prefix + "2a", stride, "VALID", relu=True)
        y = self._conv(y, prefix + "2b", relu=True)
        y = self._conv(y, prefix + "2c", padding="VALID")
        shortcut = self._conv(x, prefix + "1", stride, "VALID") if is_conv_block else x
        return tf.nn.relu(y + shortcut)

    def _backbone(self, image: tf.Tensor) -> list[tf.Tensor]:
        x = tf.pad(image, [[0, 0], [3, 3], [3, 3], [0, 0]])
        x = self._conv(x, "conv1", 2, "VALID", relu=True)
        x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        stages = []
        blocks = _resnet_blocks(self.config.BACKBONE)
        for index, (stage, block, _, is_conv_block) in enumerate(blocks):
            x = self._block(x, stage, block, is_conv_block)
            if index + 1 == len(blocks) or blocks[index + 1][0] != stage:
                stages.append(x)
        return stages  # C2..C5

    def _pyramid(self, c2: tf.Tensor, c3: tf.Tensor, c4: tf.Tensor, c5: tf.Tensor) -> list[tf.Tensor]:
        def upsample(x: tf.Tensor) -> tf.Tensor:
            return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)

        p5 = self._conv(c5, "fpn_c5p5", padding="VALID")
        p4 = upsample(p5) + self._conv(c4, "fpn_c4p4", padding="VALID")
        p3 = upsample(p4) + self._conv(c3, "fpn_c3p3", padding="VALID")
        p2 = upsample(p3) + self._conv(c2, "fpn_c2p2", padding="VALID")
        p2, p3, p4, p5 = (self._conv(p, f"fpn_p{level}") for level, p in ((2, p2), (3, p3), (4, p4), (5, p5)))
        return [p2, p3, p4, p5, p5[:, ::2, ::2, :]]  # P6: matterport's 1x1 max pool with stride 2

    def _rpn(self, feature_maps: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        logits, deltas = [], []
        for p in feature_maps:
            shared = self._conv(p, "rpn_conv_shared", self.config.RPN_ANCHOR_STRIDE, relu=True)
            logits.append(tf.reshape(self._conv(shared, "rpn_class_raw", padding="VALID"), (-1, 2)))
            deltas.append(tf.reshape(self._conv(shared, "rpn_bbox_pred", padding="VALID"), (-1, 4)))
        return tf.nn.softmax(tf.concat(logits, 0)), tf.concat(deltas, 0)

    def _classifier(self, rois: tf.Tensor, feature_maps: list[tf.Tensor], image_area: float):
        config = self.config
        x = pyramid_roi_align(rois, feature_maps, config.POOL_SIZE, image_area)
        x = tf.reshape(x, (-1, config.POOL_SIZE * config.POOL_SIZE * config.TOP_DOWN_PYRAMID_SIZE))
        x = tf.nn.relu(self._dense(x, "mrcnn_class_conv1"))
        x = tf.nn.relu(self._dense(x, "mrcnn_class_conv2"))
        probs = tf.nn.softmax(self._dense(x, "mrcnn_class_logits"))
        deltas = tf.reshape(self._dense(x, "mrcnn_bbox_fc"), (-1, config.NUM_CLASSES, 4))
        return probs, deltas

    def _mask_head(self, boxes: tf.Tensor, feature_maps: list[tf.Tensor], image_area: float) -> tf.Tensor:
        x = pyramid_roi_align(boxes, feature_maps, self.config.MASK_POOL_SIZE, image_area)
        for i in range(1, 5):
            x = self._conv(x, f"mrcnn_mask_conv{i}", relu=True)
        kernel, bias = self._params["mrcnn_mask_deconv"]
        size = 2 * self.config.MASK_POOL_SIZE
        shape = tf.stack([tf.shape(x)[0], size, size, MASK_HEAD_DEPTH])
        x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d_transpose(x, kernel, shape, 2, "VALID"), bias))
        return tf.sigmoid(self._conv(x, "mrcnn_mask", padding="VALID"))

    def _graph(self, molded: tf.Tensor, window_pixels: tf.Tensor, anchors: tf.Tensor, image_area: int):
        height, width = int(molded.shape[0]), int(molded.shape[1])
        # matterport's norm_boxes_graph, in float32
        size = tf.constant([height, width, height, width], tf.float32) - tf.constant(1.0)
        window = (window_pixels - tf.constant([0.0, 0.0, 1.0, 1.0])) / size

        feature_maps = self._pyramid(*self._backbone(molded[None]))
        probs, deltas = self._rpn(feature_maps)
        rois = propose(probs, deltas, anchors, self.config)
        class_probs, class_deltas = self._classifier(rois, feature_maps[:4], float(image_area))
        detections = refine_detections(rois, class_probs, class_deltas, window, self.config)

        count = tf.reduce_sum(tf.cast(detections[:, 4] > 0, tf.int32))
        boxes = detections[:count, :4]
        masks = self._mask_head(boxes, feature_maps[:4], float(image_area))
        class_ids = tf.cast(detections[:count, 4], tf.int32)
        masks = tf.gather(tf.transpose(masks, (0, 3, 1, 2)), class_ids, batch_dims=1)
        return detections, masks
