"""A labelling tool's labels converted once into the training folder: MODEL_DIR/data/labels_NAME.json, the record
of what a run was trained on, with the skipped labels listed beside it in labels_NAME_problems.txt."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ...errors import DatasetError
from ...io.atomic import write_text_atomic
from ...io.coco import write_coco_dataset
from ..tfrecords import CocoDataset
from . import load_labels


class ConvertedLabels(NamedTuple):
    """The converted dataset and what the conversion wrote and skipped."""

    dataset: CocoDataset
    source: Path
    pictures: int
    instances: int
    problems: list[str]
    problems_file: Path

    def describe(self, name: str) -> str:
        """One line: `name: N pictures, M instances from SOURCE -> FILE[; K skipped, listed in PROBLEMS]`."""
        skipped = f"; {len(self.problems)} skipped, listed in {self.problems_file}" if self.problems else ""
        return (f"{name}: {self.pictures} pictures, {self.instances} instances from {self.source} -> "
                f"{self.dataset.annotations}{skipped}")


def convert_into_model_dir(labels: Path, labels_format: str, images: Path | None, model_dir: Path, name: str,
                           categories: list[dict[str, Any]] | None = None) -> ConvertedLabels:
    """Convert the labels at `labels` to MODEL_DIR/data/labels_NAME.json (see `load_labels` for the arguments);
    DatasetError when no labelled picture is usable."""
    loaded = load_labels(labels, labels_format, images, categories)
    if not loaded.dataset["images"]:
        raise DatasetError(f"{labels}: no usable labelled pictures" + (f" ({loaded.problems[0]})" if loaded.problems
                                                                       else ""))
    data = model_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    output = data / f"labels_{name}.json"
    write_coco_dataset(output, lambda: loaded.dataset["images"], lambda: loaded.dataset["annotations"],
                       loaded.dataset["categories"], f"converted from {labels}")
    problems = data / f"labels_{name}_problems.txt"
    write_text_atomic(problems, "".join(f"{line}\n" for line in loaded.problems))
    return ConvertedLabels(CocoDataset(output, loaded.images), labels, len(loaded.dataset["images"]),
                           len(loaded.dataset["annotations"]), loaded.problems, problems)
