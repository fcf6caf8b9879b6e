"""The predictor: a loaded model and the filters that go with it; pictures in, `Detections` out.

    segmenter = Segmenter.load("mask_rcnn_inception_v2_coco_2018_01_28", classes=["person", "car"], min_score=0.7)
    detections = segmenter(image)                     # one (H, W, 3) RGB picture -> Detections
    for detections in segmenter(pictures):            # an iterable of pictures -> Detections each, in order
        ...

Every script and app goes through a `Segmenter`, so the class filter, score and mask thresholds are chosen
once, where it is built; a `SegmenterSpec` is the same choice as plain data (a model name or path and the filters),
declared once for the command line, the library, the Ray job and the video loop alike.

    spec = SegmenterSpec("shapes-r18-128", classes=("circle",), min_score=0.7)
    segmenter = spec.load()                           # loads the model
    driver_side = spec.describe()                     # label map, names, mask pasting: nothing loaded

Large pictures: `tiles=TileOptions(size=512)` (or `TileOptions()` for the model's input size) runs the model on
overlapping tiles as well as on the whole picture and stitches the results into whole instances (docs/TILES.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from tqdm import tqdm

from .detections import Detections
from .label_map import LabelMap
from .model_contract import KeptInstances, LoadedModel, ModelDescription, RawOutputs
from .models.dispatch import describe_model
from .models.input_size import model_input_size
from .models.zoo import DEFAULT_MODEL, find_model, load_model
from .postprocess import DEFAULT_MASK_THRESHOLD, DEFAULT_MIN_SCORE, detections_from_outputs
from .stitching import stitch
from .tiling import TileOptions, Window, full_pass_picture, parse_tile_size, tile_size_for, tile_windows

TILE_PROGRESS_FROM = 64  # pictures cut into at least this many tiles show a progress bar


@dataclass(frozen=True)
class TiledOutputs:
    """What the model found in each window of one tiled picture (the whole picture first, with a full pass),
    each window's `Detections` in its own coordinates and compact: `Segmenter.postprocess` stitches them."""

    image_size: tuple[int, int]
    parts: list[tuple[Window, Detections]]


