"""Train a Mask R-CNN (TensorFlow Model Garden) on your own COCO-annotated pictures, and export it so that
`--model PATH` of every script here runs it. Needs the train extra: pip install -e ".[train]".

    python instance_segmentation_train.py shapes data/shapes-train --count 600
    python instance_segmentation_train.py train --annotations data/shapes-train/annotations.json \\
        --images data/shapes-train/images --model-dir runs/shapes --export models/shapes
    python instance_segmentation.py --model models/shapes -i data/shapes-train/images/shapes_0_00000.png
    python instance_segmentation_train.py train --labels my-labelme-folder --model-dir runs/mine  # or CVAT, YOLO...
    python instance_segmentation_train.py train --labels my-labels --model-dir runs/mine --init-checkpoint models/shapes
    python instance_segmentation_train.py random-model models/random_r50_640 --input-size 640
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InstanceSegmentationError
from ..models.tensorflow_runtime import import_tensorflow
from ..training.labels import FORMATS as LABEL_FORMATS
from . import cli

if TYPE_CHECKING:
    from ..training.tfrecords import CocoDataset

TENSORFLOW_COMMANDS = frozenset({"train", "export", "random-model", "evaluate"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    shapes = commands.add_parser("shapes", help="generate a synthetic shapes dataset (circles, squares, triangles...)")
    shapes.add_argument("output", type=Path, help="folder for images/ and annotations.json")
    shapes.add_argument("--count", type=int, default=500, help="number of pictures (default: %(default)s)")
    shapes.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    shapes.add_argument("--size", type=int, default=128, help="picture side in pixels (default: %(default)s)")
    shapes.add_argument("--max-shapes", type=int, default=4, help="most shapes per picture (default: %(default)s)")
    shapes.add_argument("--classes", default="circle,square,triangle",
                        help="the shape kinds to draw, ids 1, 2... in this order; any of "
                             "circle,square,triangle,star,cross,ring (default: %(default)s)")

    train = commands.add_parser("train", help="train (or resume), export, and measure mask AP on validation pictures")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--annotations", type=Path, help="COCO instances .json of the training pictures")
    source.add_argument("--labels", type=Path,
                        help="labels as a labelling tool exports them: a labelme folder, a CVAT annotations.xml, "
                             "a Label Studio .json, a YOLO-seg folder (images/ + labels/), or a COCO .json")
    train.add_argument("--images", type=Path,
                       help="folder the pictures are in (needed with --annotations; with --labels, found beside them)")
    train.add_argument("--labels-format", choices=("auto", *LABEL_FORMATS), default="auto",
                       help="the format of --labels and --val-labels (default: told from their content)")
    val_source = train.add_mutually_exclusive_group()
    val_source.add_argument("--val-annotations", type=Path, help="COCO .json of separate validation pictures")
    val_source.add_argument("--val-labels", type=Path, help="labels of separate validation pictures, as --labels")
    train.add_argument("--val-images", type=Path, help="their folder (default: --images, or found beside the labels)")
    train.add_argument("--val-fraction", type=float, default=0.1,
                       help="without --val-annotations, hold out this share of the pictures (default: %(default)s)")
    train.add_argument("--model-dir", type=Path, required=True,
                       help="checkpoints go here; an interrupted run resumes from them")
    train.add_argument("--export", type=Path, default=None, help="exported model folder (default: MODEL_DIR/export)")
    train.add_argument("--backbone", default="resnet18", help="resnet10/18/26/34/50/101 (default: %(default)s)")
    train.add_argument("--input-size", type=int, default=128,
                       help="pictures are resized to fit this square, a multiple of 64 (default: %(default)s)")
    train.add_argument("--steps", type=int, default=1000, help="total training steps (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=8, help="pictures per step (default: %(default)s)")
    train.add_argument("--learning-rate", type=float, default=0.02, help="peak SGD learning rate (default: %(default)s)")
    train.add_argument("--warmup-steps", type=int, default=100, help="linear warm-up steps (default: %(default)s)")
    train.add_argument("--heads", choices=("light", "zoo"), default="light",
                       help="head sizes: 'light' for a CPU, 'zoo' as Model Garden's COCO model (default: %(default)s)")
    train.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default: %(default)s)")
    train.add_argument("--no-augment", action="store_true", help="no random flips and scaling")
    train.add_argument("--init-checkpoint", metavar="PATH_OR_NAME_OR_URL",
                       help="start from these weights, not random ones: one of our exports (models/shapes) or "
                            "training folders (runs/shapes), a Model Garden checkpoint (prefix or folder), a URL "
                            "of one (.tar.gz, fetched once into the cache), or a catalogue name such as "
                            "resnet50-imagenet (see the `checkpoints` command)")
    train.add_argument("--init-scope", choices=("all", "backbone"), default="all",
                       help="what to restore: everything the checkpoint holds (the class-specific layers are "
                            "re-initialised when the classes differ), or the backbone only (default: %(default)s)")
    train.add_argument("--freeze", choices=("backbone",), default=None,
                       help="keep the backbone's weights as initialised (small datasets, a CPU)")
    train.add_argument("--validate-every", type=int, default=0, metavar="STEPS",
                       help="also measure mask AP on the validation pictures every STEPS steps, into "
                            "MODEL_DIR/validation.jsonl (default: only at the end)")

    commands.add_parser("checkpoints", help="the published Model Garden checkpoints --init-checkpoint takes by name")

    export = commands.add_parser("export", help="export the latest checkpoint of a training folder, or an export "
                                                 "again as this version writes them")
    export_source = export.add_mutually_exclusive_group(required=True)
    export_source.add_argument("--model-dir", type=Path, help="training folder")
    export_source.add_argument("--from-export", type=Path, metavar="EXPORT",
                               help="one of our exports, written before its TensorFlow steps were (masks only "
                                    "where kept on TensorFlow); its model card comes along")
    export.add_argument("--output", type=Path, required=True, help="exported model folder")

    evaluate = commands.add_parser("evaluate", help="mask and box AP of a model on COCO-annotated pictures")
    evaluate.add_argument("--model", type=Path, required=True, help="model folder")
    evaluate.add_argument("--annotations", type=Path, required=True)
    evaluate.add_argument("--images", type=Path, required=True)

    random_model = commands.add_parser("random-model", help="a random-weights zoo-scale Mask R-CNN for benchmarks")
    random_model.add_argument("output", type=Path, help="exported model folder")
    random_model.add_argument("--backbone", default="resnet50", help="default: %(default)s")
    random_model.add_argument("--input-size", type=int, default=640, help="640 or 1024 like the zoo (default: %(default)s)")
    random_model.add_argument("--test-proposals", type=int, default=300,
                              help="proposals the box head sees (default: %(default)s, as the TF1 zoo; Model Garden: 1000)")
    random_model.add_argument("--nms", choices=("batched", "v1", "v2"), default="batched",
                              help="detection NMS (default: %(default)s; Model Garden: v2)")
    random_model.add_argument("--mask-detections", type=int, default=100,
                              help="detections kept at most, each with a mask (default: %(default)s)")
    return parser.parse_args(argv)


def require_model_garden() -> None:
    try:
        import official.vision  # noqa: F401
    except ImportError:
        raise InstanceSegmentationError(
            "training needs TensorFlow Model Garden: pip install -e \".[train]\" (tf-models-official)") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command in TENSORFLOW_COMMANDS - {"train"}:  # train reads its labels first: bad ones fail in a blink
        import_tensorflow()  # before Model Garden imports it: quietly, with TensorFlow's C++ logging at errors only
    if args.command == "shapes":
        from ..shapes import shape_classes, write_shapes_dataset

        classes = shape_classes(args.classes.split(","))
        path = write_shapes_dataset(args.output, args.count, args.seed, (args.size, args.size), args.max_shapes,
                                    classes=classes)
        print(f"{args.count} pictures in {args.output / 'images'}; annotations {path}")
        return 0

    if args.command == "checkpoints":
        from ..training.checkpoints import CATALOGUE, checkpoints_dir, is_cached

        for entry in CATALOGUE.values():
            where = checkpoints_dir() / entry.name if is_cached(entry.name) else "not downloaded"
            print(f"{entry.name}\t{entry.backbone}\t{entry.trained_at} px\t{where}\t{entry.what}\t"
                  f"{' '.join(entry.urls)}")
        return 0

    from ..training.tfrecords import CocoDataset

    if args.command == "evaluate":
        from .. import load_model
        from ..training.validation import validate

        scores = validate(load_model(args.model), CocoDataset(args.annotations, args.images)).scores
        print(json.dumps({k: round(v, 4) for k, v in scores.items()}))
        return 0

    if args.command != "train":
        require_model_garden()
    if args.command == "random-model":
        from ..training.export import export_random_model

        export_random_model(args.output, args.backbone, args.input_size, test_proposals=args.test_proposals,
                            nms=args.nms, mask_detections=args.mask_detections)
        print(f"random-weights {args.backbone} Mask R-CNN at {args.input_size}px exported to {args.output}")
        return 0
    if args.command == "export" and args.from_export is not None:
        from ..training.pipeline import export_again

        export_again(args.from_export, args.output)
        print(f"exported {args.from_export} again to {args.output}")
        return 0
    if args.command == "export":
        from ..training.pipeline import export_training_run

        checkpoint = export_training_run(args.model_dir, args.output)
        print(f"exported {checkpoint} to {args.output}")
        return 0

    from ..training.pipeline import options_for, run_training, split_dataset

    if args.annotations is not None and args.images is None:
        raise InstanceSegmentationError("--annotations needs --images, the folder its file names are in")
    if args.labels is not None:
        train_set = converted_labels(args.labels, args.labels_format, args.images, args.model_dir, "train")
    else:
        train_set = CocoDataset(args.annotations, args.images)
    validation = None
    if args.val_labels is not None:
        categories = train_set.load().dataset["categories"]
        validation = converted_labels(args.val_labels, args.labels_format, args.val_images, args.model_dir,
                                      "validation", categories)
    elif args.val_annotations is not None:
        validation = CocoDataset(args.val_annotations, args.val_images or args.images)
    split = split_dataset(train_set, validation, args.val_fraction)
    import_tensorflow()
    require_model_garden()
    options, label_map = options_for(
        split.train, backbone=args.backbone, input_size=args.input_size, batch_size=args.batch_size, steps=args.steps,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, heads=args.heads,
        augment=not args.no_augment, checkpoint_every=args.checkpoint_every, freeze=args.freeze or "")
    init = None
    if args.init_checkpoint:
        from ..training.init_checkpoint import resolve_init_source

        init = dataclasses.replace(resolve_init_source(args.init_checkpoint), scope=args.init_scope)
    summary = run_training(split, options, label_map, args.model_dir, args.export or args.model_dir / "export",
                           init=init, validate_every=args.validate_every)
    print(json.dumps(summary))
    return 0


def converted_labels(labels: Path, labels_format: str, images: Path | None, model_dir: Path, name: str,
                     categories: list[dict] | None = None) -> CocoDataset:
    """The labels converted into MODEL_DIR/data (training/labels/converted.py), summed up on stderr."""
    from ..training.labels.converted import convert_into_model_dir

    converted = convert_into_model_dir(labels, labels_format, images, model_dir, name, categories)
    print(converted.describe(name), file=sys.stderr)
    return converted.dataset


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
