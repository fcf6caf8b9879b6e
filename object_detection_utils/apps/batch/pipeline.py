"""Segmenting folders of pictures: a pipeline that keeps the model busy, resumes, and never half-writes a file.

Three stages run overlapped:

* a pool of reader threads decodes pictures into a bounded queue (at most `prefetch` decoded pictures wait);
* the model runs on the calling thread, one picture per call, as soon as a decoded picture is ready;
* a pool of writer threads turns raw outputs into `Detections`, draws, encodes and writes the outputs.

Results are recorded in input order in a journal (`<output>/.instance-segmentation-batch.jsonl`), one JSON
line per finished picture, appended only after all of that picture's files are renamed into place. A picture
is *complete* when the journal has a record for it made with the same settings (model, filters), for the same
source file (size and modification time), covering the requested outputs, and every file it lists exists.
The run's COCO JSON and summary are written at the end from the journal (so they cover earlier runs too),
streamed line by line: memory stays bounded by the queue sizes, whatever the number of pictures.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import ImageReadError, InstanceSegmentationError
from ..inference import DEFAULT_MASK_THRESHOLD, DEFAULT_MIN_SCORE, detections_from_outputs
from ..io.coco_results import detections_to_coco
from ..io.images import IMAGE_SUFFIXES, TEMP_SUFFIX, atomic_file, encode_image, read_image, write_bytes_atomic
from ..label_map import LabelMap
from ..models.loading import SegmentationModel
from ..visualization.drawing import draw_detections

JOURNAL_NAME = ".instance-segmentation-batch.jsonl"
# Overlays keep the source's format when OpenCV writes it; other formats (gif, ico, ...) get `<name>.png`.
WRITABLE_SUFFIXES = frozenset(".jpg .jpeg .jpe .png .bmp .webp .tif .tiff".split())
_TEMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX) + "$")


@dataclass(frozen=True)
class Picture:
    """One input file: `source` on disk, `name` its relative path (POSIX), which names its outputs."""

    source: Path
    name: str


@dataclass(frozen=True)
class BatchOptions:
    """What a batch run writes, and how the detections are filtered."""

    output_dir: Path
    overlay: bool = True
    masks: bool = False
    coco_json: Path | None = None
    summary: Path | None = None  # .csv or .jsonl
    class_ids: tuple[int, ...] | None = None
    min_score: float = DEFAULT_MIN_SCORE
    mask_threshold: float = DEFAULT_MASK_THRESHOLD
    overwrite: bool = False
    jpeg_quality: int = 95

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, wanted in (("overlay", self.overlay), ("masks", self.masks)) if wanted]


@dataclass
class BatchReport:
    """How a run went. `seconds` counts the pipeline only, not the model load."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def pictures_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        state = "interrupted: " if self.interrupted else ""
        return (f"{state}done {self.done}, skipped {self.skipped}, failed {self.failed} in {self.seconds:.1f}s "
                f"({self.pictures_per_second:.2f} pictures/s)")


# ---------------------------------------------------------------------------------------------------- inputs


