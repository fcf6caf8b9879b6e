"""Matterport's `mrcnn.model.MaskRCNN` in inference mode, on our TensorFlow 2 port (`load_matterport`).

    model = MaskRCNN(mode="inference", config=config, model_dir="logs")
    model.load_weights("mask_rcnn_coco.h5", by_name=True)
    r = model.detect([image], verbose=1)[0]  # rois, class_ids, scores, masks, as matterport's

Training is not offered here: `mode="training"` says which command of ours trains.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError, MrcnnUsageError
from ..models.matterport import MatterportConfig, MatterportModel, load_matterport
from ..models.matterport.config import DERIVED_KEYS, TRAINING_KEYS
from ..models.matterport.h5_weights import read_keras_h5

TRAINING_HINT = ("train with `python instance_segmentation_train.py train --labels FOLDER --model-dir DIR` "
                 "(docs/TRAINING.md) and run the exported model with this package's detection scripts")


def to_matterport_config(config: object) -> MatterportConfig:
    """Our MatterportConfig from a matterport-style Config object (any attribute matterport's Config does not
    know is left out, as matterport ignores it); MatterportConfigError names the config class."""
    known = {field.name for field in MatterportConfig.__dataclass_fields__.values()} | TRAINING_KEYS | DERIVED_KEYS
    values = {name: getattr(config, name) for name in dir(config) if name in known}
    return MatterportConfig.from_mapping(values, source=f"config {type(config).__name__}")


class MaskRCNN:
    """Matterport's MaskRCNN class, inference mode: `load_weights`, `detect`, `find_last`, `keras_model`."""

    def __init__(self, mode: str, config: Any, model_dir: str | Path) -> None:
        if mode == "training":
            raise MrcnnUsageError(f"mode='training' is not supported by object_detection_utils.mrcnn: {TRAINING_HINT}")
        if mode != "inference":
            raise MrcnnUsageError(f"mode must be 'inference', got {mode!r}")
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self._settings = to_matterport_config(config)  # a config matterport's model cannot take fails here
        self._model: MatterportModel | None = None
        self._weights_path: Path | None = None

    def load_weights(self, filepath: str | Path, by_name: bool = False, exclude: Iterable[str] | None = None) -> None:
        """Load a matterport `.h5` (weights or a whole saved model). Layers are always matched by name, which for
        a file of the same architecture is what matterport's by-position loading gives too; `exclude` names
        layers to leave out. ModelLoadError, one line, when the file does not fit the config."""
        del by_name  # matched by name either way (see the docstring)
        path = Path(filepath)
        exclude = tuple(exclude or ())
        try:
            self._model = load_matterport(path, self._settings, exclude)
        except ModelLoadError as error:
            raise type(error)("; ".join(str(error).splitlines())) from None
        self._weights_path = path

    def detect(self, images: Sequence[np.ndarray], verbose: int = 0) -> list[dict[str, np.ndarray]]:
        """One dict per picture, as matterport's: rois (N, 4) int32 [y1, x1, y2, x2], class_ids (N,) int32,
        scores (N,) float32, masks (H, W, N) bool. Takes exactly BATCH_SIZE RGB pictures, as matterport's."""
        batch = int(getattr(self.config, "BATCH_SIZE", self.config.GPU_COUNT * self.config.IMAGES_PER_GPU))
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise MrcnnUsageError(f"detect() takes a list of pictures, got one array of shape {images.shape}: "
                                  "pass [image]")
        if len(images) != batch:
            raise MrcnnUsageError(
                f"detect() got {len(images)} picture{'s' if len(images) != 1 else ''} but BATCH_SIZE is {batch} "
                f"(GPU_COUNT {self.config.GPU_COUNT} x IMAGES_PER_GPU {self.config.IMAGES_PER_GPU}); as matterport, "
                f"pass {batch} or set IMAGES_PER_GPU = {len(images)} in the config")
        model = self._loaded()
        if verbose:
            print(f"Processing {len(images)} images")
            for image in images:
                _log("image", np.asarray(image))
        return [model.detect(image) for image in images]

    def find_last(self) -> str:
        """The newest checkpoint of this config's NAME under model_dir, as matterport names its training runs:
        the last `<name>*` folder, its last `mask_rcnn*` file."""
        root = Path(self.model_dir)
        name = (self.config.NAME or "").lower()
        runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(name)) if root.is_dir() else []
        if not runs:
            raise ModelLoadError(f"{root}: no model folder starting with {name!r}")
        checkpoints = sorted(p for p in runs[-1].iterdir() if p.is_file() and p.name.startswith("mask_rcnn"))
        if not checkpoints:
            raise ModelLoadError(f"{runs[-1]}: no weights file starting with 'mask_rcnn'")
        return str(checkpoints[-1])

    @property
    def keras_model(self) -> WeightsView:
        """A read-only view of the loaded weights, layer by layer (`layers`, `get_layer`, `summary`,
        `count_params`): the network itself is our TensorFlow 2 port, not a Keras model."""
        layers = self._loaded().network.expected_weights()
        return WeightsView(self._weights_path, layers)

    def _loaded(self) -> MatterportModel:
        if self._model is None:
            raise MrcnnUsageError("no weights loaded: call model.load_weights(path, by_name=True) first")
        return self._model


class LayerView:
    """One layer of the weights file: its name and arrays, in the file's order."""

    def __init__(self, name: str, weights: dict[str, np.ndarray]) -> None:
        self.name = name
        self._weights = weights

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(array) for array in self._weights.values()]

    def count_params(self) -> int:
        return int(sum(array.size for array in self._weights.values()))

    def __repr__(self) -> str:
        return f"<layer {self.name}: {', '.join(f'{k} {v.shape}' for k, v in self._weights.items())}>"


class WeightsView:
    """What code reading `model.keras_model` gets: the network's layers that hold weights, in the file's order,
    with the arrays read from the loaded file."""

    def __init__(self, path: Path, network_layers: Iterable[str]) -> None:
        used = set(network_layers)
        self.layers = [LayerView(name, weights) for name, weights in read_keras_h5(path).items() if name in used]

    def get_layer(self, name: str) -> LayerView:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise MrcnnUsageError(f"no layer named {name!r} with weights in the loaded file")

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print) -> None:
        """One line per layer: name, weight shapes and parameter count; then the total."""
        for layer in self.layers:
            shapes = ", ".join(str(array.shape) for array in layer.get_weights())
            print_fn(f"{layer.name:40} {shapes:40} {layer.count_params():>10,}")
        print_fn(f"Total params: {self.count_params():,}")

    def __iter__(self) -> Iterator[LayerView]:
        return iter(self.layers)

    def __getattr__(self, name: str) -> Any:
        raise MrcnnUsageError(f"keras_model.{name} is not available: keras_model is a read-only view of the loaded "
                              "weights (layers, get_layer, summary, count_params)")


def _log(label: str, array: np.ndarray) -> None:
    """A line as matterport's verbose detect prints it: name, shape, value range and dtype."""
    values = f"min: {array.min():10.5f}  max: {array.max():10.5f}" if array.size else f"min: {'':10}  max: {'':10}"
    print(f"{label:25}shape: {array.shape!s:20}  {values}  {array.dtype}")
