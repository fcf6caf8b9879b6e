"""Pre-annotation exports read back by our own readers: mask IoU per format, and fine-tuning on read-back labels.

    python benchmarks/label_round_trip.py                       # round trips: 200 generated pictures + COCO's
    python benchmarks/label_round_trip.py --finetune --steps 100  # + the same short fine-tune on two label sets

Round trips: the trained shapes model (../shared/models/shapes-r18-128) segments 200 generated pictures and the
80 COCO pictures of ../shared/data; the COCO pictures' own ground-truth masks (real outlines, holes, several
parts; score 1) are a third set. Each set is exported in every format, as masks and as polygons (default
tolerance), read back with `load_labels` and compared instance by instance: mask IoU mean and min (all, and
instances over 100 pixels), how many are pixel-identical, and whether class names, ids and scores came back.

Fine-tune: the same short run from the shapes model (same options; Model Garden's input pipeline is not seeded,
so two runs on the same labels differ a little too: --finetune also runs the original labels twice) on the
original COCO labels of generated pictures and on the same labels exported as YOLO polygons and read back;
mask AP on held-out pictures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from object_detection_utils import Segmenter, load_model, read_image
from object_detection_utils.detections import Detections
from object_detection_utils.evaluation import load_ground_truth
from object_detection_utils.label_exports import FORMATS, SHAPES, ExportOptions, LabelledPicture, write_labels
from object_detection_utils.masks import masks_to_boxes
from object_detection_utils.shapes import write_shapes_dataset
from object_detection_utils.training.labels.round_trip import mask_ious, read_detections

SHARED = REPO.parent / "shared"
MODEL = SHARED / "models" / "shapes-r18-128"
COCO = SHARED / "data" / "coco"


def model_pictures(segmenter: Segmenter, folder: Path) -> list[LabelledPicture]:
    return [LabelledPicture(path.name, path, segmenter(read_image(path))) for path in sorted(folder.iterdir())]


def ground_truth_pictures(annotations: Path, images: Path) -> tuple[list[LabelledPicture], list[dict]]:
    """A COCO file's masks as Detections (crowd regions included), score 1."""
    coco = load_ground_truth(annotations)
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    pictures = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.imgs[image_id]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        masks = np.array([coco.annToMask(a).astype(bool) for a in anns]).reshape(-1, info["height"], info["width"])
        detections = Detections(masks_to_boxes(masks), np.array([a["category_id"] for a in anns], np.int32),
                                tuple(names[a["category_id"]] for a in anns), np.ones(len(anns), np.float32),
                                masks, (info["height"], info["width"]))
        pictures.append(LabelledPicture(info["file_name"], images / info["file_name"], detections))
    return pictures, [{"id": i, "name": n} for i, n in names.items()]


