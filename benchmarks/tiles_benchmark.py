#!/usr/bin/env python3
"""Large pictures, small objects: our tiles against the whole picture alone and against SAHI itself, on generated
pictures with COCO ground truth; mask AP (all, small, medium, large), seconds per megapixel, peak RSS, seams whole.

    flock /tmp/cpu.lock python benchmarks/tiles_benchmark.py --sizes 2000 4000     # the table (docs/TILES.md)
    flock /tmp/cpu.lock python benchmarks/tiles_benchmark.py --huge --tile 512     # 10,000 x 10,000, 2,000 objects
    flock /tmp/cpu.lock python benchmarks/tiles_benchmark.py --sizes 2000 --methods tiles sahi \
        --backends tensorflow,openvino-bf16                                         # each on both engines

Pictures: a plain background scattered with circles, squares and triangles (the family models/shapes-r18-128
was trained on), 10-60 px across, 60 per megapixel, a quarter of them centred on a tile seam (an edge of our
tile grid or of SAHI's slices), plus three large ones (300-700 px). Every method runs in its own process, so
its peak RSS (ru_maxrss) is its own: "whole" runs the model on the whole picture only, "tiles" is
`Segmenter(tiles=TileOptions(size, 0.2))` (a full pass plus tiles, stitched by mask), "sahi" is SAHI's
`get_sliced_prediction` with the same tiles, full pass and our model wrapped as its `DetectionModel` (its default
GREEDYNMM merge by intersection over the smaller, 0.5). Seams whole: of the ground-truth objects that cross a
seam and are found (a prediction of mask IoU >= 0.5), the share with no second prediction covering at least
half of itself inside the object (a fragment left over by the stitching).

sahi needs opencv-python, which breaks our headless OpenCV: `pip install --no-deps "sahi>=0.12,<0.13"` beside the
`bench` extra, which names its real needs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from object_detection_utils.box_masks import BoxMasks
from object_detection_utils.evaluation import load_ground_truth
from object_detection_utils.io.images import read_image, write_image
from object_detection_utils.io.json_files import read_json
from object_detection_utils.shapes import SHAPE_CLASSES, _distinct_color, _shape_mask
from object_detection_utils.tiling import tile_windows

MODEL = REPO.parent / "shared" / "models" / "shapes-r18-128"
OVERLAP = 0.2
SMALL_PER_MEGAPIXEL = 60
SEAM_SHARE = 0.25
LARGE_COUNT = 3
MAX_DETECTIONS = 10_000  # COCO's 100 per picture would cap recall on pictures of hundreds of objects


def sahi_seams(length: int, tile: int, overlap: float) -> list[int]:
    """The slice edges SAHI's `get_slice_bboxes` makes along one axis (steps of tile * (1 - overlap), the last
    slice flush with the edge)."""
    step = int(tile * (1 - overlap))
    edges, start = set(), 0
    while start < length:
        end = min(start + tile, length)
        first = max(0, end - tile) if end == length else start
        edges.update((first, end))
        start += step
        if end == length:
            break
    return sorted(edge for edge in edges if 0 < edge < length)


def seam_lines(size: int, tile: int) -> list[int]:
    """Where tiles start or end inside the picture, ours and SAHI's: the likely seams."""
    ours = {edge for window in tile_windows(size, size, tile, OVERLAP) for edge in (window.x0, window.x1)}
    return sorted({edge for edge in ours if 0 < edge < size} | set(sahi_seams(size, tile, OVERLAP)))


