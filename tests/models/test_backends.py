"""Back ends: TensorFlow unchanged, OpenVINO behind the parity gate, and every way back to TensorFlow.

Tests that convert with OpenVINO skip without the `openvino` extra; the fallbacks, the crash handling and the
cache keys are tested without it (the engine's version is faked and the child process crashes on purpose).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tiny_model

from object_detection_utils.apps import cli
from object_detection_utils.errors import ModelLoadError
from object_detection_utils.models import backends
from object_detection_utils.models.backends import conversion, gate
from object_detection_utils.models.backends.convert_child import FAULT_ENV
from object_detection_utils.models.cache import cache_dir
from object_detection_utils.models.zoo import DEFAULT_MODEL, load_model
from object_detection_utils.shapes import random_shapes_picture

needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="OpenVINO is not installed (pip install -e '.[openvino]')")
needs_model_garden = pytest.mark.skipif(importlib.util.find_spec("official") is None,
                                        reason="Model Garden is not installed (the train extra)")
SHAPES_MODEL = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "shapes-r18-128"
needs_shapes_model = pytest.mark.skipif(not SHAPES_MODEL.is_dir(), reason=f"{SHAPES_MODEL} is not there")
PICTURE = np.full((48, 64, 3), 120, np.uint8)


def _warnings(caplog) -> list[str]:
    """The lines a user sees, less the one saying a conversion is under way."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith(
        "object_detection_utils") and not r.getMessage().startswith("back end: converting ")]


@pytest.fixture
def fake_engine(monkeypatch):
    """An installed engine as far as the cache key goes; conversion itself is made to crash before using it."""
    monkeypatch.setattr(conversion, "engine_version", lambda: "0.0-test")
    monkeypatch.setenv(FAULT_ENV, "segv")


@pytest.fixture
def child_runs(monkeypatch) -> list[Path]:
    """The staging folders of the conversion child processes started during a test."""
    runs: list[Path] = []
    original = conversion._run_child

    def counted(source, kind, precision, staging, calibration=None):
        runs.append(staging)
        return original(source, kind, precision, staging, calibration)

    monkeypatch.setattr(conversion, "_run_child", counted)
    return runs


def test_tensorflow_backend_runs_the_models_own_graph(tiny_frozen_dir, caplog):
    default, chosen = load_model(tiny_frozen_dir), load_model(tiny_frozen_dir, backend="tensorflow")
    assert default.backend == chosen.backend == "tensorflow"
    for name, value in default.predict(PICTURE).items():
        np.testing.assert_array_equal(chosen.predict(PICTURE)[name], value)
    assert not (cache_dir() / "openvino").exists()
    assert _warnings(caplog) == []


def test_unknown_backend_is_refused_by_name(tiny_frozen_dir):
    with pytest.raises(ModelLoadError, match="unknown back end 'cuda': choose auto, tensorflow, openvino"):
        load_model(tiny_frozen_dir, backend="cuda")


def test_auto_without_openvino_runs_on_tensorflow_after_one_line(tiny_saved_dir, monkeypatch, caplog):
    monkeypatch.setattr(conversion, "engine_version", lambda: None)
    model = load_model(tiny_saved_dir, backend="auto")
    assert model.backend == "tensorflow"
    assert model.predict(PICTURE)["num_detections"].tolist() == [tiny_model.NUM_DETECTIONS]
    assert _warnings(caplog) == [(f"back end: OpenVINO is not installed ({backends.INSTALL_HINT}); "
                                  f"{tiny_saved_dir.name} runs on TensorFlow")]
    with pytest.raises(ModelLoadError, match=r"--backend openvino: OpenVINO is not installed \(pip install"):
        load_model(tiny_saved_dir, backend="openvino")


def test_a_refused_backend_leaves_a_zoo_models_copy_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(conversion, "engine_version", lambda: None)
    copy = tiny_model.build_frozen_graph(tmp_path / DEFAULT_MODEL)
    with pytest.raises(ModelLoadError, match="OpenVINO is not installed"):
        load_model(DEFAULT_MODEL, tmp_path, backend="openvino")
    assert (copy / "frozen_inference_graph.pb").is_file()  # not moved aside as "damaged"


