"""--export-labels on the folder command: the run's detections as pre-annotations, read back the same; bad
formats and folders refused in one line with exit code 2 before the model loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from object_detection_utils import Segmenter, load_model, read_image
from object_detection_utils.apps import folder
from object_detection_utils.apps.cli import run_main
from object_detection_utils.training.labels.round_trip import read_detections


@pytest.fixture()
def pictures(tmp_path):
    path = tmp_path / "pictures"
    path.mkdir()
    for name, value, (width, height) in (("a.png", 60, (64, 48)), ("b.png", 220, (70, 52))):
        Image.new("RGB", (width, height), (value,) * 3).save(path / name)
    return path


def test_the_folder_command_exports_label_studio_tasks_that_read_back(tiny_frozen_dir, pictures, tmp_path):
    out, labels = tmp_path / "out", tmp_path / "ls"
    code = folder.main(["-i", str(pictures), "-o", str(out), "--model", str(tiny_frozen_dir), "--no-progress",
                        "--no-overlay", "--export-labels", "label-studio", str(labels), "--export-shapes", "polygons",
                        "--label-studio-url", "/data/upload/1/{name}"])
    assert code == 0
    tasks = json.loads((labels / "tasks.json").read_text())
    assert [t["data"]["image"] for t in tasks] == ["/data/upload/1/a.png", "/data/upload/1/b.png"]
    assert tasks[0]["predictions"][0]["model_version"] == tiny_frozen_dir.name
    segmenter = Segmenter(load_model(tiny_frozen_dir))
    back = read_detections(labels / "tasks.json", "label-studio", pictures)
    for name in ("a.png", "b.png"):
        expected = segmenter(read_image(pictures / name))
        assert back[name].class_names == expected.class_names
        assert np.array_equal(back[name].masks, expected.masks)
        assert back[name].scores.tolist() == pytest.approx(np.round(expected.scores, 5).tolist())


@pytest.mark.parametrize("args, message", [
    (["voc", "{tmp}/labels"], "error: unknown label format 'voc' (one of: label-studio, cvat, labelme, yolo, coco)"),
    (["coco", "{tmp}/file/labels"], "error: {tmp}/file/labels: cannot write labels there (Not a directory)"),
])
def test_a_bad_format_or_folder_is_one_line_and_exit_2(args, message, pictures, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    argv = ["-i", str(pictures), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "never-loaded"),
            "--export-labels", *(a.format(tmp=tmp_path) for a in args)]
    assert run_main(folder.main, argv) == 2
    assert capsys.readouterr().err.splitlines() == [message.format(tmp=tmp_path)]


def test_the_journal_records_come_back_as_compact_masks():
    """The export reads each picture's detections back from the run's journal: decoded one mask at a time into
    box-local crops (a tiled 10,000 px picture of 2,000 instances would be 200 GB of full-picture masks)."""
    from object_detection_utils.apps.batch.run_files import record_detections
    from object_detection_utils.coco_format import encode_mask
    from object_detection_utils.label_map import LabelMap

    masks = np.zeros((2, 40, 50), bool)
    masks[0, 5:9, 10:20] = True
    masks[1, 30:40, 0:3] = True
    entries = [{"category_id": c, "score": s, "bbox": b, "segmentation": encode_mask(m)}
               for c, s, b, m in zip((1, 2), (0.9, 0.6), ([10, 5, 10, 4], [0, 30, 3, 10]), masks)]
    found = record_detections({"coco": entries, "height": 40, "width": 50}, LabelMap({1: "a", 2: "b"}))
    assert [crop.shape for crop in found.box_masks.crops] == [(4, 10), (10, 3)]
    assert "_dense_masks" not in found.__dict__  # no full-picture array was made
    np.testing.assert_array_equal(found.masks, masks)
    assert found.class_names == ("a", "b") and found.boxes.tolist() == [[10, 5, 20, 9], [0, 30, 3, 40]]
