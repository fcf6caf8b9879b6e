"""Keras 2 HDF5 weight files as matterport's Mask R-CNN writes them: reading them by layer and weight name,
matching them to the weights the network expects, and what they reveal about the config."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import h5py
import numpy as np

from ...errors import ModelLoadError
from .config import MatterportConfig

Weights = dict[str, dict[str, np.ndarray]]
Shapes = Mapping[str, Mapping[str, tuple[int, ...]]]

_SHOWN = 5  # names quoted in one error line before "and N more"


def read_keras_h5(path: str | Path) -> Weights:
    """Every weight of a Keras 2 HDF5 file: layer name -> {short weight name -> array}.

    Takes `save_weights` files (layer list on the root) and full saves (under `model_weights`), chunked
    `layer_names0`, `layer_names1`, ... attributes and str or bytes names. A nested model's group (matterport's
    `rpn_model`) gives its inner layers under their own names. Layers without weights are left out. Each array is
    read from the file once.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such weights file")
    try:
        if not h5py.is_hdf5(path):
            raise ModelLoadError(f"{path}: not an HDF5 file (matterport weights are Keras .h5 files)")
        with h5py.File(path, "r") as file:
            return _read_layers(file, path)
    except PermissionError as error:
        raise ModelLoadError(f"{path}: cannot read weights ({error.strerror})") from None
    except OSError:
        raise ModelLoadError(f"{path}: damaged or truncated HDF5 file; copy or download it again") from None


def match_weights(expected: Shapes, found: Mapping[str, Mapping[str, np.ndarray]], source: Path,
                  exclude: Iterable[str] = ()) -> Weights:
    """The file's arrays for every weight the model expects, matched by layer and weight name.

    `exclude` holds layer names or regular expressions (matched against the whole name) for layers to leave out
    on both sides: they are neither missing nor extra, and are not returned. Missing weights, extra weights and
    shape mismatches raise ModelLoadError, one line for each kind of problem, each naming the file.
    """
    patterns = _exclude_patterns(exclude, source)
    missing, extra, mismatched = [], [], []
    matched: Weights = {}
    for layer in sorted(set(expected) | set(found)):
        if _is_excluded(layer, patterns):
            continue
        if layer not in found:
            missing.append(layer)
            continue
        if layer not in expected:
            extra.append(layer)
            continue
        wanted, have = expected[layer], found[layer]
        missing += [f"{layer}/{name}" for name in wanted if name not in have]
        extra += [f"{layer}/{name}" for name in have if name not in wanted]
        for name, shape in wanted.items():
            if name in have and tuple(have[name].shape) != tuple(shape):
                mismatched.append(f"{layer}/{name}: file {tuple(have[name].shape)} vs model {tuple(shape)}")
        matched[layer] = {name: have[name] for name in wanted if name in have}
    problems = []
    if missing:
        problems.append(f"{source}: missing {_count(missing, 'layer')} the model needs: {_quote(missing)}")
    if extra:
        problems.append(f"{source}: {_count(extra, 'layer')} in the file that the model does not have: "
                        f"{_quote(extra)} (exclude them to skip)")
    if mismatched:
        problems.append(f"{source}: {_count(mismatched, 'shape mismatch', 'shape mismatches')}: "
                        f"{_quote(mismatched, '; ')}")
    if problems:
        raise ModelLoadError("\n".join(problems))
    return matched


def infer_config(found: Mapping[str, Mapping[str, np.ndarray]], config: MatterportConfig | None, source: Path,
                 exclude: Iterable[str] = ()) -> MatterportConfig:
    """The config the weights call for: with no config, matterport's defaults with what the weights reveal (class
    count, backbone depth, classifier FC size, pyramid size, anchors per location); with a config, that config
    once checked against the weights (ModelLoadError naming field, config value and weights value).
    Excluded layers (names or regular expressions) reveal nothing."""
    patterns = _exclude_patterns(exclude, source)
    revealed = _revealed(
        {layer: weights for layer, weights in found.items() if not _is_excluded(layer, patterns)})
    anchors = revealed.pop("anchors per location", None)
    if config is None:
        config = MatterportConfig()
        if anchors is not None and anchors != len(config.RPN_ANCHOR_RATIOS):
            raise ModelLoadError(f"{source}: the weights have {anchors} anchors per location, matterport's default "
                                 f"RPN_ANCHOR_RATIOS {list(config.RPN_ANCHOR_RATIOS)} give "
                                 f"{len(config.RPN_ANCHOR_RATIOS)}: give a config with the training RPN_ANCHOR_RATIOS")
        try:
            return config.replace(**revealed)
        except ValueError as error:
            raise ModelLoadError(f"{source}: unusable weights ({error})") from None
    disagreements = [f"{name}: config {getattr(config, name)!r}, weights {value!r} ({_REVEALED_BY[name]})"
                     for name, value in revealed.items() if getattr(config, name) != value]
    if anchors is not None and anchors != len(config.RPN_ANCHOR_RATIOS):
        disagreements.append(f"RPN_ANCHOR_RATIOS: config {len(config.RPN_ANCHOR_RATIOS)} ratios, "
                             f"weights {anchors} anchor{'s' if anchors != 1 else ''} per location "
                             f"({_REVEALED_BY['anchors per location']})")
    if disagreements:
        raise ModelLoadError(f"{source}: the config does not match the weights: {'; '.join(disagreements)}")
    return config


