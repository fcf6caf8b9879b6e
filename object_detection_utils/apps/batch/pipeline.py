"""The batch pipeline: three stages run overlapped, so the model is never waiting for files.

* a pool of reader threads decodes pictures into a bounded queue (at most `prefetch` decoded pictures wait);
* the model runs on the calling thread, one picture per call, as soon as a decoded picture is ready;
* a pool of writer threads post-processes raw outputs into `Detections`, draws, encodes and writes the outputs.

Results are recorded in input order in the journal, one line per finished picture, appended only after all of
that picture's files are renamed into place. The run's COCO JSON and summary are written at the end from the
journal (so they cover earlier runs too), as are the labels of --export-labels, streamed line by line: memory
stays bounded by the queue sizes, whatever the number of pictures.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ...errors import ImageReadError, first_line
from ...io.atomic import remove_stale_temp_files
from ...io.images import DEFAULT_MAX_PIXELS, read_image
from ...label_exports import ExportOptions
from ...model_contract import RawOutputs
from ...predictor import Segmenter
from .inputs import Picture
from .journal import JOURNAL_NAME, Journal
from .output_folder import claim_output_folder
from .outputs import picture_record, write_picture_outputs
from .run_files import write_coco_json, write_label_export, write_summary

# Write errors that no later picture would escape: the run stops instead of failing every picture in turn.
OUTPUT_FOLDER_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


@dataclass(frozen=True)
class BatchOptions:
    """What a batch run writes (the filters are the `Segmenter`'s)."""

    output_dir: Path
    overlay: bool = True
    masks: bool = False
    coco_json: Path | None = None
    summary: Path | None = None  # .csv or .jsonl
    overwrite: bool = False
    jpeg_quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger pictures are refused before decoding
    export_labels: tuple[str, Path] | None = None  # (format, folder): pre-annotations for a labelling tool
    export_options: ExportOptions = ExportOptions()

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, wanted in (("overlay", self.overlay), ("masks", self.masks)) if wanted]


@dataclass(frozen=True)
class PipelineOptions:
    """How a batch run works: its threads and queue (what it writes is `BatchOptions`)."""

    readers: int = 2  # picture-decoding threads
    writers: int = 2  # drawing, encoding and writing threads
    prefetch: int = 4  # decoded pictures waiting for the model at most
    progress: bool = True  # a progress bar


