#!/usr/bin/env python3
"""Our vectorised mask reframing against the TF OD API's crop_and_resize path, side by side in one run.

    nice -n 10 python benchmarks/reframe_parity.py [--cases 200] [--repeats 15]

1. Parity on random cases: per-instance IoU and exact pixel equality.
2. Speed at 1080p with 20 instances (33x33 and 15x15 box masks): median seconds per picture, ratio.
3. The COCO subset in ../shared/data (when present), with a simulated model that outputs every true instance
   as a 33x33 box mask: box and mask AP both ways, and the post-processing time per picture.
Ends with the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
from reference_postprocess import (  # noqa: E402
    mask_ious,
    random_reframe_case,
    reference_detections,
    reference_image_masks,
)

from object_detection_utils import detections_from_outputs  # noqa: E402
from object_detection_utils.coco_format import detections_to_coco  # noqa: E402
from object_detection_utils.evaluation import evaluate_results, load_ground_truth  # noqa: E402
from object_detection_utils.label_map import LabelMap  # noqa: E402
from object_detection_utils.masks import reframe_box_masks  # noqa: E402

COCO_ANNOTATIONS = REPO.parent / "shared" / "data" / "coco" / "annotations" / "instances_val2017.json"


def parity(cases: int) -> None:
    rng = np.random.default_rng(0)
    ious, identical, differing_pixels, total_pixels = [], 0, 0, 0
    for _ in range(cases):
        height, width = (int(v) for v in rng.integers(1, 400, size=2))
        box_masks, boxes = random_reframe_case(rng, int(rng.integers(1, 6)), int(rng.choice([15, 33])))
        ours = reframe_box_masks(box_masks, boxes, height, width)
        reference = reference_image_masks(box_masks, boxes, height, width)
        ious.extend(mask_ious(ours, reference))
        identical += int((ours == reference).all(axis=(1, 2)).sum())
        differing_pixels += int((ours != reference).sum())
        total_pixels += ours.size
    print(f"parity: {cases} random cases, {len(ious)} instances: {identical} identical pixel for pixel, "
          f"min IoU {min(ious):.6f}, {differing_pixels} of {total_pixels} pixels differ")


def speed(repeats: int) -> None:
    rng = np.random.default_rng(1)
    height, width = 1080, 1920
    for mask_size in (33, 15):
        box_masks, boxes = random_reframe_case(rng, 20, mask_size)
        boxes = np.clip(boxes, 0.0, 1.0)
        reference_image_masks(box_masks, boxes, height, width)  # TensorFlow's first call builds kernels
        times = {"ours": [], "reference": []}
        for _ in range(repeats):  # interleaved, so both see the same machine load
            start = time.perf_counter()
            ours = reframe_box_masks(box_masks, boxes, height, width)
            times["ours"].append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = reference_image_masks(box_masks, boxes, height, width)
            times["reference"].append(time.perf_counter() - start)
        same = bool((ours == reference).all())
        ours_s, reference_s = statistics.median(times["ours"]), statistics.median(times["reference"])
        print(f"speed: 1080p, 20 instances, {mask_size}x{mask_size} masks, median of {repeats}: "
              f"ours {ours_s * 1000:.1f} ms, crop_and_resize {reference_s * 1000:.1f} ms, "
              f"ratio {reference_s / ours_s:.2f}x; identical masks: {same}")


def coco_ap() -> None:
    if not COCO_ANNOTATIONS.is_file():
        print(f"coco: skipped, {COCO_ANNOTATIONS} is absent")
        return
    from simulated_model import simulated_outputs

    ground_truth = load_ground_truth(COCO_ANNOTATIONS)
    label_map = LabelMap.coco()
    entries = {"ours": [], "reference": []}
    seconds = {"ours": 0.0, "reference": 0.0}
    paths = {"ours": detections_from_outputs, "reference": reference_detections}
    ious = []
    for image_id in sorted(ground_truth.imgs):
        outputs = simulated_outputs(ground_truth, image_id)
        size = (ground_truth.imgs[image_id]["height"], ground_truth.imgs[image_id]["width"])
        found = {}
        for name, path in paths.items():
            start = time.perf_counter()
            found[name] = path(outputs, size, label_map, min_score=0.0)
            seconds[name] += time.perf_counter() - start
            entries[name] += detections_to_coco(found[name], image_id)
        ious.extend(mask_ious(found["ours"].masks, found["reference"].masks))
    runs = {name: evaluate_results(ground_truth, entries[name], name) for name in paths}
    count = len(ground_truth.imgs)
    print(f"coco: {count} pictures, {len(ious)} instances, simulated model with 33x33 masks; "
          f"per-instance mask IoU min {min(ious):.6f}, identical {sum(i == 1.0 for i in ious)}")
    for name, run in runs.items():
        print(f"coco: {name:9} box AP {run.ap('bbox'):.6f}  mask AP {run.ap('segm'):.6f}  "
              f"mask AP50 {run.ap('segm', 'AP50'):.6f}  mask AP75 {run.ap('segm', 'AP75'):.6f}  "
              f"post-processing {seconds[name] / count * 1000:.1f} ms/picture")
    print(f"coco: all metrics identical: {runs['ours'].metrics == runs['reference'].metrics}; "
          f"post-processing ratio {seconds['reference'] / seconds['ours']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    parity(args.cases)
    speed(args.repeats)
    coco_ap()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {peak / 1024:.0f} MiB" if sys.platform != "darwin" else f"peak RSS {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
