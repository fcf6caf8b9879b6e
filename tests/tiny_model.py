"""A tiny model with the detection zoo's exact signature and outputs that tests can predict.

It reports the same five instances for every picture (SLOTS rows, of which NUM_DETECTIONS count):

| row | class | score                     | box (ymin, xmin, ymax, xmax) | 15x15 box mask           |
|-----|-------|---------------------------|------------------------------|--------------------------|
| 0   | 1     | 0.95                      | 0.10, 0.20, 0.50, 0.60       | all ones                 |
| 1   | 18    | 0.80                      | 0.50, 0.50, 1.00, 1.00       | left half (cols 0..6)    |
| 2   | 3     | mean(picture) / 255       | 0.00, 0.00, 0.25, 0.25       | all ones                 |
| 3   | 1     | 0.30                      | 0.60, 0.00, 0.90, 0.30       | all ones                 |
| 4   | 88    | 0.99 (past num_detections)| 0.00, 0.00, 1.00, 1.00       | all ones                 |

Row 2's score depends on the picture, so filtering can be steered; row 4 must never be reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The training tests' Mask R-CNN (Model Garden's, trained a step or two): as small as it goes.
TINY_TRAINING = {"backbone": "resnet10", "input_size": 64, "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 1}

MASK_SIZE = 15
NUM_DETECTIONS = 4
BOXES = np.array(
    [
        [0.10, 0.20, 0.50, 0.60],
        [0.50, 0.50, 1.00, 1.00],
        [0.00, 0.00, 0.25, 0.25],
        [0.60, 0.00, 0.90, 0.30],
        [0.00, 0.00, 1.00, 1.00],
    ],
    np.float32,
)
CLASSES = np.array([1, 18, 3, 1, 88], np.float32)
FIXED_SCORES = np.array([0.95, 0.80, 0.0, 0.30, 0.99], np.float32)  # row 2 is mean(picture) / 255
MASKS = np.ones((5, MASK_SIZE, MASK_SIZE), np.float32)
MASKS[1, :, 7:] = 0.0
LABEL_MAP_PBTXT = """\
item { id: 1 name: "widget" }
item { id: 3 display_name: "gadget" }
item { id: 18 name: "/m/x" display_name: "gizmo" }
"""


def _outputs(tf, images, with_masks: bool) -> dict:
    """The output tensors for a uint8 (B, H, W, 3) batch."""
    batch = tf.shape(images)[0]
    brightness = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3]) / 255.0
    scores = tf.tile(tf.constant(FIXED_SCORES)[None], [batch, 1])
    scores = tf.concat([scores[:, :2], brightness[:, None], scores[:, 3:]], axis=1)
    outputs = {
        "detection_boxes": tf.tile(tf.constant(BOXES)[None], [batch, 1, 1]),
        "detection_scores": scores,
        "detection_classes": tf.tile(tf.constant(CLASSES)[None], [batch, 1]),
        "num_detections": tf.fill([batch], float(NUM_DETECTIONS)),
    }
    if with_masks:
        outputs["detection_masks"] = tf.tile(tf.constant(MASKS)[None], [batch, 1, 1, 1])
    return outputs


def build_frozen_graph(folder: Path, with_masks: bool = True, label_map: bool = False) -> Path:
    """A TF1 zoo model folder: `folder/frozen_inference_graph.pb` (input `image_tensor`, any batch)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        for name, tensor in _outputs(tf, images, with_masks).items():
            tf.identity(tensor, name=name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    if label_map:
        (folder / "label_map.pbtxt").write_text(LABEL_MAP_PBTXT)
    return folder


def build_saved_model(folder: Path, with_masks: bool = True, label_map: bool = False) -> Path:
    """A TF2 zoo model folder: `folder/saved_model/` with `serving_default(input_tensor: uint8 [1, H, W, 3])`."""
    import tensorflow as tf

    class TinyDetector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def detect(self, input_tensor):
            return _outputs(tf, input_tensor, with_masks)

    module = TinyDetector()
    folder.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(folder / "saved_model"), signatures={"serving_default": module.detect})
    if label_map:
        (folder / "label_map.pbtxt").write_text(LABEL_MAP_PBTXT)
    return folder


