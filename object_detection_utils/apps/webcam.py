"""Segment live or recorded video: a camera, a video file or a stream URL, shown with fps and inference time.

    python instance_segmentation_webcam.py                                  # first camera, until q/Esc/Ctrl+C
    python instance_segmentation_webcam.py --source rtsp://host/stream --classes person
    python instance_segmentation_webcam.py --source clip.mp4 --every-frame -o clip_segmented.mp4 --no-display
    python instance_segmentation_webcam.py --source road.mp4 --track --count-line 0,300,640,300 --mots road.txt

Live sources are read on their own thread and only the newest frame is segmented, so the picture is never
older than one inference; --every-frame segments each frame of a file in order instead.

--track gives each object an id that it keeps from frame to frame (colours follow ids; instances of tracks not
yet confirmed are left out); --count-line, --zone and --mots turn it on. Counts are drawn live and printed at
the end (docs/TRACKING.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import VideoWriteError
from ..io.video_sinks import FOURCC_BY_SUFFIX, check_output_file
from ..io.video_sources import RECONNECT_ATTEMPTS, STALL_TIMEOUT, open_video_source
from ..visualization import display
from . import cli
from .video_segmentation import VideoOptions, segment_video
from .video_tracking import TrackingOptions, parse_count_line, parse_zone


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-s", "--source", default="0",
                        help="camera index, video file, or stream URL (rtsp://, http://, ...) (default: %(default)s)")
    parser.add_argument("--every-frame", action="store_true",
                        help="segment every frame of a video file in order (offline), instead of the newest only")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help=f"write the segmented video here ({', '.join(FOURCC_BY_SUFFIX)}) at the source's fps")
    parser.add_argument("--json-lines", type=Path, default=None,
                        help="write one JSON line per segmented frame with its COCO results (masks as RLE)")
    parser.add_argument("--track", action="store_true",
                        help="give each object an id kept across frames; colours follow ids, JSON lines carry them")
    parser.add_argument("--mots", type=Path, default=None,
                        help="write the tracks as MOTS text (frame id class_id height width rle); implies --track")
    parser.add_argument("--count-line", action="append", default=[], metavar="X1,Y1,X2,Y2",
                        help="count tracks crossing this segment (pixels), in (from its left) and out, per class; "
                             "each track once per direction; repeatable; implies --track")
    parser.add_argument("--zone", action="append", default=[], metavar="X1,Y1,X2,Y2,X3,Y3,...",
                        help="count tracks inside this polygon now and in all; repeatable; implies --track")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after segmenting this many frames")
    parser.add_argument("--reconnect", type=int, default=RECONNECT_ATTEMPTS,
                        help="reconnection attempts when a camera or stream drops (default: %(default)s)")
    parser.add_argument("--stall-timeout", type=_seconds, default=STALL_TIMEOUT, metavar="SECONDS",
                        help="a camera or stream that gives no frame for this long has dropped: reconnect, "
                             "then stop (0: wait for ever) (default: %(default)s)")
    parser.add_argument("--no-display", action="store_true", help="never open a window (headless)")
    cli.add_model_arguments(parser)
    args = cli.parse_args(parser, argv)
    if args.output is not None and args.output.suffix.lower() not in FOURCC_BY_SUFFIX:
        parser.error(f"{args.output}: unsupported video type (use {', '.join(FOURCC_BY_SUFFIX)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tracking = None
    if args.track or args.mots or args.count_line or args.zone:
        tracking = TrackingOptions(count_lines=tuple(parse_count_line(text) for text in args.count_line),
                                   zones=tuple(parse_zone(text) for text in args.zone))
    outputs = [path.resolve() for path in (args.output, args.json_lines, args.mots) if path is not None]
    if len(set(outputs)) != len(outputs):
        raise VideoWriteError("--output, --json-lines and --mots must name different files")
    for path in (args.output, args.json_lines, args.mots):
        if path is not None:
            check_output_file(path)
    source = open_video_source(  # a bad source fails before the model load
        args.source, attempts=args.reconnect, stall_timeout=args.stall_timeout or None)
    try:
        segmenter = cli.segmenter_from_args(args)
        window = None
        if not args.no_display and display.display_available():
            window = display.Window(f"instance segmentation: {source.name}")
    except BaseException:
        source.close()
        raise
    options = VideoOptions(every_frame=args.every_frame, output=args.output, json_lines=args.json_lines,
                           max_frames=args.max_frames, tracking=tracking, mots=args.mots)
    summary = segment_video(segmenter, source, options, window=window)
    print(summary.describe(), file=sys.stderr)
    for line in summary.counts:
        print(line, file=sys.stderr)
    for path, count in ((args.output, summary.frames_written), (args.json_lines, summary.json_lines_written),
                        (args.mots, summary.mots_lines_written)):
        if path is not None and count:
            print(f"saved {path} ({count} {'frames' if path == args.output else 'lines'})", file=sys.stderr)
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