def generate_picture(seed: int, size: int, tile: int, small: int) -> tuple[np.ndarray, list[dict]]:
    """A `size` x `size` picture with `small` small shapes (a quarter across seams) and a few large ones; its
    annotations as dicts with `class_id`, `crop`, `offset` and `seam`."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, 3).astype(np.uint8)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    taken = np.zeros((size, size), bool)
    seams = np.array(seam_lines(size, tile))
    objects = []
    plan = [("large", int(rng.integers(min(150, size // 8), min(350, size // 4)))) for _ in range(LARGE_COUNT)]
    plan += [("small", int(rng.integers(5, 31))) for _ in range(small)]
    for kind, radius in plan:
        class_id = int(rng.integers(1, len(SHAPE_CLASSES) + 1))
        for _ in range(30):
            centre = rng.integers(radius + 2, size - radius - 2, 2)
            if kind == "small" and rng.random() < SEAM_SHARE:  # centred on a seam, across x or y
                axis = int(rng.integers(0, 2))
                centre[axis] = int(
                    np.clip(
                        rng.choice(seams) + rng.integers(-radius // 3, radius // 3 + 1), radius + 2, size - radius - 2
                    )
                )
            y0, x0 = int(centre[1]) - radius - 1, int(centre[0]) - radius - 1
            side = 2 * radius + 3
            if taken[y0 : y0 + side, x0 : x0 + side].any():
                continue
            crop = _shape_mask(
                SHAPE_CLASSES[class_id],
                (radius + 1, radius + 1),
                radius,
                float(rng.uniform(0, 2 * np.pi)),
                (side, side),
            )
            if crop.sum() < 30:
                continue
            # A margin of 3 px around every shape: touching shapes would be a different benchmark.
            taken[max(0, y0 - 3) : y0 + side + 3, max(0, x0 - 3) : x0 + side + 3] = True
            image[y0 : y0 + side, x0 : x0 + side][crop] = _distinct_color(rng, background)
            rows, cols = np.flatnonzero(crop.any(axis=1)), np.flatnonzero(crop.any(axis=0))
            crossing = any(((y0 + rows[0] < s <= y0 + rows[-1]) or (x0 + cols[0] < s <= x0 + cols[-1])) for s in seams)
            objects.append(
                {"class_id": class_id, "crop": crop, "offset": (y0, x0), "seam": crossing and kind == "small"}
            )
            break
    return image, objects


def write_dataset(folder: Path, sizes: list[int], tile: int, per_megapixel: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id, size in enumerate(sizes, start=1):
        small = round(per_megapixel * size * size / 1e6)
        image, objects = generate_picture(image_id, size, tile, small)
        name = f"shapes_{size}_{image_id}.png"
        write_image(folder / name, image)
        images.append({"id": image_id, "file_name": name, "height": size, "width": size})
        masks = BoxMasks([o["crop"] for o in objects], [o["offset"] for o in objects], (size, size))
        for i, obj in enumerate(objects):
            x1, y1, x2, y2 = (int(v) for v in masks.bounds()[i])
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": obj["class_id"],
                    "segmentation": masks.rle(i),
                    "area": int(masks.areas()[i]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "iscrowd": 0,
                    "seam": obj["seam"],
                }
            )
    path = folder / "annotations.json"
    categories = [{"id": i, "name": name, "supercategory": "shape"} for i, name in SHAPE_CLASSES.items()]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


# --- one method on one picture, in its own process -------------------------------------------------------------


def sahi_model(segmenter):
    """Our model as SAHI's custom `DetectionModel`: SAHI slices, shifts and merges; we run and paste."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction
    from sahi.utils.cv import get_coco_segmentation_from_bool_mask

    class SegmenterModel(DetectionModel):
        def load_model(self):
            self.set_model(segmenter)

        def set_model(self, model, **kwargs):
            self.model = model
            self.category_mapping = {str(k): model.label_map[k] for k in model.label_map}

        def perform_inference(self, image: np.ndarray):
            self._original_predictions = self.model.segment(np.ascontiguousarray(image[:, :, :3]))

        @property
        def num_categories(self):
            return len(self.category_mapping)

        @property
        def has_mask(self):
            return True

        def _create_object_prediction_list_from_original_predictions(
            self, shift_amount_list=None, full_shape_list=None
        ):
            found = self._original_predictions
            if shift_amount_list and isinstance(shift_amount_list[0], int):  # sahi passes [x, y] or [[x, y]]
                shift_amount_list = [shift_amount_list]
            if full_shape_list and isinstance(full_shape_list[0], int):
                full_shape_list = [full_shape_list]
            shift = shift_amount_list[0] if shift_amount_list else [0, 0]
            full = None if full_shape_list is None else full_shape_list[0]
            predictions = []
            for i in range(len(found)):
                segmentation = get_coco_segmentation_from_bool_mask(found.box_masks.dense(i))
                if segmentation:
                    predictions.append(
                        ObjectPrediction(
                            segmentation=segmentation,
                            category_id=int(found.class_ids[i]),
                            category_name=found.class_names[i],
                            score=float(found.scores[i]),
                            shift_amount=shift,
                            full_shape=full,
                        )
                    )
            self._object_prediction_list_per_image = [predictions]

    return SegmenterModel(model=segmenter, confidence_threshold=segmenter.min_score, load_at_init=True)