class Segmenter:
    """A model with its filters: call it on a picture for its `Detections`, or on pictures for a stream of them.

    Args:
        model: a loaded model (`load_model`), or use `Segmenter.load` with a zoo name or path. A
            `ModelDescription` (`SegmenterSpec.describe`) makes a segmenter that post-processes raw outputs
            made elsewhere but cannot run the model itself.
        classes: keep only these classes, as ids or names of the model's label map (None keeps all). Unknown
            names raise `LabelMapError` here, before any picture is run.
        min_score: keep instances scoring at least this.
        mask_threshold: a mask pixel is set where the resampled soft mask is above this.
        bgr: pictures come in BGR order (OpenCV's `cv2.imread`, detectron2's habit) instead of RGB.
        tiles: run the model on overlapping tiles (and the whole picture) and stitch the results, for small
            objects in large pictures (docs/TILES.md); a tile below the model's minimum raises here.
    """

    def __init__(
        self,
        model: LoadedModel | ModelDescription,
        classes: Iterable[int | str] | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
        mask_threshold: float = DEFAULT_MASK_THRESHOLD,
        bgr: bool = False,
        tiles: TileOptions | None = None,
    ) -> None:
        self.model = model
        self.class_ids: tuple[int, ...] | None = None if classes is None else tuple(model.label_map.resolve(classes))
        self.min_score = float(min_score)
        self.mask_threshold = float(mask_threshold)
        self.bgr = bgr
        self.tiles = tiles
        self.tile_size = None if tiles is None else tile_size_for(tiles, model_input_size(model.source))

    @classmethod
    def load(
        cls,
        model: str | Path = DEFAULT_MODEL,
        models_dir: str | Path | None = None,
        label_map: LabelMap | str | Path | None = None,
        backend: str = "tensorflow",
        matterport_config: Any = None,
        **options: Any,
    ) -> Segmenter:
        """Load a model by zoo name (downloaded once) or path (folder, `.pb`, `.tar.gz`, matterport `.h5`) and wrap it.

        `backend` picks the engine: "tensorflow", "openvino", "openvino-bf16" or "auto" (docs/PERFORMANCE.md).
        `matterport_config` is a `.h5` model's config: preset name, file, mapping, or None to infer it from the
        weights (docs/MATTERPORT.md). `options` are the constructor's: `classes`, `min_score`, `mask_threshold`,
        `bgr`, `tiles`.
        """
        bgr = options.pop("bgr", False)
        spec = SegmenterSpec(model, models_dir, label_map, backend=backend, matterport_config=matterport_config,
                             **options)
        return spec.load(bgr=bgr)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def kept(self) -> KeptInstances:
        """This segmenter's filters, for an engine that computes masks for the kept instances only."""
        return KeptInstances(self.min_score, self.class_ids)

    @property
    def label_map(self) -> LabelMap:
        return self.model.label_map

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the results besides the picture: the model and the filters (JSON-ready)."""
        settings = {
            "model": self.model.name,
            "class_ids": None if self.class_ids is None else sorted(self.class_ids),
            "min_score": self.min_score,
            "mask_threshold": self.mask_threshold,
        }
        if self.tiles is not None:  # only when tiling, so untiled runs' journals stay valid
            settings["tiles"] = {"size": self.tile_size, "overlap": self.tiles.overlap,
                                 "full_pass": self.tiles.full_pass}
        return settings

    def describe_tiles(self) -> str | None:
        """E.g. "tiles 128 px, overlap 0.2, plus a full-picture pass", or None without tiles."""
        return None if self.tiles is None else self.tiles.describe(self.tile_size)

    @overload
    def __call__(self, images: np.ndarray) -> Detections | Iterator[Detections]: ...

    @overload
    def __call__(self, images: Iterable[np.ndarray]) -> Iterator[Detections]: ...

    def __call__(self, images):
        """`segment(picture)` for one (H, W, 3) picture; `segment_many(pictures)` for anything else iterable
        (a list, a generator, a (B, H, W, 3) array)."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            return self.segment(images)
        return self.segment_many(images)

    def segment(self, image: np.ndarray) -> Detections:
        """The instances in one (H, W, 3) uint8 picture."""
        image = self.prepare(image)
        return self.postprocess(self._run_model(image), image.shape[:2])

    def segment_many(self, images: Iterable[np.ndarray], workers: int = 1) -> Iterator[Detections]:
        """The instances in each picture, in order. The model runs on the calling thread while the previous
        pictures' post-processing (mask pasting) runs on `workers` threads, so the model is kept busy."""
        pending: deque[Future[Detections]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="postprocess") as pool:
            for image in images:
                image = self.prepare(image)
                outputs = self._run_model(image)
                pending.append(pool.submit(self.postprocess, outputs, image.shape[:2]))
                while len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The picture as the model takes it: a checked (H, W, 3) uint8 RGB array."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            order = "BGR" if self.bgr else "RGB"
            raise ValueError(f"expected an (H, W, 3) uint8 {order} picture, got {image.shape} {image.dtype}")
        return np.ascontiguousarray(image[:, :, ::-1]) if self.bgr else image

    def predict(self, image: np.ndarray) -> RawOutputs | TiledOutputs:
        """The model's raw outputs for one picture (after `prepare`); `postprocess` turns them into `Detections`.

        The two halves apart let a pipeline run the model on one thread and post-process on others. With tiles,
        what each window found (`TiledOutputs`, compact), which `postprocess` stitches.
        """
        return self._run_model(self.prepare(image))

    def postprocess(
        self, outputs: RawOutputs | TiledOutputs, image_size: tuple[int, int], index: int = 0
    ) -> Detections:
        """`Detections` of picture `index` of raw outputs, with this segmenter's filters; tiled outputs stitched."""
        if isinstance(outputs, TiledOutputs):
            return stitch(outputs.parts, image_size)
        return detections_from_outputs(
            outputs, image_size, self.model.label_map, index=index, class_ids=self.class_ids,
            min_score=self.min_score, mask_threshold=self.mask_threshold, paste_masks=self.model.paste_masks,
        )

    def _run_model(self, image: np.ndarray) -> RawOutputs | TiledOutputs:
        return self.model.predict(image, self.kept) if self.tiles is None else self._run_tiles(image)

    def _run_tiles(self, image: np.ndarray) -> TiledOutputs:
        """The model on every tile (a batch of tiles per call where it takes batches) and, with a full pass, on the
        whole picture (shrunk to `FULL_PASS_MAX_SIDE` at most); each window's masks are pasted on a worker thread
        while the model runs the next tiles, and only its kept instances, compact, are held: memory grows with the
        tiles and objects found."""
        height, width = image.shape[:2]
        whole = Window(0, 0, height, width)
        tiles = tile_windows(height, width, self.tile_size, self.tiles.overlap)
        step = self.tiles.batch if getattr(self.model, "batched", False) else 1
        groups = [tiles[i : i + step] for i in range(0, len(tiles), step)]
        if self.tiles.full_pass and tiles != [whole]:
            groups.insert(0, [whole])
        windows = [window for group in groups for window in group]
        futures: deque[tuple[Window, Future[Detections]]] = deque()
        parts = []
        bar = tqdm(total=len(windows), unit="tile", desc="tiles", leave=False,
                   disable=len(windows) < TILE_PROGRESS_FROM)
        with ThreadPoolExecutor(1, thread_name_prefix="tile-postprocess") as pool, bar:
            for group in groups:
                if group == [whole]:
                    group_runs = [(group, self.model.predict(full_pass_picture(image), self.kept))]
                elif len({(w.height, w.width) for w in group}) > 1:  # tiles cut by a small picture go one by one
                    group_runs = [([w], self.model.predict(image[w.y0 : w.y1, w.x0 : w.x1], self.kept)) for w in group]
                else:
                    crops = np.stack([image[w.y0 : w.y1, w.x0 : w.x1] for w in group])
                    group_runs = [(group, self.model.predict_batch(crops, self.kept))]
                for members, outputs in group_runs:
                    for k, window in enumerate(members):
                        futures.append((window, pool.submit(self.postprocess, outputs, (window.height, window.width), k)))
                while len(futures) > 2 * step:  # raw outputs wait for pasting no longer than two calls
                    window, future = futures.popleft()
                    parts.append((window, future.result()))
                    bar.update(1)
            while futures:
                window, future = futures.popleft()
                parts.append((window, future.result()))
                bar.update(1)
        return TiledOutputs((height, width), parts)


