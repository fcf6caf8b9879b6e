"""Regenerate the matterport goldens with matterport's own code (run in the reference's virtual environment).

    /work/ref/venv/bin/python tests/matterport/make_goldens.py --src /work/ref/akTwelve

Not collected by pytest and never run by CI (see goldens/README.md). Every step runs in its own process so that
each model is the first one built there: Keras names unnamed layers and variables by a per-process counter.
Steps: record each backbone's layout from Keras' own save_weights; prove our writer against Keras' save_weights and
model.save (structure and every value); then one detection golden per case, each first checking that the layout it
writes (the recorded one, with the case's class count) is what the reference model itself saves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDENS = HERE / "goldens"
sys.path.insert(0, str(HERE.parent))  # tests/: matterport_h5

import matterport_h5 as mh5

SEED = 15
NUM_CLASSES = 5
CLASS_NAMES = ("BG", "person", "tie", "cup", "chair")
BACKBONES = ("resnet50", "resnet101")
COMMON = {
    "NAME": "golden",
    "NUM_CLASSES": NUM_CLASSES,
    "IMAGE_MIN_DIM": 256,
    "IMAGE_MAX_DIM": 320,
    "DETECTION_MIN_CONFIDENCE": 0.9,
}
CASES = {
    "resnet50_square": {**COMMON, "BACKBONE": "resnet50", "IMAGE_RESIZE_MODE": "square"},
    "resnet50_pad64": {**COMMON, "BACKBONE": "resnet50", "IMAGE_RESIZE_MODE": "pad64"},
    "resnet101_square": {**COMMON, "BACKBONE": "resnet101", "IMAGE_RESIZE_MODE": "square"},
    "resnet101_pad64": {**COMMON, "BACKBONE": "resnet101", "IMAGE_RESIZE_MODE": "pad64"},
    # what real users run: matterport's defaults (1024 square, IMAGE_MIN_DIM 800, confidence 0.7), COCO's 81 classes
    "resnet101_coco": {"NAME": "golden", "NUM_CLASSES": 81, "BACKBONE": "resnet101", "DETECTION_MIN_CONFIDENCE": 0.7},
}
# Keras' names for the groups whose values the proof compares with the calibrated weights bit for bit.
PROOF_VARIANTS = {
    "flat": {"variant": "flat"},
    "full": {"variant": "full"},
    "chunked": {"variant": "flat", "chunk_attributes": True},
}
ROIS_KEPT = 50  # refined proposals kept in a golden for debugging


def grace_hopper() -> np.ndarray:
    from matplotlib import cbook, image

    return image.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _matterport(src: Path):
    # matterport's unmold_mask uses np.bool, removed in numpy 1.24 (TF 2.15 needs numpy >= 1.23.5); it was an
    # alias of the builtin, so restoring the alias changes nothing else.
    np.bool = bool
    sys.path.insert(0, str(src))
    from mrcnn import model as modellib
    from mrcnn.config import Config

    return modellib, Config


def build(src: Path, overrides: dict):
    """matterport's MaskRCNN in inference mode with a Config carrying the overrides (one picture per call)."""
    modellib, Config = _matterport(src)
    attrs = {k: v for k, v in overrides.items()}
    attrs.update(GPU_COUNT=1, IMAGES_PER_GPU=1)
    config = type("GoldenConfig", (Config,), attrs)()
    return modellib.MaskRCNN(mode="inference", config=config, model_dir=tempfile.mkdtemp()), config


def _keras_hdf5_format(keras_model):
    """Point matterport's loader at Keras 2's own HDF5 functions; returns Keras 2's module.

    matterport's load_weights does `from tensorflow.python.keras.saving import hdf5_format` and hands it the model's
    layers. Under TF 2.15 that module is TF's old private copy of Keras: it assigns the values in its OWN session,
    so the keras 2.15 model keeps its initial values, silently. Our shim (this script only, their code untouched)
    gives that import Keras 2's functions, which take the model itself (we never pass exclude=).
    """
    import types

    import tensorflow.python.keras.saving as tf_saving
    from keras.src.saving.legacy import hdf5_format

    def whole_model(layers):
        if [layer.name for layer in layers] != [layer.name for layer in keras_model.layers]:
            raise NotImplementedError("the loader shim loads whole models only (no exclude=)")
        return keras_model

    shim = types.ModuleType("tensorflow.python.keras.saving.hdf5_format")
    shim.load_weights_from_hdf5_group_by_name = lambda f, layers: hdf5_format.load_weights_from_hdf5_group_by_name(
        f, whole_model(layers)
    )
    shim.load_weights_from_hdf5_group = lambda f, layers: hdf5_format.load_weights_from_hdf5_group(
        f, whole_model(layers)
    )
    tf_saving.hdf5_format = shim
    sys.modules[shim.__name__] = shim
    return hdf5_format