def expected_full_mask(row: int, height: int, width: int) -> np.ndarray:
    """Row `row`'s full-picture mask, worked out from the box alone (not through the code under test).

    For an all-ones box mask, pixel (i, j) is set exactly when its normalised position (i / (H - 1),
    j / (W - 1)) lies inside the box: that is where crop_and_resize samples inside the 15x15 mask. Row 1's
    mask keeps columns 0..6 of 15 fully, column 7 is zero; bilinear values cross 0.5 halfway between
    mask columns 6 and 7, i.e. at box-relative position 6.5 / 14.

    Where a box edge falls exactly on a pixel centre, float rounding decides the pixel, so such sizes are
    refused: pick sizes with H - 1 and W - 1 prime (e.g. 104 x 164).
    """
    ymin, xmin, ymax, xmax = (float(v) for v in BOXES[row])
    ys = np.arange(height) / max(height - 1, 1)
    xs = np.arange(width) / max(width - 1, 1)
    for positions, edges in ((ys, (ymin, ymax)), (xs, (xmin, xmax))):
        if any(np.isclose(positions, edge, atol=1e-6).any() and 0 < edge < 1 for edge in edges):
            raise ValueError(f"a box edge of row {row} falls on a pixel centre of a {height}x{width} picture")
    in_rows = (ys >= ymin) & (ys <= ymax)
    in_cols = (xs >= xmin) & (xs <= xmax)
    if row == 1:
        relative = (xs - xmin) / (xmax - xmin) * (MASK_SIZE - 1)
        in_cols &= relative < 6.5
    return in_rows[:, None] & in_cols[None, :]


GATE_PAYLOAD = 1 << 20  # far more than a pipe holds, so the model waits until the test has read all of it


def build_gated_frozen_graph(folder: Path, gates: Path) -> Path:
    """The tiny model, made to write GATE_PAYLOAD bytes to `gates/<red value of the first pixel>` before answering.

    Where that path is a FIFO the test made, the run waits there until the test opens and drains it (a picture
    "at its gate"); anywhere else the write makes a plain file and the run goes on (the model's warm-up).
    """
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        key = tf.strings.as_string(tf.cast(images[0, 0, 0, 0], tf.int32))
        payload = tf.strings.reduce_join(tf.fill([GATE_PAYLOAD], "."))
        gate = tf.io.write_file(tf.strings.join([str(gates), "/", key]), payload)
        with tf.control_dependencies([gate]):
            for name, tensor in _outputs(tf, images, with_masks=True).items():
                tf.identity(tensor, name=name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    return folder


def gate_key(i: int) -> int:
    """Picture i's red value, which names its gate (never 128: the warm-up's grey passes freely)."""
    return 6 * i + 1


def gated_picture_name(i: int) -> str:
    return f"p{i:03d}.png"


def write_gated_run(root: Path, count: int) -> tuple[Path, Path, Path]:
    """`count` pictures (each with its own gate key), a gated model and an empty gates folder under `root`:
    (pictures folder, model folder, gates folder). The test makes the FIFOs of the gates it wants closed."""
    from PIL import Image

    folder, gates = root / "pictures", root / "gates"
    folder.mkdir()
    gates.mkdir()
    for i in range(count):
        Image.new("RGB", (96, 64), (gate_key(i), 100, 50)).save(folder / gated_picture_name(i))
    return folder, build_gated_frozen_graph(root / "gated_model", gates), gates


def drain_gate(fd: int) -> int:
    """Let the model call held at a gate finish: read its FIFO (opened as `fd`) until the model closes it, close
    it, and return how many bytes came through (GATE_PAYLOAD for a whole call)."""
    import os

    os.set_blocking(fd, True)
    read = 0
    while chunk := os.read(fd, 1 << 16):
        read += len(chunk)
    os.close(fd)
    return read