def _read_layers(file: h5py.File, path: Path) -> Weights:
    group = file
    if not _has_attribute(file, "layer_names") and isinstance(file.get("model_weights"), h5py.Group):
        group = file["model_weights"]
    if not _has_attribute(group, "layer_names"):
        raise ModelLoadError(f"{path}: an HDF5 file without Keras 2 layer weights (no 'layer_names' attribute)")
    weights: Weights = {}
    for layer_name in _string_attribute(group, "layer_names"):
        layer_group = group.get(layer_name)
        if not isinstance(layer_group, h5py.Group):
            raise ModelLoadError(f"{path}: damaged Keras weights file (layer {layer_name!r} is listed but absent)")
        names = _string_attribute(layer_group, "weight_names") if _has_attribute(layer_group, "weight_names") else []
        parents = {name.split("/")[-2] for name in names if "/" in name}
        # A nested model's weights are named after its inner layers ("rpn_conv_shared/kernel:0"), an ordinary
        # layer's after the layer itself, possibly with a suffix Keras added to keep variable names unique.
        nested = len(parents) > 1
        for name in names:
            dataset = layer_group.get(name)
            if not isinstance(dataset, h5py.Dataset):
                raise ModelLoadError(f"{path}: damaged Keras weights file (weight {name!r} of layer {layer_name!r} "
                                     "is listed but absent)")
            parts = name.split("/")
            owner = parts[-2] if nested and len(parts) > 1 else layer_name
            short = re.sub(r":\d+$", "", parts[-1])
            layer = weights.setdefault(owner, {})
            if short in layer:
                raise ModelLoadError(f"{path}: layer {owner!r} has two weights named {short!r}")
            layer[short] = np.asarray(dataset[()])
    return weights


def _has_attribute(group: h5py.Group, name: str) -> bool:
    return name in group.attrs or f"{name}0" in group.attrs


def _string_attribute(group: h5py.Group, name: str) -> list[str]:
    """A list-of-strings attribute, joined from the chunks `name0`, `name1`, ... Keras 2 splits big ones into."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{name}{len(chunks)}"])
    return [item.decode("utf-8") if isinstance(item, bytes) else str(item)
            for chunk in chunks for item in np.atleast_1d(chunk).tolist()]


def _exclude_patterns(exclude: Iterable[str], source: Path) -> list[re.Pattern]:
    """Compiled exclude entries. One that matches nothing is fine: matterport's usual list names `mrcnn_bbox`, a
    reshape without weights."""
    if isinstance(exclude, str):
        exclude = [exclude]
    patterns = []
    for item in exclude:
        try:
            pattern = re.compile(item)
        except re.error as error:
            raise ModelLoadError(f"{source}: exclude {item!r} is not a layer name or regular expression "
                                 f"({error})") from None
        patterns.append(pattern)
    return patterns


def _is_excluded(layer: str, patterns: list[re.Pattern]) -> bool:
    return any(pattern.fullmatch(layer) for pattern in patterns)


# The layer whose weights show each revealed value, named in a disagreement so that a matterport user (who knows
# layers from load_weights' exclude) sees which part of the file does not fit.
_REVEALED_BY = {
    "NUM_CLASSES": "layer mrcnn_class_logits",
    "BACKBONE": "layers res4*",
    "FPN_CLASSIF_FC_LAYERS_SIZE": "layer mrcnn_class_conv1",
    "TOP_DOWN_PYRAMID_SIZE": "layer fpn_c5p5",
    "anchors per location": "layer rpn_class_raw",
}


def _revealed(found: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, object]:
    """Config values the weights fix, by the layer that shows each."""
    revealed: dict[str, object] = {}
    if "bias" in found.get("mrcnn_class_logits", {}):
        revealed["NUM_CLASSES"] = int(found["mrcnn_class_logits"]["bias"].shape[-1])
    if any(layer.startswith("res4") for layer in found):
        # ResNet101's stage 4 has 23 blocks (a..w), ResNet50's 6 (a..f)
        revealed["BACKBONE"] = "resnet101" if "res4w_branch2a" in found else "resnet50"
    if "kernel" in found.get("mrcnn_class_conv1", {}):
        revealed["FPN_CLASSIF_FC_LAYERS_SIZE"] = int(found["mrcnn_class_conv1"]["kernel"].shape[-1])
    if "kernel" in found.get("fpn_c5p5", {}):
        revealed["TOP_DOWN_PYRAMID_SIZE"] = int(found["fpn_c5p5"]["kernel"].shape[-1])
    if "kernel" in found.get("rpn_class_raw", {}):
        revealed["anchors per location"] = int(found["rpn_class_raw"]["kernel"].shape[-1]) // 2
    return revealed


def _count(items: list[str], noun: str, plural: str | None = None) -> str:
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'}"


def _quote(items: list[str], separator: str = ", ") -> str:
    shown = separator.join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown} and {len(items) - _SHOWN} more"
