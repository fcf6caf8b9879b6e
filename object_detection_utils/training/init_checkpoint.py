"""Starting a training run from existing weights instead of random ones (`train --init-checkpoint`).

A source is one of our exports (`models/shapes`: its `saved_model/variables`, whose object graph is the
export module with the Mask R-CNN under `model`), one of our training runs (`runs/shapes`: its latest
checkpoint), or a Model Garden checkpoint (a catalogue name or URL, fetched by checkpoints.py, or a local
checkpoint prefix or folder). Model Garden checkpoints come in two layouts: a whole model under `model` (what
its trainer saves, like ours) or an ImageNet classifier's `backbone` at the root.

What is restored: with scope `all`, everything the checkpoint holds, except the class-specific layers
(classifier, per-class box regression, mask logits) when the source was trained on other classes: those keep
their fresh random weights. With scope `backbone`, the backbone only. A source whose backbone (or, for `all`,
head sizes or input size) differs from the run's is refused in one line naming the differences.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InstanceSegmentationError, first_line
from ..label_map import LabelMap
from ..models.export_options import OPTIONS_FILE, TrainOptions, backbone_depth, experiment_config
from .checkpoints import catalogued_checkpoint, fetch_checkpoint, is_url
from .export import LABEL_MAP_FILE
from .train import latest_checkpoint

SCOPES = ("all", "backbone")
CLASS_SPECIFIC_LAYERS = "classifier, box regression and mask logits"


@dataclass(frozen=True)
class InitSource:
    """A checkpoint to start from, and what is known about the model that wrote it."""

    checkpoint: str  # checkpoint path prefix (`.../ckpt-5000`, `.../variables/variables`)
    description: str  # in words, for messages and the model card
    layout: str  # "model": root.model is a Mask R-CNN; "backbone": root.backbone is a ResNet
    options: TrainOptions | None = None  # how its model was built, when known
    label_map: LabelMap | None = None  # its classes, when known
    backbone_only: bool = False  # only its backbone fits a Mask R-CNN (ImageNet classifiers, RetinaNets)
    backbone: str = ""  # its backbone when there are no options, e.g. "resnet50" for catalogued checkpoints
    scope: str = "all"  # what a run restores from it: "all" that fits, or only the "backbone"

    @property
    def known_backbone(self) -> str:
        return self.options.backbone if self.options is not None else self.backbone

    def restores_backbone_only(self, scope: str) -> bool:
        return scope == "backbone" or self.backbone_only or self.layout == "backbone"


def resolve_init_source(spec: str, progress: bool = True) -> InitSource:
    """The checkpoint `spec` names: a catalogue name, a URL (fetched once into the cache), or a local path."""
    entry = catalogued_checkpoint(spec)
    if entry is not None:
        source = local_source(fetch_checkpoint(spec, progress=progress), description=f"{spec} ({entry.what})")
        return dataclasses.replace(source, backbone_only=True, backbone=entry.backbone)
    if is_url(spec):
        return local_source(fetch_checkpoint(spec, progress=progress),
                            description=f"{spec} (a Model Garden checkpoint)")
    return local_source(Path(spec))


def local_source(path: Path, description: str | None = None) -> InitSource:
    """An export folder, a training folder, a checkpoint folder or a checkpoint prefix on disk."""
    label_map = LabelMap.from_pbtxt(path / LABEL_MAP_FILE) if (path / LABEL_MAP_FILE).is_file() else None
    options = TrainOptions.load(path) if (path / OPTIONS_FILE).is_file() else None
    variables = path / "saved_model" / "variables" / "variables"
    if Path(f"{variables}.index").is_file():
        return InitSource(str(variables), description or f"{path} (an export)", "model", options, label_map)
    if path.is_dir():
        # A folder without a `checkpoint` state file (published checkpoints often have none): its latest prefix.
        prefixes = sorted((str(index)[: -len(".index")] for index in path.glob("*.index")),
                          key=lambda prefix: (_step_of(prefix), prefix))
        checkpoint = latest_checkpoint(path) or (prefixes[-1] if prefixes else None)
        if checkpoint is None:
            raise InstanceSegmentationError(
                f"{path}: no checkpoint in it (expected an export with saved_model/, a training folder, or a "
                "TensorFlow checkpoint)")
        step = f"step {_step_of(checkpoint)}" if _step_of(checkpoint) >= 0 else Path(checkpoint).name
        kind = "a training run" if options is not None else "a checkpoint"
        return InitSource(checkpoint, description or f"{path} ({kind}, {step})", _layout(checkpoint), options,
                          label_map)
    if Path(f"{path}.index").is_file():
        return InitSource(str(path), description or f"{path} (a checkpoint)", _layout(str(path)), options, label_map)
    raise InstanceSegmentationError(f"{path}: no such export, training folder or checkpoint")


def _step_of(prefix: str) -> int:
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def _layout(checkpoint: str) -> str:
    import tensorflow as tf

    try:
        roots = {name.split("/", 1)[0] for name, _ in tf.train.list_variables(checkpoint)}
    except (tf.errors.OpError, ValueError) as error:
        raise InstanceSegmentationError(f"{checkpoint}: unreadable checkpoint ({first_line(error)[:300]})") from None
    if "model" in roots:
        return "model"
    if "backbone" in roots:
        return "backbone"
    raise InstanceSegmentationError(
        f"{checkpoint}: neither a Model Garden model (`model/...`) nor backbone (`backbone/...`) checkpoint")


def check_fits(source: InitSource, options: TrainOptions, scope: str) -> None:
    """Refuse, in one line, a source whose model differs from the run's in the parts `scope` restores (what is
    known before building anything: the options recorded with our exports and runs, or the catalogue's)."""
    if scope not in SCOPES:
        raise InstanceSegmentationError(f"init scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    theirs = {"backbone": source.known_backbone} if source.known_backbone else {}
    if source.options is not None and not source.restores_backbone_only(scope):
        theirs.update(heads=source.options.heads, input_size=source.options.input_size)
    differences = [name for name, value in theirs.items()
                   if _normalised(name, value) != _normalised(name, getattr(options, name))]
    if differences:
        what = "; ".join(f"{name.replace('_', ' ')} {theirs[name]} there, {getattr(options, name)} here"
                         for name in differences)
        settings = " ".join(f"--{name.replace('_', '-')} {theirs[name]}" for name in differences)
        hint = " (or restore less: --init-scope backbone)" if "backbone" not in differences else ""
        raise InstanceSegmentationError(
            f"{source.description}: does not fit this run: {what}; train with {settings}{hint}")


def _normalised(name: str, value):
    return backbone_depth(value) if name == "backbone" else value


def restore_initial_weights(model, source: InitSource, options: TrainOptions, label_map: LabelMap,
                            scope: str = "all") -> str:
    """Load `source` into the freshly built Model Garden Mask R-CNN `model` of `options`; returns, in words,
    what was restored (for the model card). Raises a one-line InstanceSegmentationError when it does not fit."""
    check_fits(source, options, scope)
    if source.restores_backbone_only(scope):
        _read(source, _backbone_view(model.backbone, source.layout), "backbone")
        return "backbone"
    source_classes = _source_classes(source)
    same_names = source.label_map is None or dict(source.label_map) == dict(label_map)
    if source_classes == options.num_classes and same_names:
        _read(source, {"model": model}, "model")
        return "all"
    # Other classes: read everything into a model of the source's class count, then copy all but the
    # class-specific layers across, variable by variable. Both models are built from the same options (frozen
    # parts included, which Keras lists after the trainable ones), so their variables come in the same order.
    from official.vision.tasks.maskrcnn import MaskRCNNTask


    source_options = dataclasses.replace(options, num_classes=source_classes)
    source_model = MaskRCNNTask(experiment_config(source_options).task).build_model()
    _read(source, {"model": source_model}, "model")
    fresh = {id(variable) for variable in class_specific_variables(model)}
    if len(source_model.variables) != len(model.variables):
        raise InstanceSegmentationError(f"{source.description}: does not fit this run ({len(source_model.variables)} "
                                        f"variables there, {len(model.variables)} here)")
    for restored, target in zip(source_model.variables, model.variables):
        if id(target) in fresh:
            continue
        if restored.shape != target.shape:
            raise InstanceSegmentationError(
                f"{source.description}: does not fit this run ({target.name}: {restored.shape} vs {target.shape})")
        target.assign(restored)
    if source.label_map is not None:
        change = f"{', '.join(source.label_map.values())} -> {', '.join(label_map.values())}"
    else:
        change = f"{source_classes - 1} -> {options.num_classes - 1} classes"
    return f"all but the {CLASS_SPECIFIC_LAYERS} (re-initialised for other classes: {change})"


def class_specific_variables(model) -> list:
    """The variables whose shape or meaning follows the classes: each detection head's classifier and (unless
    class-agnostic) box regressor, and the mask head's logits layer (unless class-agnostic)."""
    layers = []
    for head in model.detection_head:
        layers.append(head._classifier)
        if not head.get_config()["class_agnostic_bbox_pred"]:
            layers.append(head._box_regressor)
    if model.mask_head is not None and not model.mask_head.get_config()["class_agnostic"]:
        layers.append(model.mask_head._mask_regressor)
    return [variable for layer in layers for variable in layer.variables]


def _backbone_view(backbone, layout: str) -> dict:
    import tensorflow as tf

    if layout == "backbone":
        return {"backbone": backbone}
    view = tf.Module()
    view.backbone = backbone
    return {"model": view}


def _read(source: InitSource, root: dict, what: str) -> None:
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(**root).read(source.checkpoint)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise InstanceSegmentationError(
            f"{source.description}: its {what} does not fit this run ({first_line(error)[:300]})") from None


def _source_classes(source: InitSource) -> int:
    """The class count (with the background) the source model was trained for."""
    if source.options is not None:
        return source.options.num_classes
    import tensorflow as tf

    # A Model Garden detection head ends in a classifier [d, n] and a per-class box regressor [d, 4n].
    shapes = [shape for name, shape in tf.train.list_variables(source.checkpoint)
              if "detection_head" in name and len(shape) == 2]
    for width, classes in shapes:
        if [width, 4 * classes] in shapes:
            return classes
    raise InstanceSegmentationError(f"{source.description}: no Mask R-CNN detection head found in the checkpoint")
