"""The whole training job: split and convert the data, train (or resume), export, measure mask AP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError, InstanceSegmentationError
from ..io.atomic import remove_stale_temp_files, write_text_atomic
from ..label_map import LabelMap
from .config import TrainOptions
from .tfrecords import CocoDataset, write_tfrecord


@dataclass(frozen=True)
class Split:
    """Which pictures of which dataset train, and which validate."""

    train: CocoDataset
    train_ids: list[int]
    validation: CocoDataset
    validation_ids: list[int]


def split_dataset(train: CocoDataset, validation: CocoDataset | None = None, validation_fraction: float = 0.1,
                  seed: int = 0) -> Split:
    """Use `validation` if given, else hold out a seeded random `validation_fraction` of `train`'s pictures."""
    train_ids = sorted(train.load().getImgIds())
    if not train_ids:
        raise DatasetError(f"{train.annotations}: no pictures")
    if validation is not None:
        return Split(train, train_ids, validation, sorted(validation.load().getImgIds()))
    shuffled = list(np.random.default_rng(seed).permutation(train_ids))
    held_out = int(round(len(shuffled) * validation_fraction)) if len(shuffled) > 1 else 0
    held_out = min(max(held_out, 1 if validation_fraction > 0 and len(shuffled) > 1 else 0), len(shuffled) - 1)
    return Split(train, sorted(int(i) for i in shuffled[held_out:]), train, sorted(int(i) for i in shuffled[:held_out]))


def options_for(dataset: CocoDataset, **choices) -> tuple[TrainOptions, LabelMap]:
    """Training options whose class count fits the dataset's categories, and its label map."""
    label_map = dataset.label_map()
    if not label_map:
        raise DatasetError(f"{dataset.annotations}: no categories")
    if min(label_map) < 1:
        raise DatasetError(f"{dataset.annotations}: category ids must be 1 or more (0 is the background)")
    return TrainOptions(num_classes=max(label_map) + 1, **choices), label_map


def run_training(split: Split, options: TrainOptions, label_map: LabelMap, model_dir: str | Path,
                 export_dir: str | Path, progress: bool = True) -> dict:
    """Convert, train, export to `export_dir`, then evaluate the export on the validation pictures.

    Returns a summary: steps, training seconds, final losses, export path and (if there are validation
    pictures) mask and box AP, AP50, AP75. The export gets a README.md model card (model_card.py) with these
    figures and up to three validation pictures, with what the model finds on them.
    """
    from ..models.loading import load_model
    from .evaluate import validate
    from .export import LABEL_MAP_FILE, export_saved_model
    from .model_card import model_card, pick_examples, write_model_card
    from .train import latest_checkpoint, train

    model_dir, export_dir = Path(model_dir), Path(export_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(model_dir)  # a killed run's half-written TFRecord, which can be large
    write_text_atomic(model_dir / LABEL_MAP_FILE, label_map.to_pbtxt())  # for `export` later
    records = model_dir / "data" / "train.tfrecord"
    write_tfrecord(split.train, records, split.train_ids, progress=progress)
    result = train(options, records, model_dir, progress=progress)
    tqdm.write(f"trained steps {result.first_step}..{result.last_step} in {result.seconds:.0f}s; exporting")
    export_saved_model(options, label_map, export_dir, checkpoint=latest_checkpoint(model_dir))
    summary = {"steps": result.last_step, "resumed_from": result.first_step, "train_seconds": round(result.seconds, 1),
               "total_train_seconds": round(result.total_seconds, 1), "train_pictures": len(split.train_ids),
               "losses": {k: round(v, 4) for k, v in result.final_losses.items()}, "export": str(export_dir)}
    examples = []
    if split.validation_ids:
        validation = validate(load_model(export_dir), split.validation, split.validation_ids, progress=progress)
        summary["validation_pictures"] = len(split.validation_ids)
        summary.update({k: round(v, 4) for k, v in validation.scores.items()})
        examples = pick_examples(validation.ground_truth, validation.predictions, label_map)
    write_model_card(export_dir, model_card(export_dir.name, options, label_map, summary, examples), examples,
                     split.validation.images)
    return summary


def export_training_run(model_dir: str | Path, export_dir: str | Path) -> str:
    """Export the latest checkpoint of a training folder, with a model card (no validation figures); returns it."""
    from .export import LABEL_MAP_FILE, export_saved_model
    from .model_card import model_card, write_model_card
    from .train import checkpoint_step, latest_checkpoint, training_seconds

    model_dir, export_dir = Path(model_dir), Path(export_dir)
    checkpoint = latest_checkpoint(model_dir)
    if checkpoint is None:
        raise InstanceSegmentationError(f"{model_dir}: no checkpoint to export")
    options = TrainOptions.load(model_dir)
    label_map = LabelMap.from_pbtxt(model_dir / LABEL_MAP_FILE)
    export_saved_model(options, label_map, export_dir, checkpoint)
    summary = {"steps": checkpoint_step(checkpoint), "total_train_seconds": training_seconds(model_dir)}
    write_model_card(export_dir, model_card(export_dir.name, options, label_map, summary))
    return checkpoint
