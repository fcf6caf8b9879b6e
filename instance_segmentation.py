#!/usr/bin/env python3
"""Segment every object in one picture: print the instances, save the drawn result, show both pictures.

    python instance_segmentation.py -i images/street.jpg --classes person,car

The command is object_detection_utils/apps/single_image.py; --help says the rest.
"""

from object_detection_utils.apps.single_image import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
