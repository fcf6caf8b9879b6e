"""Training your own Mask R-CNN with TensorFlow Model Garden (the `train` extra: tf-models-official).

tfrecords        COCO annotations + picture folder -> Model Garden TFRecords
init_checkpoint  initial weights from our exports and runs or Model Garden checkpoints (other classes: fresh heads)
checkpoints      the published Model Garden checkpoints that fit, fetched once into the cache
train            the training loop: progress, checkpoints, resume
export           a SavedModel with the TF2 detection zoo's signature, loadable by `load_model`
validation       mask/box AP of a model on annotated pictures (its validation set), through `evaluation`
pipeline         all of it in order, as `instance_segmentation_train.py train` runs it

Beside it: the training options every export carries and the Model Garden experiment they rebuild are
`models/export_options.py` (the back ends rebuild our exports from them too); the synthetic shapes pictures are
`object_detection_utils/shapes.py` (the back ends' gate pictures and the benchmarks draw them too).
"""