def round_trip(pictures: list[LabelledPicture], categories: list[dict], fmt: str, shapes: str, folder: Path) -> dict:
    start = time.perf_counter()
    write_labels(fmt, folder, pictures, categories, ExportOptions(shapes=shapes))
    written = time.perf_counter() - start
    path = folder / "tasks.json" if fmt == "label-studio" else folder
    back = read_detections(path, fmt, None if fmt == "yolo" else pictures[0].source.parent, categories)
    ious, big, kept = [], [], True
    for picture in pictures:
        original = picture.detections[picture.detections.areas > 0]  # an empty mask is not exported
        found = back[picture.name]
        assert len(found) == len(original), (fmt, shapes, picture.name, len(found), len(original))
        iou = mask_ious(found.masks, original.masks)
        ious += iou.tolist()
        big += iou[original.areas > 100].tolist()
        kept &= found.class_names == original.class_names and np.array_equal(found.class_ids, original.class_ids)
        if fmt != "yolo":
            kept &= bool(np.allclose(found.scores, original.scores, rtol=0, atol=6e-6))  # kept to 5 decimals
    ious = np.array(ious)
    return {"format": fmt, "shapes": shapes, "instances": len(ious), "iou_mean": float(ious.mean()),
            "iou_min": float(ious.min()), "iou_min_over_100px": float(min(big)), "identical": int((ious == 1).sum()),
            "names_ids_scores_kept": bool(kept), "write_seconds": round(written, 2)}


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print("| format | shapes | instances | IoU mean | IoU min | min > 100 px | identical | names, ids, scores |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        kept = "yes" + (" (no score in YOLO)" if r["format"] == "yolo" else "") if r["names_ids_scores_kept"] else "NO"
        print(f"| {r['format']} | {r['shapes']} | {r['instances']} | {r['iou_mean']:.5f} | {r['iou_min']:.4f} | "
              f"{r['iou_min_over_100px']:.4f} | {r['identical']} | {kept} |")


def round_trips(work: Path) -> dict:
    segmenter = Segmenter(load_model(MODEL), min_score=0.5)
    categories = [{"id": i, "name": n} for i, n in sorted(segmenter.label_map.items())]
    write_shapes_dataset(work / "generated", 200, seed=26, progress=False)
    sets = {"model on 200 generated pictures": (model_pictures(segmenter, work / "generated" / "images"),
                                                categories)}
    coco_model = Segmenter(load_model(MODEL), min_score=0.05)  # a shapes model finds little on photos: keep more
    sets["model on the 80 COCO pictures (min score 0.05)"] = (model_pictures(coco_model, COCO / "val2017"),
                                                              categories)
    sets["COCO ground truth of the 80 pictures"] = ground_truth_pictures(
        COCO / "annotations" / "instances_val2017.json", COCO / "val2017")
    results = {}
    for title, (pictures, cats) in sets.items():
        rows = [round_trip(pictures, cats, fmt, shapes, work / "exports" / title[:12].replace(" ", "_") / f"{fmt}-{shapes}")
                for fmt in FORMATS for shapes in SHAPES if not (fmt == "yolo" and shapes == "masks")]
        print_table(f"{title}: {sum(len(p.detections) for p in pictures)} instances", rows)
        results[title] = rows
    return results


def finetune(work: Path, steps: int) -> dict:
    train = work / "ft-train"
    write_shapes_dataset(train, 120, seed=261, progress=False)
    validation = work / "ft-val"
    write_shapes_dataset(validation, 40, seed=262, progress=False)
    pictures, categories = ground_truth_pictures(train / "annotations.json", train / "images")
    write_labels("yolo", work / "ft-yolo", pictures, categories, ExportOptions(shapes="polygons"))
    runs = {"original COCO labels": ["--annotations", str(train / "annotations.json"), "--images", str(train / "images")],
            "original COCO labels, again": ["--annotations", str(train / "annotations.json"), "--images",
                                            str(train / "images")],
            "exported as YOLO polygons, read back": ["--labels", str(work / "ft-yolo"), "--labels-format", "yolo"]}
    scores = {}
    for name, labels in runs.items():
        model_dir = work / f"ft-{len(scores)}"
        command = [sys.executable, str(REPO / "instance_segmentation_train.py"), "train", *labels,
                   "--val-annotations", str(validation / "annotations.json"), "--val-images", str(validation / "images"),
                   "--model-dir", str(model_dir), "--init-checkpoint", str(MODEL), "--backbone", "resnet18",
                   "--input-size", "128", "--heads", "light", "--steps", str(steps), "--warmup-steps", "10",
                   "--validate-every", str(steps)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        from object_detection_utils.training.tfrecords import CocoDataset
        from object_detection_utils.training.validation import validate

        result = validate(load_model(model_dir / "export"), CocoDataset(validation / "annotations.json",
                                                                         validation / "images"), progress=False)
        scores[name] = {"mask_AP": round(result.scores["mask_AP"], 4), "box_AP": round(result.scores["box_AP"], 4),
                        "seconds": round(time.perf_counter() - start)}
        print(f"{name}: {scores[name]}", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--finetune", action="store_true", help="also the fine-tune comparison (minutes)")
    parser.add_argument("--steps", type=int, default=100, help="fine-tune steps (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        figures = {"round_trips": round_trips(Path(work))}
        if args.finetune:
            figures["finetune"] = finetune(Path(work), args.steps)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
