#!/usr/bin/env python3
"""Segment every picture of a folder (or glob) into an output folder: overlays, mask PNGs, COCO JSON, summary.

    python instance_segmentation_images.py                                  # images/ -> segmented_images/
    python instance_segmentation_images.py -i photos -r -o out --masks --coco-json out/results.json
    python instance_segmentation_images.py -i 'shots/**/*.png' --classes person --summary out/summary.csv

A rerun skips the pictures whose outputs are complete (--overwrite redoes them); Ctrl+C stops after the
pictures in flight are written. Bad files are reported and skipped; the exit code is 1 if any failed.

With --ray (pip install -e ".[ray]") the same job runs on Ray Data, on this machine or a cluster, and -i/-o
may be remote (s3://...):

    python instance_segmentation_images.py --ray -i photos -o out                  # a local Ray instance
    python instance_segmentation_images.py --ray auto -i s3://bucket/photos -o s3://bucket/out --masks
"""

from object_detection_utils.apps.folder import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
