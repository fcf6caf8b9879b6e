"""Matterport's `mrcnn` package on TensorFlow 2, for scripts and notebooks written against it: replace `mrcnn` by
`object_detection_utils.mrcnn` in their imports and nothing else.

    from object_detection_utils.mrcnn import model as modellib, visualize, utils
    from object_detection_utils.mrcnn.config import Config

`config.Config`, `model.MaskRCNN` (inference), `visualize` and the `utils` that inference code calls, all on our
own port (`object_detection_utils.models.matterport`); docs/MIGRATING_FROM_MRCNN.md shows matterport's samples.
Matterport Mask_RCNN: MIT licence, Copyright (c) 2017 Matterport, Inc.; none of its code is copied here.
"""
