"""Loading models from every kind of local path, and the errors for paths that are not models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tiny_model

from object_detection_utils import load_model
from object_detection_utils.errors import ModelLoadError
from object_detection_utils.models.loading import load_local_model


def _check_outputs(model, height=30, width=40):
    outputs = model.predict(np.zeros((height, width, 3), np.uint8))
    np.testing.assert_allclose(outputs["detection_boxes"][0], tiny_model.BOXES)
    np.testing.assert_array_equal(outputs["detection_classes"][0], tiny_model.CLASSES)
    assert outputs["num_detections"].tolist() == [tiny_model.NUM_DETECTIONS]
    return outputs


def test_tf1_folder_loads_as_frozen_graph(tiny_frozen_dir):
    model = load_model(tiny_frozen_dir)
    assert (model.kind, model.name, model.has_masks) == ("frozen_graph", "tiny_tf1_coco", True)
    assert _check_outputs(model)["detection_masks"].shape == (1, 5, 15, 15)
    assert model.batched  # image_tensor takes any batch: a server may stack pictures into one call


def test_bare_pb_file_loads(tiny_frozen_dir):
    model = load_model(tiny_frozen_dir / "frozen_inference_graph.pb")
    assert model.kind == "frozen_graph" and model.name == "tiny_tf1_coco"
    _check_outputs(model)


def test_tf2_folder_loads_as_saved_model(tiny_saved_dir):
    model = load_model(tiny_saved_dir)
    assert (model.kind, model.name, model.has_masks) == ("saved_model", "tiny_tf2_coco", True)
    _check_outputs(model)
    assert not model.batched  # the TF2 zoo signature takes [1, H, W, 3]: one picture per call
    assert not model.masks_where_kept  # no steps beside the signature (as our exports carry): it runs whole
    # the inner saved_model folder works as well
    assert load_model(tiny_saved_dir / "saved_model", warm_up=False).kind == "saved_model"


def test_zoo_archive_is_extracted_once_into_the_cache(tiny_frozen_dir, tmp_path, monkeypatch):
    archive = tmp_path / "tiny_tf1_coco.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_frozen_dir, arcname="tiny_tf1_coco")
    model = load_model(archive)
    assert model.name == "tiny_tf1_coco" and model.kind == "frozen_graph"
    _check_outputs(model)
    extracted = model.source
    assert extracted.is_dir() and (extracted / "tiny_tf1_coco" / "frozen_inference_graph.pb").is_file()

    import object_detection_utils.models.archive as archive_module

    def must_not_extract(*args, **kwargs):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(archive_module, "extract_archive", must_not_extract)
    assert load_model(archive, warm_up=False).source == extracted


def test_batch_of_pictures_through_the_frozen_graph(tiny_frozen_dir):
    model = load_model(tiny_frozen_dir, warm_up=False)
    batch = np.stack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)])
    scores = model.predict_batch(batch)["detection_scores"]
    assert scores.shape == (2, 5)
    assert scores[:, 2].tolist() == [0.0, 1.0]  # row 2 scores the brightness of each picture


def test_saved_model_with_batch_one_signature_still_takes_batches(tiny_saved_dir):
    model = load_model(tiny_saved_dir, warm_up=False)
    batch = np.stack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)])
    assert model.predict_batch(batch)["detection_scores"][:, 2].tolist() == [0.0, 1.0]


def test_the_same_graph_function_serves_every_call(tiny_frozen_dir):
    model = load_model(tiny_frozen_dir)
    run = model._run
    for size in [(10, 10), (31, 17), (200, 120)]:
        model.predict(np.zeros((*size, 3), np.uint8))
    assert model._run is run
    assert model.warmup_seconds > 0


def test_boxes_only_model_loads_without_masks(tiny_boxes_only_dir):
    model = load_model(tiny_boxes_only_dir)
    assert model.has_masks is False
    assert "detection_masks" not in model.predict(np.zeros((9, 9, 3), np.uint8))


def test_label_map_in_the_model_folder_is_used(tmp_path):
    folder = tiny_model.build_frozen_graph(tmp_path / "custom", label_map=True)
    model = load_model(folder, warm_up=False)
    assert dict(model.label_map) == {1: "widget", 3: "gadget", 18: "gizmo"}


def test_explicit_label_map_wins(tiny_frozen_dir, tmp_path):
    (tmp_path / "mine.pbtxt").write_text('item { id: 1 name: "bubble" }')
    model = load_model(tiny_frozen_dir, label_map=tmp_path / "mine.pbtxt", warm_up=False)
    assert dict(model.label_map) == {1: "bubble"}


def test_missing_path_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file or folder"):
        load_local_model(tmp_path / "nowhere")


def test_folder_without_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_model(tmp_path / "empty")


def test_file_that_is_not_a_graph(tmp_path):
    (tmp_path / "junk.pb").write_bytes(b"\xff\x00 certainly not a protobuf \x13\x37" * 10)
    with pytest.raises(ModelLoadError, match="junk.pb"):
        load_model(tmp_path / "junk.pb")


def test_graph_that_is_not_a_detection_model(tmp_path):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        tf.identity(images, name="something_else")
    (tmp_path / "other.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ModelLoadError, match="not a detection model .missing outputs: detection_boxes"):
        load_model(tmp_path / "other.pb")


def test_broken_archive(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08 truncated gzip")
    with pytest.raises(ModelLoadError, match="broken.tar.gz: cannot extract archive"):
        load_model(tmp_path / "broken.tar.gz")


# --- broken model files: one line each, naming the file and what to do -----------------------------------------

def _script_error(repo_root: Path, model: Path, tmp_path: Path, prefix: tuple[str, ...] = ()) -> list[str]:
    done = subprocess.run(
        [*prefix, sys.executable, str(repo_root / "instance_segmentation.py"), "--no-display", "--model", str(model),
         "-o", str(tmp_path / "out.png")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    return done.stderr.strip().splitlines()


def test_a_truncated_frozen_graph_is_one_line_saying_what_to_do(repo_root, tiny_frozen_dir, tmp_path):
    graph = tmp_path / "model" / "frozen_inference_graph.pb"
    graph.parent.mkdir()
    data = (tiny_frozen_dir / "frozen_inference_graph.pb").read_bytes()
    graph.write_bytes(data[: len(data) // 2])
    assert _script_error(repo_root, graph.parent, tmp_path) == [
        f"error: {graph}: not a TensorFlow frozen graph, or a truncated one (cannot parse GraphDef); "
        "download or export the model again, or pass --model PATH to a good copy"]


def test_a_saved_model_missing_its_variables_shard_is_one_line(repo_root, tiny_saved_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_saved_dir, model)
    shard, = (model / "saved_model" / "variables").glob("variables.data-*")
    shard.unlink()
    lines = _script_error(repo_root, model, tmp_path)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {model / 'saved_model'}: cannot load SavedModel (")
    assert str(shard) in lines[0]
    assert lines[0].endswith("; download or export the model again, or pass --model PATH to a good copy")


def test_an_unreadable_model_file_is_one_line(repo_root, tiny_frozen_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_frozen_dir, model)
    graph = model / "frozen_inference_graph.pb"
    graph.chmod(0o000)
    prefix: tuple[str, ...] = ()
    if os.getuid() == 0:  # root reads anything; without these two capabilities it is held to the file's mode
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is absent: cannot make a file unreadable")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    try:
        lines = _script_error(repo_root, model, tmp_path, prefix)
    finally:
        graph.chmod(0o644)
    assert lines == [f"error: {graph}: cannot read model (Permission denied)"]