def reference_layout(model) -> mh5.Layout:
    """The layout Keras' own save_weights writes for the reference model."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keras.h5"
        model.keras_model.save_weights(str(path))
        return mh5.Layout.from_h5(path)


def step_layout(src: Path, backbone: str) -> None:
    model, _ = build(src, {**COMMON, "BACKBONE": backbone})
    (GOLDENS / f"layout_{backbone}_c{NUM_CLASSES}.json").write_text(reference_layout(model).to_json())


def step_proof(src: Path, backbone: str) -> None:
    """Load our flat file with matterport's load_weights, save with Keras, compare structure and values."""
    model, _ = build(src, {**COMMON, "BACKBONE": backbone})
    hdf5_format = _keras_hdf5_format(model.keras_model)
    layout = mh5.Layout.named(backbone, NUM_CLASSES)
    weights = mh5.calibrated_weights(layout, SEED)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mh5.write_matterport_h5(tmp / "ours_load.h5", layout, weights)
        model.load_weights(str(tmp / "ours_load.h5"), by_name=True)
        km = model.keras_model
        km.save_weights(str(tmp / "keras_flat.h5"))
        km.save(str(tmp / "keras_full.h5"))
        limit = hdf5_format.HDF5_OBJECT_HEADER_LIMIT
        hdf5_format.HDF5_OBJECT_HEADER_LIMIT = mh5.FORCED_CHUNK_LIMIT
        try:
            km.save_weights(str(tmp / "keras_chunked.h5"))
        finally:
            hdf5_format.HDF5_OBJECT_HEADER_LIMIT = limit
        for name, kwargs in PROOF_VARIANTS.items():
            ours = mh5.write_matterport_h5(tmp / f"ours_{name}.h5", layout, weights, **kwargs)
            theirs = tmp / f"keras_{name}.h5"
            description = mh5.describe_h5(theirs)
            differences = mh5.diff_descriptions(mh5.describe_h5(ours), description)
            differences += _value_differences(ours, theirs)
            differences += _calibration_differences(theirs, weights)
            result[name] = differences
            if backbone == "resnet50":
                (GOLDENS / f"structure_{backbone}_{name}.json").write_text(
                    json.dumps(description, separators=(",", ":")) + "\n"
                )
    (GOLDENS / f"writer_proof_{backbone}.json").write_text(json.dumps(result, indent=1) + "\n")


def _value_differences(ours: Path, theirs: Path) -> list[str]:
    import h5py

    lines = []
    with h5py.File(ours, "r") as a, h5py.File(theirs, "r") as b:
        names: list[str] = []
        b.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            if name not in a:
                continue  # reported by the structural comparison
            x, y = a[name][()], b[name][()]
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                lines.append(f"{name}: values differ")
    return lines


def _calibration_differences(theirs: Path, weights: dict) -> list[str]:
    """Keras' saved values are exactly the calibrated arrays (so loading by name put each where it belongs)."""
    import h5py

    saved: dict[tuple[str, str], list] = {}
    with h5py.File(theirs, "r") as f:
        f.get("model_weights", f).visititems(
            lambda n, o: (
                saved.setdefault(mh5.split_weight_name(n), []).append(o[()]) if isinstance(o, h5py.Dataset) else None
            )
        )
    lines = []
    for layer, shorts in weights.items():
        for short, value in shorts.items():
            found = saved.get((layer, short), [])
            if len(found) != 1 or found[0].tobytes() != value.tobytes():
                lines.append(f"{layer}/{short}: not saved back exactly ({len(found)} found)")
    return lines if weights else ["no weights compared"]