def sahi_entries(result, height: int, width: int) -> list[dict]:
    """SAHI's predictions as our COCO result entries (RLE from its polygons)."""
    entries = []
    for prediction in result.object_prediction_list:
        polygons = [p for p in prediction.mask.segmentation if len(p) >= 6]
        if not polygons:
            continue
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        rle["counts"] = rle["counts"].decode("ascii")
        x1, y1, x2, y2 = prediction.bbox.to_xyxy()
        entries.append(
            {
                "category_id": prediction.category.id,
                "score": round(prediction.score.value, 5),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "segmentation": rle,
            }
        )
    return entries


def run_method(method: str, picture: Path, tile: int, backend: str = "tensorflow", model: Path = MODEL) -> dict:
    """One method on one picture, `model` on `backend`: COCO entries, seconds (the model load excluded), peak
    RSS."""
    from object_detection_utils.predictor import Segmenter
    from object_detection_utils.stitching import StitchOptions, stitch
    from object_detection_utils.tiling import TileOptions

    image = read_image(picture, max_pixels=200_000_000)
    variants = {}
    tiles = TileOptions(size=tile, overlap=OVERLAP) if method == "tiles" else None
    segmenter = Segmenter.load(str(model), tiles=tiles, backend=backend)
    segmenter.model.warm_up((128, 128))
    start = time.perf_counter()
    if method == "sahi":
        from sahi.predict import get_sliced_prediction

        with contextlib.redirect_stdout(io.StringIO()):
            result = get_sliced_prediction(
                image,
                sahi_model(Segmenter(segmenter.model)),
                tile,
                tile,
                OVERLAP,
                OVERLAP,
                perform_standard_pred=True,
                verbose=0,
            )
        seconds = time.perf_counter() - start
        entries = sahi_entries(result, *image.shape[:2])
    else:
        raw = segmenter.predict(image)
        found = segmenter.postprocess(raw, image.shape[:2])
        seconds = time.perf_counter() - start
        entries = found.to_coco(image_id=None)
        if method == "tiles":  # the same tiles stitched comparing classes: the choice docs/TILES.md weighs
            apart = stitch(raw.parts, image.shape[:2], StitchOptions(class_agnostic=False))
            variants = {"tiles, classes apart": apart.to_coco(image_id=None)}
    return {
        "variants": variants,
        "seconds": seconds,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "entries": entries,
    }


def run_in_child(method: str, picture: Path, tile: int, output: Path, backend: str, model: Path) -> dict:
    command = [sys.executable, __file__, "--child", method, str(picture), str(tile), str(output), backend, str(model)]
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return read_json(output)


# --- scoring -------------------------------------------------------------------------------------------------


def mask_metrics(ground_truth, entries: list[dict]) -> dict[str, float]:
    """COCO mask AP over IoU 0.50:0.95 by object size, with up to `MAX_DETECTIONS` detections a picture.

    Read from the precision table: `COCOeval.summarize` takes its all-sizes AP at 100 detections whatever
    `maxDets` says, which would cap recall on pictures of hundreds of objects."""
    names = ("AP", "AP_small", "AP_medium", "AP_large")
    if not entries:
        return dict.fromkeys(names, 0.0)
    evaluator = COCOeval(ground_truth, ground_truth.loadRes(entries), "segm")
    evaluator.params.maxDets = [1, 100, MAX_DETECTIONS]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][..., -1]  # (IoU, recall, class, size range) at MAX_DETECTIONS
    metrics = {}
    for area, name in enumerate(names):  # COCO's size ranges: all, small, medium, large
        values = precision[:, :, :, area]
        metrics[name] = float(values[values > -1].mean()) if (values > -1).any() else 0.0
    return metrics


