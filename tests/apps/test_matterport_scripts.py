"""A matterport `.h5` through the library and every script: the same detections as its own `detect()`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from pycocotools import mask as mask_utils

import instance_segmentation
import instance_segmentation_images
from object_detection_utils import Segmenter, read_image
from object_detection_utils.models.matterport import load_matterport
from object_detection_utils.models.matterport.preprocessing import paste_masks
from object_detection_utils.predictor import SegmenterSpec

GRACE_HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
NAMES = ("person", "tie", "cup", "chair")  # the test config's CLASS_NAMES after "BG"


@pytest.fixture(scope="module")
def expected(matterport_weights, matterport_config_file):
    """matterport's `detect()` on the same weights and config, for a picture file or a decoded picture."""
    model = load_matterport(matterport_weights, matterport_config_file)
    return lambda picture: model.detect(read_image(picture) if isinstance(picture, Path) else picture)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pictures")
    (folder / "grace_hopper.jpg").write_bytes(GRACE_HOPPER.read_bytes())
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (150, 230, 3), dtype=np.uint8)
    noise[30:110, 40:180] = (200, 40, 40)
    Image.fromarray(noise).save(folder / "red_block.png")
    return folder


def test_the_segmenter_gives_matterports_detect_exactly(matterport_weights, matterport_config_file, expected,
                                                         pictures):
    segmenter = Segmenter.load(matterport_weights, matterport_config=matterport_config_file, min_score=0)
    assert segmenter.model.kind == "matterport_h5" and segmenter.model.paste_masks is paste_masks
    for path in sorted(pictures.iterdir()):
        detections = segmenter(read_image(path))
        want = expected(path)
        got = detections.to_matterport()
        assert len(want["class_ids"]) > 0
        np.testing.assert_array_equal(got["rois"], want["rois"])
        np.testing.assert_array_equal(got["class_ids"], want["class_ids"])
        np.testing.assert_array_equal(got["scores"], want["scores"])
        np.testing.assert_array_equal(got["masks"], want["masks"])
        assert detections.class_names == tuple(NAMES[i - 1] for i in want["class_ids"])


