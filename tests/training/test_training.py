"""Training: the shapes dataset, COCO -> TFRecord, a few real Model Garden steps, export, load, resume.

The shapes and options tests need only the core install; the rest skip unless tf-models-official
(`pip install -e ".[train]"`) is importable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from object_detection_utils import load_model, read_image, run_inference_for_single_image
from object_detection_utils.coco_format import decode_mask
from object_detection_utils.errors import InstanceSegmentationError
from object_detection_utils.label_map import LabelMap
from object_detection_utils.models.export_options import TrainOptions
from object_detection_utils.models.maskrcnn_parts import saved_steps, step_levels
from object_detection_utils.shapes import (
    SHAPE_CLASSES,
    random_shapes_picture,
    shape_classes,
    write_shapes_dataset,
)


def _model_garden():
    try:
        import official.vision  # noqa: F401
    except ImportError:
        pytest.skip("tf-models-official is not installed (pip install -e '.[train]'): training tests skipped")


# --- shapes dataset (core install only) ---------------------------------------------------------------

def test_shapes_pictures_are_seeded_and_every_painted_pixel_is_annotated():
    first = [random_shapes_picture(np.random.default_rng(7), (96, 128)) for _ in range(2)]
    again = random_shapes_picture(np.random.default_rng(7), (96, 128))
    assert np.array_equal(first[0].image, again.image) and np.array_equal(first[0].masks, again.masks)

    rng = np.random.default_rng(3)
    for _ in range(20):
        picture = random_shapes_picture(rng, (96, 128), max_shapes=5)
        assert picture.image.shape == (96, 128, 3) and picture.image.dtype == np.uint8
        assert picture.masks.shape == (len(picture.class_ids), 96, 128)
        assert set(picture.class_ids.tolist()) <= set(SHAPE_CLASSES)
        # Masks never overlap, each has one colour, and all other pixels are the background colour.
        assert (picture.masks.sum(axis=0) <= 1).all()
        for mask in picture.masks:
            assert mask.sum() >= 16
            assert len(np.unique(picture.image[mask], axis=0)) == 1
        background = ~picture.masks.any(axis=0)
        assert len(np.unique(picture.image[background], axis=0)) == 1


def test_shapes_of_the_default_task_are_unchanged():
    """The circles, squares and triangles of a seed are what they were before other kinds were added."""
    import hashlib

    digest = hashlib.sha256()
    for seed in (0, 1, 3, 7):
        rng = np.random.default_rng(seed)
        for _ in range(30):
            picture = random_shapes_picture(rng, (128, 128), 4)
            for array in (picture.image, picture.masks, picture.class_ids):
                digest.update(array.tobytes())
    assert digest.hexdigest() == "1dba8383b25070cac8964733f7e777b0199ff4445a8b1928f0f2dc55695efb51"


def test_other_shape_kinds_make_another_task_with_exact_masks(tmp_path):
    classes = shape_classes(["star", "cross", "ring"])
    assert classes == {1: "star", 2: "cross", 3: "ring"}
    rng = np.random.default_rng(5)
    pictures = [random_shapes_picture(rng, (96, 96), 4, classes) for _ in range(30)]
    assert {int(c) for p in pictures for c in p.class_ids} == {1, 2, 3}
    for picture in pictures:
        assert (picture.masks.sum(axis=0) <= 1).all()
        for mask in picture.masks:
            assert len(np.unique(picture.image[mask], axis=0)) == 1
        background = ~picture.masks.any(axis=0)
        assert len(np.unique(picture.image[background], axis=0)) == 1
    ring = next(p.masks[i] for p in pictures for i, c in enumerate(p.class_ids) if c == 3 and i == len(p.class_ids) - 1)
    rows, cols = np.nonzero(ring)
    assert not ring[(rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2]  # a hole in the middle

    annotations = write_shapes_dataset(tmp_path, count=3, seed=2, size=(64, 64), progress=False, classes=classes)
    assert [c["name"] for c in json.loads(annotations.read_text())["categories"]] == ["star", "cross", "ring"]
    for bad in (["circle", "hexagon"], ["star", "star"], []):
        with pytest.raises(InstanceSegmentationError, match="shape kinds must be distinct names among circle"):
            shape_classes(bad)


def test_shapes_dataset_files_match_their_annotations(tmp_path):
    annotations_path = write_shapes_dataset(tmp_path / "shapes", count=5, seed=11, size=(64, 80), progress=False)
    document = json.loads(annotations_path.read_text())
    assert [c["name"] for c in document["categories"]] == ["circle", "square", "triangle"]
    assert len(document["images"]) == 5 and document["annotations"]
    rng = np.random.default_rng(11)
    for image_info in document["images"]:
        expected = random_shapes_picture(rng, (64, 80))
        image = read_image(tmp_path / "shapes" / "images" / image_info["file_name"])
        assert np.array_equal(image, expected.image)  # PNG: lossless
        entries = [a for a in document["annotations"] if a["image_id"] == image_info["id"]]
        assert [a["category_id"] for a in entries] == expected.class_ids.tolist()
        for entry, mask in zip(entries, expected.masks):
            assert np.array_equal(decode_mask(entry["segmentation"]), mask)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            assert entry["bbox"] == [cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]]
            assert entry["area"] == mask.sum() and entry["iscrowd"] == 0


def test_label_map_pbtxt_round_trip(tmp_path):
    label_map = LabelMap({1: "circle", 2: "square", 7: "oil droplet"})
    (tmp_path / "map.pbtxt").write_text(label_map.to_pbtxt())
    assert dict(LabelMap.from_pbtxt(tmp_path / "map.pbtxt")) == dict(label_map)


def test_train_options_are_checked_and_round_trip(tmp_path):
    options = TrainOptions(num_classes=4, backbone="resnet34", input_size=192, steps=7)
    options.save(tmp_path)
    assert TrainOptions.load(tmp_path) == options
    for bad in ({"backbone": "resnet19"}, {"input_size": 100}, {"heads": "huge"}, {"num_classes": 1},
                {"freeze": "decoder"}):
        with pytest.raises(InstanceSegmentationError):
            TrainOptions(**{"num_classes": 4, **bad})
    with pytest.raises(InstanceSegmentationError, match="not a training folder"):
        TrainOptions.load(tmp_path / "nothing")


def test_model_card_names_pictures_where_every_annotated_class_is_found(tmp_path):
    import re

    from object_detection_utils.evaluation import ground_truth_from_dict
    from object_detection_utils.training.model_card import Example, model_card, pick_examples, write_model_card

    annotations = write_shapes_dataset(tmp_path / "val", count=5, seed=3, size=(48, 48), progress=False)
    ground_truth = ground_truth_from_dict(json.loads(annotations.read_text()))
    classes = {i: sorted({a["category_id"] for a in ground_truth.imgToAnns[i]}) for i in ground_truth.getImgIds()}
    predictions = [{"image_id": i, "category_id": c, "score": 0.9} for i in (1, 2, 4) for c in classes[i]]
    predictions += [{"image_id": 2, "category_id": c, "score": 0.4} for c in (1, 2, 3)]  # too weak to count
    predictions += [{"image_id": 5, "category_id": c, "score": 0.9} for c in classes[5][1:]]  # one class missed
    label_map = LabelMap(SHAPE_CLASSES)
    examples = pick_examples(ground_truth, predictions, label_map, limit=2)
    by_richness = sorted((1, 2, 4), key=lambda i: (-len(classes[i]), i))[:2]
    assert examples == [Example(i, ground_truth.imgs[i]["file_name"], tuple(SHAPE_CLASSES[c] for c in classes[i]))
                        for i in by_richness]
    spaced = LabelMap({**SHAPE_CLASSES, 2: "big square"})  # an expect: line could not name it
    assert [e.image_id for e in pick_examples(ground_truth, predictions, spaced, limit=5)] == [
        i for i in sorted((1, 2, 4), key=lambda i: (-len(classes[i]), i)) if 2 not in classes[i]]

    summary = {"steps": 100, "total_train_seconds": 12.3, "train_pictures": 40, "validation_pictures": 5,
               **{f"{kind}_{key}": 0.5 for kind in ("mask", "box") for key in ("AP", "AP50", "AP75")}}
    card = model_card("shapes", TrainOptions(num_classes=4, batch_size=2), label_map, summary, examples)
    path = write_model_card(tmp_path / "export", card, examples, tmp_path / "val" / "images")
    assert path.read_text() == card and "| mask | 0.500 | 0.500 | 0.500 |" in card
    assert "40 pictures, 100 steps of batch 2, learning rate 0.02 (cosine), light heads" in card
    assert "; 12 s of training." in card
    expected_lines = re.findall(r"^expect:\s*(\S+)\s+(.+)$", card, re.MULTILINE)  # as tests/test_real_data.py reads
    assert expected_lines == [(f"examples/{e.file_name}", " ".join(e.class_names)) for e in examples]
    for picture, _ in expected_lines:
        assert (tmp_path / "export" / picture).read_bytes() == (tmp_path / "val" / "images" / picture[9:]).read_bytes()


def test_model_card_says_where_the_weights_came_from_and_what_was_frozen():
    from object_detection_utils.training.model_card import model_card

    summary = {"steps": 3, "total_train_seconds": 1.0}
    fine_tuned = TrainOptions(num_classes=4, freeze="backbone", init_checkpoint="resnet50-imagenet (ImageNet)",
                              init_restored="backbone")
    card = model_card("m", fine_tuned, LabelMap(SHAPE_CLASSES), summary)
    assert ("\nFine-tuned with `instance_segmentation_train.py train` (TensorFlow Model Garden's "
            "`maskrcnn_resnetfpn_coco`):\nInitialised from resnet50-imagenet (ImageNet); restored: backbone; "
            "backbone frozen.\n3 steps of batch 8,") in card
    card = model_card("m", TrainOptions(num_classes=4), LabelMap(SHAPE_CLASSES), summary)
    assert "\nTrained with `instance_segmentation_train.py train`" in card and "\nFrom random weights.\n" in card


def test_validation_split_holds_out_pictures(tmp_path):
    from object_detection_utils.training.pipeline import options_for, split_dataset
    from object_detection_utils.training.tfrecords import CocoDataset

    annotations = write_shapes_dataset(tmp_path, count=10, seed=0, size=(64, 64), progress=False)
    dataset = CocoDataset(annotations, tmp_path / "images")
    split = split_dataset(dataset, validation_fraction=0.2, seed=5)
    assert len(split.validation_ids) == 2 and len(split.train_ids) == 8
    assert sorted(split.train_ids + split.validation_ids) == list(range(1, 11))
    assert split_dataset(dataset, validation_fraction=0.2, seed=5) == split
    options, label_map = options_for(dataset, steps=3)
    assert options.num_classes == 4 and label_map[3] == "triangle"


# --- Model Garden: conversion, training, export ------------------------------------------------------

def test_tfrecord_holds_exact_boxes_classes_and_masks(tmp_path):
    _model_garden()
    import tensorflow as tf
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    from object_detection_utils.training.tfrecords import CocoDataset, write_tfrecord

    annotations = write_shapes_dataset(tmp_path, count=3, seed=2, size=(48, 64), progress=False)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a picture")
    document = json.loads(annotations.read_text())
    document["images"].append({"id": 99, "file_name": "broken.png", "height": 48, "width": 64})
    annotations.write_text(json.dumps(document))

    count = write_tfrecord(CocoDataset(annotations, tmp_path / "images"), tmp_path / "t.tfrecord", progress=False)
    assert count == 3  # the broken picture is skipped, the rest converted
    decoder = TfExampleDecoder(include_mask=True)
    rng = np.random.default_rng(2)
    for record in tf.data.TFRecordDataset(str(tmp_path / "t.tfrecord")):
        decoded = decoder.decode(record)
        expected = random_shapes_picture(rng, (48, 64))
        assert np.array_equal(decoded["image"].numpy(), expected.image)
        assert decoded["groundtruth_classes"].numpy().tolist() == expected.class_ids.tolist()
        assert np.array_equal(decoded["groundtruth_instance_masks"].numpy() > 0.5, expected.masks)
        ys, xs = np.nonzero(expected.masks[0])
        box = decoded["groundtruth_boxes"].numpy()[0]  # ymin, xmin, ymax, xmax normalised
        np.testing.assert_allclose(box, [ys.min() / 48, xs.min() / 64, (ys.max() + 1) / 48, (xs.max() + 1) / 64],
                                   atol=1e-6)


@pytest.fixture(scope="module")
def trained(tiny_training_run):
    """The whole training job on shapes pictures: two real steps of a tiny Mask R-CNN, export, validation."""
    return tiny_training_run


def test_training_runs_real_steps_checkpoints_and_validates(trained):
    from object_detection_utils.training.train import latest_checkpoint

    summary = trained["summary"]
    assert (summary["resumed_from"], summary["steps"]) == (0, 2)
    assert summary["total_train_seconds"] == summary["train_seconds"] > 0
    assert latest_checkpoint(trained["root"] / "run").endswith("ckpt-2")
    assert np.isfinite(summary["losses"]["total_loss"]) and summary["losses"]["mask_loss"] > 0
    assert (summary["train_pictures"], summary["validation_pictures"]) == (5, 1)
    assert len(trained["split"].train_ids) == 5 and not set(trained["split"].train_ids) & set(
        trained["split"].validation_ids)
    for key in ("mask_AP", "mask_AP50", "mask_AP75", "box_AP", "box_AP50", "box_AP75"):
        assert 0.0 <= summary[key] <= 1.0


def test_export_carries_a_model_card_with_the_validation_figures(trained):
    card = (trained["export"] / "README.md").read_text()
    assert card.startswith("# export: Mask R-CNN ResNet10-FPN, 64 px\n")
    assert "5 pictures, 2 steps of batch 2" in card
    assert "Classes (`label_map.pbtxt`): 1 circle, 2 square, 3 triangle." in card
    summary = trained["summary"]
    assert (f"| mask | {summary['mask_AP']:.3f} | {summary['mask_AP50']:.3f} | {summary['mask_AP75']:.3f} |"
            in card)


def test_interrupted_training_saves_and_resumes(trained, monkeypatch, tmp_path):
    import object_detection_utils.training.train as train_module

    class InterruptAfterStep3(train_module.tqdm):
        def update(self, n=1):
            super().update(n)
            if self.n == 3:
                raise KeyboardInterrupt

    options = TrainOptions(**{**trained["options"].__dict__, "steps": 4, "checkpoint_every": 100})
    run = tmp_path / "run"  # a copy: the run itself is shared with other tests
    shutil.copytree(trained["run"], run)
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "tqdm", InterruptAfterStep3)
        with pytest.raises(KeyboardInterrupt):  # progress on: a disabled tqdm does not count
            train_module.train(options, trained["records"], run, progress=True)
    assert train_module.latest_checkpoint(run).endswith("ckpt-3")  # saved on the interrupt, not by schedule

    result = train_module.train(options, trained["records"], run, progress=False)
    assert (result.first_step, result.last_step) == (3, 4)
    assert result.checkpoint.endswith("ckpt-4")
    sessions = json.loads((run / train_module.SESSIONS_FILE).read_text())
    assert [(s["first_step"], s["last_step"]) for s in sessions] == [(0, 2), (2, 3), (3, 4)]
    assert result.total_seconds == pytest.approx(sum(s["seconds"] for s in sessions))
    assert result.seconds <= result.total_seconds

    other = TrainOptions(**{**options.__dict__, "backbone": "resnet18"})
    with pytest.raises(InstanceSegmentationError, match="different model"):
        train_module.train(other, trained["records"], run, progress=False)


def test_export_has_the_tf2_zoo_signature(trained):
    import tensorflow as tf

    export = trained["export"]
    assert sorted(p.name for p in export.iterdir()) == ["README.md", "label_map.pbtxt", "saved_model",
                                                        "training_options.json"]
    loaded = tf.saved_model.load(str(export / "saved_model"))
    assert saved_steps(loaded) is not None and step_levels(saved_steps(loaded)) == ("2", "3", "4", "5", "6")
    signature = loaded.signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert list(inputs) == ["input_tensor"]
    assert inputs["input_tensor"].dtype == tf.uint8 and inputs["input_tensor"].shape.as_list() == [1, None, None, 3]
    outputs = signature.structured_outputs
    assert sorted(outputs) == ["detection_boxes", "detection_classes", "detection_masks", "detection_scores",
                               "num_detections"]
    assert all(spec.dtype == tf.float32 for spec in outputs.values())


def test_export_runs_through_our_inference_with_full_size_masks(trained):
    model = load_model(trained["export"])
    assert model.kind == "saved_model" and model.has_masks
    steps_give_the_signatures_outputs_with_masks_only_where_kept(model, trained)
    assert dict(model.label_map) == {1: "circle", 2: "square", 3: "triangle"}
    picture = read_image(next((trained["root"] / "shapes" / "images").iterdir()))
    picture = np.ascontiguousarray(np.concatenate([picture, picture[:, :36]], axis=1))  # 64 x 100, not square
    raw = model.predict(picture)
    count = int(raw["num_detections"][0])
    assert count > 0 and raw["detection_masks"].shape[2:] == (28, 28)
    boxes = raw["detection_boxes"][0, :count]
    assert (boxes >= 0).all() and (boxes <= 1).all() and (boxes[:, 2:] >= boxes[:, :2]).all()
    assert set(raw["detection_classes"][0, :count].tolist()) <= {1.0, 2.0, 3.0}
    detections = run_inference_for_single_image(model, picture, min_score=0.0)
    assert len(detections) == count
    assert detections.masks.shape == (count, 64, 100)
    assert (detections.boxes[:, [0, 2]] <= 100).all() and (detections.boxes[:, [1, 3]] <= 64).all()


def steps_give_the_signatures_outputs_with_masks_only_where_kept(model, trained) -> None:
    """The SavedModel carries the model's steps beside its signature; TensorFlow runs them: the signature's
    outputs (to the last bit of rounding), with a minimum score no mask for the dropped detections, and several
    same-size pictures in one pass."""
    import tensorflow as tf

    from object_detection_utils.model_contract import KeptInstances

    assert (model.backend, model.masks_where_kept) == ("tensorflow", True)
    signature = model._run.saved_model.signatures["serving_default"]
    picture = read_image(next((trained["root"] / "shapes" / "images").iterdir()))
    expected = {name: value.numpy() for name, value in signature(input_tensor=tf.constant(picture[None])).items()}
    count = int(expected["num_detections"][0])
    scores = expected["detection_scores"][0, :count]
    below, above = np.sort(scores)[count // 2 - 1 : count // 2 + 1]
    assert above - below > 1e-5
    threshold = float((below + above) / 2)  # between two scores: no score within rounding of it
    keep = scores >= threshold
    assert 0 < keep.sum() < count
    every, kept_only = model.predict(picture), model.predict(picture, KeptInstances(threshold))
    # The steps are traced for any batch size, the signature for one picture: the same arithmetic, rounded alike
    # but for the last bit here and there.
    for raw in every, kept_only:
        for name in ("detection_classes", "num_detections"):
            np.testing.assert_array_equal(raw[name], expected[name])
        for name in ("detection_boxes", "detection_scores"):
            np.testing.assert_allclose(raw[name], expected[name], rtol=0, atol=1e-6)
    masks = expected["detection_masks"][0, :count]
    np.testing.assert_allclose(every["detection_masks"][0, :count], masks, atol=1e-5)
    np.testing.assert_allclose(kept_only["detection_masks"][0, :count][keep], masks[keep], atol=1e-5)
    assert not kept_only["detection_masks"][0, :count][~keep].any()
    # Same-size pictures (tiles) go through in one pass, each with its own outputs.
    other = read_image(sorted((trained["root"] / "shapes" / "images").iterdir())[1])
    assert model.batched
    together = model.predict_batch(np.stack([picture, other]), KeptInstances(threshold))
    for index, alone in enumerate((kept_only, model.predict(other, KeptInstances(threshold)))):
        for name, value in alone.items():
            np.testing.assert_allclose(together[name][index], value[0], atol=1e-5, err_msg=name)
    # Through the library call: the kept instances' full-picture masks are those of an unfiltered run.
    kept = run_inference_for_single_image(model, picture, min_score=threshold)
    unfiltered = run_inference_for_single_image(model, picture, min_score=0.0)
    assert len(kept) == keep.sum() and np.array_equal(kept.masks, unfiltered.masks[unfiltered.scores >= threshold])


def test_export_boxes_are_normalised_to_the_input_picture(trained):
    """A picture and its exact 2x enlargement reach the network as the same pixels: same normalised boxes."""
    import cv2

    model = load_model(trained["export"])
    small = read_image(next((trained["root"] / "shapes" / "images").iterdir()))[:, :48]  # 64 x 48
    large = cv2.resize(small, (96, 128), interpolation=cv2.INTER_NEAREST)
    raw_small, raw_large = model.predict(small), model.predict(large)
    count = int(raw_small["num_detections"][0])
    assert count == int(raw_large["num_detections"][0]) > 0
    np.testing.assert_allclose(raw_small["detection_boxes"][0, :count], raw_large["detection_boxes"][0, :count],
                               atol=2e-3)
    boxes_small = run_inference_for_single_image(model, small, min_score=0.0).boxes
    boxes_large = run_inference_for_single_image(model, large, min_score=0.0).boxes
    np.testing.assert_allclose(boxes_large, boxes_small * 2, atol=0.3)


def test_script_uses_the_export_and_reports_bad_data_in_one_line(trained, tmp_path, repo_root, capsys):
    picture = next((trained["root"] / "shapes" / "images").iterdir())
    done = subprocess.run(
        [sys.executable, str(repo_root / "instance_segmentation.py"), "--model", str(trained["export"]), "-i", str(picture),
         "-o", str(tmp_path / "out.png"), "--no-display", "--min-score", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert read_image(tmp_path / "out.png").shape == (64, 64, 3)
    assert any(name in done.stdout for name in ("circle", "square", "triangle"))

    # The training script's errors, in this process (its entry point as `run` calls it; the script's own process
    # is the one above).
    import instance_segmentation_train
    from object_detection_utils.apps import cli

    (tmp_path / "bad.json").write_text("{not json")
    capsys.readouterr()
    assert cli.run_main(instance_segmentation_train.main, [
        "train", "--annotations", str(tmp_path / "bad.json"), "--images", str(tmp_path), "--model-dir",
        str(tmp_path / "run")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.strip().count("\n") == 0 and "bad.json: line 1: not valid JSON (" in stderr

    assert cli.run_main(instance_segmentation_train.main, [
        "export", "--model-dir", str(tmp_path), "--output", str(tmp_path / "export")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: no checkpoint to export"


def test_export_command_writes_the_latest_checkpoint_with_a_model_card(trained, tmp_path, capsys):
    import instance_segmentation_train  # the script's own entry point, in this process (its model caches are warm)
    from object_detection_utils.training.train import checkpoint_step, latest_checkpoint, training_seconds

    run = trained["root"] / "run"
    assert instance_segmentation_train.main(["export", "--model-dir", str(run), "--output",
                                             str(tmp_path / "exported")]) == 0
    checkpoint = latest_checkpoint(run)
    assert capsys.readouterr().out.strip() == f"exported {checkpoint} to {tmp_path / 'exported'}"
    card = (tmp_path / "exported" / "README.md").read_text()
    assert card.startswith("# exported: Mask R-CNN ResNet10-FPN, 64 px\n")
    assert f"\n{checkpoint_step(checkpoint)} steps of batch 2," in card
    assert f"; {training_seconds(run):.0f} s of training." in card and training_seconds(run) > 0
    assert "| mask |" not in card and "expect:" not in card  # no validation here
    exported = load_model(tmp_path / "exported")
    assert exported.label_map.name(3) == "triangle"

    # Written again from its own weights, in place: the same model, its model card kept.
    picture = read_image(next((trained["root"] / "shapes" / "images").iterdir()))
    before = exported.predict(picture)
    assert instance_segmentation_train.main(["export", "--from-export", str(tmp_path / "exported"), "--output",
                                             str(tmp_path / "exported")]) == 0
    assert capsys.readouterr().out.strip() == f"exported {tmp_path / 'exported'} again to {tmp_path / 'exported'}"
    assert (tmp_path / "exported" / "README.md").read_text() == card
    after = load_model(tmp_path / "exported")
    assert after.masks_where_kept and TrainOptions.load(tmp_path / "exported") == TrainOptions.load(run)
    for name, value in after.predict(picture).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    with pytest.raises(InstanceSegmentationError, match=f"^{tmp_path}: not one of our exports "):
        instance_segmentation_train.main(["export", "--from-export", str(tmp_path), "--output", str(tmp_path / "x")])


def _export_into(run, output, capsys) -> tuple[int, str]:
    """The export command run as its script runs it, in this process (its model caches are warm): exit code,
    stderr."""
    import instance_segmentation_train
    from object_detection_utils.apps import cli

    capsys.readouterr()
    code = cli.run_main(instance_segmentation_train.main, ["export", "--model-dir", str(run), "--output", str(output)])
    return code, capsys.readouterr().err


def test_an_export_onto_a_full_disk_is_one_line_and_keeps_the_earlier_export(trained, tmp_path, capsys):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        earlier = disk / "exported"
        earlier.mkdir()
        (earlier / "README.md").write_text("the earlier export")
        code, stderr = _export_into(trained["root"] / "run", earlier, capsys)
        assert code == 2
        assert stderr.strip() == f"error: {earlier}: cannot write the export (No space left on device)"
        assert sorted(p.name for p in disk.iterdir()) == ["exported"]  # no temporary folder left
        assert (earlier / "README.md").read_text() == "the earlier export"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_an_export_into_a_read_only_folder_fails_before_the_model_is_built(trained, tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        code, stderr = _export_into(trained["root"] / "run", folder / "exported", capsys)
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    assert code == 2
    assert stderr.strip() == f"error: {folder / 'exported'}: cannot write the export there (Read-only file system)"