@dataclass
class BatchReport:
    """How a run went. `seconds` counts the pipeline only, not the model load."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    seconds: float = 0.0
    interrupted: bool = False
    error: str | None = None  # what stopped the run early: the output folder cannot take more (disk full, ...)

    @property
    def pictures_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        state = "stopped: " if self.error else "interrupted: " if self.interrupted else ""
        return (f"{state}done {self.done}, skipped {self.skipped}, failed {self.failed} in {self.seconds:.1f}s "
                f"({self.pictures_per_second:.2f} pictures/s)")


def run_batch(
    segmenter: Segmenter,
    pictures: Sequence[Picture],
    options: BatchOptions,
    pipeline: PipelineOptions = PipelineOptions(),
    stop: threading.Event | None = None,
    log: Callable[[str], None] = tqdm.write,
) -> BatchReport:
    """Segment `pictures` into `options.output_dir`; skip the complete ones unless `options.overwrite`.

    Bad pictures are logged with their reason, counted and skipped. Setting `stop` (e.g. on Ctrl+C) ends the
    run after the pictures already in flight are written. An output folder that cannot take more (disk full,
    read-only) ends the run too, with `report.error` naming the file and the cause; every picture finished
    before it stays whole and recorded, so a rerun resumes. The COCO JSON and summary are written at the end.
    The output folder is held for the run (`claim_output_folder`): a second run on it is refused.
    """
    with claim_output_folder(options.output_dir):
        return _run_claimed(segmenter, pictures, options, pipeline, stop or threading.Event(), log)


def _run_claimed(
    segmenter: Segmenter,
    pictures: Sequence[Picture],
    options: BatchOptions,
    pipeline: PipelineOptions,
    stop: threading.Event,
    log: Callable[[str], None],
) -> BatchReport:
    start = time.perf_counter()
    report = BatchReport()
    output_dir = Path(options.output_dir)
    remove_stale_temp_files(output_dir)
    journal = Journal(output_dir / JOURNAL_NAME)
    settings = segmenter.settings
    todo = pictures_to_do(pictures, journal, settings, options)
    report.skipped = len(pictures) - len(todo)

    def fail(picture: Picture, reason: str) -> None:
        report.failed += 1
        report.failures.append((picture.name, reason))
        log(f"failed: {reason}")

    reads: deque[tuple[Picture, Future]] = deque()
    writes: deque[tuple[Picture, Future]] = deque()
    pending = iter(todo)
    bar = tqdm(total=len(todo), unit="pic", desc="segmenting", disable=not pipeline.progress, dynamic_ncols=True)

    def halted() -> bool:
        return stop.is_set() or report.error is not None

    def refill() -> None:
        while len(reads) < pipeline.prefetch and not halted():
            picture = next(pending, None)
            if picture is None:
                return
            reads.append((picture, read_pool.submit(read_image, picture.source, options.max_pixels)))

    def collect(block_above: int) -> None:
        """Record finished writes in input order; wait for the oldest while more than `block_above` are pending."""
        while writes and (writes[0][1].done() or len(writes) > block_above):
            picture, future = writes.popleft()
            try:
                journal.append(future.result())
                report.done += 1
            except (OSError, ValueError) as error:
                stops_run, message = output_error(picture, error, output_dir)
                if stops_run:
                    report.error = report.error or message
                else:
                    fail(picture, message)
            bar.update(1)

    with ThreadPoolExecutor(pipeline.readers, thread_name_prefix="read") as read_pool, \
            ThreadPoolExecutor(pipeline.writers, thread_name_prefix="write") as write_pool:
        try:
            refill()
            while reads and not halted():
                picture, future = reads.popleft()
                try:
                    image = future.result()
                except ImageReadError as error:
                    fail(picture, str(error))
                    bar.update(1)
                    refill()
                    continue
                refill()  # the readers decode the next pictures while the model runs
                model_start = time.perf_counter()
                try:
                    outputs = segmenter.predict(image)
                except Exception as error:  # TensorFlow raises many types; one bad picture must not end the run
                    fail(picture, f"{picture.source}: model failed ({first_line(error)})")
                    bar.update(1)
                    continue
                model_seconds = time.perf_counter() - model_start
                writes.append((picture, write_pool.submit(
                    finish_picture, segmenter, picture, image, outputs, model_seconds, options, settings)))
                del image, outputs
                collect(block_above=2 * pipeline.writers)
        finally:
            for _, future in reads:
                future.cancel()
            reads.clear()
            collect(block_above=0)
            bar.close()

    report.interrupted = stop.is_set()
    names = [picture.name for picture in pictures]
    try:
        if options.coco_json is not None and report.error is None:
            write_coco_json(options.coco_json, lambda: journal.records(names), segmenter.label_map)
        if options.summary is not None and report.error is None:
            write_summary(options.summary, lambda: journal.records(names), report.failures)
        if options.export_labels is not None and report.error is None:
            format, folder = options.export_labels
            write_label_export(format, folder, lambda: journal.records(names),
                               {picture.name: picture.source for picture in pictures}, segmenter.label_map,
                               options.export_options)
    except OSError as error:
        report.error = f"{error.filename}: {error.strerror}"
    report.seconds = time.perf_counter() - start
    return report


def pictures_to_do(
    pictures: Sequence[Picture], journal: Journal, settings: dict[str, Any], options: BatchOptions
) -> list[Picture]:
    """The pictures a run must process: all with `options.overwrite`, else those not complete in `journal`."""
    if options.overwrite:
        return list(pictures)
    return [p for p in pictures if not journal.is_complete(p, settings, options.kinds, options.output_dir)]


def output_error(picture: Picture, error: OSError | ValueError, output_dir: Path) -> tuple[bool, str]:
    """(whether the run must stop, the line to report) for an error writing a picture's outputs: a full or
    read-only output folder stops the run (no later picture would fare better), anything else fails the picture."""
    if isinstance(error, OSError) and error.errno in OUTPUT_FOLDER_FULL:
        return True, f"{error.filename or output_dir}: {error.strerror}"
    return False, f"{picture.source}: cannot write outputs ({error})"


def finish_picture(
    segmenter: Segmenter,
    picture: Picture,
    image: np.ndarray,
    outputs: RawOutputs,
    model_seconds: float,
    options: BatchOptions,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Post-process, draw and write one picture's outputs; returns its journal record."""
    start = time.perf_counter()
    detections = segmenter.postprocess(outputs, image.shape[:2])
    output_dir = options.output_dir
    written = write_picture_outputs(output_dir, picture, image, detections, options.overlay, options.masks,
                                    options.jpeg_quality)
    outputs_written = [path.relative_to(output_dir).as_posix() for path in written]
    return picture_record(picture, detections, settings, options.kinds, outputs_written, model_seconds, start)
