"""The whole training job: split and convert the data, train (or resume), export, measure mask AP."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError, InstanceSegmentationError
from ..io.atomic import remove_stale_temp_files, write_bytes_atomic, write_text_atomic
from ..label_map import LabelMap
from ..models.export_options import OPTIONS_FILE, TrainOptions
from .init_checkpoint import InitSource, check_fits, restore_initial_weights
from .tfrecords import CocoDataset, write_tfrecord

VALIDATION_LOG = "validation.jsonl"  # one JSON line per --validate-every evaluation: the AP-vs-steps curve


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
                 export_dir: str | Path, progress: bool = True, init: InitSource | None = None,
                 validate_every: int = 0) -> dict:
    """Convert, train, export to `export_dir`, then evaluate the export on the validation pictures.

    A fresh run starts from `init`'s weights (init_checkpoint.py; `init.scope` "all" or "backbone") if given.
    With `validate_every`, the model being trained is also measured on the validation pictures every that
    many steps, each result a line of MODEL_DIR/validation.jsonl (step, training seconds so far, AP figures).
    Returns a summary: steps, training seconds, final losses, export path and (if there are validation
    pictures) mask and box AP, AP50, AP75. The export gets a README.md model card (model_card.py) with these
    figures and up to three validation pictures, with what the model finds on them.
    """
    from ..models.loading import load_local_model
    from .export import LABEL_MAP_FILE, export_saved_model
    from .model_card import model_card, pick_examples, write_model_card
    from .train import latest_checkpoint, train
    from .validation import validate

    model_dir, export_dir = Path(model_dir), Path(export_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(model_dir)  # a killed run's half-written TFRecord, which can be large
    write_text_atomic(model_dir / LABEL_MAP_FILE, label_map.to_pbtxt())  # for `export` later
    if init is not None:
        check_fits(init, options, init.scope)  # before the conversion, which can take a while
    records = model_dir / "data" / "train.tfrecord"
    write_tfrecord(split.train, records, split.train_ids, progress=progress)
    initialise = None
    if init is not None:
        options = dataclasses.replace(options, init_checkpoint=init.description)

        def initialise(model) -> str:
            restored = restore_initial_weights(model, init, options, label_map, init.scope)
            tqdm.write(f"initialised {restored} from {init.description}")
            return restored

    evaluate = None
    if validate_every and split.validation_ids:
        evaluate = _validation_logger(split, options, label_map, model_dir, progress)
    result = train(options, records, model_dir, progress=progress, initialise=initialise, evaluate=evaluate,
                   evaluate_every=validate_every)
    options = result.options
    tqdm.write(f"trained steps {result.first_step}..{result.last_step} in {result.seconds:.0f}s; exporting")
    export_saved_model(options, label_map, export_dir, checkpoint=latest_checkpoint(model_dir))
    summary = {"steps": result.last_step, "resumed_from": result.first_step, "train_seconds": round(result.seconds, 1),
               "total_train_seconds": round(result.total_seconds, 1), "train_pictures": len(split.train_ids),
               "losses": {k: round(v, 4) for k, v in result.final_losses.items()}, "export": str(export_dir)}
    examples = []
    if split.validation_ids:
        validation = validate(load_local_model(export_dir), split.validation, split.validation_ids, progress=progress)
        summary["validation_pictures"] = len(split.validation_ids)
        summary.update({k: round(v, 4) for k, v in validation.scores.items()})
        examples = pick_examples(validation.ground_truth, validation.predictions, label_map)
    write_model_card(export_dir, model_card(export_dir.name, options, label_map, summary, examples), examples,
                     split.validation.images)
    return summary


def _validation_logger(split: Split, options: TrainOptions, label_map: LabelMap, model_dir: Path, progress: bool):
    """evaluate(model, step, seconds) for `train`: AP of the model being trained, appended to VALIDATION_LOG."""
    import json

    from .export import in_memory_model
    from .validation import validate

    log = model_dir / VALIDATION_LOG
    wrapped = {}  # the model as a LoadedModel, built (and its signature traced) once

    def evaluate(model, step: int, seconds: float) -> None:
        if "model" not in wrapped:
            wrapped["model"] = in_memory_model(options, model, label_map)
        scores = validate(wrapped["model"], split.validation, split.validation_ids, progress=False).scores
        entry = {"step": step, "train_seconds": round(seconds, 1), **{k: round(v, 4) for k, v in scores.items()}}
        earlier = [line for line in (log.read_text(encoding="utf-8").splitlines() if log.exists() else [])
                   if json.loads(line)["step"] < step]  # a resumed run measures its steps again
        write_text_atomic(log, "".join(f"{line}\n" for line in [*earlier, json.dumps(entry)]))
        if progress:
            tqdm.write(f"step {step}: mask AP50 {scores['mask_AP50']:.3f}, mask AP {scores['mask_AP']:.3f} "
                       f"on {len(split.validation_ids)} validation pictures")

    return evaluate


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


def export_again(source: str | Path, export_dir: str | Path) -> None:
    """Write one of our exports anew from its own weights, as this version writes exports (with the steps the
    TensorFlow back end runs, training/export.py); its model card and example pictures come along."""
    from ..models.maskrcnn_parts import WEIGHTS, is_our_export
    from .export import LABEL_MAP_FILE, export_saved_model
    from .model_card import EXAMPLES_DIR, README_FILE

    source, export_dir = Path(source), Path(export_dir)
    if not is_our_export(source):
        raise InstanceSegmentationError(f"{source}: not one of our exports (no {OPTIONS_FILE} beside saved_model/)")
    options = TrainOptions.load(source)
    label_map = LabelMap.from_pbtxt(source / LABEL_MAP_FILE)
    # read before writing: `export_dir` may be `source` itself
    card = [path.relative_to(source) for path in [source / README_FILE, *sorted((source / EXAMPLES_DIR).glob("*"))]
            if path.is_file()]
    contents = {name: (source / name).read_bytes() for name in card}
    export_saved_model(options, label_map, export_dir, str(source / WEIGHTS))
    for name, data in contents.items():
        write_bytes_atomic(export_dir / name, data)
