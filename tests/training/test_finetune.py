"""Fine-tuning: starting a run from our exports, our training runs and Model Garden checkpoints (downloaded from
a local server), re-initialising the class-specific layers for other classes, refusing misfits, freezing.

Skipped unless tf-models-official (`pip install -e ".[train]"`) is importable. Models are tiny (ResNet10, 64 px,
light heads) and runs make 2 steps.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from zoo_server import ZooServer, tar_gz

from object_detection_utils.errors import InstanceSegmentationError, NoConnection
from object_detection_utils.label_map import LabelMap
from object_detection_utils.models.export_options import TrainOptions
from object_detection_utils.shapes import SHAPE_CLASSES, shape_classes, write_shapes_dataset

OTHER = shape_classes(["star", "cross"])  # another task: two classes instead of three


@pytest.fixture(scope="module")
def tf():
    pytest.importorskip("official.vision", reason="tf-models-official is not installed: fine-tuning tests skipped")
    import tensorflow

    return tensorflow


def build_model(options: TrainOptions):
    from official.vision.tasks.maskrcnn import MaskRCNNTask

    from object_detection_utils.models.export_options import experiment_config

    return MaskRCNNTask(experiment_config(options).task).build_model()


def values(variables) -> list[np.ndarray]:
    return [variable.numpy().copy() for variable in variables]


@pytest.fixture(scope="module")
def source(tf, tiny_training_run):
    """A tiny shapes model trained 2 steps: its training folder and its export (conftest.py's, shared)."""
    return tiny_training_run


def source_model(tf, source, options: TrainOptions):
    """The source run's model built like `options` (but for its own classes), read straight from its checkpoint."""
    from object_detection_utils.training.train import latest_checkpoint

    model = build_model(dataclasses.replace(options, num_classes=source["options"].num_classes))
    tf.train.Checkpoint(model=model).read(latest_checkpoint(source["run"])).expect_partial()
    return model


# --- sources ---------------------------------------------------------------------------------------------------

def test_init_from_our_export_restores_every_weight(tf, source):
    from object_detection_utils.training.init_checkpoint import local_source, restore_initial_weights

    init = local_source(source["export"])
    assert init.checkpoint == str(source["export"] / "saved_model" / "variables" / "variables")
    assert init.options == source["options"] and dict(init.label_map) == SHAPE_CLASSES
    model = build_model(source["options"])
    fresh = values(model.backbone.variables)
    restored = restore_initial_weights(model, init, source["options"], LabelMap(SHAPE_CLASSES))
    assert restored == "all"
    expected = values(source_model(tf, source, source["options"]).variables)
    assert all(np.array_equal(a, b) for a, b in zip(values(model.variables), expected, strict=True))
    # The stem convolution's kernel, as the export stores it, and not what the fresh model had.
    reader = tf.train.load_checkpoint(init.checkpoint)
    stem = next(name for name, shape in tf.train.list_variables(init.checkpoint)
                if name.startswith("model/backbone/") and shape == [7, 7, 3, 64])
    assert np.array_equal(model.backbone.variables[0].numpy(), reader.get_tensor(stem))
    assert not np.array_equal(fresh[0], reader.get_tensor(stem))


def test_init_from_a_training_run_with_other_classes_reinitialises_only_the_class_layers(tf, source):
    from object_detection_utils.training.init_checkpoint import (
        class_specific_variables,
        local_source,
        restore_initial_weights,
    )
    from object_detection_utils.training.train import latest_checkpoint

    init = local_source(source["run"])
    assert init.checkpoint == latest_checkpoint(source["run"]) and init.layout == "model"
    assert init.description == f"{source['run']} (a training run, step 2)"
    options = dataclasses.replace(source["options"], num_classes=len(OTHER) + 1)
    model = build_model(options)
    before = values(model.variables)
    restored = restore_initial_weights(model, init, options, LabelMap(OTHER))
    assert restored == ("all but the classifier, box regression and mask logits (re-initialised for other classes: "
                        "circle, square, triangle -> star, cross)")
    fresh = {id(v) for v in class_specific_variables(model)}
    assert len(fresh) == 6  # kernel and bias of the classifier, the box regressor and the mask logits
    expected = values(source_model(tf, source, options).variables)
    for variable, old, wanted in zip(model.variables, before, expected, strict=True):
        if id(variable) in fresh:
            assert np.array_equal(variable.numpy(), old), variable.name  # untouched: fresh random weights
            assert variable.shape[-1] in (len(OTHER) + 1, 4 * (len(OTHER) + 1))
        else:
            assert np.array_equal(variable.numpy(), wanted), variable.name

    # Same count, other names: the class layers are re-initialised too; same classes: everything restored.
    same_count = build_model(source["options"])
    assert "star, cross, ring" in restore_initial_weights(same_count, init, source["options"],
                                                          LabelMap(shape_classes(["star", "cross", "ring"])))


def test_cli_fine_tunes_an_export_on_other_classes_and_the_card_says_so(tf, source, tmp_path, capsys):
    import instance_segmentation_train  # the script's own entry point, in this process (its model caches are warm)

    data = tmp_path / "other"
    write_shapes_dataset(data, count=5, seed=9, size=(64, 64), progress=False, classes=OTHER)
    assert instance_segmentation_train.main([
        "train", "--annotations", str(data / "annotations.json"), "--images", str(data / "images"), "--model-dir",
        str(tmp_path / "run"), "--backbone", "resnet10", "--input-size", "64", "--batch-size", "2", "--steps", "2",
        "--warmup-steps", "1", "--validate-every", "1", "--init-checkpoint", str(source["export"])]) == 0
    stdout = capsys.readouterr().out
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2
    assert "initialised all but the classifier, box regression and mask logits" in stdout
    options = TrainOptions.load(tmp_path / "run")
    assert options.init_checkpoint == f"{source['export']} (an export)"
    assert options.init_restored.endswith("(re-initialised for other classes: circle, square, triangle -> star, cross)")
    curve = [json.loads(line) for line in (tmp_path / "run" / "validation.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in curve] == [1, 2]
    assert curve[-1]["mask_AP50"] == summary["mask_AP50"]  # the model in training measures as its export does
    assert 0 < curve[0]["train_seconds"] <= curve[1]["train_seconds"]
    card = (tmp_path / "run" / "export" / "README.md").read_text()
    assert (f"\nInitialised from {source['export']} (an export); restored: all but the classifier, box regression "
            "and mask logits (re-initialised for other classes: circle, square, triangle -> star, cross).\n") in card
    assert "Fine-tuned with `instance_segmentation_train.py train`" in card
    assert TrainOptions.load(tmp_path / "run" / "export") == options


# --- refusals --------------------------------------------------------------------------------------------------

def test_a_mismatched_backbone_is_refused_in_one_line(tf, source, tmp_path, repo_root):
    done = subprocess.run(
        [sys.executable, str(repo_root / "instance_segmentation_train.py"), "train", "--annotations",
         str(source["root"] / "shapes" / "annotations.json"), "--images", str(source["root"] / "shapes" / "images"),
         "--model-dir", str(tmp_path / "run"), "--backbone", "resnet18", "--input-size", "64",
         "--init-checkpoint", str(source["export"])],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {source['export']} (an export): does not fit this run: backbone resnet10 "
                                   "there, resnet18 here; train with --backbone resnet10")
    assert not (tmp_path / "run" / "data").exists()  # refused before converting anything


def test_other_input_size_or_heads_refused_unless_only_the_backbone_is_restored(tf, source):
    from object_detection_utils.training.init_checkpoint import check_fits, local_source

    init = local_source(source["export"])
    other = dataclasses.replace(source["options"], input_size=128, heads="zoo")
    with pytest.raises(InstanceSegmentationError) as refused:
        check_fits(init, other, "all")
    assert str(refused.value) == (f"{source['export']} (an export): does not fit this run: heads light there, zoo "
                                  "here; input size 64 there, 128 here; train with --heads light --input-size 64 "
                                  "(or restore less: --init-scope backbone)")
    check_fits(init, other, "backbone")  # a backbone fits any input size and heads
    model = build_model(other)
    from object_detection_utils.training.init_checkpoint import restore_initial_weights

    assert restore_initial_weights(model, init, other, LabelMap(SHAPE_CLASSES), "backbone") == "backbone"
    expected = values(source_model(tf, source, source["options"]).backbone.variables)
    assert all(np.array_equal(a, b) for a, b in zip(values(model.backbone.variables), expected, strict=True))


# --- freezing --------------------------------------------------------------------------------------------------

def test_freeze_backbone_keeps_it_as_initialised_while_the_rest_trains(tf, source, tmp_path):
    from object_detection_utils.training.init_checkpoint import local_source, restore_initial_weights
    from object_detection_utils.training.train import train

    # One class more than the source: the class layers start afresh, in a model whose backbone is frozen.
    four = LabelMap({**SHAPE_CLASSES, 4: "star"})
    options = dataclasses.replace(source["options"], num_classes=5, steps=2, freeze="backbone")
    init = local_source(source["run"])
    result = train(options, source["records"], tmp_path / "run", progress=False,
                   initialise=lambda model: restore_initial_weights(model, init, options, four))
    assert result.options.init_restored.startswith("all but the classifier") and result.last_step == 2
    before = tf.train.load_checkpoint(init.checkpoint)
    after = tf.train.load_checkpoint(result.checkpoint)
    weights = [name for name, _ in tf.train.list_variables(result.checkpoint)
               if name.startswith("model/") and "OPTIMIZER_SLOT" not in name]
    backbone = [name for name in weights if name.startswith("model/backbone/")]
    others = [name for name in weights if not name.startswith("model/backbone/")]
    assert len(backbone) > 50 and others
    for name in backbone:  # kernels, and batch-norm statistics too (frozen layers run in inference mode)
        assert np.array_equal(after.get_tensor(name), before.get_tensor(name)), name
    # The rest trains: FPN, RPN and heads move away from the source's values.
    shapes_before, shapes_after = before.get_variable_to_shape_map(), after.get_variable_to_shape_map()
    shared = [name for name in others if shapes_before.get(name) == shapes_after[name]]
    assert any(not np.array_equal(after.get_tensor(name), before.get_tensor(name)) for name in shared)


# --- Model Garden checkpoints by URL and by name --------------------------------------------------------------

@pytest.fixture
def garden_checkpoint(tf, source, tmp_path):
    """A Model Garden style backbone checkpoint (`backbone/...` at the root, as its ImageNet ones): the source
    run's backbone, written as `ckpt-7` into a folder."""
    model = build_model(source["options"])
    tf.train.Checkpoint(model=model).read(str(source["export"] / "saved_model" / "variables" / "variables")) \
        .expect_partial()
    folder = tmp_path / "made" / "resnet10_shapes"
    prefix = tf.train.Checkpoint(backbone=model.backbone).write(str(folder / "ckpt-7"))
    return {"folder": folder, "prefix": prefix, "backbone": values(model.backbone.variables)}


def test_a_checkpoint_url_is_downloaded_once_then_used_from_the_cache(tf, source, garden_checkpoint, tmp_path,
                                                                      monkeypatch):
    from object_detection_utils.training.checkpoints import CHECKPOINTS_DIR_ENV
    from object_detection_utils.training.init_checkpoint import resolve_init_source, restore_initial_weights

    monkeypatch.setenv(CHECKPOINTS_DIR_ENV, str(tmp_path / "cache"))
    server = ZooServer({"/vision/resnet10_shapes.tar.gz": tar_gz({"resnet10_shapes": garden_checkpoint["folder"]})})
    url = f"{server.url}/vision/resnet10_shapes.tar.gz"
    try:
        init = resolve_init_source(url, progress=False)
        assert server.archive_requests() == [("/vision/resnet10_shapes.tar.gz", None)]
    finally:
        server.stop()
    cached = tmp_path / "cache" / "resnet10_shapes"
    assert init.checkpoint == str(cached / "ckpt-7") and init.layout == "backbone"
    assert init.description == f"{url} (a Model Garden checkpoint)"
    assert sorted(p.name for p in cached.iterdir()) == ["ckpt-7.data-00000-of-00001", "ckpt-7.index"]

    again = resolve_init_source(url, progress=False)  # the server is gone: only the cache can answer
    assert again == init
    model = build_model(source["options"])
    assert restore_initial_weights(model, again, source["options"], LabelMap(SHAPE_CLASSES)) == "backbone"
    assert all(np.array_equal(a, b)
               for a, b in zip(values(model.backbone.variables), garden_checkpoint["backbone"], strict=True))

    with pytest.raises(NoConnection) as offline:
        resolve_init_source(url.replace("resnet10_shapes", "other"), progress=False)
    message = str(offline.value)
    assert "\n" not in message and message.endswith(f"put the files it unpacks to into {tmp_path / 'cache' / 'other'}/")


def test_a_catalogued_checkpoint_is_fetched_by_name_file_by_file(tf, source, garden_checkpoint, tmp_path,
                                                                 monkeypatch, capsys):
    import instance_segmentation_train
    from object_detection_utils.training.checkpoints import CATALOGUE, CHECKPOINTS_DIR_ENV, STORAGE_URL_ENV
    from object_detection_utils.training.init_checkpoint import check_fits, resolve_init_source

    entry = CATALOGUE["resnet50-imagenet"]
    prefix = Path(garden_checkpoint["prefix"])
    files = {f"/{entry.paths[0]}": Path(f"{prefix}.index").read_bytes(),
             f"/{entry.paths[1]}": Path(f"{prefix}.data-00000-of-00001").read_bytes()}
    server = ZooServer(files)
    monkeypatch.setenv(STORAGE_URL_ENV, server.url)
    monkeypatch.setenv(CHECKPOINTS_DIR_ENV, str(tmp_path / "cache"))
    try:
        init = resolve_init_source("resnet50-imagenet", progress=False)
        assert sorted(path for path, _ in server.requests) == sorted(files)
    finally:
        server.stop()
    assert init.checkpoint == str(tmp_path / "cache" / "resnet50-imagenet" / "ckpt-28080")
    assert init.backbone_only and init.known_backbone == "resnet50"
    assert resolve_init_source("resnet50-imagenet", progress=False) == init  # cached: no server needed
    assert instance_segmentation_train.main(["checkpoints"]) == 0
    listed = [line.split("\t")[:4] for line in capsys.readouterr().out.splitlines()]
    assert listed == [["resnet50-imagenet", "resnet50", "224 px", str(tmp_path / "cache" / "resnet50-imagenet")],
                      ["retinanet-resnet50fpn-coco", "resnet50", "640 px", "not downloaded"]]
    with pytest.raises(InstanceSegmentationError) as refused:
        check_fits(init, source["options"], "all")
    assert str(refused.value) == ("resnet50-imagenet (Model Garden's ImageNet ResNet-50, 224 px, top-1 76.1%): does "
                                  "not fit this run: backbone resnet50 there, resnet10 here; train with --backbone "
                                  "resnet50")
