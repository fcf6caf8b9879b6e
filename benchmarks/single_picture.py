#!/usr/bin/env python3
"""Time one picture through a model: load, warm-up, first call, steady state; peak memory.

    python benchmarks/single_picture.py --model PATH_OR_NAME [-i picture.jpg] [--repeat 10]

Also runs the same picture with warm-up disabled, so the cost the warm-up removes from the first user
picture is measured side by side in one run. Prints peak RSS of this process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from object_detection_utils import load_model, read_image, run_inference_for_single_image, sample_image_path  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("-i", "--image", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    image = read_image(args.image or sample_image_path())
    rss_before = peak_rss_mib()

    start = time.perf_counter()
    cold = load_model(args.model, warm_up=False)
    cold_load = time.perf_counter() - start
    start = time.perf_counter()
    run_inference_for_single_image(cold, image)
    cold_first = time.perf_counter() - start

    start = time.perf_counter()
    model = load_model(args.model)  # with warm-up, as the scripts load it
    warm_load = time.perf_counter() - start
    start = time.perf_counter()
    detections = run_inference_for_single_image(model, image)
    warm_first = time.perf_counter() - start
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        run_inference_for_single_image(model, image)
        times.append(time.perf_counter() - start)
    steady = statistics.median(times)

    print(f"model {model.name} ({model.kind}), picture {image.shape[1]}x{image.shape[0]}, {len(detections)} instances")
    print(f"load without warm-up      {cold_load:8.3f} s, then first picture {cold_first:8.3f} s")
    print(f"load with warm-up         {warm_load:8.3f} s (warm-up {model.warmup_seconds:.3f} s), "
          f"then first picture {warm_first:8.3f} s")
    print(f"steady state (median of {args.repeat}) {steady:8.3f} s per picture ({1 / steady:.2f} pictures/s)")
    print(f"first picture / steady: without warm-up {cold_first / steady:.2f}x, with warm-up {warm_first / steady:.2f}x")
    print(f"peak RSS {peak_rss_mib():.0f} MiB (before loading: {rss_before:.0f} MiB)")


if __name__ == "__main__":
    main()