def seams_whole(ground_truth, entries: list[dict]) -> tuple[int, int]:
    """(found seam objects with no fragment beside their match, found seam objects)."""
    whole = found = 0
    by_image: dict[int, list[dict]] = {}
    for entry in entries:
        by_image.setdefault(entry["image_id"], []).append(entry)
    for image_id, predictions in by_image.items():
        truths = [a for a in ground_truth.imgToAnns[image_id] if a["seam"]]
        if not truths or not predictions:
            continue
        rles = [p["segmentation"] for p in predictions]
        truth_rles = [a["segmentation"] for a in truths]
        ious = mask_utils.iou(rles, truth_rles, [0] * len(truth_rles))  # (predictions, truths)
        areas = [int(mask_utils.area(rle)) for rle in rles]
        for t, truth_rle in enumerate(truth_rles):
            best = int(np.argmax(ious[:, t]))
            if ious[best, t] < 0.5:
                continue
            found += 1
            inside = [
                int(mask_utils.area(mask_utils.merge([rles[p], truth_rle], intersect=True)))
                for p in np.flatnonzero(ious[:, t] > 0)
                if p != best
            ]
            fragments = [p for p, pixels in zip(np.flatnonzero(ious[:, t] > 0), inside) if pixels >= 0.5 * areas[p]]
            whole += not fragments
    return whole, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[2000, 4000], help="picture sides (default: %(default)s)"
    )
    parser.add_argument("--tile", type=int, default=128, help="tile side, ours and SAHI's (default: the model's 128)")
    parser.add_argument("--methods", nargs="+", default=["whole", "tiles", "sahi"])
    parser.add_argument("--huge", action="store_true", help="one 10,000 x 10,000 picture of 2,000 small objects")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tiles_benchmark"), help="pictures and results")
    parser.add_argument("--reuse", action="store_true", help="score the results of an earlier run again")
    parser.add_argument("--backends", default="tensorflow", help="comma-separated back ends every method runs on, "
                        "SAHI wrapping the same loaded model (default: %(default)s; e.g. tensorflow,openvino-bf16)")
    parser.add_argument("--model", type=Path, default=MODEL, help="the model (default: the shared trained one; e.g. "
                        "the same exported again with its steps, which TensorFlow runs tiles through in batches)")
    parser.add_argument("--child", nargs=6, metavar=("METHOD", "PICTURE", "TILE", "OUTPUT", "BACKEND", "MODEL"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, picture, tile, output, backend, model = args.child
        Path(output).write_text(json.dumps(run_method(method, Path(picture), int(tile), backend, Path(model))))
        return 0
    sizes, per_megapixel = ([10_000], 20) if args.huge else (args.sizes, SMALL_PER_MEGAPIXEL)
    folder = args.work / ("huge" if args.huge else "_".join(map(str, sizes)))
    annotations = folder / "annotations.json"
    if not annotations.is_file():
        write_dataset(folder, sizes, args.tile, per_megapixel)
    ground_truth = load_ground_truth(annotations)
    rows = []
    backends = args.backends.split(",")
    for method, backend in [(m, b) for b in backends for m in args.methods]:
        label = method if backends == ["tensorflow"] else f"{method} on {backend}"
        entries, seconds, rss, megapixels = [], 0.0, 0.0, 0.0
        variants: dict[str, list[dict]] = {}
        for image in ground_truth.dataset["images"]:
            model_tag = "" if args.model == MODEL else f"_{hashlib.sha256(str(args.model).encode()).hexdigest()[:8]}"
            output = folder / (f"{method}_{args.tile}_{image['id']}{'' if backend == 'tensorflow' else '_' + backend}"
                               f"{model_tag}.json")
            if args.reuse and output.is_file():
                out = read_json(output)
            else:
                out = run_in_child(method, folder / image["file_name"], args.tile, output, backend, args.model)
            entries += [{**entry, "image_id": image["id"]} for entry in out["entries"]]
            for name, found in out.get("variants", {}).items():
                variants.setdefault(name, []).extend({**entry, "image_id": image["id"]} for entry in found)
            seconds += out["seconds"]
            rss = max(rss, out["max_rss_mb"])
            megapixels += image["height"] * image["width"] / 1e6
            print(
                f"{label} {image['file_name']}: {len(out['entries'])} instances in {out['seconds']:.1f}s, "
                f"peak RSS {out['max_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
        named = {label: entries, **{k if label == method else f"{k} on {backend}": v for k, v in variants.items()}}
        for name, listed in named.items():
            metrics = mask_metrics(ground_truth, listed)
            whole, found = seams_whole(ground_truth, listed)
            rows.append((name, metrics, seconds / megapixels, rss, whole, found, len(listed)))
    seam_total = sum(a["seam"] for a in ground_truth.dataset["annotations"])
    print(
        f"\n{len(ground_truth.dataset['images'])} pictures ({', '.join(f'{s}x{s}' for s in sizes)}), "
        f"{len(ground_truth.dataset['annotations'])} objects ({seam_total} across seams), tile {args.tile} px, "
        f"overlap {OVERLAP}\n"
    )
    print("| method | mask AP | AP_small | AP_medium | AP_large | s / megapixel | peak RSS | seams whole | instances |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method, metrics, per_mp, rss, whole, found, count in rows:
        share = f"{whole / found:.1%} ({whole}/{found})" if found else "-"
        print(
            f"| {method} | {metrics['AP']:.3f} | {metrics['AP_small']:.3f} | {metrics['AP_medium']:.3f} | "
            f"{metrics['AP_large']:.3f} | "
            f"{per_mp:.2f} | {rss / 1024:.2f} GB | {share} | {count} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
