#!/usr/bin/env python3
"""Train a Mask R-CNN (TensorFlow Model Garden) on your own COCO-annotated pictures, and export it so that
`--model PATH` of every script here runs it. Needs the train extra: pip install -e ".[train]".

    python instance_segmentation_train.py shapes data/shapes-train --count 600
    python instance_segmentation_train.py train --annotations data/shapes-train/annotations.json \\
        --images data/shapes-train/images --model-dir runs/shapes --export models/shapes
    python instance_segmentation.py --model models/shapes -i data/shapes-train/images/shapes_0_00000.png
    python instance_segmentation_train.py train --labels my-labelme-folder --model-dir runs/mine  # or CVAT, YOLO...
    python instance_segmentation_train.py train --labels my-labels --model-dir runs/mine --init-checkpoint models/shapes
    python instance_segmentation_train.py random-model models/random_r50_640 --input-size 640

The command is object_detection_utils/apps/train.py; --help says the rest.
"""

from object_detection_utils.apps.train import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
