"""Segment every picture of a folder (or glob) into an output folder: overlays, mask PNGs, COCO JSON, summary.

    python instance_segmentation_images.py                                  # images/ -> segmented_images/
    python instance_segmentation_images.py -i photos -r -o out --masks --coco-json out/results.json
    python instance_segmentation_images.py -i 'shots/**/*.png' --classes person --summary out/summary.csv
    python instance_segmentation_images.py -i new_photos --export-labels label-studio out/ls   # pre-annotations

A rerun skips the pictures whose outputs are complete (--overwrite redoes them); Ctrl+C stops after the
pictures in flight are written. Bad files are reported and skipped; the exit code is 1 if any failed.

With --ray (pip install -e ".[ray]") the same job runs on Ray Data, on this machine or a cluster, and -i/-o
may be remote (s3://...):

    python instance_segmentation_images.py --ray -i photos -o out                  # a local Ray instance
    python instance_segmentation_images.py --ray auto -i s3://bucket/photos -o s3://bucket/out --masks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..label_exports import DEFAULT_TOLERANCE, FORMATS, SHAPES, ExportOptions, check_export
from ..predictor import SegmenterSpec
from . import cli
from .batch import BatchOptions, BatchReport, PipelineOptions, find_pictures, run_batch
from .batch.output_folder import claim_output_folder
from .batch.remote_files import find_pictures_anywhere, is_remote, location
from .interrupts import stop_on_interrupt

DEFAULT_INPUT = "images"
STOP_NOTICE = "stopping after the pictures in flight (Ctrl+C again to stop now)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", action="append", default=None,
                        help="a folder, a glob pattern (quote it; ** recurses) or a picture; repeatable "
                             f"(default: {DEFAULT_INPUT}/)")
    parser.add_argument("-o", "--output", type=location, default=Path("segmented_images"),
                        help="output folder; subfolders mirror the input's (default: %(default)s)")
    parser.add_argument("-r", "--recursive", action="store_true", help="also process the folders' subfolders")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--no-overlay", action="store_true", help="do not write the drawn pictures")
    outputs.add_argument("--masks", action="store_true",
                         help="write one PNG per instance into <output>/<picture>.masks/")
    outputs.add_argument("--coco-json", type=location, default=None,
                         help="write the run's detections as one COCO JSON (boxes, RLE masks, scores)")
    outputs.add_argument("--summary", type=location, default=None,
                         help="write one line per picture: a .csv, or JSON lines for any other suffix")
    outputs.add_argument("--export-labels", nargs=2, metavar=("FORMAT", "DIR"), default=None,
                         help="also write the detections as pre-annotations for a labelling tool into DIR: "
                              f"{', '.join(FORMATS)} (docs/LABELS.md)")
    outputs.add_argument("--export-shapes", choices=SHAPES, default="masks",
                         help="exported instances as pixel-exact masks or editable polygons (YOLO: always "
                              "polygons) (default: %(default)s)")
    outputs.add_argument("--polygon-tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="PIXELS",
                         help="polygon simplification; up to 0.25 keeps every pixel (default: %(default)s)")
    outputs.add_argument("--label-studio-url", default=ExportOptions.image_url, metavar="TEMPLATE",
                         help="Label Studio tasks' picture URL, {name} the picture's relative path "
                              "(default: %(default)s, its local-files storage)")
    outputs.add_argument("--overwrite", action="store_true", help="redo pictures whose outputs are complete")
    outputs.add_argument("--jpeg-quality", type=int, default=95, help="quality of JPEG overlays (default: 95)")
    tuning = parser.add_argument_group("pipeline")
    tuning.add_argument("--readers", type=int, default=2, help="picture-decoding threads (default: 2)")
    tuning.add_argument("--writers", type=int, default=2, help="drawing/encoding/writing threads (default: 2)")
    tuning.add_argument("--prefetch", type=int, default=4, help="decoded pictures waiting for the model (default: 4)")
    tuning.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray = parser.add_argument_group("Ray Data (pip install -e \".[ray]\"; docs/BATCH.md, docs/SCALE.md)")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on Ray Data: alone, a local Ray instance (or $RAY_ADDRESS's cluster); 'auto' or "
                          "'ray://host:10001' joins a cluster. -i and -o may then be s3:// or other remote URIs")
    ray.add_argument("--ray-actors", type=int, default=None, metavar="N",
                     help="model actors, one model each (default: one per GPU, else one per node)")
    cli.add_picture_arguments(parser)
    cli.add_model_arguments(parser)
    cli.add_tile_arguments(parser)
    args = cli.parse_args(parser, argv)
    if args.no_overlay and not (args.masks or args.coco_json or args.summary or args.export_labels):
        parser.error("--no-overlay leaves nothing to write: add --masks, --coco-json, --summary or --export-labels")
    remote = [str(place) for place in (*(args.input or []), args.output, args.coco_json, args.summary)
              if place is not None and is_remote(place)]
    if remote and args.ray is None:
        parser.error(f"{remote[0]}: remote files are read and written by the Ray job: add --ray")
    if remote and args.export_labels:
        parser.error(f"{remote[0]}: --export-labels takes local pictures and a local folder")
    if args.polygon_tolerance < 0:
        parser.error("--polygon-tolerance must be 0 or more")
    return args


def input_specs(args: argparse.Namespace) -> list[str]:
    """-i as given; by default images/ when it exists (without it, `no_pictures` says what to do)."""
    if args.input:
        return args.input
    return [DEFAULT_INPUT] if Path(DEFAULT_INPUT).is_dir() else []


def no_pictures(args: argparse.Namespace) -> int:
    if args.input:
        print(f"error: no pictures found in {', '.join(args.input)}", file=sys.stderr)
    else:
        print(f"error: no pictures found in {DEFAULT_INPUT}/ (the default input): put pictures there, or pass "
              f"-i FOLDER_OR_GLOB (e.g. -i photos/ or -i 'shots/**/*.jpg')", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ray is not None:
        return main_ray(args)
    pictures = find_pictures(input_specs(args), recursive=args.recursive, exclude=args.output)
    if not pictures:
        return no_pictures(args)
    with claim_output_folder(args.output):  # unwritable or busy: say so before the slow model load
        pass
    check_label_export(args)
    segmenter = cli.segmenter_from_args(args)
    pipeline = PipelineOptions(args.readers, args.writers, args.prefetch, progress=not args.no_progress)
    with stop_on_interrupt(STOP_NOTICE) as stop:
        report = run_batch(segmenter, pictures, batch_options(args), pipeline, stop=stop)
    return finish(report, cli.segmenter_label(segmenter), args)


def main_ray(args: argparse.Namespace) -> int:
    """The same run on Ray Data (object_detection_utils/apps/batch/ray_job.py)."""
    from .batch.ray_cluster import connect
    from .batch.ray_job import run_ray_batch

    pictures = find_pictures_anywhere(input_specs(args), recursive=args.recursive, exclude=args.output)
    if not pictures:
        return no_pictures(args)
    if not is_remote(args.output):
        with claim_output_folder(args.output):
            pass
    check_label_export(args)
    spec = SegmenterSpec.from_args(args)
    name = cli.segmenter_label(spec.describe())  # an unknown model or class, a bad tile: one line, before Ray starts
    connect(args.ray or None)
    with stop_on_interrupt(STOP_NOTICE) as stop:
        report = run_ray_batch(spec, pictures, batch_options(args), actors=args.ray_actors,
                               progress=not args.no_progress, stop=stop,
                               log=lambda line: print(line, file=sys.stderr))
    return finish(report, name, args)


def check_label_export(args: argparse.Namespace) -> None:
    """An unknown --export-labels format or an unwritable folder: one line, before the model loads."""
    if args.export_labels:
        check_export(args.export_labels[0], args.export_labels[1])


def batch_options(args: argparse.Namespace) -> BatchOptions:
    return BatchOptions(
        output_dir=args.output,
        overlay=not args.no_overlay,
        masks=args.masks,
        coco_json=args.coco_json,
        summary=args.summary,
        overwrite=args.overwrite,
        jpeg_quality=args.jpeg_quality,
        max_pixels=args.max_pixels,
        export_labels=(args.export_labels[0], Path(args.export_labels[1])) if args.export_labels else None,
        export_options=ExportOptions(shapes=args.export_shapes, tolerance=args.polygon_tolerance,
                                     model_version=Path(args.model).name, image_url=args.label_studio_url),
    )


def finish(report: BatchReport, model_name: str, args: argparse.Namespace) -> int:
    """Print the summary line and the failures; the exit code."""
    print(f"{report.summary_line()} with {model_name}; outputs in {args.output}", file=sys.stderr)
    for _, reason in report.failures:
        print(f"  failed: {reason}", file=sys.stderr)
    if report.error:
        print(f"error: {report.error}; the finished pictures are kept, run again to resume", file=sys.stderr)
        return 2
    if report.interrupted:
        return 130
    return 1 if report.failed else 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
