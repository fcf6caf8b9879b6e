"""The batch job on Ray Data: the same pictures, outputs, journal and run files as `run_batch`, over a Ray cluster.

    driver: list the pictures, skip the complete ones (the journal's rule)
      -> decode        Ray tasks               read_picture (local or remote), bad files become error rows
      -> model         an actor pool           one Segmenter per actor, loaded once; one GPU each where there are
      -> write         Ray tasks               finish_picture: post-process, draw, write the files where they belong
    driver: stream the small per-picture records back in input order into the journal; the COCO JSON and the
            summary are written from the journal at the end, as locally.

Nothing but file names, records and errors reaches the driver: pictures, raw outputs and drawings stay in the
workers and the object store, so the driver's memory does not grow with the number of pictures. Ray Data
retries the work of a worker that dies (the model actors restart), and rows reach the driver exactly once, so a
killed worker loses no picture and records none twice; a picture redone that way rewrites the same files,
atomically.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ImageReadError, ModelLoadError, first_line
from ...io.atomic import remove_stale_temp_files
from ...models.backends import check_backend
from ...predictor import Segmenter, SegmenterSpec
from .inputs import Picture
from .journal import JOURNAL_NAME, Journal
from .output_folder import claim_output_folder
from .pipeline import BatchOptions, BatchReport, finish_picture, output_error, pictures_to_do
from .ray_cluster import TASK_CPUS, check_room, default_actors
from .remote_files import RemotePath, read_picture, written_locally
from .run_files import write_coco_json, write_label_export, write_summary

# Pictures per block, the unit of a task: a few, so that Ray's cost per task is shared (a block per picture
# halves the throughput of a 60 ms model on 2 cores), and not many, so that a block's pictures stay small in
# memory and the stages overlap.
PICTURES_PER_BLOCK = 8
MAX_BLOCKS = 10_000  # the driver holds a reference per input block; Ray Data splits big blocks' outputs itself
_NO_IMAGE = np.zeros((1, 1, 3), np.uint8)  # the image column of a row whose picture could not be read


@contextlib.contextmanager
def _data_context(progress: bool) -> Iterator[Any]:
    """Ray Data's process-wide context set for one run (records in input order, as the local run's journal; the
    progress bars as asked), then as it was."""
    import ray.data

    context = ray.data.DataContext.get_current()
    previous = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order, context.enable_progress_bars = True, progress
    try:
        yield context
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = previous


class ModelActor:
    """One model per actor, loaded once; raw outputs (pickled) for each picture of a batch."""

    def __init__(self, spec: SegmenterSpec, settings: dict[str, Any]) -> None:
        self.segmenter = spec.load()
        if self.segmenter.settings != settings:
            raise ModelLoadError(f"the model loaded on this worker ({self.segmenter.settings}) is not the one the "
                                 f"driver described ({settings}): give every node the same model files")
        self.ready = time.time()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        errors, outputs, seconds = list(batch["error"]), [], []
        for i, image in enumerate(batch["image"]):
            raw, start = b"", time.perf_counter()
            if not errors[i]:
                try:
                    raw = pickle.dumps(self.segmenter.predict(image), protocol=5)
                except Exception as error:  # TensorFlow raises many types; one bad picture must not end the run
                    errors[i] = f"{_source(batch, i)}: model failed ({first_line(error)})"
            outputs.append(raw)
            seconds.append(time.perf_counter() - start)
        count = len(errors)
        return {**batch, "error": np.array(errors, dtype=object), "outputs": np.array(outputs, dtype=object),
                "model_seconds": np.array(seconds), "model_ready": np.full(count, self.ready),
                "backend": np.full(count, self.segmenter.model.backend, dtype=object)}


def _source(batch: dict[str, np.ndarray], i: int) -> str:
    root, path = str(batch["root"][i]), str(batch["path"][i])
    return str(RemotePath(root, path)) if root else path


def _row(picture: Picture) -> dict[str, Any]:
    source = picture.source
    if isinstance(source, RemotePath):
        return {"root": source.root, "path": source.path, "name": picture.name, "size": source.size,
                "mtime_ns": source.mtime_ns}
    return {"root": "", "path": str(source), "name": picture.name, "size": -1, "mtime_ns": -1}


def _picture(row: dict[str, Any]) -> Picture:
    if row["root"]:
        return Picture(RemotePath(row["root"], row["path"], int(row["size"]), int(row["mtime_ns"])), row["name"])
    return Picture(Path(row["path"]), row["name"])


def _decode(row: dict[str, Any], max_pixels: int) -> dict[str, Any]:
    try:
        image, error = read_picture(_picture(row).source, max_pixels), ""
    except ImageReadError as failure:
        image, error = _NO_IMAGE, str(failure)
    return {**row, "image": image, "error": error}


def _write(row: dict[str, Any], segmenter: Segmenter, options: BatchOptions, settings: dict[str, Any]
           ) -> dict[str, Any]:
    """Post-process, draw and write one picture (`finish_picture`, as locally); its record as JSON text, so
    that it reaches the journal exactly as it was made."""
    result = {"name": row["name"], "record": "", "error": row["error"], "stops_run": False,
              "model_ready": row["model_ready"], "backend": row["backend"]}
    if row["error"]:
        return result
    picture = _picture(row)
    try:
        record = finish_picture(segmenter, picture, row["image"], pickle.loads(row["outputs"]),
                                float(row["model_seconds"]), options, settings)
    except (OSError, ValueError) as error:
        stops_run, message = output_error(picture, error, options.output_dir)
        return {**result, "error": message, "stops_run": stops_run}
    return {**result, "record": json.dumps(record, separators=(",", ":"))}


@dataclass(frozen=True)
class _RayJob:
    """What one `run_ray_batch` call was given, with the driver's segmenter (`SegmenterSpec.describe`)."""

    spec: SegmenterSpec
    segmenter: Segmenter
    pictures: Sequence[Picture]
    options: BatchOptions
    actors: int | None
    progress: bool
    stop: threading.Event
    log: Callable[[str], None]