def step_case(src: Path, case: str) -> None:
    overrides = CASES[case]
    model, config = build(src, overrides)
    layout = mh5.Layout.named(overrides["BACKBONE"], NUM_CLASSES).with_num_classes(overrides["NUM_CLASSES"])
    if reference_layout(model) != layout:
        raise SystemExit(f"{case}: the recorded layout with {overrides['NUM_CLASSES']} classes is not the reference's")
    image = grace_hopper()
    with tempfile.TemporaryDirectory() as tmp:
        path = mh5.write_matterport_h5(Path(tmp) / "weights.h5", layout, mh5.calibrated_weights(layout, SEED))
        _keras_hdf5_format(model.keras_model)
        model.load_weights(str(path), by_name=True)

    # keep what keras_model.predict returns inside detect(), for the debugging intermediates
    captured = {}
    predict = model.keras_model.predict

    def predict_and_keep(*args, **kwargs):
        captured["outputs"] = predict(*args, **kwargs)
        return captured["outputs"]

    model.keras_model.predict = predict_and_keep
    started = time.perf_counter()
    result = model.detect([image])[0]
    seconds = time.perf_counter() - started
    detections, _, _, _, rpn_rois, _, _ = captured["outputs"]

    molded, metas, _ = model.mold_inputs([image])
    molded_image = molded[0].astype(np.float32)
    _, window, scale, padding, _ = _resize(src, image, config)
    masks = result["masks"].astype(bool)
    # the COCO-sized case keeps our default names ("class 1", ...)
    class_names = {"CLASS_NAMES": list(CLASS_NAMES)} if overrides["NUM_CLASSES"] == len(CLASS_NAMES) else {}
    reference_config = {
        k: (getattr(config, k).tolist() if isinstance(getattr(config, k), np.ndarray) else getattr(config, k))
        for k in dir(config)
        if k.isupper()
    }
    np.savez_compressed(
        GOLDENS / f"{case}.npz",
        rois=result["rois"].astype(np.int32),
        class_ids=result["class_ids"].astype(np.int32),
        scores=result["scores"].astype(np.float32),
        masks_packed=np.packbits(masks, axis=None),
        masks_shape=np.array(masks.shape, dtype=np.int64),
        window=np.array(window, dtype=np.int64),
        scale=np.float64(scale),
        padding=np.array(padding, dtype=np.int64),
        image_meta=metas[0].astype(np.float64),
        molded_shape=np.array(molded_image.shape, dtype=np.int64),
        molded_sha256=hashlib.sha256(molded_image.tobytes()).hexdigest(),
        molded_sum=molded_image.astype(np.float64).sum(axis=(0, 1)),
        picture_sha256=hashlib.sha256(image.tobytes()).hexdigest(),
        rpn_rois=rpn_rois[0, :ROIS_KEPT].astype(np.float32),
        detections=detections[0, : len(result["class_ids"])].astype(np.float32),
        config=json.dumps({**overrides, **class_names}),
        reference_config=json.dumps(reference_config, default=str),
        seed=np.int64(SEED),
    )
    print(
        f"{case}: {len(result['class_ids'])} detections, classes {sorted(set(result['class_ids'].tolist()))}, "
        f"scores {result['scores'].min():.4f}..{result['scores'].max():.4f}, "
        f"mask pixels {masks.sum(axis=(0, 1)).tolist()}, detect {seconds:.1f} s, "
        f"layout identical to the reference's save_weights"
    )


def _resize(src: Path, image: np.ndarray, config):
    sys.path.insert(0, str(src))
    from mrcnn import utils

    return utils.resize_image(
        image,
        min_dim=config.IMAGE_MIN_DIM,
        min_scale=config.IMAGE_MIN_SCALE,
        max_dim=config.IMAGE_MAX_DIM,
        mode=config.IMAGE_RESIZE_MODE,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(os.environ.get("MATTERPORT_SRC", "/work/ref/akTwelve")))
    parser.add_argument("step", nargs="?", choices=("layout", "proof", "case"))
    parser.add_argument("name", nargs="?")
    args = parser.parse_args()
    if args.step == "layout":
        step_layout(args.src, args.name)
    elif args.step == "proof":
        step_proof(args.src, args.name)
    elif args.step == "case":
        step_case(args.src, args.name)
    else:
        GOLDENS.mkdir(parents=True, exist_ok=True)
        steps = [("layout", b) for b in BACKBONES] + [("proof", b) for b in BACKBONES]
        steps += [("case", c) for c in CASES]
        for step, name in steps:
            subprocess.run([sys.executable, __file__, "--src", str(args.src), step, name], check=True)


if __name__ == "__main__":
    main()
