"""Segment every object in one picture: print the instances, save the drawn result, show both pictures.

    python instance_segmentation.py -i images/street.jpg --classes person,car
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import sample_image_path
from ..errors import InstanceSegmentationError, PictureSizeError
from ..io.images import IMAGE_SUFFIXES, read_image, write_image
from ..visualization import display
from ..visualization.drawing import draw_detections
from . import cli


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--image", type=Path, default=None,
                        help="the picture (default: matplotlib's sample photo grace_hopper.jpg)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="where to save the segmented picture (default: segmented_images/<picture name>)")
    parser.add_argument("--no-display", action="store_true", help="never open windows")
    parser.add_argument("--display-seconds", type=float, default=None,
                        help="close the windows after this many seconds (default: when closed, or q/Esc)")
    cli.add_picture_arguments(parser)
    cli.add_model_arguments(parser)
    cli.add_tile_arguments(parser)
    return cli.parse_args(parser, argv)


def default_output_path(image_path: Path) -> Path:
    """segmented_images/<name>, keeping the picture's type when it is one we can write, else PNG."""
    suffix = image_path.suffix if image_path.suffix.lower() in IMAGE_SUFFIXES else ".png"
    return Path("segmented_images") / f"{image_path.stem}{suffix}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    image_path = args.image or sample_image_path()
    image = read_image(image_path, max_pixels=args.max_pixels)  # a bad picture fails before the slow model load
    output = args.output or default_output_path(image_path)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise InstanceSegmentationError(f"{output}: unsupported output picture type {output.suffix!r}")

    segmenter = cli.segmenter_from_args(args)
    start = time.perf_counter()
    try:
        detections = segmenter(image)
    except PictureSizeError as error:
        raise PictureSizeError(f"{image_path}: {error}") from None
    seconds = time.perf_counter() - start
    segmented = draw_detections(image, detections)
    write_image(output, segmented)

    print("\n".join(cli.format_detections(str(image_path), detections)))
    print(f"{len(detections)} instances in {seconds:.2f}s with {cli.segmenter_label(segmenter)}; saved {output}",
          file=sys.stderr)

    if not args.no_display and display.display_available():
        windows = [display.Window(f"original: {image_path.name}"), display.Window(f"segmented: {image_path.name}")]
        windows[0].show(image)
        windows[1].show(segmented)
        display.show_until_closed(windows, timeout=args.display_seconds)
    return 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