@pytest.mark.parametrize("fault, signal_name", [("abort", "SIGABRT"), ("segv", "SIGSEGV")])
def test_engine_crash_while_converting_falls_back_with_one_line(tiny_frozen_dir, fake_engine, monkeypatch, caplog,
                                                                fault, signal_name):
    monkeypatch.setenv(FAULT_ENV, fault)
    model = load_model(tiny_frozen_dir, backend="openvino")
    assert model.backend == "tensorflow"
    assert model.predict(PICTURE)["num_detections"].tolist() == [tiny_model.NUM_DETECTIONS]
    reason = f"the engine crashed ({signal_name}) while converting"
    assert _warnings(caplog) == [(f"back end: OpenVINO f32 cannot run {tiny_frozen_dir.name} ({reason}); "
                                  "it runs on TensorFlow")]
    (entry,) = (cache_dir() / "openvino").iterdir()
    assert json.loads((entry / "gate.json").read_text()) == {"passed": False, "reason": reason}


def test_conversion_is_cached_by_model_digest(tmp_path, fake_engine, child_runs):
    folder = tiny_model.build_frozen_graph(tmp_path / "model")
    load_model(folder, backend="openvino")
    load_model(folder, backend="openvino")
    assert len(child_runs) == 1  # the second load found the (failed) conversion in the cache
    tiny_model.build_frozen_graph(folder, with_masks=False)  # same path, other content
    load_model(folder, backend="openvino")
    assert len(child_runs) == 2
    assert len(list((cache_dir() / "openvino").iterdir())) == 2


def test_processes_asking_for_one_conversion_at_once_take_turns(tmp_path, fake_engine, child_runs):
    folder = tiny_model.build_frozen_graph(tmp_path / "model")
    files = [folder / "frozen_inference_graph.pb"]
    start = threading.Barrier(2)
    results = []

    def ask() -> None:
        start.wait()
        results.append(conversion.convert(files[0], "whole", files, "f32", "0.0-test"))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(timeout=300)
    assert len(child_runs) == 1  # the second waited on the lock and found the first one's entry
    assert sorted(r.converted_now for r in results) == [False, True]
    assert results[0].entry == results[1].entry and results[0].gate == results[1].gate


def test_cache_key_names_engine_precision_and_input_size_policy(tiny_frozen_dir):
    from object_detection_utils.models.backends.openvino_engine import BATCHED_GLUE

    files = [tiny_frozen_dir / "frozen_inference_graph.pb"]
    key = conversion.conversion_key(files, "whole", "f32", "2026.4.1")
    assert key == {"model": conversion.model_digest(files), "engine": "openvino 2026.4.1", "precision": "f32",
                   "input_size": "any (dynamic)", "kind": "whole"}
    assert conversion.conversion_key(files, "export", "bf16", "2026.4.1")["input_size"] == "export's fixed square"
    # an export's glue: its own NMS at f32 (parity), batched NMS at the precisions judged by accuracy
    assert conversion.conversion_key(files, "export", "f32", "2026.4.1")["glue"] == "export's own NMS"
    assert conversion.conversion_key(files, "export", "bf16", "2026.4.1")["glue"] == BATCHED_GLUE
    # reduced precisions are judged on pictures: the user's folder is part of the key
    assert conversion.conversion_key(files, "export", "int8", "2026.4.1")["pictures"] == "model's examples and generated"
    assert (conversion.conversion_key(files, "whole", "bf16", "2026.4.1", calibration=tiny_frozen_dir)["pictures"]
            == conversion.model_digest([tiny_frozen_dir]))


