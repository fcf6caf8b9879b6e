#!/usr/bin/env python3
"""Segment every picture of a folder (or glob) into an output folder: overlays, mask PNGs, COCO JSON, summary.

    python instance_segmentation_images.py                                  # images/ -> segmented_images/
    python instance_segmentation_images.py -i photos -r -o out --masks --coco-json out/results.json
    python instance_segmentation_images.py -i 'shots/**/*.png' --classes person --summary out/summary.csv
    python instance_segmentation_images.py --ray -i photos -o out                  # a local Ray instance
    python instance_segmentation_images.py --ray auto -i s3://bucket/photos -o s3://bucket/out --masks

The command is object_detection_utils/apps/folder.py; --help says the rest.
"""

from object_detection_utils.apps.folder import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
