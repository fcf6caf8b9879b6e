"""Export a Model Garden Mask R-CNN as a SavedModel with the TF2 detection zoo's signature.

Model Garden's own export returns boxes in pixels of the resized, padded frame plus an `image_info` tensor.
Here the conversion happens inside the signature, so every consumer sees the zoo format:

    serving_default(input_tensor: uint8 [1, H, W, 3]) ->
        detection_boxes   float32 [1, N, 4]  [ymin, xmin, ymax, xmax] normalised to the input picture
        detection_classes float32 [1, N]     1-based label-map ids
        detection_scores  float32 [1, N]
        detection_masks   float32 [1, N, 28, 28]  box-relative soft masks
        num_detections    float32 [1]

Beside the signature the SavedModel carries the model's steps for any number of same-size pictures (`steps`,
models/maskrcnn_parts.py), which the TensorFlow back end runs in its place: the same outputs, with masks only for the
detections a reader keeps, and tiles in batches.
The folder holds `saved_model/`, `label_map.pbtxt` and the training options, like a TF2 zoo download.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..errors import InstanceSegmentationError
from ..io.atomic import atomic_directory, check_writable
from ..label_map import LabelMap
from ..models.export_options import OPTIONS_FILE, TrainOptions, experiment_config
from ..models.maskrcnn_parts import MaskRcnnParts, steps_module

LABEL_MAP_FILE = "label_map.pbtxt"


def zoo_signature_module(options: TrainOptions, model=None):
    """A tf.Module holding `model` (default: a freshly built, random-weights one) and the zoo-format `detect`."""
    import tensorflow as tf
    from official.vision.serving.detection import DetectionModule

    class ZooSignatureModule(DetectionModule):
        # No Python control flow here, so AutoGraph (which cannot convert this nested class) is not needed.
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")],
                     autograph=False)
        def detect(self, input_tensor):
            raw = self.serve(input_tensor)
            # image_info rows: original (h, w), resized (h, w), scale (y, x), crop offset (y, x).
            info = raw["image_info"]
            scale = tf.tile(info[:, 2:3, :], [1, 1, 2])
            offset = tf.tile(info[:, 3:4, :], [1, 1, 2])
            original = tf.tile(info[:, 0:1, :], [1, 1, 2])
            boxes = (raw["detection_boxes"] + offset) / scale / original
            return {
                "detection_boxes": tf.clip_by_value(boxes, 0.0, 1.0),
                "detection_classes": tf.cast(raw["detection_classes"], tf.float32),
                "detection_scores": raw["detection_scores"],
                "detection_masks": raw["detection_masks"],
                "num_detections": tf.cast(raw["num_detections"], tf.float32),
            }

    config = experiment_config(options)
    size = [options.input_size, options.input_size]
    return ZooSignatureModule(params=config, batch_size=1, input_image_size=size, model=model)


def in_memory_model(options: TrainOptions, model, label_map: LabelMap, name: str = "training"):
    """The Keras model being trained, as a `LoadedModel` with the export's signature: validation without
    exporting."""
    import numpy as np
    import tensorflow as tf

    from ..model_contract import LoadedModel

    module = zoo_signature_module(options, model)  # kept alive by `run`: its bound `detect` holds a weak reference

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        return {key: value.numpy() for key, value in module.detect(tf.constant(images)).items()}

    return LoadedModel(name=name, source=Path(name), kind="saved_model", label_map=label_map, has_masks=True,
                             _run=run)


def export_saved_model(
    options: TrainOptions, label_map: LabelMap, output: str | Path, checkpoint: str | None = None
) -> Path:
    """Export the model of `options` with weights from `checkpoint` (None: random weights) to `output`.

    The folder is assembled under a temporary name beside `output` and renamed into place, replacing an
    earlier export only once the new one is complete.
    """
    import tensorflow as tf

    output = Path(output)
    try:
        check_writable(output.parent)  # a read-only or full place fails now, not after the model is built
    except OSError as error:
        raise InstanceSegmentationError(f"{output}: cannot write the export there ({error.strerror})") from None
    module = zoo_signature_module(options)
    module.steps = steps_module(MaskRcnnParts.of_module(options, module).functions(batch=None))
    if checkpoint is not None:
        status = tf.train.Checkpoint(model=module.model).read(checkpoint)
        status.expect_partial()
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)  # Keras warns about every training-only layer it does not serialise
    try:
        with atomic_directory(output, replace=True) as staging, _without_keras_layer_traces():
            tf.saved_model.save(module, str(staging / "saved_model"), signatures={"serving_default": module.detect})
            if checkpoint is not None:
                status.assert_existing_objects_matched()
            (staging / LABEL_MAP_FILE).write_text(label_map.to_pbtxt(), encoding="utf-8")
            (staging / OPTIONS_FILE).write_text(options.to_json(), encoding="utf-8")
    except AssertionError as error:
        raise InstanceSegmentationError(f"{checkpoint}: checkpoint does not fit the model ({error})") from None
    except OSError as error:
        raise InstanceSegmentationError(f"{output}: cannot write the export ({error.strerror})") from None
    except tf.errors.OpError as error:  # TensorFlow's writers report a full disk as their own errors
        cause = re.sub(r"\s*\[Op:\w+\]$", "", error.message.rsplit("; ", 1)[-1].strip())
        raise InstanceSegmentationError(f"{output}: cannot write the export ({cause})") from None
    finally:
        tf_log.setLevel(level)
    return output


def _without_keras_layer_traces():
    """Keras (tf_keras, Model Garden's) otherwise traces every layer's call into the SavedModel: about 2.5 s of a
    tiny model's 6.7 s save and 0.7 s of its 1.8 s load, for functions no reader of an export calls (the signature
    and the steps are whole functions; fine-tuning reads the weights). Its switch is private: without it, the
    traces are saved as before."""
    import contextlib

    try:
        from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope
    except ImportError:
        return contextlib.nullcontext()
    return keras_option_scope(save_traces=False)


def export_random_model(output: str | Path, backbone: str = "resnet50", input_size: int = 640,
                        **test_options) -> Path:
    """A random-weights Mask R-CNN at detection-zoo scale (COCO's 90 classes, zoo head sizes): zoo compute, no download.

    `test_options` are TrainOptions' test-time fields (`test_proposals`, `nms`, `mask_detections`)."""
    options = TrainOptions(num_classes=91, backbone=backbone, input_size=input_size, heads="zoo", **test_options)
    return export_saved_model(options, LabelMap.coco(), output)

