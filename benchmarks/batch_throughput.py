#!/usr/bin/env python3
"""Folder throughput, side by side in one run on the same pictures and model, each variant in its own process:

  bare   model.predict on pictures decoded beforehand (the ceiling: the model never waits)
  batch  our pipeline (object_detection_utils.apps.batch.run_batch: decode, model, draw, encode, write overlays,
         journal and the run's COCO JSON)
  seed   a seed-style loop: per picture, parse and import the frozen graph into a new tf.compat.v1.Session,
         run it, then post-process, draw and write, all in sequence

Prints pictures/s, the ratios batch/bare and batch/seed, and each process's peak RSS. With --large N it also
runs the batch variant on a folder of N pictures (links to the same files) to show that memory stays flat.

    python benchmarks/batch_throughput.py                       # the costly random-weight model (built, cached)
    python benchmarks/batch_throughput.py --model tiny          # the tests' tiny model
    python benchmarks/batch_throughput.py --model path/to/model --limit 40 --large 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PICTURES = REPO.parent / "shared" / "data" / "coco" / "val2017"
VARIANTS = ("bare", "batch", "seed")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def resolve_model(spec: str) -> Path:
    sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]
    if spec == "costly":
        from costly_model import costly_model_dir

        return costly_model_dir()
    if spec == "tiny":
        import tiny_model

        from object_detection_utils.models.cache import cache_dir

        folder = cache_dir() / "benchmark" / "tiny_model"
        if not (folder / "frozen_inference_graph.pb").is_file():
            tiny_model.build_frozen_graph(folder)
        return folder
    return Path(spec)


def picture_files(folder: Path, limit: int | None) -> list[Path]:
    from object_detection_utils.apps.batch import find_pictures

    return [p.source for p in find_pictures([folder])][:limit]


# ------------------------------------------------------------------------------------------ one variant


def run_variant(variant: str, model_path: Path, folder: Path, limit: int | None) -> dict:
    sys.path.insert(0, str(REPO))
    from object_detection_utils import Segmenter, load_model, read_image

    files = picture_files(folder, limit)
    if variant == "seed":
        seconds = _seed_loop(model_path, files)
    else:
        model = load_model(model_path)
        if variant == "bare":
            images = [read_image(path) for path in files]
            start = time.perf_counter()
            for image in images:
                model.predict(image)
            seconds = time.perf_counter() - start
        else:
            from object_detection_utils.apps.batch import BatchOptions, Picture, PipelineOptions, run_batch

            with tempfile.TemporaryDirectory() as out:
                options = BatchOptions(output_dir=Path(out), coco_json=Path(out) / "results.json")
                pictures = [Picture(path, path.name) for path in files]
                report = run_batch(Segmenter(model), pictures, options, PipelineOptions(progress=False))
                if report.done != len(files):
                    raise SystemExit(f"batch did {report.done} of {len(files)} pictures: {report.failures[:3]}")
                seconds = report.seconds
    return {"variant": variant, "pictures": len(files), "seconds": seconds,
            "pictures_per_second": len(files) / seconds, "peak_rss_mb": peak_rss_mb()}


def _seed_loop(model_path: Path, files: list[Path]) -> float:
    """As the seed scripts did: a new graph and session for every picture, then the rest in sequence."""
    import tensorflow as tf

    from object_detection_utils import detections_from_outputs, draw_detections, read_image, write_image
    from object_detection_utils.label_map import LabelMap
    from object_detection_utils.model_contract import FROZEN_GRAPH_NAME, MASK_OUTPUT, REQUIRED_OUTPUTS

    graph_file = model_path / FROZEN_GRAPH_NAME if model_path.is_dir() else model_path
    if not graph_file.is_file():
        raise SystemExit(f"{model_path}: the seed-style loop needs a TF1 frozen graph")
    label_map = LabelMap.coco()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        for path in files:
            image = read_image(path)
            graph = tf.Graph()
            with graph.as_default():
                graph_def = tf.compat.v1.GraphDef()
                graph_def.ParseFromString(graph_file.read_bytes())
                tf.compat.v1.import_graph_def(graph_def, name="")
                names = [*REQUIRED_OUTPUTS, *([MASK_OUTPUT] if any(n.name == MASK_OUTPUT for n in graph_def.node)
                                              else [])]
                with tf.compat.v1.Session(graph=graph) as session:
                    values = session.run([f"{name}:0" for name in names], {"image_tensor:0": image[None]})
            detections = detections_from_outputs(dict(zip(names, values)), image.shape[:2], label_map)
            write_image(Path(out) / path.name, draw_detections(image, detections))
        return time.perf_counter() - start


# ------------------------------------------------------------------------------------------ side by side


def spawn(variant: str, model_path: Path, folder: Path, limit: int | None) -> dict:
    command = [sys.executable, __file__, "--variant", variant, "--model", str(model_path),
               "--pictures", str(folder)] + (["--limit", str(limit)] if limit else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def large_folder(pictures: list[Path], count: int, into: Path) -> Path:
    for i in range(count):
        source = pictures[i % len(pictures)]
        (into / f"{i:06d}{source.suffix}").symlink_to(source.resolve())
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="costly", help="'costly' (default), 'tiny', or a model path")
    parser.add_argument("--pictures", type=Path, default=DEFAULT_PICTURES, help="folder of pictures")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pictures")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all variants; best kept (default: 2)")
    parser.add_argument("--large", type=int, default=0, help="also run batch on a folder of N pictures")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of %(default)s")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in a child process
    args = parser.parse_args()

    model_path = resolve_model(args.model)
    if args.variant:
        print(json.dumps(run_variant(args.variant, model_path, args.pictures, args.limit)))
        return
    if not args.pictures.is_dir():
        raise SystemExit(f"{args.pictures}: no such folder of pictures")

    # Rounds alternate the variants, and each keeps its best round: the machine may be shared, and a burst of
    # someone else's work then slows one round, not one variant.
    results: dict[str, dict] = {}
    for round_number in range(1, args.rounds + 1):
        for variant in args.variants.split(","):
            r = spawn(variant, model_path, args.pictures, args.limit)
            print(f"round {round_number} {variant:>5}: {r['pictures']} pictures in {r['seconds']:.2f}s = "
                  f"{r['pictures_per_second']:.3f} pictures/s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
            if variant not in results or r["pictures_per_second"] > results[variant]["pictures_per_second"]:
                results[variant] = r
    print(f"best of {args.rounds} round(s), model {model_path}:")
    for variant, r in results.items():
        print(f"  {variant:>5}: {r['pictures_per_second']:.3f} pictures/s, peak RSS {r['peak_rss_mb']:.0f} MB")
    if "batch" in results:
        for other in ("bare", "seed"):
            if other in results:
                ratio = results["batch"]["pictures_per_second"] / results[other]["pictures_per_second"]
                print(f"  batch / {other} throughput: {ratio:.3f}")
    if args.large:
        with tempfile.TemporaryDirectory() as folder:
            big = large_folder(picture_files(args.pictures, args.limit), args.large, Path(folder))
            r = spawn("batch", model_path, big, None)
            print(f" large: batch on {r['pictures']} pictures: {r['pictures_per_second']:.3f} pictures/s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