def run_ray_batch(
    model: SegmenterSpec,
    pictures: Sequence[Picture],
    options: BatchOptions,
    actors: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
) -> BatchReport:
    """`run_batch` on the Ray cluster this process is connected to (`connect`): same outputs, journal, resume
    rule, run files and report. `options.output_dir` may be a `RemotePath`; so may the pictures' sources.

    `actors` model actors (default: `default_actors()`). Setting `stop` ends the run at the next finished
    picture; what was recorded is kept and the run files are written, as locally. The local output folder is
    held for the run (`claim_output_folder`); a remote one is not locked: run one job per remote folder.
    """
    check_backend(model.backend)  # an unknown back end, or OpenVINO not installed here: one line, before Ray
    segmenter = model.describe()  # unknown model or class: one line now, before any worker starts
    job = _RayJob(model, segmenter, pictures, options, actors, progress, stop or threading.Event(), log)
    output_dir = options.output_dir
    remote = isinstance(output_dir, RemotePath)
    with contextlib.nullcontext() if remote else claim_output_folder(output_dir):
        if not remote:
            remove_stale_temp_files(output_dir)
        with written_locally(output_dir / JOURNAL_NAME, download=True) as journal_path:
            return _run(job, Journal(journal_path))


def _run(job: _RayJob, journal: Journal) -> BatchReport:
    segmenter, pictures, options, stop, log = job.segmenter, job.pictures, job.options, job.stop, job.log
    start = time.time()
    report = BatchReport()
    settings = segmenter.settings
    output_dir = options.output_dir
    listed = output_dir.listed() if isinstance(output_dir, RemotePath) else output_dir
    todo = pictures_to_do(pictures, journal, settings, replace(options, output_dir=listed))
    report.skipped = len(pictures) - len(todo)
    first_model_ready = None
    engines: set[str] = set()
    if todo:
        with contextlib.closing(_rows(job, todo, settings)) as rows:
            for row in rows:
                ready = float(row["model_ready"])
                first_model_ready = ready if first_model_ready is None else min(first_model_ready, ready)
                if row["backend"] not in engines:  # an actor that fell back to TensorFlow says so here too
                    engines.add(row["backend"])
                    log(f"model actors: {segmenter.name} runs on {row['backend']}")
                if row["record"]:
                    journal.append(json.loads(row["record"]))
                    report.done += 1
                elif row["stops_run"]:
                    report.error = row["error"]
                else:
                    report.failed += 1
                    report.failures.append((row["name"], row["error"]))
                    log(f"failed: {row['error']}")
                if stop.is_set() or report.error:
                    break
    report.interrupted = stop.is_set()
    names = [picture.name for picture in pictures]
    try:
        if options.coco_json is not None and report.error is None:
            with written_locally(options.coco_json) as path:
                write_coco_json(path, lambda: journal.records(names), segmenter.label_map)
        if options.summary is not None and report.error is None:
            with written_locally(options.summary) as path:
                write_summary(path, lambda: journal.records(names), report.failures)
        if options.export_labels is not None and report.error is None:
            format, folder = options.export_labels  # a local folder, of local pictures (the command checks)
            write_label_export(format, folder, lambda: journal.records(names),
                               {picture.name: Path(str(picture.source)) for picture in pictures},
                               segmenter.label_map, options.export_options)
    except OSError as error:
        report.error = f"{error.filename}: {error.strerror}"
    # The model load is not the pipeline's time, as locally: count from the first model ready (when it came later).
    report.seconds = time.time() - max(start, first_model_ready or start)
    return report


def _rows(job: _RayJob, todo: Sequence[Picture], settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pictures `todo` through decoding tasks, the model actors and writing tasks: their rows, in input order."""
    import ray

    options = job.options
    with _data_context(job.progress):
        gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
        actors = job.actors or default_actors()
        check_room(actors)
        dataset = (
            ray.data.from_items([_row(p) for p in todo],
                                override_num_blocks=min(-(-len(todo) // PICTURES_PER_BLOCK), MAX_BLOCKS))
            .map(_decode, fn_kwargs={"max_pixels": options.max_pixels}, num_cpus=TASK_CPUS)
            .map_batches(ModelActor, fn_constructor_kwargs={"spec": job.spec, "settings": settings}, batch_size=1,
                         batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                         num_cpus=1, num_gpus=gpus)
            .map(_write, fn_kwargs={"segmenter": job.segmenter, "options": options, "settings": settings},
                 num_cpus=TASK_CPUS)
        )
        rows = dataset.iter_rows()
        try:
            yield from rows
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
