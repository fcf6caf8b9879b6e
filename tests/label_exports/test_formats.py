"""Exports in each tool's own shape, read back by our readers (and Label Studio's brush RLE by its converter).

One 20 x 16 picture, three instances: a square "cell" with a hole (score 0.9), a "bead" of two parts (0.75) and
a one-pixel "bead" (0.5); and a "cell" whose mask is empty (0.3), which no format writes. Exact file contents are
checked where the format pins them down.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np
import pytest

from object_detection_utils.box_masks import BoxMasks
from object_detection_utils.detections import Detections
from object_detection_utils.io.images import write_image
from object_detection_utils.label_exports import (
    FORMATS,
    SHAPES,
    ExportOptions,
    LabelExportError,
    LabelledPicture,
    write_labels,
)
from object_detection_utils.masks import masks_to_boxes
from object_detection_utils.training.labels.round_trip import read_detections

H, W = 16, 20
CATEGORIES = [{"id": 1, "name": "cell"}, {"id": 3, "name": "bead"}]  # id 2 unused: ids are kept, gaps too


def masks() -> np.ndarray:
    out = np.zeros((3, H, W), bool)
    out[0, 2:10, 2:10] = True
    out[0, 4:7, 5:7] = False
    out[1, 12:14, 3:6] = True
    out[1, 11:15, 14:17] = True
    out[2, 1, 18] = True
    return out


@pytest.fixture()
def picture(tmp_path) -> LabelledPicture:
    source = tmp_path / "pictures" / "a.png"
    write_image(source, np.full((H, W, 3), 70, np.uint8))
    m = masks()
    m = np.concatenate([m, np.zeros((1, H, W), bool)])
    boxes = np.concatenate([masks_to_boxes(m[:3]), [[4, 4, 8, 8]]]).astype(np.float32)
    # compact masks, as models and tiles give them: no export may make the full-picture array (see the test below)
    detections = Detections(boxes, np.array([1, 3, 3, 1], np.int32), ("cell", "bead", "bead", "cell"),
                            np.array([0.9, 0.75, 0.5, 0.3], np.float32), BoxMasks.from_dense(m), (H, W))
    return LabelledPicture("a.png", source, detections)


def exported(fmt: str, folder: Path) -> Path:
    return folder / "tasks.json" if fmt == "label-studio" else folder


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_the_same_pixels_classes_and_scores(fmt, shapes, picture, tmp_path):
    out = tmp_path / "out"
    write_labels(fmt, out, [picture], CATEGORIES, ExportOptions(shapes=shapes))
    images = None if fmt == "yolo" else picture.source.parent
    # written from the compact masks: 2,000 instances of a tiled 10,000 px picture would make 200 GB dense
    assert "_dense_masks" not in picture.detections.__dict__
    back = read_detections(exported(fmt, out), fmt, images, CATEGORIES)["a.png"]
    assert np.array_equal(back.masks, masks())
    assert back.class_names == ("cell", "bead", "bead") and back.class_ids.tolist() == [1, 3, 3]
    if fmt == "yolo":
        assert np.isnan(back.scores).all()  # YOLO labels have no place for a score
    else:
        assert back.scores.tolist() == pytest.approx([0.9, 0.75, 0.5])


def test_label_studio_brush_is_decoded_by_label_studio_converter(picture, tmp_path):
    brush = pytest.importorskip("label_studio_converter.brush", reason="pip install label-studio-converter")
    write_labels("label-studio", tmp_path, [picture], CATEGORIES, ExportOptions(model_version="shapes-r18"))
    (task,) = json.loads((tmp_path / "tasks.json").read_text())
    assert task["data"] == {"image": "/data/local-files/?d=a.png"}
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "shapes-r18" and prediction["score"] == pytest.approx(0.71667)
    for result, mask in zip(prediction["result"], masks()):
        assert result["type"] == "brushlabels" and result["value"]["format"] == "rle"
        assert (result["original_width"], result["original_height"], result["from_name"], result["to_name"]) == (
            W, H, "label", "image")
        rgba = brush.decode_rle(result["value"]["rle"]).reshape(H, W, 4)
        assert np.array_equal(rgba[:, :, 3] > 0, mask) and set(np.unique(rgba)) <= {0, 255}
        assert result["value"]["rle"] == brush.mask2rle(mask.astype(np.uint8) * 255)  # byte for byte


def test_label_studio_polygons_are_in_percent(picture, tmp_path):
    write_labels("label-studio", tmp_path, [picture], CATEGORIES, ExportOptions(shapes="polygons"))
    result = json.loads((tmp_path / "tasks.json").read_text())[0]["predictions"][0]["result"][2]
    assert result["type"] == "polygonlabels" and result["value"]["polygonlabels"] == ["bead"]
    assert sorted(map(tuple, result["value"]["points"])) == [(90, 6.25), (90, 12.5), (95, 6.25), (95, 12.5)]


def test_cvat_masks_are_box_local_and_polygons_grouped(picture, tmp_path):
    write_labels("cvat", tmp_path / "m", [picture], CATEGORIES)
    root = ElementTree.parse(tmp_path / "m" / "annotations.xml").getroot()
    assert [label.findtext("name") for label in root.iter("label")] == ["cell", "bead"]
    image = root.find("image")
    assert image.attrib == {"id": "0", "name": "a.png", "width": "20", "height": "16"}
    cell = image.find("mask")
    assert {k: cell.attrib[k] for k in ("label", "source", "left", "top", "width", "height")} == {
        "label": "cell", "source": "auto", "left": "2", "top": "2", "width": "8", "height": "8"}
    assert cell.attrib["rle"] == "0, 19, 2, 6, 2, 6, 2, 27"  # 8x8 box: 0 clear first, 19 set, the hole's rows...
    assert cell.find("attribute").attrib == {"name": "score"} and cell.find("attribute").text == "0.9"

    write_labels("cvat", tmp_path / "p", [picture], CATEGORIES, ExportOptions(shapes="polygons"))
    polygons = ElementTree.parse(tmp_path / "p" / "annotations.xml").getroot().find("image").findall("polygon")
    assert [(p.attrib["label"], p.attrib.get("group_id")) for p in polygons] == [
        ("cell", None), ("bead", "2"), ("bead", "2"), ("bead", None)]
    assert polygons[3].attrib["points"] in ("18,1;18,2;19,2;19,1", "18,1;19,1;19,2;18,2")


def test_labelme_files_reference_the_picture_and_hold_png_masks(picture, tmp_path):
    out = tmp_path / "labelme"
    write_labels("labelme", out, [picture], CATEGORIES)
    document = json.loads((out / "a.json").read_text())
    assert (document["imagePath"], document["imageData"], document["imageWidth"], document["imageHeight"]) == (
        "../pictures/a.png", None, W, H)
    bead = document["shapes"][1]
    assert (bead["label"], bead["shape_type"], bead["points"], bead["score"]) == (
        "bead", "mask", [[3, 11], [16, 14]], 0.75)
    png = cv2.imdecode(np.frombuffer(base64.b64decode(bead["mask"]), np.uint8), cv2.IMREAD_GRAYSCALE) > 0
    assert np.array_equal(png, masks()[1][11:15, 3:17])


def test_yolo_lines_are_normalised_and_the_classes_named(picture, tmp_path):
    write_labels("yolo", tmp_path, [picture], CATEGORIES)
    assert (tmp_path / "data.yaml").read_text() == (
        'path: .\ntrain: images\nval: images\nnames:\n  0: "cell"\n  1: "class_2"\n  2: "bead"\n')
    lines = (tmp_path / "labels" / "a.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["0", "2", "2"]
    assert sorted(zip(lines[2].split()[1::2], lines[2].split()[2::2])) == [
        ("0.9", "0.0625"), ("0.9", "0.125"), ("0.95", "0.0625"), ("0.95", "0.125")]
    assert (tmp_path / "images" / "a.png").read_bytes() == picture.source.read_bytes()


def test_an_unknown_format_or_an_unwritable_folder_is_one_line(picture, tmp_path):
    with pytest.raises(LabelExportError, match=r"^unknown label format 'voc' \(one of: label-studio, cvat, "):
        write_labels("voc", tmp_path, [picture], CATEGORIES)
    (tmp_path / "file").write_text("")
    with pytest.raises(LabelExportError, match=r"file/labels: cannot write labels there"):
        write_labels("coco", tmp_path / "file" / "labels", [picture], CATEGORIES)
