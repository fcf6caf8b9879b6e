"""A random-weight model of real cost with the detection zoo's TF1 signature, for benchmarks.

No trained zoo model can be downloaded here, so this stands in for one: `image_tensor` (uint8, any batch and
size) in; the zoo's `detection_boxes`, `detection_scores`, `detection_classes`, `num_detections` and 15x15
`detection_masks` out, 100 slots as Mask R-CNN reports them. The body resizes to 512x512 and runs a stack of
random-weight convolutions (the cost) and a zoo-sized
fully connected head, and the outputs are derived from those features: a few instances per
picture pass a score of 0.5, with masks cut from the feature map. Built once and cached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from object_detection_utils.models.cache import cache_dir

VERSION = 2
SLOTS = 100
MASK_SIZE = 15


def costly_model_dir(layers: int = 8, channels: int = 64) -> Path:
    """The cached model folder (built on first use) for this depth and width."""
    folder = cache_dir() / "benchmark" / f"costly_mask_model_v{VERSION}_l{layers}_c{channels}"
    if not (folder / "frozen_inference_graph.pb").is_file():
        build_costly_model(folder, layers, channels)
    return folder


def build_costly_model(folder: Path, layers: int = 8, channels: int = 64, seed: int = 0) -> Path:
    import tensorflow as tf

    from object_detection_utils.io.atomic import atomic_file

    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        batch = tf.shape(images)[0]
        x = tf.image.resize(tf.cast(images, tf.float32) / 255.0, [512, 512])

        def conv(x, cin, cout, stride):
            weights = rng.normal(0, np.sqrt(2.0 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32)
            return tf.nn.relu(tf.nn.conv2d(x, tf.constant(weights), stride, "SAME"))

        x = conv(x, 3, channels, 2)  # 256x256
        x = conv(x, channels, channels, 2)  # 128x128
        for _ in range(layers):
            x = conv(x, channels, channels, 1)
        features = tf.reduce_mean(x, axis=-1)  # (B, 128, 128)
        features = features / (tf.reduce_max(features, axis=[1, 2], keepdims=True) + 1e-6)

        centres = rng.uniform(0.15, 0.85, (SLOTS, 2))
        sides = rng.uniform(0.08, 0.45, (SLOTS, 2))
        boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).clip(0, 1).astype(np.float32)
        base_logits = np.full(SLOTS, -4.0, np.float32)
        base_logits[:8] = rng.uniform(0.5, 3.0, 8)  # about eight instances a picture above 0.5
        # A fully connected head of zoo size (~34 MB of weights, as a Mask R-CNN graph's 60-250 MB): cheap to
        # run, but every new session has to parse, import and optimise it, as the seed scripts did per picture.
        pooled = tf.reduce_mean(x, axis=[1, 2])  # (B, channels)
        hidden = pooled
        for cin, cout in ((channels, 4096), (4096, 2048), (2048, SLOTS)):
            weights = tf.constant(rng.normal(0, 1 / np.sqrt(cin), (cin, cout)).astype(np.float32))
            hidden = hidden @ weights if cout == SLOTS else tf.nn.relu(hidden @ weights)
        scores = tf.sigmoid(base_logits[None] + 0.1 * tf.tanh(hidden))
        order = tf.argsort(scores, axis=1, direction="DESCENDING")
        scores = tf.gather(scores, order, batch_dims=1)
        all_boxes = tf.gather(tf.tile(tf.constant(boxes)[None], [batch, 1, 1]), order, batch_dims=1)
        classes = rng.choice([1, 3, 18, 62, 44, 47, 64, 72], SLOTS).astype(np.float32)
        all_classes = tf.gather(tf.tile(tf.constant(classes)[None], [batch, 1]), order, batch_dims=1)
        box_indices = tf.repeat(tf.range(batch), SLOTS)
        crops = tf.image.crop_and_resize(features[..., None], tf.reshape(all_boxes, [-1, 4]), box_indices,
                                         [MASK_SIZE, MASK_SIZE])
        masks = tf.sigmoid(8.0 * (tf.reshape(crops, [batch, SLOTS, MASK_SIZE, MASK_SIZE]) - 0.5))
        tf.identity(all_boxes, name="detection_boxes")
        tf.identity(scores, name="detection_scores")
        tf.identity(all_classes, name="detection_classes")
        tf.identity(tf.fill([batch], float(SLOTS)), name="num_detections")
        tf.identity(masks, name="detection_masks")
    with atomic_file(folder / "frozen_inference_graph.pb") as file:
        file.write(graph.as_graph_def().SerializeToString())
    return folder
