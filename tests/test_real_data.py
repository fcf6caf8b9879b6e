"""Real pictures and, when one exists, a real trained model from ../shared."""

from __future__ import annotations

import re

import numpy as np
import pytest

import instance_segmentation
from object_detection_utils import load_model, read_image, run_inference_for_single_image


def _real_pictures(shared_data):
    pictures = sorted((shared_data / "coco" / "val2017").glob("*.jpg")) + sorted((shared_data / "photos").glob("*.jpg"))
    assert len(pictures) >= 80
    return pictures


def test_api_over_every_real_picture(shared_data, tiny_frozen_dir):
    model = load_model(tiny_frozen_dir)
    for path in _real_pictures(shared_data):
        image = read_image(path)
        detections = run_inference_for_single_image(model, image)
        assert detections.masks.shape == (len(detections), *image.shape[:2]), path
        assert detections.masks.any(axis=(1, 2)).all(), path


def test_cli_over_every_real_picture(shared_data, tiny_saved_dir, tmp_path, capsys):
    for path in _real_pictures(shared_data):
        output = tmp_path / path.name
        assert instance_segmentation.main(["-i", str(path), "--model", str(tiny_saved_dir), "-o", str(output),
                                           "--no-display"]) == 0
        assert read_image(output).shape == read_image(path).shape, path
    assert capsys.readouterr().out.count("\tperson\t0.95\t") == len(_real_pictures(shared_data))


def test_real_trained_model(trained_model_dir, shared_data):
    """A real model's README lists what it finds as lines `expect: <picture> <class> ...`.

    The picture path is relative to the model's folder, or else to ../shared/data.
    """
    model_dir = trained_model_dir
    readme = model_dir / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    expectations = re.findall(r"^expect:\s*(\S+)\s+(.+)$", text, re.MULTILINE)
    if not expectations:
        pytest.skip(f"{readme} has no 'expect: <picture> <class> ...' lines to check")
    model = load_model(model_dir)
    for picture, classes in expectations:
        image = read_image(model_dir / picture if (model_dir / picture).is_file() else shared_data / picture)
        detections = run_inference_for_single_image(model, image)
        assert detections.masks is None or detections.masks.shape[1:] == image.shape[:2]
        found = set(detections.class_names)
        for name in classes.split():
            assert name in found, f"{model_dir.name} should find {name} in {picture}; found {sorted(found)}"
            assert np.any(detections.scores[[n == name for n in detections.class_names]] >= 0.5)
