"""What the command-line scripts share: model arguments, one-line errors, per-instance printing."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from ..detections import Detections
from ..errors import InstanceSegmentationError
from ..io.images import DEFAULT_MAX_PIXELS
from ..models.backends import BACKENDS
from ..models.zoo import format_model_table, list_models, resolve_models_dir
from ..predictor import Segmenter, SegmenterSpec
from ..tiling import DEFAULT_OVERLAP, MAX_OVERLAP


def add_model_arguments(parser: argparse.ArgumentParser, several_models: bool = False) -> None:
    """--model, --models-dir, --list-models, --label-map, --classes, --min-score, --mask-threshold, --backend,
    --calibration, --matterport-config: a `SegmenterSpec` (`SegmenterSpec.from_args` reads them back), with its defaults.

    With `several_models`, --model may be repeated and `args.model` is a list (None when not given).
    """
    group = parser.add_argument_group("model")
    model_help = ("zoo model name or alias (downloaded on first use), or a model folder, .pb, .tar.gz or "
                  "matterport Mask_RCNN .h5")
    if several_models:
        group.add_argument("--model", action="append", default=None,
                           help=f"{model_help}; repeat to compare models (default: {SegmenterSpec.model})")
    else:
        group.add_argument("--model", default=SegmenterSpec.model, help=f"{model_help} (default: %(default)s)")
    group.add_argument("--models-dir", type=Path, default=None,
                       help="folder holding models by name, where zoo models are downloaded to "
                            "(default: $INSTANCE_SEGMENTATION_MODELS_DIR, else the cache's models/)")
    group.add_argument("--list-models", action="store_true",
                       help="list the zoo models: speed, mAP, whether cached and their size on disk; then exit")
    group.add_argument("--label-map", type=Path, default=None,
                       help="a .pbtxt label map (default: the model folder's, else COCO)")
    group.add_argument("--classes", default=None,
                       help="keep only these classes: comma-separated ids or names, e.g. 'person,dog' or '1,18'")
    group.add_argument("--min-score", type=float, default=SegmenterSpec.min_score,
                       help="keep instances scoring at least this (default: %(default)s)")
    group.add_argument("--mask-threshold", type=float, default=SegmenterSpec.mask_threshold,
                       help="mask pixels above this are set (default: %(default)s)")
    group.add_argument("--backend", choices=BACKENDS, default=SegmenterSpec.backend,
                       help="the engine: OpenVINO runs a model only where it converts and is accepted (f32: the "
                            "same instances as TensorFlow; bf16, int8: the same accuracy), else TensorFlow runs it "
                            "after one line; auto picks the fastest accepted on this CPU (default: %(default)s; "
                            "see docs/PERFORMANCE.md)")
    group.add_argument("--calibration", type=Path, default=None, metavar="DIR",
                       help="pictures like yours that bf16 and int8 are judged on (int8 also calibrated), in "
                            "place of generated ones (default: the model's examples and generated pictures)")
    group.add_argument("--matterport-config", default=None, metavar="NAME|FILE",
                       help="a matterport .h5 model's config: a preset (coco, balloon, nucleus), a .json file or "
                            "the training script's .py (read, not run); default: inferred from the weights "
                            "(see docs/MATTERPORT.md)")


def add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    """--tile, --tile-overlap, --no-full-pass: large pictures run in overlapping tiles as well, stitched back into
    whole instances (read by `SegmenterSpec.from_args`; docs/TILES.md)."""
    group = parser.add_argument_group("tiles (large pictures, small objects)")
    group.add_argument("--tile", default=None, metavar="SIZE|auto",
                       help="also run the model on overlapping tiles of this many pixels, or 'auto' for the "
                            "model's input size, and stitch the results (default: the whole picture only)")
    group.add_argument("--tile-overlap", type=float, default=DEFAULT_OVERLAP,
                       help=f"the fraction of a tile its neighbours share, in [0, {MAX_OVERLAP:g}) "
                            "(default: %(default)s)")
    group.add_argument("--no-full-pass", action="store_true",
                       help="with --tile, skip the whole-picture pass that finds the objects larger than a tile")


def add_picture_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-pixels: the largest picture read, so a small file declaring a huge size is refused, not decoded."""
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse pictures larger than this many pixels before decoding them "
                             "(default: %(default)s, a 30000x30000 scan)")


def segmenter_from_args(args: argparse.Namespace, model: str | Path | None = None) -> Segmenter:
    """The `Segmenter` the model arguments describe (`model` overrides `args.model`, for repeated --model).

    The class filter is checked against the model's label map right away, before any picture is read.
    """
    return SegmenterSpec.from_args(args, model).load()


def segmenter_label(segmenter: Segmenter) -> str:
    """The model's name, with how pictures were tiled when they were: "shapes-r18-128 (tiles 128 px, ...)"."""
    tiles = segmenter.describe_tiles()
    return segmenter.name if tiles is None else f"{segmenter.name} ({tiles})"


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`parser.parse_args(argv)`, except that `--list-models` prints the zoo table and exits right away."""
    args = parser.parse_args(argv)
    if args.list_models:
        print(format_model_table(list_models(args.models_dir), resolve_models_dir(args.models_dir)))
        parser.exit(0)
    return args


def format_detections(source: str, detections: Detections) -> list[str]:
    """One line per instance: `source  person  0.97  box=(x1, y1, x2, y2)  area=1234px`."""
    lines = []
    for instance, area in zip(detections, detections.areas):
        x1, y1, x2, y2 = (round(float(v)) for v in instance.box)
        lines.append(f"{source}\t{instance.class_name}\t{instance.score:.2f}\tbox=({x1}, {y1}, {x2}, {y2})"
                     f"\tarea={int(area)}px")
    if not lines:
        lines.append(f"{source}\tno instances found")
    return lines


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a script's `main`, turning our errors into one line on stderr and a non-zero exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return main(argv)
    except InstanceSegmentationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