@dataclass(frozen=True)
class SegmenterSpec:
    """A model and its filters as plain data: what a `Segmenter` is built from (small and picklable).

    `model` is a zoo name or alias (downloaded once into `models_dir`) or a path; `label_map` overrides the
    model's; `classes` keeps only these ids or names; `backend` picks the engine (docs/PERFORMANCE.md);
    `matterport_config` is a matterport `.h5` model's preset, config file or mapping (docs/MATTERPORT.md);
    `tiles` runs large pictures in tiles as well (docs/TILES.md).
    """

    model: str | Path = DEFAULT_MODEL
    models_dir: str | Path | None = None
    label_map: LabelMap | str | Path | None = None
    classes: tuple[int | str, ...] | None = None
    min_score: float = DEFAULT_MIN_SCORE
    mask_threshold: float = DEFAULT_MASK_THRESHOLD
    backend: str = "tensorflow"
    matterport_config: Any = None
    tiles: TileOptions | None = None
    calibration: str | Path | None = None  # pictures to judge (and calibrate) bf16 and int8 on

    def __post_init__(self) -> None:
        if self.classes is not None and not isinstance(self.classes, tuple):
            object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def from_args(cls, args: Any, model: str | Path | None = None) -> SegmenterSpec:
        """The spec `apps.cli.add_model_arguments` declares, from parsed arguments (`model` overrides
        `args.model`, for a repeated --model); `--classes` is comma-separated ids or names; `--tile` and
        `--tile-overlap` (`apps.cli.add_tile_arguments`) are read where the script declares them."""
        classes = None if args.classes is None else tuple(split_classes(args.classes))
        tiles = None
        if getattr(args, "tile", None) is not None:
            tiles = TileOptions(parse_tile_size(args.tile), args.tile_overlap, full_pass=not args.no_full_pass)
        return cls(args.model if model is None else model, args.models_dir, args.label_map, classes,
                   args.min_score, args.mask_threshold, args.backend, args.matterport_config, tiles,
                   getattr(args, "calibration", None))

    def load(self, bgr: bool = False) -> Segmenter:
        """The model loaded on the chosen back end, with the filters; unknown classes raise `LabelMapError` here,
        before any picture is read."""
        model = load_model(self.model, self.models_dir, label_map=self.label_map, backend=self.backend,
                           matterport_config=self.matterport_config, calibration=self.calibration)
        return Segmenter(model, self.classes, self.min_score, self.mask_threshold, bgr, self.tiles)

    def describe(self) -> Segmenter:
        """A segmenter on the model's description, without loading it (no TensorFlow): its name, label map,
        settings and post-processing are the loaded model's, for a driver and its writers. The model is found
        (or downloaded) and unknown classes are refused, as `load` does."""
        path = find_model(self.model, self.models_dir)
        description = describe_model(path, self.label_map, self.matterport_config)
        return Segmenter(description, self.classes, self.min_score, self.mask_threshold, tiles=self.tiles)


def split_classes(text: str) -> list[str]:
    """'person, dog,,1' -> ['person', 'dog', '1']."""
    return [part.strip() for part in text.split(",") if part.strip()]


def run_inference_for_single_image(
    model: LoadedModel,
    image: np.ndarray,
    class_ids: Iterable[int | str] | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
) -> Detections:
    """The instances in one (H, W, 3) uint8 RGB picture: the TF OD API tutorial's call, on a `Segmenter`.

    `class_ids` keeps only these classes, as ids or names of the model's label map (None keeps all).
    """
    return Segmenter(model, classes=class_ids, min_score=min_score, mask_threshold=mask_threshold).segment(image)