def find_pictures(
    inputs: Sequence[str | Path], recursive: bool = False, exclude: Path | None = None
) -> list[Picture]:
    """The pictures that `inputs` name, sorted within each input.

    Each input is a folder (its pictures, with `recursive` its subfolders' too, named relative to it), a
    glob pattern (`**` recurses; named relative to the pattern's fixed leading folder) or one file. Folders
    and patterns keep only files with a picture suffix; a file named outright is taken as it is. Pictures
    inside `exclude` (the output folder, when it lies within an input) are left out.
    """
    pictures: list[Picture] = []
    owners: dict[str, Path] = {}
    for spec in inputs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = _walk(path, recursive)
        elif path.is_file():
            found = [Picture(path, path.name)]
        elif glob.has_magic(str(spec)):
            base = _glob_base(str(spec))
            matches = sorted(glob.glob(str(spec), recursive=True))
            found = [Picture(Path(m), Path(m).relative_to(base).as_posix()) for m in matches
                     if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise InstanceSegmentationError(f"{spec}: no such file, folder or matching pattern")
        for picture in found:
            if picture.name in owners:
                if owners[picture.name].resolve() == picture.source.resolve():
                    continue
                raise InstanceSegmentationError(
                    f"{picture.source}: would overwrite the outputs of {owners[picture.name]} (same name "
                    f"{picture.name!r}); process them into different output folders")
            owners[picture.name] = picture.source
            pictures.append(picture)
    if exclude is not None:
        excluded = Path(exclude).resolve()
        pictures = [p for p in pictures if not p.source.resolve().is_relative_to(excluded)]
    return pictures


def _walk(folder: Path, recursive: bool) -> list[Picture]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                source = Path(root) / name
                found.append(Picture(source, source.relative_to(folder).as_posix()))
    return found


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


# ---------------------------------------------------------------------------------------------------- outputs


def overlay_path(output_dir: Path, name: str) -> Path:
    """Where a picture's drawn overlay goes: same relative path, same format if writable, else `<name>.png`."""
    relative = Path(name)
    if relative.suffix.lower() not in WRITABLE_SUFFIXES:
        relative = relative.with_name(relative.name + ".png")
    return output_dir / relative


def masks_dir(output_dir: Path, name: str) -> Path:
    """The folder of a picture's per-instance mask PNGs: `<name>.masks/` (`000_person.png`, ...)."""
    return output_dir / f"{name}.masks"


def mask_file_name(index: int, class_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", class_name).strip("_") or "class"
    return f"{index:03d}_{slug}.png"


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temporary files that a killed run left in `folder` (only `.<name>.<random>.part` files)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for root, _, files in os.walk(folder):
        for name in files:
            if _TEMP_FILE.match(name):
                (Path(root) / name).unlink(missing_ok=True)
                removed += 1
    return removed


# ---------------------------------------------------------------------------------------------------- journal


class Journal:
    """The per-picture records of finished pictures, one JSON line each, appended in input order.

    Only the small fields needed to decide completeness are held in memory; detections stay on disk and are
    streamed by `records`. A line cut short by a killed process is ignored (and dropped on the next append).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: dict[str, tuple[int, dict[str, Any]]] = {}  # name -> (line number, record without coco)
        self._lines = 0
        clean = True
        if path.is_file():
            with path.open("rb") as file:
                for number, line in enumerate(file):
                    self._lines = number + 1
                    try:
                        record = json.loads(line)
                        record.pop("coco", None)
                        record["file"]
                    except (ValueError, AttributeError, KeyError, TypeError):
                        clean = False
                        continue
                    self._latest[record["file"]] = (number, record)
        if not clean:
            self._compact()
        self._lock = threading.Lock()

    def _compact(self) -> None:
        """Rewrite the journal without its broken lines (atomically), so appends start on a fresh line."""
        renumbered = {number: new for new, number in enumerate(sorted(n for n, _ in self._latest.values()))}
        with self.path.open("rb") as source, atomic_file(self.path) as target:
            for number, line in enumerate(source):
                if number in renumbered:
                    target.write(line if line.endswith(b"\n") else line + b"\n")
        self._latest = {name: (renumbered[number], record) for name, (number, record) in self._latest.items()}
        self._lines = len(renumbered)

    def is_complete(self, picture: Picture, settings: dict[str, Any], kinds: Iterable[str], output_dir: Path) -> bool:
        entry = self._latest.get(picture.name)
        if entry is None:
            return False
        record = entry[1]
        try:
            stat = picture.source.stat()
        except OSError:
            return False
        return (record.get("settings") == settings
                and record.get("source_size") == stat.st_size
                and record.get("source_mtime_ns") == stat.st_mtime_ns
                and set(kinds) <= set(record.get("kinds", ()))
                and all((output_dir / output).is_file() for output in record.get("outputs", ())))

    def append(self, record: dict[str, Any]) -> None:
        """Add one record with a single write() of a whole line, so a kill cannot leave half a record."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            small = {k: v for k, v in record.items() if k != "coco"}
            self._latest[record["file"]] = (self._lines, small)
            self._lines += 1

    def records(self, names: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The latest full record of each of `names` that has one, streamed in journal order."""
        wanted = {self._latest[n][0] for n in names if n in self._latest}
        if not wanted:
            return
        with self.path.open("rb") as file:
            for number, line in enumerate(file):
                if number in wanted:
                    yield json.loads(line)


# ---------------------------------------------------------------------------------------------------- pipeline


def run_batch(
    model: SegmentationModel,
    pictures: Sequence[Picture],
    options: BatchOptions,
    readers: int = 2,
    writers: int = 2,
    prefetch: int = 4,
    progress: bool = True,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = tqdm.write,
) -> BatchReport:
    """Segment `pictures` into `options.output_dir`; skip the complete ones unless `options.overwrite`.

    Bad pictures are logged with their reason, counted and skipped. Setting `stop` (e.g. on Ctrl+C) ends the
    run after the pictures already in flight are written. The COCO JSON and summary are written at the end.
    """
    start = time.perf_counter()
    report = BatchReport()
    stop = stop or threading.Event()
    output_dir = Path(options.output_dir)
    remove_stale_temp_files(output_dir)
    journal = Journal(output_dir / JOURNAL_NAME)
    settings = {
        "model": model.name,
        "class_ids": None if options.class_ids is None else sorted(options.class_ids),
        "min_score": options.min_score,
        "mask_threshold": options.mask_threshold,
    }
    todo = []
    for picture in pictures:
        if not options.overwrite and journal.is_complete(picture, settings, options.kinds, output_dir):
            report.skipped += 1
        else:
            todo.append(picture)

    def fail(picture: Picture, reason: str) -> None:
        report.failed += 1
        report.failures.append((picture.name, reason))
        log(f"failed: {reason}")

    reads: deque[tuple[Picture, Future]] = deque()
    writes: deque[tuple[Picture, Future]] = deque()
    pending = iter(todo)
    bar = tqdm(total=len(todo), unit="pic", desc="segmenting", disable=not progress, dynamic_ncols=True)

    def refill() -> None:
        while len(reads) < prefetch and not stop.is_set():
            picture = next(pending, None)
            if picture is None:
                return
            reads.append((picture, read_pool.submit(read_image, picture.source)))

    def collect(block_above: int) -> None:
        """Record finished writes in input order; wait for the oldest while more than `block_above` are pending."""
        while writes and (writes[0][1].done() or len(writes) > block_above):
            picture, future = writes.popleft()
            try:
                journal.append(future.result())
                report.done += 1
            except (OSError, ValueError) as error:
                fail(picture, f"{picture.source}: cannot write outputs ({error})")
            bar.update(1)

    with ThreadPoolExecutor(readers, thread_name_prefix="read") as read_pool, \
            ThreadPoolExecutor(writers, thread_name_prefix="write") as write_pool:
        try:
            refill()
            while reads and not stop.is_set():
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
                    outputs = model.predict(image)
                except Exception as error:  # TensorFlow raises many types; one bad picture must not end the run
                    fail(picture, f"{picture.source}: model failed ({_first_line(error)})")
                    bar.update(1)
                    continue
                model_seconds = time.perf_counter() - model_start
                writes.append((picture, write_pool.submit(
                    _finish_picture, picture, image, outputs, model_seconds, model.label_map, options, settings)))
                del image, outputs
                collect(block_above=2 * writers)
        finally:
            for _, future in reads:
                future.cancel()
            reads.clear()
            collect(block_above=0)
            bar.close()

    report.interrupted = stop.is_set()
    names = [picture.name for picture in pictures]
    if options.coco_json is not None:
        write_coco_json(options.coco_json, lambda: journal.records(names), model.label_map)
    if options.summary is not None:
        write_summary(options.summary, lambda: journal.records(names), report.failures)
    report.seconds = time.perf_counter() - start
    return report


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _finish_picture(
    picture: Picture,
    image: np.ndarray,
    outputs: dict[str, np.ndarray],
    model_seconds: float,
    label_map: LabelMap,
    options: BatchOptions,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Post-process, draw and write one picture's outputs; returns its journal record."""
    start = time.perf_counter()
    stat = picture.source.stat()
    height, width = image.shape[:2]
    detections = detections_from_outputs(
        outputs, (height, width), label_map, class_ids=options.class_ids,
        min_score=options.min_score, mask_threshold=options.mask_threshold,
    )
    output_dir = Path(options.output_dir)
    written: list[Path] = []
    if options.overlay:
        path = overlay_path(output_dir, picture.name)
        encoded = encode_image(draw_detections(image, detections), path.suffix, options.jpeg_quality)
        write_bytes_atomic(path, encoded)
        written.append(path)
    if options.masks:
        folder = masks_dir(output_dir, picture.name)
        new = []
        if detections.masks is not None:
            for i, instance in enumerate(detections):
                path = folder / mask_file_name(i, instance.class_name)
                write_bytes_atomic(path, encode_image(instance.mask.astype(np.uint8) * 255, ".png"))
                new.append(path)
        if folder.is_dir():  # masks of an earlier run with more instances
            for old in folder.glob("*.png"):
                if old not in new:
                    old.unlink()
        written += new
    coco = detections_to_coco(detections, image_id=0)
    for entry, area in zip(coco, detections.areas):
        del entry["image_id"]  # given when the run's COCO JSON is written
        entry["area"] = int(area) if detections.has_masks else float(area)  # mask pixels, else the box
    return {
        "file": picture.name,
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "settings": settings,
        "kinds": options.kinds,
        "outputs": [path.relative_to(output_dir).as_posix() for path in written],
        "width": width,
        "height": height,
        "instances": len(detections),
        "counts": detections.counts(),
        "inference_seconds": round(model_seconds, 4),
        "postprocess_seconds": round(time.perf_counter() - start, 4),
        "coco": coco,
    }


# ---------------------------------------------------------------------------------------------------- run files


def coco_image_ids(names: Iterable[str]) -> dict[str, int]:
    """Stable COCO image ids: the number of a numeric file stem (COCO's `000000123456.jpg` -> 123456) when no
    other file claims it, else a running index (from 1) that skips the ids taken by numeric stems."""
    names = sorted(names)
    ids: dict[str, int] = {}
    for name in names:
        stem = Path(name).stem
        if stem.isdigit() and int(stem) > 0 and int(stem) not in ids.values():
            ids[name] = int(stem)
    taken = set(ids.values())
    counter = 0
    for name in names:
        if name not in ids:
            counter += 1
            while counter in taken:
                counter += 1
            ids[name] = counter
    return ids


def write_coco_json(path: Path, records: Callable[[], Iterable[dict[str, Any]]], label_map: LabelMap) -> None:
    """One COCO file for the run, in the dataset layout that `pycocotools.coco.COCO(path)` loads.

    `images` lists file_name, width and height under stable ids; `annotations` are the results (bbox
    [x, y, w, h], score, RLE segmentation, area), so `coco_gt.loadRes(data["annotations"])` evaluates them
    against ground truth under the same image ids. `records` gives a fresh stream of journal records on each
    call: one pass writes the images, a second the annotations, so no more than one record is held at a time.
    """
    ids = coco_image_ids(record["file"] for record in records())
    seen_classes: set[int] = set()
    with atomic_file(path, "w") as file:
        file.write('{"info": {"description": "instance-segmentation batch results"},\n"images": [')
        for i, record in enumerate(records()):
            image = {"id": ids[record["file"]], "file_name": record["file"],
                     "width": record["width"], "height": record["height"]}
            file.write(("," if i else "") + "\n" + json.dumps(image))
        file.write('\n],\n"annotations": [')
        annotation_id = 0
        for record in records():
            for entry in record["coco"]:
                annotation_id += 1
                seen_classes.add(entry["category_id"])
                annotation = {"id": annotation_id, "image_id": ids[record["file"]], **entry, "iscrowd": 0}
                file.write(("," if annotation_id > 1 else "") + "\n" + json.dumps(annotation))
        categories = [{"id": class_id, "name": label_map.name(class_id), "supercategory": "object"}
                      for class_id in sorted(set(label_map) | seen_classes)]
        file.write('\n],\n"categories": ' + json.dumps(categories) + "}\n")


def write_summary(
    path: Path, records: Callable[[], Iterable[dict[str, Any]]], failures: Sequence[tuple[str, str]] = ()
) -> None:
    """One line per picture: file, size, instances (in all and per class), seconds; failures with their reason.

    `.csv` gets one column per class found (`n_<class>`); any other suffix gets JSON lines.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        classes: dict[str, None] = {}
        for record in records():
            classes.update(dict.fromkeys(record["counts"]))
        columns = ["file", "width", "height", "instances", *(f"n_{name}" for name in classes),
                   "inference_seconds", "postprocess_seconds", "error"]
        with atomic_file(path, "w") as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            for record in records():
                counts = [record["counts"].get(name, 0) for name in classes]
                writer.writerow([record["file"], record["width"], record["height"], record["instances"], *counts,
                                 record["inference_seconds"], record["postprocess_seconds"], ""])
            for name, reason in failures:
                writer.writerow([name, "", "", "", *([""] * len(classes)), "", "", reason])
        return
    keys = ("file", "width", "height", "instances", "counts", "inference_seconds", "postprocess_seconds")
    with atomic_file(path, "w") as file:
        for record in records():
            file.write(json.dumps({key: record[key] for key in keys}) + "\n")
        for name, reason in failures:
            file.write(json.dumps({"file": name, "error": reason}) + "\n")


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[threading.Event]:
    """An event set by the first Ctrl+C (SIGINT), so a run can finish what is in flight; a second Ctrl+C
    interrupts at once. The previous handler is restored afterwards. Main thread only."""
    stop = threading.Event()

    def handle(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        tqdm.write("stopping after the pictures in flight (Ctrl+C again to stop now)")

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