def test_the_single_picture_script_runs_an_h5(run_headless, matterport_weights, matterport_config_file, expected,
                                              tmp_path):
    result = run_headless("instance_segmentation.py", "-i", str(GRACE_HOPPER), "--model", str(matterport_weights),
                        "--matterport-config", str(matterport_config_file), "--min-score", "0", "--no-display",
                        "-o", str(tmp_path / "out.jpg"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    want = expected(GRACE_HOPPER)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(want["class_ids"])
    for line, class_id, (y1, x1, y2, x2) in zip(lines, want["class_ids"], want["rois"]):
        assert f"\t{NAMES[class_id - 1]}\t" in line and f"\tbox=({x1}, {y1}, {x2}, {y2})\t" in line
    assert read_image(tmp_path / "out.jpg").shape == (600, 512, 3)


@pytest.mark.parametrize("variant", [
    {"variant": "full"},  # model.save(): nested under model_weights
    {"variant": "flat", "chunk_attributes": True, "fixed_length": True, "top_level_group": False},  # Keras 2.0.8's
])
def test_every_file_variant_runs_through_the_script_with_the_same_result(matterport_config_file, expected,
                                                                          tmp_path, capsys, variant):
    import matterport_h5

    layout = matterport_h5.Layout.named("resnet50", 5)
    weights = matterport_h5.write_matterport_h5(tmp_path / "mask_rcnn_variant.h5", layout,
                                                 matterport_h5.calibrated_weights(layout, seed=15), **variant)
    code = instance_segmentation.main(["-i", str(GRACE_HOPPER), "--model", str(weights), "--matterport-config",
                                       str(matterport_config_file), "--min-score", "0", "--no-display",
                                       "-o", str(tmp_path / "out.png")])
    assert code == 0
    want = expected(GRACE_HOPPER)  # from the flat file of the same weights
    lines = capsys.readouterr().out.strip().splitlines()
    boxes = [f"box=({x1}, {y1}, {x2}, {y2})" for y1, x1, y2, x2 in want["rois"]]
    assert [line.split("\t")[3] for line in lines] == boxes


def test_the_folder_script_writes_matterports_masks(matterport_weights, matterport_config_file, expected,
                                                     pictures, tmp_path):
    out = tmp_path / "out"
    code = instance_segmentation_images.main(
        ["-i", str(pictures), "-o", str(out), "--model", str(matterport_weights), "--matterport-config",
         str(matterport_config_file), "--min-score", "0", "--coco-json", str(out / "results.json"), "--no-progress"])
    assert code == 0
    coco = json.loads((out / "results.json").read_text())
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    assert sorted(files.values()) == ["grace_hopper.jpg", "red_block.png"]
    for image_id, name in files.items():
        want = expected(pictures / name)
        found = [a for a in coco["annotations"] if a["image_id"] == image_id]
        assert [a["category_id"] for a in found] == want["class_ids"].tolist()
        masks = np.stack([mask_utils.decode(a["segmentation"]) for a in found], axis=-1).astype(bool)
        np.testing.assert_array_equal(masks, want["masks"])
        assert (out / name).is_file()


def test_a_file_that_is_not_matterport_weights_is_one_line(run_headless, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("not an HDF5 file")
    result = run_headless("instance_segmentation.py", "-i", str(GRACE_HOPPER), "--model", str(junk),
                        "--no-display", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {junk}: ")


@pytest.mark.parametrize(("config", "message"), [
    ("nosuch", "error: matterport config 'nosuch' is neither a preset (coco, balloon, nucleus) nor an existing file"),
    ("coco", "NUM_CLASSES: config 81, weights 5"),
])
def test_a_config_that_does_not_fit_is_one_line(run_headless, matterport_weights, tmp_path, config, message):
    result = run_headless("instance_segmentation_images.py", "-i", str(GRACE_HOPPER), "-o", str(tmp_path / "out"),
                        "--model", str(matterport_weights), "--matterport-config", config, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not [p for p in (tmp_path / "out").glob("*") if not p.name.startswith(".")]  # only its lock file


def test_the_described_model_pastes_and_names_as_matterport(matterport_weights, matterport_config_file):
    card = SegmenterSpec(str(matterport_weights), matterport_config=str(matterport_config_file)).describe()
    assert card.model.paste_masks is paste_masks
    assert [card.label_map.name(i) for i in range(1, 5)] == list(NAMES)
    unnamed = SegmenterSpec(str(matterport_weights)).describe()
    assert unnamed.label_map.name(3) == "class 3"


def test_the_video_script_runs_an_h5_frame_by_frame(run_headless, matterport_weights, matterport_config_file,
                                                    expected, pictures, tmp_path, read_video):
    import cv2

    clip = tmp_path / "clip.avi"
    frame = cv2.imread(str(pictures / "red_block.png"))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for shift in range(3):
        writer.write(np.roll(frame, 20 * shift, axis=1))
    writer.release()
    lines = tmp_path / "clip.jsonl"
    result = run_headless("instance_segmentation_webcam.py", "--source", str(clip), "--every-frame", "--no-display",
                        "--json-lines", str(lines), "-o", str(tmp_path / "clip.mp4"), "--model",
                        str(matterport_weights), "--matterport-config", str(matterport_config_file),
                        "--min-score", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    frames, _, _ = read_video(clip)
    assert [r["frame"] for r in records] == [0, 1, 2] and len(frames) == 3
    for record, decoded in zip(records, frames):
        image = np.ascontiguousarray(decoded[:, :, ::-1])
        want = expected(image)
        assert [r["category_id"] for r in record["results"]] == want["class_ids"].tolist()
        masks = [mask_utils.decode(r["segmentation"]).astype(bool) for r in record["results"]]
        np.testing.assert_array_equal(np.stack(masks, axis=-1), want["masks"])


def test_a_picture_the_config_cannot_take_is_one_line_naming_it(run_headless, matterport_weights, tmp_path):
    config = tmp_path / "none.json"
    config.write_text(json.dumps({"NUM_CLASSES": 5, "BACKBONE": "resnet50", "IMAGE_RESIZE_MODE": "none"}))
    result = run_headless("instance_segmentation.py", "-i", str(GRACE_HOPPER), "--model", str(matterport_weights),
                        "--matterport-config", str(config), "--no-display", "-o", str(tmp_path / "out.png"),
                        cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: {GRACE_HOPPER}: matterport's network needs a molded picture whose sides are "
                             "multiples of 64, got 600x512 (IMAGE_RESIZE_MODE 'none'; 'square' or 'pad64' take "
                             "any size)\n")
    assert not (tmp_path / "out.png").exists()


def test_a_batch_runs_picture_by_picture_padded_to_its_longest(matterport_weights, matterport_config_file, pictures):
    from object_detection_utils import load_model

    model = load_model(matterport_weights, warm_up=False, matterport_config=matterport_config_file)
    block = read_image(pictures / "red_block.png")
    other = np.ascontiguousarray(block[::-1])
    alone = [model.predict(picture) for picture in (block, other)]
    batch = model.predict_batch(np.stack([block, other]))
    counts = [int(out["num_detections"][0]) for out in alone]
    assert counts[0] != counts[1]  # so one row is padded
    longest = max(counts)
    assert batch["num_detections"].tolist() == counts and batch["detection_boxes"].shape == (2, longest, 4)
    for row, out in enumerate(alone):
        count = counts[row]
        for key in ("detection_boxes", "detection_scores", "detection_classes", "detection_masks"):
            np.testing.assert_array_equal(batch[key][row, :count], out[key][0])
            assert not batch[key][row, count:].any()


def test_without_class_names_a_label_map_beside_the_h5_names_the_classes(matterport_weights, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "mask_rcnn_parts.h5").symlink_to(matterport_weights)
    (folder / "parts_label_map.pbtxt").write_text('item { id: 1 name: "bolt" }\nitem { id: 2 name: "nut" }\n')
    label_map = SegmenterSpec(str(folder / "mask_rcnn_parts.h5")).describe().label_map  # the library's own rule
    assert [label_map.name(i) for i in (1, 2, 3)] == ["bolt", "nut", "class 3"]
