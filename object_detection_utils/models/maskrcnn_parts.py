"""Our Model Garden Mask R-CNN exports taken apart: the steps of one picture as separate TensorFlow functions.

An export (see training/export.py) is one SavedModel; the same model rebuilt from its `training_options.json` and
the SavedModel's weights can be run step by step:

    preprocess   uint8 picture -> normalised, resized, padded (1, S, S, 3) float picture, image_info
    dense        backbone + FPN + RPN head: the picture -> per-level features, RPN scores and box deltas
    propose      RPN outputs -> proposals (top-k and NMS per level), ROI align of the box head's crops
    box_head     crops -> class logits, box deltas
    detect       detection generator (NMS) -> detections; ROI align of the mask head's crops
    mask_head    crops + classes -> soft masks, for the real detections only (not the padded slots), or only
                 for those a reader keeps (its minimum score and classes)
    (then, in numpy: detections + masks -> the zoo-format outputs of the export's signature)

`dense`, `box_head` and `mask_head` hold every weight and almost all arithmetic, on static shapes; the other
steps select and gather. The profile benchmark times the steps (and backbone / FPN / RPN head apart), and the
OpenVINO back end runs the three heavy ones in OpenVINO and the rest here.

An export also carries the steps themselves, traced for any number of same-size pictures beside its signature
(`steps` in its SavedModel, see training/export.py), so that the TensorFlow back end runs them without Model Garden
(`SavedStepsRunner`): the same outputs as the signature, with masks only for the detections a reader keeps.
Exports written before they were carried run their signature whole (`export --from-export` adds them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model_contract import MASK_OUTPUT, REQUIRED_OUTPUTS, KeptInstances
from .export_options import OPTIONS_FILE, TrainOptions, experiment_config

WEIGHTS = Path("saved_model") / "variables" / "variables"
STEPS = ("preprocess", "dense", "propose", "box_head", "detect", "mask_head")
# The test-time choices of the reduced-precision engines' glue: one combined NMS op a level for the proposals and one
# for the detections, instead of Model Garden's per-class loops (v2) and sorted padded NMS (a while loop): 10 and 8
# ms a 128 px picture become 3 and 3. Greedy NMS all the same, so the kept boxes are almost always the same; as the
# reduced precisions, they are judged by agreement with the export's own outputs (acceptance.py), never f32's parity.
BATCHED_NMS = {"roi_generator": {"use_batched_nms": True}, "detection_generator": {"nms_version": "batched"}}


def is_our_export(folder: Path) -> bool:
    """Whether `folder` is one of our Model Garden exports (training options beside a SavedModel)."""
    return (folder / OPTIONS_FILE).is_file() and (folder / "saved_model" / "saved_model.pb").is_file()


@dataclass
class MaskRcnnParts:
    """The Keras model of an export with trained weights, and its steps as `tf.function`s (batch of one)."""

    options: TrainOptions
    module: Any  # the export's DetectionModule: `model`, `params`, `preprocess`
    levels: tuple[str, ...]
    size: int

    @classmethod
    def from_export(cls, folder: str | Path, overrides: dict | None = None) -> MaskRcnnParts:
        """Rebuild `folder`'s model; `overrides` change its Model Garden config at test time, e.g.
        `{"detection_generator": {"nms_version": "batched"}, "roi_generator": {"test_num_proposals": 300}}`."""
        import tensorflow as tf
        from official.vision.serving.detection import DetectionModule

        folder = Path(folder)
        options = TrainOptions.load(folder)
        config = experiment_config(options)
        if overrides:
            config.override({"task": {"model": overrides}}, is_strict=True)
        module = DetectionModule(params=config, batch_size=1, input_image_size=[options.input_size] * 2)
        status = tf.train.Checkpoint(model=module.model).read(str(folder / WEIGHTS))
        status.expect_partial().assert_existing_objects_matched()
        return cls.of_module(options, module)

    @classmethod
    def of_module(cls, options: TrainOptions, module) -> MaskRcnnParts:
        """The parts of a built DetectionModule of `options` (the export's own, while it is written)."""
        params = module.params.task.model
        levels = tuple(str(level) for level in range(params.min_level, params.max_level + 1))
        return cls(options, module, levels, options.input_size)

    @property
    def model(self):
        return self.module.model

    @property
    def config(self):
        return self.module.params.task.model

    def functions(self, batch: int | None = 1) -> dict[str, Any]:
        """The steps as `tf.function`s with fixed input signatures (see the module docstring), for `batch`
        pictures a call (None: any number)."""
        import tensorflow as tf

        model, levels, size = self.model, self.levels, self.size
        module = self.module
        anchors = {level: tf.constant(boxes[None]) for level, boxes in module._build_anchor_boxes().items()}
        channels = self.config.decoder.fpn.num_filters
        picture = tf.TensorSpec([batch, size, size, 3], tf.float32)
        info_spec = tf.TensorSpec([batch, 4, 2], tf.float32)
        grids = [tuple(anchors[level].shape[1:3]) for level in levels]
        per_place = anchors[levels[0]].shape[-1] // 4  # anchors per grid cell
        feature_specs = [tf.TensorSpec([batch, *grid, channels], tf.float32) for grid in grids]
        rpn_score_specs = [tf.TensorSpec([batch, *grid, per_place], tf.float32) for grid in grids]
        rpn_box_specs = [tf.TensorSpec([batch, *grid, 4 * per_place], tf.float32) for grid in grids]
        proposals = self.config.roi_generator.test_num_proposals
        crop = self.config.roi_aligner.crop_size
        box_crops = tf.TensorSpec([batch, proposals, crop, crop, channels], tf.float32)
        # The mask head takes detections along the batch axis, one per row: only the real ones need a mask.
        mask_crops = tf.TensorSpec([None, 1, crop * 2, crop * 2, channels], tf.float32)
        classes = self.config.num_classes
        as_dict = lambda values: dict(zip(levels, values))

        @tf.function(input_signature=[tf.TensorSpec([batch, None, None, 3], tf.uint8)], autograph=False)
        def preprocess(images):
            picture, _, info = module.preprocess(images)
            return picture, info

        @tf.function(input_signature=[picture], autograph=False)
        def dense(picture):
            features = model.decoder(model.backbone(picture))
            scores, boxes = model.rpn_head(features)
            # Named outputs: a converted graph keeps the names, not necessarily the order.
            return {**{f"features_{k}": features[k] for k in levels}, **{f"scores_{k}": scores[k] for k in levels},
                    **{f"boxes_{k}": boxes[k] for k in levels}}

        @tf.function(input_signature=[feature_specs, rpn_score_specs, rpn_box_specs, info_spec], autograph=False)
        def propose(features, scores, boxes, info):
            rois, _ = model.roi_generator(as_dict(boxes), as_dict(scores), anchors, info[:, 1, :], training=False)
            return rois, model.roi_aligner(as_dict(features), rois)

        @tf.function(input_signature=[box_crops], autograph=False)
        def box_head(crops):
            class_outputs, box_outputs = model.detection_head[0](crops)
            return {"class_outputs": class_outputs, "box_outputs": box_outputs}

        @tf.function(input_signature=[feature_specs, tf.TensorSpec([batch, proposals, classes], tf.float32),
                                      tf.TensorSpec([batch, proposals, None], tf.float32),
                                      tf.TensorSpec([batch, proposals, 4], tf.float32), info_spec], autograph=False)
        def detect(features, class_outputs, box_outputs, rois, info):
            found = model.detection_generator(box_outputs, class_outputs, rois, info[:, 1, :],
                                              [10.0, 10.0, 5.0, 5.0], bbox_per_class=True)
            crops = model.mask_roi_aligner(as_dict(features), found["detection_boxes"])
            return (found["detection_boxes"], found["detection_scores"], found["detection_classes"],
                    found["num_detections"], crops)

        @tf.function(input_signature=[mask_crops, tf.TensorSpec([None, 1], tf.int32)], autograph=False)
        def mask_head(crops, detection_classes):
            return {"masks": tf.nn.sigmoid(model.mask_head([crops, detection_classes]))}

        return {"preprocess": preprocess, "dense": dense, "propose": propose, "box_head": box_head,
                "detect": detect, "mask_head": mask_head}


def steps_module(steps: dict[str, Any], names: tuple[str, ...] = STEPS):
    """A `tf.Module` holding the steps `names` of `steps` (`MaskRcnnParts.functions`) as attributes, for saving."""
    import tensorflow as tf

    module = tf.Module()
    for name in names:
        setattr(module, name, steps[name])
    return module


def zoo_outputs(boxes, scores, detection_classes, num_detections, masks, info) -> dict[str, np.ndarray]:
    """The export signature's outputs (training/export.py), in numpy: boxes normalised to the input picture."""
    scale, offset, original = (np.tile(info[:, row : row + 1, :], (1, 1, 2)) for row in (2, 3, 0))
    outputs = {
        "detection_boxes": np.clip((boxes + offset) / scale / original, 0.0, 1.0, dtype=np.float32),
        "detection_classes": detection_classes.astype(np.float32),
        "detection_scores": scores,
        MASK_OUTPUT: masks,
        "num_detections": num_detections.astype(np.float32),
    }
    assert set(outputs) == {*REQUIRED_OUTPUTS, MASK_OUTPUT}
    return outputs


def run_steps(steps: dict[str, Any], levels: tuple[str, ...], images, dense=None, box_head=None, mask_head=None,
              kept: KeptInstances | None = None) -> dict:
    """Pictures through the steps, as many at once as the steps take; `dense`, `box_head` and `mask_head` replace
    those steps when given (callables taking numpy arrays in the steps' argument order, returning the steps' named
    outputs). With `kept`, the mask head runs only on the detections it keeps (the others' masks stay empty).
    Returns numpy outputs."""
    import tensorflow as tf

    picture, info = steps["preprocess"](tf.constant(images))
    found = steps["dense"](picture) if dense is None else dense(picture.numpy())
    features, scores, boxes = ([found[f"{kind}_{level}"] for level in levels] for kind in ("features", "scores", "boxes"))
    rois, crops = steps["propose"](features, scores, boxes, info)
    found = steps["box_head"](crops) if box_head is None else box_head(crops.numpy())
    boxes_found, scores_found, classes_found, count, mask_crops = steps["detect"](
        features, found["class_outputs"], found["box_outputs"], rois, info)
    scores_found, classes_found, count = scores_found.numpy(), classes_found.numpy(), count.numpy()
    masks = np.zeros((*mask_crops.shape[:2], *[2 * side for side in mask_crops.shape[2:4]]), np.float32)
    # The padded slots past num_detections keep empty masks (no one reads them), and so do the detections
    # the reader drops.
    rows = np.arange(scores_found.shape[1])[None, :] < count[:, None]
    if kept is not None:
        rows &= kept.keeps(scores_found, classes_found)
    where = np.nonzero(rows)
    if where[0].size:
        crops_found = mask_crops.numpy()[where][:, None]
        classes_column = classes_found[where][:, None]
        found = (steps["mask_head"](crops_found, classes_column) if mask_head is None
                 else mask_head(crops_found, classes_column))
        masks[where] = np.asarray(found["masks"])[:, 0]
    return zoo_outputs(boxes_found.numpy(), scores_found, classes_found, count, masks, info.numpy())


def saved_steps(loaded) -> dict[str, Any] | None:
    """The steps a loaded export carries (`steps` beside its signature), by name; None for a SavedModel without."""
    carried = getattr(loaded, "steps", None)
    found = {name: getattr(carried, name, None) for name in STEPS}
    return found if all(found.values()) else None


def step_levels(steps: dict[str, Any]) -> tuple[str, ...]:
    """The feature levels of saved steps, read from the names of `dense`'s outputs (`features_2`, ...)."""
    outputs = steps["dense"].concrete_functions[0].structured_outputs
    return tuple(sorted((name.split("_", 1)[1] for name in outputs if name.startswith("features_")), key=int))


class SavedStepsRunner:
    """An export's carried steps on TensorFlow (a `LoadedModel._run`): with `kept` masks only for the detections
    kept; a batch of same-size pictures in one pass where the steps were traced for any batch size (`batched`)."""

    def __init__(self, steps: dict[str, Any], loaded) -> None:
        self.steps, self.levels = steps, step_levels(steps)
        self.saved_model = loaded  # the steps live as long as the SavedModel object that holds them
        (images_spec,), _ = steps["preprocess"].concrete_functions[0].structured_input_signature
        self.batched = images_spec.shape[0] is None

    def __call__(self, images: np.ndarray, kept: KeptInstances | None = None) -> dict[str, np.ndarray]:
        return run_pictures(self.steps, self.levels, images, self.batched, kept=kept)


def run_pictures(steps: dict[str, Any], levels: tuple[str, ...], images: np.ndarray, batched: bool,
                 kept: KeptInstances | None = None, **parts) -> dict[str, np.ndarray]:
    """`run_steps` on all of `images` in one pass where the steps take batches (`batched`), else picture by
    picture with the outputs joined along the batch axis."""
    if batched or len(images) == 1:
        return run_steps(steps, levels, images, **parts, kept=kept)
    outputs = [run_steps(steps, levels, images[i : i + 1], **parts, kept=kept) for i in range(len(images))]
    return {name: np.concatenate([o[name] for o in outputs]) for name in outputs[0]}
