"""Training your own Mask R-CNN with TensorFlow Model Garden (the `train` extra: tf-models-official).

shapes           synthetic shapes pictures (circles, squares, triangles; or stars, crosses, rings) with exact COCO
                 annotations (core install only)
tfrecords        COCO annotations + picture folder -> Model Garden TFRecords
config           the user's choices -> Model Garden's `maskrcnn_resnetfpn_coco` experiment
init_checkpoint  initial weights from our exports and runs or Model Garden checkpoints (other classes: fresh heads)
checkpoints      the published Model Garden checkpoints that fit, fetched once into the cache
train            the training loop: progress, checkpoints, resume
export           a SavedModel with the TF2 detection zoo's signature, loadable by `load_model`
evaluate         mask/box AP through `run_inference_for_single_image`
pipeline         all of it in order, as `instance_segmentation_train.py train` runs it
"""
