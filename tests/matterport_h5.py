"""Seeded, calibrated weights written in matterport's exact Keras 2 HDF5 layout (test support: numpy + h5py only).

The layout (layer order, weight names, shapes, attributes) is recorded from the reference model itself by
tests/matterport/make_goldens.py; this module only replays it. Weight dicts use the contract's naming: inner layer
name -> short weight name (kernel, bias, gamma, beta, moving_mean, moving_variance) -> array, so the rpn_model
group's weights appear under rpn_conv_shared, rpn_class_raw and rpn_bbox_pred.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

GOLDENS = Path(__file__).resolve().parent / "matterport" / "goldens"

# Keras 2 splits an attribute into name0, name1, ... when its numpy form is larger than this (bytes).
KERAS_HEADER_LIMIT = 64512
# chunk_attributes=True forces Keras' own splitting with this limit, so layer_names comes out in several chunks.
FORCED_CHUNK_LIMIT = 2048
TOP_LEVEL_GROUP = "top_level_model_weights"
# A small config for the seeded resnet50 / 5-class weights (conftest's `matterport_weights`): 128-pixel pictures.
TEST_CONFIG: dict[str, Any] = {
    "NAME": "test", "NUM_CLASSES": 5, "BACKBONE": "resnet50", "IMAGE_MIN_DIM": 64, "IMAGE_MAX_DIM": 128,
    "DETECTION_MIN_CONFIDENCE": 0.3, "POST_NMS_ROIS_INFERENCE": 200,
    "CLASS_NAMES": ["BG", "person", "tie", "cup", "chair"],
}
# Typical amplitude of a mean-subtracted picture: conv1's kernel is divided by it so bn_conv1 sees unit variance.
PICTURE_AMPLITUDE = 64.0


@dataclass(frozen=True)
class Layout:
    """A matterport model's weight layout as Keras 2's save_weights writes it."""

    layer_names: tuple[str, ...]
    # group (= model layer) name -> ((full weight name, shape, dtype), ...) in Keras' order
    groups: dict[str, tuple[tuple[str, tuple[int, ...], str], ...]]
    backend: str
    keras_version: str

    @classmethod
    def load(cls, path: Path | str) -> Layout:
        data = json.loads(Path(path).read_text())
        return cls(
            layer_names=tuple(data["layer_names"]),
            groups={
                name: tuple((w, tuple(shape), dtype) for w, shape, dtype in weights)
                for name, weights in data["groups"].items()
            },
            backend=data["backend"],
            keras_version=data["keras_version"],
        )

    @classmethod
    def named(cls, backbone: str, num_classes: int) -> Layout:
        """A recorded layout from the goldens folder, e.g. named("resnet50", 5)."""
        return cls.load(GOLDENS / f"layout_{backbone}_c{num_classes}.json")

    @classmethod
    def from_h5(cls, path: Path | str) -> Layout:
        """Record the layout of a flat file saved by Keras 2's save_weights."""
        with h5py.File(path, "r") as f:
            layer_names = tuple(_text(n) for n in _chunked_attribute(f, "layer_names"))
            groups = {}
            for name in layer_names:
                weight_names = [_text(n) for n in _chunked_attribute(f[name], "weight_names")]
                groups[name] = tuple((w, tuple(f[name][w].shape), str(f[name][w].dtype)) for w in weight_names)
            return cls(layer_names, groups, _text(f.attrs["backend"]), _text(f.attrs["keras_version"]))

    def with_num_classes(self, num_classes: int) -> Layout:
        """The same layout for another class count (BG included), e.g. named("resnet101", 5).with_num_classes(81)
        for a COCO-sized model: only the class-dependent layers' last axis changes."""
        groups = {
            name: tuple((w, _class_shape(w, shape, num_classes), dtype) for w, shape, dtype in weights)
            for name, weights in self.groups.items()
        }
        return Layout(self.layer_names, groups, self.backend, self.keras_version)

    def to_json(self) -> str:
        groups = {name: [[w, list(shape), dtype] for w, shape, dtype in ws] for name, ws in self.groups.items()}
        data = {
            "backend": self.backend,
            "keras_version": self.keras_version,
            "layer_names": list(self.layer_names),
            "groups": groups,
        }
        return json.dumps(data, indent=None, separators=(",", ":")) + "\n"

    def expected_weights(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """Inner layer name -> short weight name -> shape (the contract's naming)."""
        out: dict[str, dict[str, tuple[int, ...]]] = {}
        for name in self.layer_names:
            for weight, shape, _ in self.groups[name]:
                layer, short = split_weight_name(weight)
                out.setdefault(layer, {})[short] = shape
        return out


# Layers whose last axis counts classes, and the values they hold per class.
PER_CLASS = {"mrcnn_class_logits": 1, "mrcnn_bbox_fc": 4, "mrcnn_mask": 1}


def load_golden(case: str) -> dict[str, np.ndarray]:
    """Every array of goldens/<case>.npz (see goldens/README.md)."""
    with np.load(GOLDENS / f"{case}.npz") as data:
        return {key: data[key] for key in data.files}


def golden_masks(golden: dict[str, np.ndarray]) -> np.ndarray:
    """A golden's (H, W, N) bool masks, unpacked."""
    shape = tuple(int(n) for n in golden["masks_shape"])
    bits = np.unpackbits(golden["masks_packed"], count=int(np.prod(shape)))
    return bits.reshape(shape).astype(bool)


def _class_shape(weight_name: str, shape: tuple[int, ...], num_classes: int) -> tuple[int, ...]:
    layer, _ = split_weight_name(weight_name)
    if layer not in PER_CLASS:
        return shape
    return shape[:-1] + (num_classes * PER_CLASS[layer],)


def split_weight_name(weight_name: str) -> tuple[str, str]:
    """'rpn_conv_shared/kernel:0' -> ('rpn_conv_shared', 'kernel')."""
    parts = weight_name.split("/")
    return parts[-2], parts[-1].split(":")[0]


def calibrated_weights(layout: Layout, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Deterministic weights that give a random matterport model varied, non-degenerate detections.

    Each array draws from its own generator seeded by (seed, crc32 of "layer/short"), so order never matters.
    Batch norms are near identity, kernels He-scaled before a ReLU and variance-preserving elsewhere (conv1's also
    divided by the picture's amplitude), residual branches damped so depth does not blow activations up, box
    deltas small. The classifier head is centred so that each crop's content, not the level all crops share,
    picks the class (so many classes win somewhere), and the class logits' biases are small and distinct.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer, shorts in layout.expected_weights().items():
        out[layer] = {
            short: _calibrated(
                layer, short, shape, np.random.default_rng([seed, zlib.crc32(f"{layer}/{short}".encode())])
            )
            for short, shape in shorts.items()
        }
    return out


# Layers with no ReLU after them: variance-preserving (1/fan_in) kernels, times the factor given here.
LINEAR_LAYERS = {
    "rpn_class_raw": 0.3,
    "rpn_bbox_pred": 0.3,
    "mrcnn_class_logits": 2.0,
    "mrcnn_bbox_fc": 0.3,
    "mrcnn_mask": 1.0,
}


def _calibrated(layer: str, short: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(shape)
    if short == "gamma":
        # residual branches enter their sum damped (stage 4 has 23 blocks in resnet101) so depth does not blow
        # activations up
        damping = (0.1 if layer.startswith("bn4") else 0.25) if layer.endswith("branch2c") else 1.0
        values = damping * (1.0 + 0.05 * noise)
    elif short in ("beta", "moving_mean"):
        values = 0.02 * noise
    elif short == "moving_variance":
        values = np.exp(0.1 * noise)
    elif short == "bias":
        if layer == "mrcnn_class_logits":
            # background lowest, then a small step per class; the noise keeps them distinct
            values = np.arange(shape[0]) * 0.1 - 0.1 + 0.05 * noise
            values[0] = -1.0
        else:
            values = 0.01 * noise
    elif short == "kernel":
        if layer == "mrcnn_mask_deconv":  # Conv2DTranspose: (h, w, out, in); each output pixel sees one tap
            fan_in = shape[3]
        else:
            fan_in = int(np.prod(shape[:-1]))
        if layer.startswith("fpn_") or layer in LINEAR_LAYERS:
            values = noise * np.sqrt(1.0 / fan_in) * LINEAR_LAYERS.get(layer, 1.0)
        else:
            values = noise * np.sqrt(2.0 / fan_in)
        if layer == "conv1":
            values /= PICTURE_AMPLITUDE
        elif layer == "mrcnn_class_conv1":
            # zero sum over each channel's 7x7 taps: a pooled crop's pattern drives the head, not its channel
            # levels, which every crop shares and which would otherwise favour one class everywhere
            values -= values.mean(axis=(0, 1), keepdims=True)
        elif layer in ("mrcnn_class_conv2", "mrcnn_class_logits"):
            # columns summing to zero: the ReLU features' common mean moves no output
            values -= values.mean(axis=tuple(range(values.ndim - 1)), keepdims=True)
    else:
        raise ValueError(f"no calibration rule for {layer}/{short}")
    return values.astype(np.float32)


def write_matterport_h5(
    path: Path | str,
    layout: Layout,
    weights: dict[str, dict[str, np.ndarray]],
    variant: Literal["flat", "full"] = "flat",
    chunk_attributes: bool = False,
    bytes_attributes: bool = True,
    *,
    fixed_length: bool = False,
    top_level_group: bool = True,
) -> Path:
    """Write weights as Keras 2 does: "flat" = save_weights, "full" = model.save (nested under model_weights).

    bytes_attributes: byte strings as Keras 2 encodes names (True) or h5py's UTF-8 strings (False).
    chunk_attributes: split layer_names/weight_names into name0, name1, ... with Keras' own algorithm.
    fixed_length: names as fixed-length numpy byte arrays, as Keras 2.0-2.2 under h5py 2 (matterport's own files)
    wrote them; otherwise variable-length, as Keras 2.15 under h5py 3 does.
    top_level_group: the empty top_level_model_weights group that Keras >= 2.4 adds; matterport's era had none.
    """
    if fixed_length and not bytes_attributes:
        raise ValueError("fixed_length applies to byte-string attributes only")
    path = Path(path)
    with h5py.File(path, "w") as f:
        if variant == "full":
            # Keras' model.save: metadata from model_metadata() as str, the config JSON as bytes
            _set_scalar(f.attrs, "backend", layout.backend, as_bytes=False)
            _set_scalar(f.attrs, "keras_version", layout.keras_version, as_bytes=False)
            config = json.dumps({"class_name": "Functional", "config": {"name": "mask_rcnn"}})
            _set_scalar(f.attrs, "model_config", config, as_bytes=bytes_attributes)
            group = f.create_group("model_weights")
        elif variant == "flat":
            group = f
        else:
            raise ValueError(f"unknown variant {variant!r}: flat or full")
        _write_weights_group(group, layout, weights, chunk_attributes, bytes_attributes, fixed_length, top_level_group)
    return path


def _write_weights_group(
    f: h5py.Group,
    layout: Layout,
    weights: dict[str, dict[str, np.ndarray]],
    chunk: bool,
    as_bytes: bool,
    fixed_length: bool,
    top_level_group: bool,
) -> None:
    _set_names(f, "layer_names", layout.layer_names, chunk, as_bytes, fixed_length)
    _set_scalar(f.attrs, "backend", layout.backend, as_bytes=as_bytes)
    _set_scalar(f.attrs, "keras_version", layout.keras_version, as_bytes=as_bytes)
    for name in sorted(layout.layer_names):
        group = f.create_group(name)
        entries = layout.groups[name]
        _set_names(group, "weight_names", [w for w, _, _ in entries], chunk, as_bytes, fixed_length)
        for weight_name, shape, dtype in entries:
            layer, short = split_weight_name(weight_name)
            value = np.asarray(weights[layer][short], dtype=dtype)
            if value.shape != shape:
                raise ValueError(f"{layer}/{short}: shape {value.shape}, layout says {shape}")
            group.create_dataset(weight_name, data=value)
    if top_level_group:
        _set_names(f.create_group(TOP_LEVEL_GROUP), "weight_names", [], chunk, as_bytes, fixed_length)


def _set_names(group: h5py.Group, name: str, names: Any, chunk: bool, as_bytes: bool, fixed_length: bool) -> None:
    """A list-of-names attribute as Keras 2's save_attributes_to_hdf5_group stores it."""
    names = list(names)
    if not names:
        group.attrs[name] = np.zeros(0, dtype=np.float64)  # what h5py makes of Keras' empty list
        return
    if chunk:
        # Keras: np.asarray of the encoded names, np.array_split into more parts until each fits the limit
        if as_bytes:
            data = np.asarray([n.encode("utf8") for n in names])
        else:
            data = np.asarray(names, dtype=object)
        count = 1
        parts = np.array_split(data, count)
        while any(_nbytes(p) > FORCED_CHUNK_LIMIT for p in parts):
            count += 1
            parts = np.array_split(data, count)
        if count > 1:
            for i, part in enumerate(parts):
                if as_bytes:  # the numpy chunk itself: fixed length, the longest of ALL names
                    group.attrs.create(f"{name}{i}", part)
                else:
                    _set_array(group.attrs, f"{name}{i}", list(part), as_bytes, fixed_length)
            return
    _set_array(group.attrs, name, names, as_bytes, fixed_length)


def _nbytes(part: np.ndarray) -> int:
    if part.dtype == object:  # str names: count them as Keras' numpy unicode array would (4 bytes a character)
        return len(part) * 4 * max((len(n) for n in part), default=0)
    return part.nbytes


def _set_array(attrs: h5py.AttributeManager, name: str, names: list, as_bytes: bool, fixed_length: bool) -> None:
    encoded = [n if isinstance(n, bytes) else n.encode("utf8") for n in names]
    if fixed_length:
        attrs.create(name, np.array(encoded, dtype=f"S{max(len(n) for n in encoded)}"))
    elif as_bytes:
        attrs.create(name, np.array(encoded, dtype=object), dtype=h5py.string_dtype("ascii"))
    else:
        attrs.create(name, np.array([n.decode("utf8") for n in encoded], dtype=object), dtype=h5py.string_dtype())


def _set_scalar(attrs: h5py.AttributeManager, name: str, value: str, as_bytes: bool) -> None:
    if as_bytes:
        attrs.create(name, value.encode("utf8"), dtype=h5py.string_dtype("ascii"))
    else:
        attrs.create(name, value, dtype=h5py.string_dtype())


def _chunked_attribute(group: h5py.Group, name: str) -> list:
    if name in group.attrs:
        return list(group.attrs[name])
    out: list = []
    i = 0
    while f"{name}{i}" in group.attrs:
        out.extend(group.attrs[f"{name}{i}"])
        i += 1
    return out


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def describe_h5(path: Path | str, skip_values: tuple[str, ...] = ("model_config",)) -> dict[str, Any]:
    """The structure of an HDF5 file: every group and dataset path, dataset shape and dtype, every attribute's
    HDF5 type (class, variable or fixed length, character set) and value. Attributes named in skip_values keep
    their type only (our full files carry a stub model_config)."""
    out: dict[str, Any] = {}

    def attributes(obj: h5py.HLObject) -> dict[str, Any]:
        result = {}
        for name in sorted(obj.attrs):
            attr = obj.attrs.get_id(name)
            htype = attr.get_type()
            kind = {h5py.h5t.STRING: "string", h5py.h5t.FLOAT: "float"}.get(htype.get_class(), str(htype.get_class()))
            entry: dict[str, Any] = {"type": kind, "shape": list(attr.shape)}
            if kind == "string":
                entry["variable"] = bool(htype.is_variable_str())
                entry["charset"] = "utf8" if htype.get_cset() == h5py.h5t.CSET_UTF8 else "ascii"
                if not entry["variable"]:
                    entry["size"] = htype.get_size()
            else:
                entry["dtype"] = str(obj.attrs[name].dtype)
            if name not in skip_values:
                value = obj.attrs[name]
                entry["value"] = (
                    [_text(v) for v in value] if isinstance(value, np.ndarray) and value.ndim else _text(value)
                )
            result[name] = entry
        return result

    def visit(name: str, obj: h5py.HLObject) -> None:
        if isinstance(obj, h5py.Dataset):
            out[name] = {"dataset": [list(obj.shape), str(obj.dtype)], "attrs": attributes(obj)}
        else:
            out[name] = {"group": True, "attrs": attributes(obj)}

    with h5py.File(path, "r") as f:
        out["/"] = {"group": True, "attrs": attributes(f)}
        f.visititems(visit)
    return out


def diff_descriptions(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """One line per difference between two describe_h5 results."""
    lines = [f"only in ours: {p}" for p in sorted(set(ours) - set(theirs))]
    lines += [f"only in theirs: {p}" for p in sorted(set(theirs) - set(ours))]
    for p in sorted(set(ours) & set(theirs)):
        if ours[p] != theirs[p]:
            a, b = ours[p], theirs[p]
            for key in sorted(set(a) | set(b)):
                if key != "attrs" and a.get(key) != b.get(key):
                    lines.append(f"{p}: {key} {a.get(key)} != {b.get(key)}")
            aa, ba = a.get("attrs", {}), b.get("attrs", {})
            for name in sorted(set(aa) | set(ba)):
                if aa.get(name) != ba.get(name):
                    lines.append(f"{p}@{name}: {str(aa.get(name))[:200]} != {str(ba.get(name))[:200]}")
    return lines
