"""int8 by NNCF on our tiny trained export (the training tests' session fixture: this module runs in their
group, on the worker that trained it)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from object_detection_utils.shapes import random_shapes_picture

needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="OpenVINO is not installed (pip install -e '.[openvino]')")
needs_model_garden = pytest.mark.skipif(importlib.util.find_spec("official") is None,
                                        reason="Model Garden is not installed (the train extra)")


@needs_openvino
@needs_model_garden
def test_int8_quantizes_every_heavy_part_under_accuracy_control(tiny_training_run, tmp_path):
    pytest.importorskip("nncf", reason="NNCF is not installed (pip install -e '.[openvino]')")
    from object_detection_utils.models.backends import acceptance
    from object_detection_utils.models.backends.int8 import quantize_export
    from object_detection_utils.models.backends.openvino_engine import (
        BATCHED_GLUE,
        HEAVY_PARTS,
        META_FILE,
        ExportRunner,
        convert_export,
        import_openvino,
    )

    entry = tmp_path / "int8"
    entry.mkdir()
    convert_export(tiny_training_run["export"], entry, "int8")
    assert json.loads((entry / META_FILE).read_text())["glue"] == BATCHED_GLUE  # judged by accuracy, not parity
    f32 = ExportRunner(entry, "f32")
    rng = np.random.default_rng(5)
    pictures = [random_shapes_picture(rng, (64, 64)).image for _ in range(3)]
    expected = [f32(picture[None]) for picture in pictures]
    # the agreement metric itself: two steps trained find nothing, so there is nothing to judge int8 by
    assert quantize_export(entry, pictures) == {"quantized": {}, "skipped": "too few instances to control "
                                                "accuracy (0 < 20)"}
    scored: list[tuple[int, int]] = []

    def agreement(reference, candidate):  # the default metric, counted, and given: accuracy control runs
        scored.append((len(reference), len(candidate)))
        return acceptance.agreement(reference, candidate)[0] or 0.0

    report = quantize_export(entry, pictures, agreement)
    # two steps trained: no instance at all, so agreement is undefined (0) on both sides and nothing is reverted
    assert report == {"quantized": {part: {"agreement": 0.0, "seconds": report["quantized"][part]["seconds"]}
                                    for part in HEAVY_PARTS}}
    assert (3, 3) in scored and len(scored) >= 2 * len(HEAVY_PARTS)  # NNCF validated f32 and int8 of each part
    ov = import_openvino()
    for part in HEAVY_PARTS:
        kinds = {op.get_type_name() for op in ov.Core().read_model(str(entry / f"{part}.xml")).get_ops()}
        assert "FakeQuantize" in kinds, part
    int8 = ExportRunner(entry, "int8")
    assert int8.batched  # the three pictures in one pass, each part compiled for a batch of three
    together = int8(np.stack(pictures))
    assert {("dense", 3), ("box_head", 3)} <= set(int8.compiled)
    for index, (picture, outputs) in enumerate(zip(pictures, expected)):
        found = int8(picture[None])
        assert {name: value.shape for name, value in found.items()} == {n: v.shape for n, v in outputs.items()}
        np.testing.assert_allclose(found["detection_scores"], outputs["detection_scores"], atol=0.05)
        for name, value in found.items():
            np.testing.assert_allclose(together[name][index], value[0], atol=1e-4, err_msg=name)
