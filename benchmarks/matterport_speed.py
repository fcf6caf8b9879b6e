#!/usr/bin/env python3
"""matterport Mask R-CNN at COCO size on this CPU: our TF 2.20 port and matterport's own code, side by side in one run.

    nice -n 10 .venv/bin/python benchmarks/matterport_speed.py [--backbone resnet50|resnet101] [--rounds 5] \\
        [--pictures ../shared/data/photos/zidane.jpg ../shared/data/photos/bus.jpg] \\
        [--reference-python /work/ref/venv/bin/python --reference-src /work/ref/akTwelve]
    nice -n 10 .venv/bin/python benchmarks/matterport_speed.py --weights mask_rcnn_coco.h5 --config coco ...

Config: matterport's defaults with NUM_CLASSES 81 (1024 square, resnet101), or --config NAME|FILE; --backbone
overrides it. Weights: --weights PATH, else seeded calibrated weights in matterport's exact file layout (seed 15,
tests/matterport_h5.py: the repository's tests/ folder is put on sys.path) written to a temporary folder.
Pictures: grace_hopper.jpg (matplotlib's sample data), then any --pictures (files, or folders of .jpg).

Each engine runs in its own child process (this script with --child), so each has its own peak RSS (ru_maxrss). It
loads once, then the parent names a picture, the child runs one detect and answers with its seconds and
detections. One warm-up pass over the pictures (the very first call reported apart), then --rounds rounds; which
engine goes first alternates, so load from others on the shared machine hits both alike. The reference is
matterport's TF2 port built by tests/matterport/make_goldens.py (build() and its two shims, see the goldens README).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "matterport")]
SEED = 15
# matterport's Config holds these as numpy arrays
ARRAY_KEYS = ("MEAN_PIXEL", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV")


def child(engine: str, weights: str, overrides: dict[str, Any], src: str | None) -> None:
    """Load one engine, then answer each "go PICTURE" line on stdin with one JSON line; "quit" gives peak RSS."""
    from PIL import Image

    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to stderr; stdout carries the protocol only
    started = time.perf_counter()
    detect = load_engine(engine, weights, overrides, src)
    seconds = time.perf_counter() - started
    import keras
    import tensorflow as tf

    version = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    protocol.write(json.dumps({"load": seconds, "version": version}) + "\n")
    pictures: dict[str, np.ndarray] = {}
    for line in sys.stdin:
        command, _, path = line.strip().partition(" ")
        if command == "quit":
            protocol.write(
                json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}) + "\n"
            )
            return
        if path not in pictures:
            pictures[path] = np.asarray(Image.open(path).convert("RGB"))
        image = pictures[path]
        started = time.perf_counter()
        found = detect(image)
        seconds = time.perf_counter() - started
        result = {k: np.asarray(found[k]).tolist() for k in ("rois", "class_ids", "scores")}
        protocol.write(json.dumps({"seconds": seconds, "size": image.shape[:2], **result}) + "\n")


def load_engine(engine: str, weights: str, overrides: dict[str, Any], src: str | None) -> Callable:
    if engine == "ours":
        from object_detection_utils.models.matterport import load_matterport

        return load_matterport(weights, overrides).detect
    import make_goldens

    settings = {k: np.array(v) if k in ARRAY_KEYS else v for k, v in overrides.items() if k != "CLASS_NAMES"}
    model, _ = make_goldens.build(Path(src), settings)
    make_goldens._keras_hdf5_format(model.keras_model)
    model.load_weights(weights, by_name=True)
    return lambda image: model.detect([image])[0]


class Engine:
    """One child process, loaded and waiting for pictures."""

    def __init__(self, name: str, python: str, weights: Path, overrides: dict, src: str | None, tmp: Path) -> None:
        self.name, self.log = name, tmp / f"{name}.log"
        command = [python, __file__, "--child", name, "--weights", str(weights), "--overrides", json.dumps(overrides)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process = subprocess.Popen(
            command + (["--reference-src", src] if src else []), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log.open("w"), text=True, env=env,
        )  # fmt: skip
        ready = self.receive()
        self.load, self.version = ready["load"], ready["version"]

    def receive(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            tail = self.log.read_text().strip().splitlines()[-15:]
            raise SystemExit(f"{self.name} engine stopped:\n" + "\n".join(tail))
        return json.loads(line)

    def run(self, picture: Path) -> dict[str, Any]:
        self.process.stdin.write(f"go {picture}\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self) -> float:
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        peak = self.receive()["peak_rss_mib"]
        self.process.wait()
        return peak


def compare(ours: dict, reference: dict) -> str:
    """Counts, then per reference detection its partner among ours (one to one, greedily: same class first, then
    box IoU, then the nearest score; boxes repeat across classes): class ids, max |score difference|, worst roi."""
    a, b = (np.array(r["rois"], dtype=np.float64).reshape(-1, 4) for r in (ours, reference))
    counts = f"{len(a)}/{len(b)}"
    if len(a) != len(b) or not len(a):
        return f"{counts:>11}"
    h = np.clip(np.minimum(b[:, None, 2], a[None, :, 2]) - np.maximum(b[:, None, 0], a[None, :, 0]), 0, None)
    w = np.clip(np.minimum(b[:, None, 3], a[None, :, 3]) - np.maximum(b[:, None, 1], a[None, :, 1]), 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
    iou = h * w / np.maximum(area(b)[:, None] + area(a)[None] - h * w, 1e-9)
    classes, scores = (np.array(ours[k]) for k in ("class_ids", "scores"))
    similarity = 2 * (np.array(reference["class_ids"])[:, None] == classes[None]) + iou
    similarity -= np.abs(np.array(reference["scores"])[:, None] - scores[None])
    match: list[int] = []
    for row in similarity:
        row[match] = -np.inf
        match.append(int(row.argmax()))
    same = np.array_equal(classes[match], reference["class_ids"])
    score = np.abs(scores[match] - reference["scores"]).max()
    roi = np.abs(a[match] - b).max()
    return f"{counts:>11}  {'same' if same else 'differ':>7}  {score:11.2e}  {roi:13.0f}"


def measure(engines: list[Engine], pictures: list[Path], rounds: int) -> tuple[dict, dict]:
    """The very first call's seconds per engine, and every answer per (engine, picture) over the rounds."""
    first = {e.name: e.run(pictures[0])["seconds"] for e in engines}
    for picture in pictures[1:]:  # the first call on each picture stays out of the medians
        for e in engines:
            e.run(picture)
    found: dict[tuple[str, Path], list[dict]] = {(e.name, p): [] for e in engines for p in pictures}
    for round_ in range(rounds):
        for i, picture in enumerate(pictures):
            turn = (round_ + i) % len(engines)
            for e in engines[turn:] + engines[:turn]:
                found[e.name, picture].append(e.run(picture))
    return first, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=("resnet50", "resnet101"))
    parser.add_argument("--config", help="matterport preset name or config file (default: NUM_CLASSES 81)")
    parser.add_argument("--weights", type=Path, help="a matterport .h5 (default: seeded weights)")
    parser.add_argument("--pictures", type=Path, nargs="*", default=[], help="pictures or folders of .jpg")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reference-python")
    parser.add_argument("--reference-src")
    parser.add_argument("--child", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--overrides", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, str(args.weights), args.overrides, args.reference_src)
    if bool(args.reference_python) != bool(args.reference_src):
        parser.error("--reference-python and --reference-src go together")

    from matplotlib import cbook

    from object_detection_utils.models.matterport import MatterportConfig

    config = MatterportConfig.load(args.config) if args.config else MatterportConfig(NAME="coco", NUM_CLASSES=81)
    config = config.replace(BACKBONE=args.backbone) if args.backbone else config
    overrides = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    overrides = {k: v for k, v in overrides.items() if v != getattr(MatterportConfig(), k)}
    pictures = [Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    for path in args.pictures:
        pictures += sorted(path.glob("*.jpg")) if path.is_dir() else [path]

    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or write_seeded_weights(Path(tmp) / "weights.h5", config)
        engines = [Engine("ours", sys.executable, weights, overrides, None, Path(tmp))]
        if args.reference_python:
            python, src = args.reference_python, args.reference_src
            engines.append(Engine("reference", python, weights, overrides, src, Path(tmp)))
        first, found = measure(engines, pictures, args.rounds)
        peaks = {e.name: e.close() for e in engines}

    print(f"matterport Mask R-CNN, {config.BACKBONE}, {config.NUM_CLASSES} classes, {config.IMAGE_RESIZE_MODE} "
          f"{config.IMAGE_MAX_DIM}, min confidence {config.DETECTION_MIN_CONFIDENCE}; weights: "
          f"{args.weights or f'seeded (seed {SEED})'}; {args.rounds} rounds; {os.cpu_count()} CPUs, load average "
          f"{load_average:.2f} at start, {os.getloadavg()[0]:.2f} at end")  # fmt: skip
    print(f"\n{'engine':10} {'load s':>7} {'first call s':>13} {'peak RSS MiB':>13}  versions")
    for e in engines:
        print(f"{e.name:10} {e.load:7.1f} {first[e.name]:13.2f} {peaks[e.name]:13.0f}  {e.version}")
    median = {key: statistics.median(r["seconds"] for r in runs) for key, runs in found.items()}
    header = f"\n{'picture':18} {'size':>9} {'ours s':>7} {'ref s':>7} {'ours/ref':>8}  {'detections':>11}"
    print(header + (f"  {'classes':>7}  {'max|Δscore|':>11}  worst roi Δpx" if len(engines) > 1 else ""))
    for p in pictures:
        ours = found["ours", p][-1]
        row = f"{p.name:18} {'{1}x{0}'.format(*ours['size']):>9} {median['ours', p]:7.2f}"
        if ("reference", p) in found:
            ratio = median["ours", p] / median["reference", p]
            row += f" {median['reference', p]:7.2f} {ratio:8.2f}  {compare(ours, found['reference', p][-1])}"
        else:
            row += f" {'-':>7} {'-':>8}  {len(ours['class_ids']):>11}"
        print(row)


def write_seeded_weights(path: Path, config: Any) -> Path:
    import matterport_h5 as mh5

    layout = mh5.Layout.named(config.BACKBONE, 5).with_num_classes(config.NUM_CLASSES)
    return mh5.write_matterport_h5(path, layout, mh5.calibrated_weights(layout, SEED))


if __name__ == "__main__":
    main()
