"""The README.md an exported model carries: how it was made, its signature and classes, how well it did, and
`expect:` lines naming what it finds on example pictures it carries along (tests/test_real_data.py checks them
when the folder is placed under ../shared/models/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import write_bytes_atomic, write_text_atomic
from ..label_map import LabelMap
from ..models.export_options import TrainOptions, backbone_depth

README_FILE = "README.md"
EXAMPLES_DIR = "examples"
EXAMPLE_MIN_SCORE = 0.5  # what tests/test_real_data.py asks of a detection named on an `expect:` line


@dataclass(frozen=True)
class Example:
    """A validation picture on which the model finds every annotated class with a confident detection."""

    image_id: int
    file_name: str
    class_names: tuple[str, ...]


def pick_examples(ground_truth, predictions: Iterable[Mapping], label_map: Mapping[int, str], limit: int = 3,
                  min_score: float = EXAMPLE_MIN_SCORE) -> list[Example]:
    """Up to `limit` annotated pictures where the predictions reach `min_score` for every annotated class.

    `ground_truth` is a pycocotools COCO index; `predictions` are COCO result entries. Pictures with more
    distinct classes come first, then lower image ids, so the choice is stable. Pictures whose file name
    or class names hold spaces are passed over: an `expect:` line could not name them.
    """
    confident: dict[int, set[int]] = {}
    for entry in predictions:
        if entry["score"] >= min_score:
            confident.setdefault(int(entry["image_id"]), set()).add(int(entry["category_id"]))
    candidates = []
    for image_id in sorted(confident):
        annotated = {int(a["category_id"]) for a in ground_truth.imgToAnns.get(image_id, []) if not a.get("iscrowd")}
        file_name = ground_truth.imgs[image_id]["file_name"]
        words = [file_name, *(label_map[c] for c in annotated)]
        if annotated and annotated <= confident[image_id] and not any(c.isspace() for w in words for c in w):
            candidates.append((-len(annotated), image_id, file_name, annotated))
    return [Example(image_id, file_name, tuple(label_map[c] for c in sorted(classes)))
            for _, image_id, file_name, classes in sorted(candidates)[:limit]]


def model_card(name: str, options: TrainOptions, label_map: LabelMap, summary: Mapping,
               examples: Iterable[Example] = ()) -> str:
    """The README text for an export called `name`.

    `summary` is `run_training`'s summary; only `steps` and `total_train_seconds` are required (the `export`
    command has no validation figures).
    """
    classes = ", ".join(f"{class_id} {label_map[class_id]}" for class_id in sorted(label_map))
    pictures = f"{summary['train_pictures']} pictures, " if "train_pictures" in summary else ""
    frozen = "; backbone frozen" if options.freeze == "backbone" else ""
    origin = [f"Initialised from {options.init_checkpoint}; restored: {options.init_restored}{frozen}."
              if options.init_checkpoint else f"From random weights{frozen}."]
    lines = [
        f"# {name}: Mask R-CNN ResNet{backbone_depth(options.backbone)}-FPN, {options.input_size} px",
        "",
        f"{'Fine-tuned' if options.init_checkpoint else 'Trained'} with `instance_segmentation_train.py train` "
        "(TensorFlow Model Garden's `maskrcnn_resnetfpn_coco`):",
        *origin,
        f"{pictures}{summary['steps']} steps of batch {options.batch_size}, "
        f"learning rate {options.learning_rate} (cosine), {options.heads} heads, "
        f"augmentation {'on' if options.augment else 'off'}; {summary['total_train_seconds']:.0f} s of training. "
        "All options: `training_options.json`.",
        f"At test time: {options.proposals_at_test} proposals to the box head, {options.nms} detection NMS, at most "
        f"{options.mask_detections} detections, each with a mask (docs/PERFORMANCE.md: their speed and AP).",
        "",
        "Signature (the TF2 detection zoo's): `serving_default(input_tensor: uint8 [1, H, W, 3])` -> "
        "`detection_boxes` [1, N, 4] normalised ymin, xmin, ymax, xmax; `detection_classes` [1, N] 1-based; "
        "`detection_scores` [1, N]; `detection_masks` [1, N, 28, 28] box-relative; `num_detections` [1].",
        "",
        f"Classes (`label_map.pbtxt`): {classes}.",
    ]
    if "mask_AP" in summary:
        lines += [
            "",
            f"On {summary['validation_pictures']} validation pictures not trained on, through "
            "`run_inference_for_single_image`:",
            "",
            "| | AP | AP50 | AP75 |",
            "|---|---|---|---|",
            *(f"| {kind} | {summary[f'{kind}_AP']:.3f} | {summary[f'{kind}_AP50']:.3f} | "
              f"{summary[f'{kind}_AP75']:.3f} |" for kind in ("mask", "box")),
        ]
    examples = list(examples)
    if examples:
        lines += ["", f"What it finds with a score of at least {EXAMPLE_MIN_SCORE}, on the validation pictures in "
                  f"`{EXAMPLES_DIR}/`:", ""]
        lines += [f"expect: {EXAMPLES_DIR}/{e.file_name} {' '.join(e.class_names)}" for e in examples]
    return "\n".join(lines) + "\n"


def write_model_card(export_dir: str | Path, text: str, examples: Iterable[Example] = (),
                     images_dir: str | Path | None = None) -> Path:
    """Copy the example pictures from `images_dir` into `export_dir/examples/` and write `export_dir/README.md`."""
    export_dir = Path(export_dir)
    for example in examples:
        source = Path(images_dir) / example.file_name
        write_bytes_atomic(export_dir / EXAMPLES_DIR / example.file_name, source.read_bytes())
    path = export_dir / README_FILE
    write_text_atomic(path, text)
    return path
