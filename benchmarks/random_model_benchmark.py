#!/usr/bin/env python3
"""Time per picture of exported Mask R-CNN models (e.g. random-weights zoo-scale ones), side by side in one run.

    python instance_segmentation_train.py random-model /work/models-out/random_r50_640 --input-size 640
    nice -n 10 python benchmarks/random_model_benchmark.py /work/models-out/random_r50_640 [MORE MODELS] --pictures 10

For each model, on the same real pictures (the shared COCO val2017 ones, else generated shapes): seconds per
picture for the graph alone (`model.predict`) and for the whole `run_inference_for_single_image` (graph plus
our mask reframing), ratios against the first model, load time and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from object_detection_utils import load_model, read_image, run_inference_for_single_image  # noqa: E402

SHARED_PICTURES = REPO.parent / "shared" / "data" / "coco" / "val2017"


def pictures(count: int) -> list[np.ndarray]:
    files = sorted(SHARED_PICTURES.glob("*.jpg"))[:count]
    if files:
        return [read_image(f) for f in files]
    from object_detection_utils.shapes import random_shapes_picture

    print(f"{SHARED_PICTURES} absent: timing generated 480x640 shapes pictures instead")
    rng = np.random.default_rng(0)
    return [random_shapes_picture(rng, (480, 640)).image for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="exported model folders")
    parser.add_argument("--pictures", type=int, default=10, help="pictures per model (default: %(default)s)")
    args = parser.parse_args()

    images = pictures(args.pictures)
    sizes = sorted({im.shape[:2] for im in images})
    print(f"{len(images)} pictures, sizes {sizes[0]}..{sizes[-1]}")
    rows = []
    for folder in args.models:
        start = time.perf_counter()
        model = load_model(folder)  # includes one warm-up call
        load = time.perf_counter() - start
        graph, full, found = [], [], []
        for image in images:
            start = time.perf_counter()
            model.predict(image)
            graph.append(time.perf_counter() - start)
            start = time.perf_counter()
            detections = run_inference_for_single_image(model, image, min_score=0.0)
            full.append(time.perf_counter() - start)
            found.append(len(detections))
        rows.append((folder.name, load, statistics.median(graph), statistics.median(full), statistics.mean(found)))
        print(f"{folder.name}: load {load:.1f}s, graph {statistics.median(graph):.2f}s/picture "
              f"(mean {statistics.mean(graph):.2f}), full inference {statistics.median(full):.2f}s/picture "
              f"(mean {statistics.mean(full):.2f}), {statistics.mean(found):.0f} instances/picture at min score 0")
    base = rows[0]
    for name, _, graph_s, full_s, _ in rows:
        print(f"ratio {name} / {base[0]}: graph {graph_s / base[2]:.2f}x, full {full_s / base[3]:.2f}x; "
              f"post-processing share of full: {max(full_s - graph_s, 0) / full_s:.1%}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
