"""Score tracks against MOTS ground truth: HOTA, IDF1, MOTA, id switches on boxes and masks (sMOTSA, mask HOTA).

    python -m object_detection_utils.apps.track_score truth.txt tracks.txt
    python -m object_detection_utils.apps.track_score truth_dir/ tracks_dir/ --json   # sequences paired by name

Both sides are MOTS text (`frame id class_id height width rle`), as `instance_segmentation_webcam.py --mots`
writes. The figures are TrackEval's (docs/TRACKING.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InstanceSegmentationError
from ..tracking.mots import read_mots
from . import cli


def pairs(truth: Path, tracks: Path) -> list[tuple[Path, Path]]:
    """(ground truth, tracks) files: the two files, or the files of the same name in two folders."""
    if truth.is_dir() != tracks.is_dir():
        raise InstanceSegmentationError(f"{truth} and {tracks}: give two files or two folders")
    if not truth.is_dir():
        return [(truth, tracks)]
    found = [(path, tracks / path.name) for path in sorted(truth.glob("*.txt"))]
    missing = [str(t) for _, t in found if not t.exists()]
    if not found or missing:
        raise InstanceSegmentationError(f"{tracks}: no tracks for {', '.join(missing)}" if missing
                                        else f"{truth}: no .txt ground truth files")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("truth", type=Path, help="MOTS ground truth: a file, or a folder of <sequence>.txt")
    parser.add_argument("tracks", type=Path, help="MOTS tracks: a file, or a folder of the same names")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    from ..tracking.scoring import FIGURES, score_tracks

    sequences = [(read_mots(truth), read_mots(tracks)) for truth, tracks in pairs(args.truth, args.tracks)]
    figures = score_tracks(sequences)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print("on    " + " ".join(f"{name:>7}" for name in FIGURES))
        for on, values in figures.items():
            print(f"{on:5} " + " ".join(f"{values[name]:7d}" if name == "IDSW" else f"{100 * values[name]:7.1f}"
                                        for name in FIGURES))
    return 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