def test_backend_option_on_the_scripts(tiny_frozen_dir):
    parser = argparse.ArgumentParser()
    cli.add_model_arguments(parser)
    assert parser.parse_args([]).backend == "tensorflow"
    assert parser.parse_args(["--backend", "openvino-bf16"]).backend == "openvino-bf16"
    with pytest.raises(SystemExit):
        parser.parse_args(["--backend", "cuda"])
    segmenter = cli.segmenter_from_args(parser.parse_args(["--model", str(tiny_frozen_dir), "--backend", "tensorflow"]))
    assert segmenter.model.backend == "tensorflow"


def _runner(outputs_for):
    return lambda images: outputs_for(images)


def _tiny_outputs(score_shift=0.0, mask_shift=0):
    def outputs(images):
        batch = len(images)
        scores = np.tile(np.array([0.95, 0.80, 0.6, 0.30, 0.99], np.float32) + score_shift, (batch, 1))
        masks = np.roll(np.tile(tiny_model.MASKS[None], (batch, 1, 1, 1)), mask_shift, axis=3)
        return {"detection_boxes": np.tile(tiny_model.BOXES[None], (batch, 1, 1)), "detection_scores": scores,
                "detection_classes": np.tile(tiny_model.CLASSES[None], (batch, 1)),
                "num_detections": np.full(batch, 4.0, np.float32), "detection_masks": masks}
    return outputs


def test_gate_passes_the_same_instances_and_states_why_it_fails():
    pictures = [PICTURE, np.zeros((100, 80, 3), np.uint8)]
    f32, bf16 = gate.TOLERANCES["f32"], gate.TOLERANCES["bf16"]
    same = gate.run_gate(_tiny_outputs(), _tiny_outputs(), pictures, f32)
    assert same.passed and same.matched == 8 and same.worst["mask_iou"] == 1.0  # 4 instances >= 0.3 a picture
    shifted = gate.run_gate(_tiny_outputs(), _tiny_outputs(score_shift=0.01), pictures, f32)
    assert not shifted.passed and shifted.reason.startswith("picture 1: TensorFlow instance 0 (class 1): |Δscore| 0.01")
    assert gate.run_gate(_tiny_outputs(), _tiny_outputs(score_shift=0.01), pictures, bf16).passed
    moved = gate.run_gate(_tiny_outputs(), _tiny_outputs(mask_shift=3), pictures, f32)
    assert not moved.passed and "mask IoU" in moved.reason
    failed_part = gate.run_gate(_tiny_outputs(), _tiny_outputs(), pictures, f32, lambda: {"dense": 0.02})
    assert not failed_part.passed and failed_part.reason == "dense: relative error 0.02 > 0.001"


@needs_openvino
def test_telemetry_is_off_before_openvino_is_first_used(tmp_path):
    code = """
import sys, json
from object_detection_utils.models.backends.openvino_engine import import_openvino, telemetry_is_off
ov = import_openvino()
import tensorflow as tf
function = tf.function(lambda x: {"y": x * 2.0}, input_signature=[tf.TensorSpec([2], tf.float32)])
ov.convert_model(function.get_concrete_function())
print(json.dumps({"off": telemetry_is_off(), "blocked": sys.modules.get("openvino_telemetry", 0) is None}))
"""
    environment = {**os.environ, "HOME": str(tmp_path), "CI": "false"}
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=environment,
                            cwd=Path(__file__).resolve().parents[2], timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"off": True, "blocked": True}
    assert not (tmp_path / "intel").exists()  # no consent file, no client id: nothing was set up to send


