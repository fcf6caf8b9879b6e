#!/usr/bin/env python3
"""The tracking benchmark's detections: the trained shapes model run once on each generated sequence, cached.

    nice -n 10 python benchmarks/tracking_detections.py            # seeds 0-19, 150 frames each (~10 min)

Each sequence's detections (score >= 0.1, so ByteTrack's low-score stage has something to work with) go to
`<cache>/tracking-benchmark/seq_<seed>.jsonl`, one line per frame (boxes, scores, classes, RLE masks); every
tracker is then compared on exactly these detections.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from object_detection_utils import Segmenter
from object_detection_utils.coco_format import decode_mask, encode_mask
from object_detection_utils.detections import Detections
from object_detection_utils.io.atomic import atomic_file
from object_detection_utils.models.cache import cache_dir
from object_detection_utils.shapes import SHAPE_CLASSES
from object_detection_utils.shapes_video import generate_sequence

MODEL = REPO.parent / "shared" / "models" / "shapes-r18-128"
SEEDS = range(20)
FRAMES = 150
MIN_SCORE = 0.1


def cache_path(seed: int) -> Path:
    return cache_dir() / "tracking-benchmark" / f"seq_{seed}.jsonl"


def load_detections(seed: int) -> list[Detections]:
    """The cached detections of sequence `seed`, one `Detections` per frame."""
    frames = []
    for line in cache_path(seed).read_text().splitlines():
        record = json.loads(line)
        size = tuple(record["size"])
        masks = [decode_mask(rle) for rle in record["masks"]]
        frames.append(Detections(
            boxes=np.array(record["boxes"], np.float32).reshape(-1, 4),
            class_ids=np.array(record["class_ids"], np.int32),
            class_names=tuple(SHAPE_CLASSES[c] for c in record["class_ids"]),
            scores=np.array(record["scores"], np.float32),
            masks=np.stack(masks) if masks else np.zeros((0, *size), bool),
            image_size=size))
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    args = parser.parse_args()
    segmenter = Segmenter.load(str(MODEL), min_score=MIN_SCORE)
    for seed in args.seeds:
        path = cache_path(seed)
        if path.exists():
            continue
        sequence = generate_sequence(seed, FRAMES)
        with atomic_file(path, "w") as file:
            for image in sequence.frames:
                found = segmenter(image)
                file.write(json.dumps({
                    "size": list(found.image_size), "boxes": found.boxes.round(2).tolist(),
                    "scores": found.scores.round(4).tolist(), "class_ids": found.class_ids.tolist(),
                    "masks": [encode_mask(mask) for mask in found.masks]}) + "\n")
        print(f"seed {seed}: {path}", flush=True)


if __name__ == "__main__":
    main()
