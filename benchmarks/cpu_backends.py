#!/usr/bin/env python3
"""Today's path against the faster ones on a CPU, side by side in one run, each variant in its own process.

    flock /tmp/cpu.lock nice python benchmarks/cpu_backends.py --stand-in /tmp/random_r50_640
        [--new-export /tmp/random_r50_640_cpu ...] [--trained ../shared/models/shapes-r18-128]
        [--trained-new-export ...] [--pictures 6] [--ap 200] [--ap-max-shapes 4]
        [--backends tensorflow,openvino,openvino-bf16,openvino-int8,auto]

Variants, per model: TensorFlow on the export as it is (today's path), OpenVINO f32 on the same export (the
back end alone), OpenVINO bf16 where the CPU has it, int8 where it has VNNI and NNCF is installed, `auto` (the
fastest accepted: it finds the others' conversions in the run's cache and says which), and — with
--new-export, the same model exported with
the CPU-friendly test-time options — that export on TensorFlow and on OpenVINO (several new exports, e.g. one per
`mask_detections`, are labelled by their folder names). Each variant in its own process:
the load (with the conversion and the parity gate when OpenVINO converts: the cache is fresh for each run of
this benchmark, so that cost is shown once), the first call, the folder pipeline's pictures/s
(object_detection_utils.apps.batch.run_batch, what instance_segmentation_images.py runs), the process's peak
RSS, and with --ap N the mask AP on N held-out generated shapes pictures (seed 2, up to --ap-max-shapes shapes
each: more than the 4 it was trained on makes crowded pictures) for the trained model, and the agreement of each
variant's detections there with the first variant's (acceptance.entries_agreement: mask AP against today's
f32 detections as ground truth). Then
seconds per picture of all variants in one process, taking turns picture by picture, so that other processes
on a shared machine slow them alike. Ratios are against the first variant of each model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
COCO_PICTURES = SHARED / "data" / "coco" / "val2017"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def picture_folder(kind: str, count: int, into: Path) -> Path:
    """COCO val2017 pictures for the zoo-scale model (generated 480x640 shapes without them); 128x128 generated
    shapes for the shapes model."""
    folder = into / kind
    if folder.is_dir():
        return folder
    folder.mkdir(parents=True)
    files = sorted(COCO_PICTURES.glob("*.jpg"))[:count] if kind == "zoo" else []
    if files:
        for file in files:
            (folder / file.name).symlink_to(file)
        return folder
    import numpy as np

    from object_detection_utils.io.images import write_image
    from object_detection_utils.shapes import random_shapes_picture

    rng = np.random.default_rng(1)
    size = (480, 640) if kind == "zoo" else (128, 128)
    for index in range(count):
        write_image(folder / f"shapes_{index:03d}.png", random_shapes_picture(rng, size).image)
    return folder


def run_variant(model_path: Path, backend: str, folder: Path, ap_dataset: Path | None,
                calibration: Path | None = None) -> dict:
    sys.path.insert(0, str(REPO))
    from object_detection_utils import Segmenter, load_model, read_image
    from object_detection_utils.apps.batch import BatchOptions, Picture, PipelineOptions, run_batch
    from object_detection_utils.models.cache import cache_dir

    files = sorted(folder.iterdir())
    images = [read_image(path) for path in files]
    started = time.time()
    start = time.perf_counter()
    model = load_model(model_path, backend=backend, warm_up=False, calibration=calibration)
    load = time.perf_counter() - start
    start = time.perf_counter()
    model.predict(images[0])
    first = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        options = BatchOptions(output_dir=Path(out), coco_json=Path(out) / "results.json")
        report = run_batch(Segmenter(model), [Picture(p, p.name) for p in files], options,
                           PipelineOptions(progress=False))
        throughput = report.done / report.seconds
    result = {"backend": model.backend, "load_s": load, "first_call_s": first, "pictures_per_s": throughput, "peak_rss_mb": peak_rss_mb()}
    gates = [json.loads(p.read_text()) for p in (cache_dir() / "openvino").glob("*/gate.json")
             if p.stat().st_mtime >= started]
    if gates:  # auto may convert several precisions: their times add up
        result.update(converted_now=True, conversion_s=round(sum(g.get("conversion_seconds", 0) for g in gates), 1),
                      gate="; ".join(g.get("reason", "?") for g in gates))
    if ap_dataset is not None:
        from object_detection_utils.training.tfrecords import CocoDataset
        from object_detection_utils.training.validation import validate

        dataset = CocoDataset(ap_dataset / "annotations.json", ap_dataset / "images")
        validation = validate(model, dataset, progress=False)
        result["mask_ap"] = validation.scores["mask_AP"]
        result["box_ap"] = validation.scores["box_AP"]
        entries = ap_dataset.parent / f"entries_{os.getpid()}.json"
        entries.write_text(json.dumps(validation.predictions), encoding="utf-8")
        result["entries"] = str(entries)
    return result


def agreement_with(baseline: dict, variant: dict, ap_dataset: Path) -> str:
    """The variant's agreement mask AP on the held-out pictures with the baseline's detections as ground truth."""
    from object_detection_utils.models.backends.acceptance import entries_agreement

    images = json.loads((ap_dataset / "annotations.json").read_text(encoding="utf-8"))["images"]
    reference, candidate = (json.loads(Path(r["entries"]).read_text(encoding="utf-8")) for r in (baseline, variant))
    mask_ap, _ = entries_agreement([{k: i[k] for k in ("id", "height", "width")} for i in images], reference, candidate)
    return "-" if mask_ap is None else f"{mask_ap:.4f}"


def run_interleaved(variants: list[tuple[str, str]], folder: Path, rounds: int,
                    calibration: Path | None = None) -> list[dict]:
    """Seconds per picture of every variant in one process, taking turns picture by picture (the order rotating),
    so that load from other processes falls on all of them alike. Conversions come from the cache."""
    sys.path.insert(0, str(REPO))
    from object_detection_utils import Segmenter, load_model, read_image

    images = [read_image(path) for path in sorted(folder.iterdir())]
    # The model call as the scripts make it (Segmenter.predict: the default --min-score 0.5 tells an engine that
    # can which detections need masks), without the mask pasting.
    models = [Segmenter(load_model(path, backend=backend, calibration=calibration)) for path, backend in variants]
    times: list[list[float]] = [[] for _ in models]
    for turn in range(rounds * len(images)):
        image = images[turn % len(images)]
        for offset in range(len(models)):
            index = (turn + offset) % len(models)
            start = time.perf_counter()
            models[index].predict(image)
            times[index].append(time.perf_counter() - start)
    return [{"backend": m.model.backend, "median_s": statistics.median(t), "min_s": min(t),
             "ratios": [a / b for a, b in zip(times[0], t)]} for m, t in zip(models, times)]


def spawn(arguments: list, cache: Path) -> dict | list:
    command = [sys.executable, __file__, "--variant", json.dumps(arguments)]
    env = {**os.environ, "INSTANCE_SEGMENTATION_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def new_exports(paths: list[Path]) -> list[tuple[str, Path]]:
    """(label, path): "CPU options" for one, each folder's name for several."""
    return [("CPU options" if len(paths) == 1 else path.name, path) for path in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stand-in", type=Path, help="the zoo-scale export (instance_segmentation_train.py random-model)")
    parser.add_argument("--new-export", type=Path, nargs="+", default=[],
                        help="the same model exported with the CPU test-time options (one or more)")
    parser.add_argument("--trained", type=Path, default=SHARED / "models" / "shapes-r18-128")
    parser.add_argument("--trained-new-export", type=Path, nargs="+", default=[],
                        help="the trained model exported with the CPU options (one or more)")
    parser.add_argument("--pictures", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the pictures in the interleaved run")
    parser.add_argument("--ap", type=int, default=0, help="held-out shapes pictures for the trained model's mask AP")
    parser.add_argument("--ap-max-shapes", type=int, default=4, help="shapes per held-out picture at most")
    parser.add_argument("--backends", help="comma-separated back ends (default: tensorflow, openvino and "
                        "openvino-bf16 where the CPU has bf16)")
    parser.add_argument("--calibration", type=Path, help="pictures bf16 and int8 are judged on (default: the "
                        "model's examples and generated ones; the stand-in's own pictures make its conversions quick)")
    parser.add_argument("--today-backends", help="comma-separated back ends for today's export (default: --backends)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        arguments = json.loads(args.variant)
        if arguments[0] == "interleaved":
            _, variants, folder, rounds, *calibration = arguments
            calibration = Path(calibration[0]) if calibration and calibration[0] else None
            print(json.dumps(run_interleaved([tuple(v) for v in variants], Path(folder), rounds, calibration)))
        else:
            model, backend, folder, ap, *calibration = arguments
            calibration = Path(calibration[0]) if calibration and calibration[0] else None
            print(json.dumps(run_variant(Path(model), backend, Path(folder), Path(ap) if ap else None, calibration)))
        return 0

    sys.path.insert(0, str(REPO))
    from object_detection_utils.models.backends import cpu_has_bf16, cpu_has_int8, nncf_installed

    backends = (args.backends.split(",") if args.backends
                else ["tensorflow", "openvino"] + (["openvino-bf16"] if cpu_has_bf16() else [])
                + (["openvino-int8"] if cpu_has_int8() and nncf_installed() else []) + ["auto"])
    today_backends = args.today_backends.split(",") if args.today_backends else backends
    calibration = None if args.calibration is None else str(args.calibration.resolve())
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; bf16: {cpu_has_bf16()}; "
          f"int8 (VNNI): {cpu_has_int8()}")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        groups = []
        if args.stand_in:
            exports = [("today's export", args.stand_in)] + new_exports(args.new_export)
            groups.append(("zoo-scale stand-in", exports, picture_folder("zoo", args.pictures, work), None))
        if args.trained and args.trained.is_dir():
            ap = None
            if args.ap:
                from object_detection_utils.shapes import write_shapes_dataset

                ap = work / "held_out"
                write_shapes_dataset(ap, args.ap, seed=2, max_shapes=args.ap_max_shapes, progress=False)
            exports = [("today's export", args.trained)] + new_exports(args.trained_new_export)
            groups.append(("trained shapes model", exports, picture_folder("shapes", args.pictures, work), ap))
        for title, exports, folder, ap in groups:
            print(f"\n{title} ({len(list(folder.iterdir()))} pictures from {folder.name}); each variant in its own "
                  "process:")
            print("| export | back end | first call s | load s (conversion s) | folder pictures/s | × | peak RSS MB "
                  "| mask AP | box AP | agreement with f32 | gate |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            variants, baseline = [], None
            for number, (label, path) in enumerate(exports):
                for backend in today_backends if number == 0 else backends:
                    r = spawn([str(path), backend, str(folder), str(ap) if ap else None, calibration], work / "cache")
                    if "error" in r:
                        print(f"| {label} | {backend} | failed: {r['error']} |")
                        continue
                    variants.append((label, str(path), backend))
                    baseline = baseline or r
                    conversion = f" ({r['conversion_s']})" if r.get("converted_now") else ""
                    mask_ap = f"{r['mask_ap']:.4f}" if "mask_ap" in r else "-"
                    box_ap = f"{r['box_ap']:.4f}" if "box_ap" in r else "-"
                    agreement = agreement_with(baseline, r, ap) if "entries" in r else "-"
                    name = f"{backend} → {r['backend']}" if backend == "auto" else r["backend"]
                    print(f"| {label} | {name} | {r['first_call_s']:.2f} | {r['load_s']:.1f}{conversion} | "
                          f"{r['pictures_per_s']:.2f} | {r['pictures_per_s'] / baseline['pictures_per_s']:.2f} | "
                          f"{r['peak_rss_mb']:.0f} | {mask_ap} | {box_ap} | {agreement} | {r.get('gate', '-')} |",
                          flush=True)
            found = spawn(["interleaved", [v[1:] for v in variants], str(folder), args.rounds, calibration],
                          work / "cache")
            if "error" in found:
                print(f"interleaved run failed: {found['error']}")
                continue
            print(f"\nseconds per picture, all variants in one process taking turns ({args.rounds} rounds; "
                  f"load average now {os.getloadavg()[0]:.1f}):")
            print("| export | back end | median s | best s | × (median of per-picture ratios) | × (best) |")
            print("|---|---|---|---|---|---|")
            for (label, _, _), r in zip(variants, found):
                print(f"| {label} | {r['backend']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                      f"{statistics.median(r['ratios']):.2f} | {found[0]['min_s'] / r['min_s']:.2f} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