def _while_loop_frozen_graph(folder: Path) -> Path:
    """A TF1 zoo-like graph: v1 while loops (map_fn over the batch) around a per-picture NMS, as the TF1 zoo's
    BatchMultiClassNonMaxSuppression is built."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.disable_control_flow_v2()
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        brightness = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3]) / 255.0
        boxes = tf.constant(tiny_model.BOXES[:4])
        scores = tf.constant([0.9, 0.85, 0.6, 0.4])[None] * (0.5 + 0.5 * brightness[:, None])

        def per_picture(picture_scores):
            keep = tf.image.non_max_suppression(boxes, picture_scores, 4, iou_threshold=0.5, score_threshold=0.1)
            pad = 4 - tf.shape(keep)[0]
            return (tf.pad(tf.gather(boxes, keep), [[0, pad], [0, 0]]), tf.pad(tf.gather(picture_scores, keep), [[0, pad]]),
                    tf.pad(tf.ones_like(keep, tf.float32), [[0, pad]]), tf.cast(tf.shape(keep)[0], tf.float32))

        found = tf.map_fn(per_picture, scores, fn_output_signature=(tf.float32,) * 4)
        for name, tensor in zip(("detection_boxes", "detection_scores", "detection_classes", "num_detections"), found):
            tf.identity(tensor, name=name)
        tf.identity(tf.ones_like(found[0][:, :, :1, None]) * tf.ones([1, 1, 15, 15]), name="detection_masks")
    folder.mkdir(parents=True)
    (folder / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    return folder


def _combined_nms_saved_model(folder: Path) -> Path:
    """A TF2 zoo-like SavedModel whose detections come from CombinedNonMaxSuppression."""
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def detect(self, input_tensor):
            brightness = tf.reduce_mean(tf.cast(input_tensor, tf.float32)) / 255.0
            scores = tf.constant([[[0.1, 0.9], [0.2, 0.8], [0.7, 0.1], [0.05, 0.6]]]) * (0.5 + 0.5 * brightness)
            found = tf.image.combined_non_max_suppression(tf.constant(tiny_model.BOXES[None, :4, None]), scores, 4, 4,
                                                          iou_threshold=0.5, score_threshold=0.1)
            return {"detection_boxes": found.nmsed_boxes, "detection_scores": found.nmsed_scores,
                    "detection_classes": found.nmsed_classes + 1,
                    "num_detections": tf.cast(found.valid_detections, tf.float32),
                    "detection_masks": tf.ones([1, 4, 15, 15])}

    module = Module()
    tf.saved_model.save(module, str(folder / "saved_model"), signatures={"serving_default": module.detect})
    return folder


@needs_openvino
def test_zoo_structures_convert_whole_or_fall_back_cleanly(tmp_path, caplog):
    while_loops = _while_loop_frozen_graph(tmp_path / "tf1_while_nms")
    model, reference = load_model(while_loops, backend="openvino"), load_model(while_loops)
    assert model.backend == "openvino f32"  # OpenVINO converts v1 while loops with NMS inside, and the gate agrees
    for name, value in reference.predict(PICTURE).items():
        np.testing.assert_allclose(model.predict(PICTURE)[name], value, atol=1e-6)
    combined = _combined_nms_saved_model(tmp_path / "tf2_combined_nms")
    model = load_model(combined, backend="openvino")
    assert model.backend == "tensorflow"
    assert model.predict(PICTURE)["num_detections"].tolist() == [4.0]
    assert _warnings(caplog) == [("back end: OpenVINO f32 cannot run tf2_combined_nms (conversion failed: No "
                                  "conversion rule found for operations: CombinedNonMaxSuppression); it runs on "
                                  "TensorFlow")]


@pytest.fixture(scope="module")
def converted_shapes(openvino_conversion):
    """The shared trained shapes model loaded on OpenVINO from the run's one conversion of it (conftest.py)."""
    cache = openvino_conversion(SHAPES_MODEL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSTANCE_SEGMENTATION_CACHE", str(cache))
        model = load_model(SHAPES_MODEL, backend="openvino")
    (entry,) = (cache / "openvino").iterdir()
    return model, cache, entry


@needs_openvino
@needs_model_garden
@needs_shapes_model
def test_our_export_runs_its_heavy_parts_on_openvino_with_the_same_masks(converted_shapes, monkeypatch, child_runs):
    model, cache, entry = converted_shapes
    assert model.backend == "openvino f32"
    verdict = json.loads((entry / "gate.json").read_text())
    assert verdict["passed"] and verdict["matched"] > 0 and verdict["worst"]["mask_iou"] >= 0.99
    assert {p.name for p in entry.iterdir()} >= {"dense.xml", "box_head.xml", "mask_head.xml", "glue", "key.json"}
    reference = load_model(SHAPES_MODEL)
    picture = (np.random.default_rng(5).integers(0, 255, (128, 128, 3))).astype(np.uint8)
    expected, found = reference.predict(picture), model.predict(picture)
    np.testing.assert_array_equal(found["detection_classes"], expected["detection_classes"])
    np.testing.assert_allclose(found["detection_scores"], expected["detection_scores"], atol=1e-4)
    monkeypatch.setenv("INSTANCE_SEGMENTATION_CACHE", str(cache))
    assert load_model(SHAPES_MODEL, backend="openvino").backend == "openvino f32"
    assert child_runs == []  # converted and gated once


@needs_openvino
@needs_model_garden
@needs_shapes_model
def test_gate_fails_a_deliberately_perturbed_converted_part(converted_shapes):
    from object_detection_utils.models.backends.convert_child import gate_pictures
    from object_detection_utils.models.backends.openvino_engine import ExportRunner

    _, _, entry = converted_shapes
    runner = ExportRunner(entry, "f32")
    exact = runner.part_callables()
    pictures = gate_pictures("export")[:2]
    reference = load_model(SHAPES_MODEL).predict_batch
    tolerance = gate.TOLERANCES["f32"]
    assert gate.run_gate(reference, lambda images: runner(images, exact), pictures, tolerance).passed

    def shifted_masks(crops, classes):
        return {"masks": np.roll(exact["mask_head"](crops, classes)["masks"], 4, axis=3)}

    perturbed = gate.run_gate(reference, lambda images: runner(images, {**exact, "mask_head": shifted_masks}),
                              pictures, tolerance)
    assert not perturbed.passed and "mask IoU" in perturbed.reason


def _perturbed(entry: Path, part: str, spread: float):
    """`entry`'s converted `part` compiled with every weight tensor moved by Gaussian noise of `spread` times the
    tensor's own standard deviation (a deliberately damaged conversion)."""
    from object_detection_utils.models.backends.openvino_engine import compile_config, import_openvino, named_outputs

    ov = import_openvino()
    model = ov.Core().read_model(str(entry / f"{part}.xml"))
    rng = np.random.default_rng(0)
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.f32 and op.get_output_size() == 1:
            weights = op.get_data()
            if weights.size >= 64:  # weights, not shapes or scalars
                noisy = ov.op.Constant((weights + rng.normal(0, spread * weights.std(), weights.shape)).astype(np.float32))
                for target in list(op.output(0).get_target_inputs()):
                    target.replace_source_output(noisy.output(0))
    compiled = ov.Core().compile_model(model, "CPU", compile_config("f32"))
    return lambda *inputs: named_outputs(compiled, *inputs)


@needs_openvino
@needs_model_garden
@needs_shapes_model
def test_acceptance_accepts_bf16_on_the_trained_model_and_refuses_perturbed_weights(converted_shapes):
    from object_detection_utils.models.backends.acceptance import MIN_AGREEMENT, detections_of, judge
    from object_detection_utils.models.backends.convert_child import acceptance_pictures, side_by_side
    from object_detection_utils.models.maskrcnn_parts import BATCHED_NMS, MaskRcnnParts
    from object_detection_utils.models.backends.openvino_engine import GLUE_STEPS, ExportRunner

    _, _, entry = converted_shapes
    pictures = acceptance_pictures(SHAPES_MODEL, "export", None)
    assert len(pictures) == 40 and pictures[0].shape == (128, 128, 3)  # the model's 3 examples, 37 generated
    pictures = pictures[:20]  # half of them, for the test's time: enough instances to judge
    reference = load_model(SHAPES_MODEL, warm_up=False).predict_batch
    bf16 = ExportRunner(entry, "bf16")
    # with the glue a bf16 conversion writes: batched NMS (openvino_engine.glue_choice)
    steps = MaskRcnnParts.from_export(SHAPES_MODEL, BATCHED_NMS).functions()
    bf16.steps = {name: steps[name] for name in GLUE_STEPS}
    (truth, found), _ = side_by_side(reference, bf16, pictures)
    verdict = judge(truth, found)
    assert verdict.passed and verdict.reference_instances >= 50 and verdict.agreement_mask_ap >= MIN_AGREEMENT
    f32 = ExportRunner(entry, "f32")
    damaged = {**f32.part_callables(), "dense": _perturbed(entry, "dense", 0.3)}
    found = [detections_of(f32(picture[None], damaged), picture.shape[:2]) for picture in pictures]
    refused = judge(truth, found)
    assert not refused.passed and refused.agreement_mask_ap < 0.9
    assert refused.reason == (f"agreement mask AP {refused.agreement_mask_ap:.4f} < 0.97 with f32 on 20 pictures "
                              f"({verdict.reference_instances} instances)")


@needs_openvino
@needs_model_garden
@needs_shapes_model
def test_masks_only_where_kept_leave_the_kept_instances_identical(converted_shapes, monkeypatch):
    from object_detection_utils import Segmenter
    from object_detection_utils.model_contract import KeptInstances
    from object_detection_utils.models.backends.openvino_engine import ExportRunner

    model, _, entry = converted_shapes
    assert model.masks_where_kept
    runner = ExportRunner(entry, "f32")
    parts = runner.part_callables()
    rows: list[int] = []

    def counted_mask_head(crops, classes):
        rows.append(len(crops))
        return parts["mask_head"](crops, classes)

    kept = KeptInstances(0.5, (1, 2))
    rng = np.random.default_rng(3)
    pictures = [random_shapes_picture(rng, (128, 128)).image for _ in range(6)]
    masked = {"all": 0, "kept": 0}
    for picture in pictures:
        everything = runner(picture[None], {**parts, "mask_head": counted_mask_head})
        masked["all"], rows[:] = masked["all"] + sum(rows), []
        only_kept = runner(picture[None], {**parts, "mask_head": counted_mask_head}, kept=kept)
        masked["kept"], rows[:] = masked["kept"] + sum(rows), []
        count = int(everything["num_detections"][0])
        keep = kept.keeps(everything["detection_scores"][0, :count], everything["detection_classes"][0, :count])
        for name, value in everything.items():
            if name != "detection_masks":
                np.testing.assert_array_equal(only_kept[name], value)
        masks, masks_kept = everything["detection_masks"][0, :count], only_kept["detection_masks"][0, :count]
        np.testing.assert_array_equal(masks_kept[keep], masks[keep])  # identical, bit for bit
        assert not masks_kept[~keep].any()
    # the mask head ran on the kept detections only
    assert masked == {"all": 31, "kept": 16}
    segmenter = Segmenter(model, classes=[1, 2], min_score=0.5)
    picture = pictures[1]
    found, all_classes = segmenter.segment(picture), Segmenter(model, min_score=0.5).segment(picture)
    assert found.same_as(all_classes.filter(class_ids=[1, 2]))


@needs_openvino
def test_nncf_telemetry_is_off(tmp_path):
    pytest.importorskip("nncf", reason="NNCF is not installed (pip install -e '.[openvino]')")
    code = """
import sys, json
from object_detection_utils.models.backends.int8 import import_nncf, nncf_telemetry_is_off
import_nncf()
print(json.dumps({"off": nncf_telemetry_is_off(), "pytest": "pytest" in sys.modules}))
"""
    # Outside pytest, as a user runs it: NNCF turns its telemetry off by itself when pytest is imported
    environment = {**os.environ, "HOME": str(tmp_path), "CI": "false"}
    environment.pop("NNCF_CI", None)
    environment.pop("NNCF_DEV", None)
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=environment,
                            cwd=Path(__file__).resolve().parents[2], timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"off": True, "pytest": False}
    assert not (tmp_path / "intel").exists()  # no consent file, no client id
