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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from .detections import Detections
from .label_map import LabelMap
from .model_contract import KeptInstances, LoadedModel, ModelDescription, RawOutputs
from .models.dispatch import describe_model
from .models.zoo import DEFAULT_MODEL, find_model, load_model
from .postprocess import DEFAULT_MASK_THRESHOLD, DEFAULT_MIN_SCORE, detections_from_outputs


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
    """

    def __init__(
        self,
        model: LoadedModel | ModelDescription,
        classes: Iterable[int | str] | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
        mask_threshold: float = DEFAULT_MASK_THRESHOLD,
        bgr: bool = False,
    ) -> None:
        self.model = model
        self.class_ids: tuple[int, ...] | None = None if classes is None else tuple(model.label_map.resolve(classes))
        self.min_score = float(min_score)
        self.mask_threshold = float(mask_threshold)
        self.bgr = bgr

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
        `bgr`.
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
        return {
            "model": self.model.name,
            "class_ids": None if self.class_ids is None else sorted(self.class_ids),
            "min_score": self.min_score,
            "mask_threshold": self.mask_threshold,
        }

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
        return self.postprocess(self.model.predict(image, self.kept), image.shape[:2])

    def segment_many(self, images: Iterable[np.ndarray], workers: int = 1) -> Iterator[Detections]:
        """The instances in each picture, in order. The model runs on the calling thread while the previous
        pictures' post-processing (mask pasting) runs on `workers` threads, so the model is kept busy."""
        pending: deque[Future[Detections]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="postprocess") as pool:
            for image in images:
                image = self.prepare(image)
                outputs = self.model.predict(image, self.kept)
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

    def predict(self, image: np.ndarray) -> RawOutputs:
        """The model's raw outputs for one picture (after `prepare`); `postprocess` turns them into `Detections`.

        The two halves apart let a pipeline run the model on one thread and post-process on others.
        """
        return self.model.predict(self.prepare(image), self.kept)

    def postprocess(self, outputs: RawOutputs, image_size: tuple[int, int], index: int = 0) -> Detections:
        """`Detections` of picture `index` of raw outputs, with this segmenter's filters."""
        return detections_from_outputs(
            outputs, image_size, self.model.label_map, index=index, class_ids=self.class_ids,
            min_score=self.min_score, mask_threshold=self.mask_threshold, paste_masks=self.model.paste_masks,
        )


@dataclass(frozen=True)
class SegmenterSpec:
    """A model and its filters as plain data: what a `Segmenter` is built from (small and picklable).

    `model` is a zoo name or alias (downloaded once into `models_dir`) or a path; `label_map` overrides the
    model's; `classes` keeps only these ids or names; `backend` picks the engine (docs/PERFORMANCE.md);
    `matterport_config` is a matterport `.h5` model's preset, config file or mapping (docs/MATTERPORT.md).
    """

    model: str | Path = DEFAULT_MODEL
    models_dir: str | Path | None = None
    label_map: LabelMap | str | Path | None = None
    classes: tuple[int | str, ...] | None = None
    min_score: float = DEFAULT_MIN_SCORE
    mask_threshold: float = DEFAULT_MASK_THRESHOLD
    backend: str = "tensorflow"
    matterport_config: Any = None
    calibration: str | Path | None = None  # pictures to judge (and calibrate) bf16 and int8 on

    def __post_init__(self) -> None:
        if self.classes is not None and not isinstance(self.classes, tuple):
            object.__setattr__(self, "classes", tuple(self.classes))

    @classmethod
    def from_args(cls, args: Any, model: str | Path | None = None) -> SegmenterSpec:
        """The spec `apps.cli.add_model_arguments` declares, from parsed arguments (`model` overrides
        `args.model`, for a repeated --model); `--classes` is comma-separated ids or names."""
        classes = None if args.classes is None else tuple(split_classes(args.classes))
        return cls(args.model if model is None else model, args.models_dir, args.label_map, classes,
                   args.min_score, args.mask_threshold, args.backend, args.matterport_config,
                   getattr(args, "calibration", None))

    def load(self, bgr: bool = False) -> Segmenter:
        """The model loaded on the chosen back end, with the filters; unknown classes raise `LabelMapError` here,
        before any picture is read."""
        model = load_model(self.model, self.models_dir, label_map=self.label_map, backend=self.backend,
                           matterport_config=self.matterport_config, calibration=self.calibration)
        return Segmenter(model, self.classes, self.min_score, self.mask_threshold, bgr)

    def describe(self) -> Segmenter:
        """A segmenter on the model's description, without loading it (no TensorFlow): its name, label map,
        settings and post-processing are the loaded model's, for a driver and its writers. The model is found
        (or downloaded) and unknown classes are refused, as `load` does."""
        path = find_model(self.model, self.models_dir)
        description = describe_model(path, self.label_map, self.matterport_config)
        return Segmenter(description, self.classes, self.min_score, self.mask_threshold)


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
