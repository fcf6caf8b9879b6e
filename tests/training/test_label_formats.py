"""Labels as labelme, CVAT, Label Studio and YOLO write them -> one COCO dataset; bad labels named and skipped.

The files are written as the tools write them (field names, nesting, number formats): labelme 5's JSON, CVAT's
XMLGenerator output and its datumaro COCO export, Label Studio's JSON export (brush RLE encoded as
label-studio-converter's `encode_rle` does) and its COCO export, Ultralytics YOLO-seg folders. Pictures are
40 x 30; a polygon square from (x1, y1) to (x2, y2) covers the pixels x1..x2-1, y1..y2-1 (pycocotools' rule).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from object_detection_utils.errors import DatasetError
from object_detection_utils.evaluation import ground_truth_from_dict
from object_detection_utils.io.images import write_image
from object_detection_utils.training.labels import detect_format, load_labels
from object_detection_utils.training.labels.label_studio import decode_brush_rle

W, H = 40, 30


def picture(path: Path, width: int = W, height: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.full((height, width, 3), 90, np.uint8))
    return path


def box_mask(x1: int, y1: int, x2: int, y2: int, width: int = W, height: int = H) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def masks_of(labels) -> dict[tuple[str, str], list[np.ndarray]]:
    """{(file_name, class name): [mask, ...]} of a loaded dataset, through pycocotools as training reads it."""
    coco = ground_truth_from_dict(labels.dataset)
    names = {c["id"]: c["name"] for c in labels.dataset["categories"]}
    found: dict[tuple[str, str], list[np.ndarray]] = {}
    for annotation in labels.dataset["annotations"]:
        key = (coco.imgs[annotation["image_id"]]["file_name"], names[annotation["category_id"]])
        found.setdefault(key, []).append(coco.annToMask(annotation).astype(bool))
    return found


def assert_boxes_match_masks(labels) -> None:
    coco = ground_truth_from_dict(labels.dataset)
    for annotation in labels.dataset["annotations"]:
        mask = coco.annToMask(annotation).astype(bool)
        ys, xs = np.nonzero(mask)
        assert annotation["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
        assert annotation["area"] == mask.sum()


# --- labelme ------------------------------------------------------------------------------------------------

def labelme_shape(label, points, shape_type="polygon", group_id=None, **extra):
    return {"label": label, "points": [[float(x), float(y)] for x, y in points], "group_id": group_id,
            "description": "", "shape_type": shape_type, "flags": {}, "mask": None, **extra}


def labelme_file(path: Path, image_path: str, shapes, width=W, height=H, image_data=None):
    document = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path,
                "imageData": image_data, "imageHeight": height, "imageWidth": width}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False))  # labelme's LabelFile.save


def test_labelme_folder(tmp_path):
    root = tmp_path / "labelme"
    picture(root / "a.png")
    picture(tmp_path / "pictures" / "b.png")
    mask_png = cv2.imencode(".png", box_mask(0, 0, 3, 2, 4, 3).astype(np.uint8))[1].tobytes()
    labelme_file(root / "a.json", "a.png", [
        labelme_shape("cell", [(4, 4), (14, 4), (14, 12), (4, 12)]),
        labelme_shape("bead", [(30, 15), (20, 5)], "rectangle"),
        labelme_shape("cell", [(2, 20), (6, 20), (6, 24), (2, 24)], group_id=1),
        labelme_shape("cell", [(8, 20), (10, 20), (10, 24), (8, 24)], group_id=1),
        labelme_shape("cell", [(1, 1), (2, 2)]),  # shapes[4]: 2 points
        labelme_shape("cell", [(1, 1), (9, 9)], "line"),  # shapes[5]: not an area
        labelme_shape("bead", [(35, 2), (38, 2), (38, 50), (35, 50)]),  # shapes[6]: below the picture
        labelme_shape("bead", [(30, 24), (33, 26)], "mask", mask=base64.b64encode(mask_png).decode()),
    ], image_data=base64.b64encode((root / "a.png").read_bytes()).decode())
    labelme_file(root / "sub" / "b.json", "..\\..\\pictures\\b.png",  # Windows labelme writes backslashes
                 [labelme_shape("bead", [(10, 10), (10, 20)], "circle")])
    labelme_file(root / "c.json", "missing.png", [labelme_shape("cell", [(1, 1), (5, 1), (5, 5)])])
    picture(root / "d.png")
    labelme_file(root / "d.json", "d.png", [], width=41)  # wrong picture size
    (root / "empty.json").write_text("")
    (root / "broken.json").write_text('{"shapes": [\n  {"label": ')

    assert detect_format(root) == "labelme"
    labels = load_labels(root)
    assert labels.images == root
    assert labels.dataset["categories"] == [{"id": 1, "name": "bead"}, {"id": 2, "name": "cell"}]
    assert [i["file_name"] for i in labels.dataset["images"]] == ["a.png", "../pictures/b.png"]
    masks = masks_of(labels)
    cells = masks[("a.png", "cell")]
    assert len(cells) == 2
    assert np.array_equal(cells[0], box_mask(4, 4, 14, 12)) and cells[0].sum() == 80
    assert np.array_equal(cells[1], box_mask(2, 20, 6, 24) | box_mask(8, 20, 10, 24))  # one instance: group 1
    beads = masks[("a.png", "bead")]
    assert np.array_equal(beads[0], box_mask(20, 5, 30, 15))
    assert np.array_equal(beads[1], box_mask(30, 24, 33, 26))  # labelme mask: PNG over its two points' box
    circle = masks[("../pictures/b.png", "bead")][0]
    assert circle[10, 10] and circle[10, 19] and not circle[10, 21] and not circle[0, 0]
    assert circle.sum() == 300  # labelme2coco's 12-gon for a 10 px radius: area 3 r^2
    assert_boxes_match_masks(labels)
    assert sorted(labels.problems) == sorted([
        f"{root / 'a.json'}: shapes[4]: polygon with 2 points (needs 3 or more): skipped",
        f"{root / 'a.json'}: shapes[5]: a 'line' shape is not an area: skipped",
        f"{root / 'a.json'}: shapes[6]: points reach (35.0, 2.0)-(38.0, 50.0), outside the 40x30 picture: skipped",
        f"{root / 'c.json'}: picture {root / 'missing.png'} is missing: skipped",
        f"{root / 'd.json'}: the labels are for a 41x30 picture but {root / 'd.png'} is 40x30: skipped",
        f"{root / 'empty.json'}: empty file: skipped",
        f"{root / 'broken.json'}: line 2: not valid JSON (Expecting value): skipped",
    ])


def test_validation_labels_use_the_training_classes(tmp_path):
    picture(tmp_path / "a.png")
    labelme_file(tmp_path / "a.json", "a.png", [labelme_shape("dog", [(1, 1), (5, 1), (5, 5)]),
                                                labelme_shape("cell", [(1, 1), (5, 1), (5, 5)])])
    labels = load_labels(tmp_path, "labelme", categories=[{"id": 1, "name": "bead"}, {"id": 2, "name": "cell"}])
    assert labels.dataset["categories"] == [{"id": 1, "name": "bead"}, {"id": 2, "name": "cell"}]
    assert [a["category_id"] for a in labels.dataset["annotations"]] == [2]
    assert labels.problems == [f"{tmp_path / 'a.json'}: shapes[0]: unknown class 'dog' (known: bead, cell): skipped"]


# --- CVAT for images 1.1 ------------------------------------------------------------------------------------

def cvat_rle(mask: np.ndarray) -> str:
    """CVAT's mask RLE (MaskConverter.rle): run lengths of the row-major box, 0s first; dumped as `rle="3, 5, 7"`."""
    flat = mask.reshape(-1)
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    runs = np.diff(np.concatenate([[-1], changes, [len(flat) - 1]])).tolist()
    return ", ".join(str(v) for v in ([0] if flat[0] else []) + runs)


CVAT_META = """  <meta>
    <task>
      <id>7</id>
      <name>cells</name>
      <size>2</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <bugtracker></bugtracker>
      <created>2024-05-02 09:12:44.120315+00:00</created>
      <updated>2024-05-02 09:30:01.874405+00:00</updated>
      <subset>default</subset>
      <start_frame>0</start_frame>
      <stop_frame>1</stop_frame>
      <frame_filter></frame_filter>
      <segments>
        <segment>
          <id>9</id>
          <start>0</start>
          <stop>1</stop>
          <url>http://localhost:8080/api/jobs/9</url>
        </segment>
      </segments>
      <owner>
        <username>admin</username>
        <email></email>
      </owner>
      <assignee></assignee>
      <labels>
        <label>
          <name>cell</name>
          <color>#fa3253</color>
          <type>any</type>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>bead</name>
          <color>#33ddff</color>
          <type>polygon</type>
          <attributes>
          </attributes>
        </label>
      </labels>
    </task>
    <dumped>2024-05-02 09:31:17.532964+00:00</dumped>
  </meta>"""


def cvat_xml(images: str) -> str:
    header = '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
    return f"{header}{CVAT_META}\n{images}</annotations>\n"


def test_cvat_for_images_xml(tmp_path):
    root = tmp_path / "cvat"
    picture(root / "images" / "a.png")
    picture(root / "images" / "b.png")
    blob = box_mask(0, 0, 5, 4, 5, 4)
    blob[0, 0] = blob[3, 4] = False
    images = (
        '  <image id="0" name="a.png" width="40" height="30">\n'
        '    <polygon label="cell" source="manual" occluded="0" points="4.00,4.00;14.00,4.00;14.00,12.00;4.00,12.00" z_order="0">\n'
        '    </polygon>\n'
        '    <box label="bead" source="manual" occluded="0" xtl="20.00" ytl="5.00" xbr="30.00" ybr="15.00" z_order="0">\n'
        '      <attribute name="size">big</attribute>\n'
        '    </box>\n'
        f'    <mask label="cell" source="manual" occluded="0" rle="{cvat_rle(blob)}" left="2" top="18" width="5" height="4" z_order="0">\n'
        '    </mask>\n'
        '    <polygon label="bead" source="manual" occluded="0" points="30.00,20.00;34.00,20.00;34.00,24.00;30.00,24.00" z_order="0" group_id="3">\n'
        '    </polygon>\n'
        '    <box label="bead" source="manual" occluded="0" xtl="29.00" ytl="19.00" xbr="35.00" ybr="25.00" z_order="0" group_id="3">\n'
        '    </box>\n'
        '    <polygon label="cell" source="manual" occluded="0" points="1.00,1.00;3.00,3.00" z_order="0">\n'
        '    </polygon>\n'
        '    <polygon label="dog" source="manual" occluded="0" points="1.00,1.00;5.00,1.00;5.00,5.00" z_order="0">\n'
        '    </polygon>\n'
        '    <polyline label="cell" source="manual" occluded="0" points="1.00,1.00;5.00,5.00" z_order="0">\n'
        '    </polyline>\n'
        '  </image>\n'
        '  <image id="1" name="b.png" width="40" height="30">\n'
        '    <box label="cell" source="manual" occluded="0" xtl="10.00" ytl="10.00" xbr="20.00" ybr="14.00" z_order="0" rotation="90.00">\n'
        '    </box>\n'
        '  </image>\n'
        '  <image id="2" name="gone.png" width="40" height="30">\n'
        '  </image>\n')
    (root / "annotations.xml").write_text(cvat_xml(images))
    xml = root / "annotations.xml"
    lines = xml.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, start=1) if text in line)

    assert detect_format(root) == detect_format(xml) == "cvat"
    labels = load_labels(root)
    assert labels.images == root / "images"
    assert labels.dataset["categories"] == [{"id": 1, "name": "cell"}, {"id": 2, "name": "bead"}]
    masks = masks_of(labels)
    cell_a = masks[("a.png", "cell")]
    assert np.array_equal(cell_a[0], box_mask(4, 4, 14, 12))
    expected_blob = np.zeros((H, W), bool)
    expected_blob[18:22, 2:7] = blob
    assert np.array_equal(cell_a[1], expected_blob) and cell_a[1].sum() == 18
    bead_a = masks[("a.png", "bead")]
    assert np.array_equal(bead_a[0], box_mask(20, 5, 30, 15))
    assert np.array_equal(bead_a[1], box_mask(30, 20, 34, 24))  # the group's box gives way to its polygon
    assert np.array_equal(masks[("b.png", "cell")][0], box_mask(13, 7, 17, 17))  # turned 90 degrees about its centre
    assert_boxes_match_masks(labels)
    assert labels.problems == [
        f"{xml}: line {line_of('1.00,1.00;3.00,3.00')}: polygon with 2 points (needs 3 or more): skipped",
        f"{xml}: line {line_of('dog')}: unknown class 'dog' (known: bead, cell): skipped",
        f"{xml}: line {line_of('gone.png')}: picture {root / 'images' / 'gone.png'} is missing: skipped",
        f"{xml}: not areas, not read: 1 polyline",
    ]


def test_cvat_bad_xml_is_one_error(tmp_path):
    xml = '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <image id="0"\n'
    (tmp_path / "annotations.xml").write_text(xml)
    with pytest.raises(DatasetError, match=r"annotations.xml: line 3: not valid XML \(unclosed token\)"):
        load_labels(tmp_path)


def test_cvat_coco_export(tmp_path):
    """CVAT's "COCO 1.0": annotations/instances_default.json beside images/default/, masks as crowd RLE."""
    root = tmp_path / "coco-export"
    picture(root / "images" / "default" / "a.png")
    blob = box_mask(10, 10, 16, 13)
    from pycocotools import mask as mask_utils

    compressed = mask_utils.encode(np.asfortranarray(blob.astype(np.uint8)))
    counts = []  # uncompressed, column-major, as datumaro writes `list(int(c) for c in mask["counts"])`
    flat = blob.reshape(-1, order="F")
    value, run = False, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    assert mask_utils.decode(mask_utils.frPyObjects({"counts": counts, "size": [H, W]}, H, W)).sum() == \
        mask_utils.area(compressed)
    document = {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
        "categories": [{"id": 1, "name": "cell", "supercategory": ""}, {"id": 2, "name": "bead", "supercategory": ""}],
        "images": [{"id": 1, "width": 40, "height": 30, "file_name": "a.png", "license": 0, "flickr_url": "",
                    "coco_url": "", "date_captured": 0}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[4.0, 4.0, 14.0, 4.0, 14.0, 12.0, 4.0, 12.0]],
             "area": 80.0, "bbox": [4.0, 4.0, 10.0, 8.0], "iscrowd": 0,
             "attributes": {"occluded": False, "rotation": 0.0}},
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": {"counts": counts, "size": [30, 40]},
             "area": 18.0, "bbox": [10.0, 10.0, 6.0, 3.0], "iscrowd": 1, "attributes": {"occluded": False}},
            {"id": 3, "image_id": 1, "category_id": 2, "segmentation": [], "area": 100.0,
             "bbox": [20.0, 5.0, 10.0, 10.0], "iscrowd": 0, "attributes": {"occluded": False, "rotation": 0.0}},
            {"id": 4, "image_id": 1, "category_id": 5, "segmentation": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]],
             "area": 8.0, "bbox": [1.0, 1.0, 4.0, 4.0], "iscrowd": 0, "attributes": {"occluded": False}},
            {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[1.0, 1.0, 5.0, 1.0]],
             "area": 0.0, "bbox": [1.0, 1.0, 4.0, 0.0], "iscrowd": 0, "attributes": {"occluded": False}},
        ]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_default.json").write_text(json.dumps(document))
    file = root / "annotations" / "instances_default.json"

    assert detect_format(root) == detect_format(file) == "coco"
    labels = load_labels(root)
    assert labels.images == root / "images" / "default"
    assert labels.dataset["categories"] == [{"id": 1, "name": "cell"}, {"id": 2, "name": "bead"}]
    assert [a["iscrowd"] for a in labels.dataset["annotations"]] == [0, 0, 0]  # CVAT's mask is no crowd
    masks = masks_of(labels)
    assert np.array_equal(masks[("a.png", "cell")][0], box_mask(4, 4, 14, 12))
    assert np.array_equal(masks[("a.png", "bead")][0], blob)
    assert np.array_equal(masks[("a.png", "bead")][1], box_mask(20, 5, 30, 15))  # box only: its rectangle
    assert_boxes_match_masks(labels)
    assert labels.problems == [
        f"{file}: annotations[3]: unknown class (category_id 5 is not in categories): skipped",
        f"{file}: annotations[4]: polygon with 2 points (needs 3 or more): skipped",
    ]


# --- Label Studio --------------------------------------------------------------------------------------------

def ls_encode_rle(values: np.ndarray) -> list[int]:
    """label-studio-converter's `brush.encode_rle` (word size 8, run-length sizes 3, 4, 8, 16): its bit stream."""
    bits = f"{len(values):032b}" + f"{8 - 1:05b}" + "".join(f"{size - 1:04b}" for size in (3, 4, 8, 16))
    changes = np.flatnonzero(values[1:] != values[:-1])
    ends = np.concatenate([changes, [len(values) - 1]])
    starts = np.concatenate([[0], changes + 1])
    for start, end in zip(starts, ends):
        length, value = int(end - start + 1), int(values[start])
        if length == 1:
            bits += "0" + "00" + "000" + f"{value:08b}"
        elif length <= 8:
            bits += "1" + "00" + f"{length - 1:03b}" + f"{value:08b}"
        elif length <= 16:
            bits += "1" + "01" + f"{length - 1:04b}" + f"{value:08b}"
        elif length <= 256:
            bits += "1" + "10" + f"{length - 1:08b}" + f"{value:08b}"
        else:
            while length > 2 ** 16:
                bits += "1" + "11" + f"{2 ** 16 - 1:016b}" + f"{value:08b}"
                length -= 2 ** 16
            bits += "1" + "11" + f"{length - 1:016b}" + f"{value:08b}"
    bits += "0" * (8 - len(bits) % 8)
    return [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]


def ls_region(kind: str, value: dict, region_id: str, width=W, height=H) -> dict:
    return {"original_width": width, "original_height": height, "image_rotation": 0, "value": value,
            "id": region_id, "from_name": "label", "to_name": "image", "type": kind, "origin": "manual"}


def ls_task(task_id: int, image: str, results: list[dict] | None) -> dict:
    annotations = [] if results is None else [{
        "id": task_id, "completed_by": 1, "result": results, "was_cancelled": False, "ground_truth": False,
        "created_at": "2024-05-02T09:12:44.120315Z", "updated_at": "2024-05-02T09:12:44.120315Z",
        "draft_created_at": None, "lead_time": 12.5, "prediction": {}, "result_count": 0, "unique_id": "5c0e",
        "import_id": None, "last_action": None, "task": task_id, "project": 1, "updated_by": 1,
        "parent_prediction": None, "parent_annotation": None, "last_created_by": None}]
    return {"id": task_id, "annotations": annotations, "file_upload": image.rsplit("/", 1)[1], "drafts": [],
            "predictions": [], "data": {"image": image}, "meta": {}, "created_at": "2024-05-02T09:10:00.000000Z",
            "updated_at": "2024-05-02T09:12:44.120315Z", "inner_id": task_id, "total_annotations": len(annotations),
            "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
            "last_comment_updated_at": None, "project": 1, "updated_by": 1, "comment_authors": []}


def test_label_studio_brush_rle_round_trip():
    rng = np.random.default_rng(0)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:25, 3:30] = 255
    mask[rng.random(mask.shape) < 0.05] = 255
    encoded = ls_encode_rle(np.repeat(mask.ravel(), 4))  # brush.mask2rle: every pixel as 4 RGBA values
    assert np.array_equal(decode_brush_rle(encoded, 40, 30), mask > 0)
    with pytest.raises(ValueError, match="holds 4800 values, not 4 x 41x30"):
        decode_brush_rle(encoded, 41, 30)


def test_label_studio_json_export(tmp_path):
    picture(tmp_path / "images" / "a.png")
    picture(tmp_path / "images" / "b.png")
    brush = np.zeros((H, W), np.uint8)
    brush[20:26, 5:12] = 255
    square = [[x / W * 100, y / H * 100] for x, y in [(4, 4), (14, 4), (14, 12), (4, 12)]]
    tasks = [
        ls_task(1, "/data/upload/1/0a1b2c3d-a.png", [
            ls_region("polygonlabels", {"points": square, "closed": True, "polygonlabels": ["cell"]}, "r1"),
            ls_region("brushlabels", {"format": "rle", "rle": ls_encode_rle(np.repeat(brush.ravel(), 4)),
                                      "brushlabels": ["bead"]}, "r2"),
            ls_region("rectanglelabels", {"x": 50.0, "y": 100 / 6, "width": 25.0, "height": 100 / 3,
                                          "rotation": 0, "rectanglelabels": ["bead"]}, "r3"),
            ls_region("polygonlabels", {"points": square[:2], "closed": True, "polygonlabels": ["cell"]}, "r4"),
            ls_region("keypointlabels", {"x": 5.0, "y": 5.0, "width": 0.5, "keypointlabels": ["cell"]}, "r5"),
            {"id": "r6", "type": "choices", "value": {"choices": ["sharp"]}, "from_name": "quality",
             "to_name": "image", "origin": "manual"},
        ]),
        ls_task(2, "/data/local-files/?d=scans%2Fb.png", [
            ls_region("rectanglelabels", {"x": 25.0, "y": 100 / 3, "width": 25.0, "height": 100 / 7.5,
                                          "rotation": 90, "rectanglelabels": ["cell"]}, "r1")]),
        ls_task(3, "/data/upload/1/9f8e7d6c-c.png", [
            ls_region("polygonlabels", {"points": square, "polygonlabels": ["cell"]}, "r1")]),
        ls_task(4, "/data/upload/1/11111111-a.png", None),
    ]
    export = tmp_path / "project-1-at-2024-05-02-09-31-5c0e1c52.json"
    export.write_text(json.dumps(tasks, indent=2))  # Label Studio's JSON export

    assert detect_format(export) == "label-studio"
    labels = load_labels(export)
    assert labels.images == tmp_path / "images"
    assert [i["file_name"] for i in labels.dataset["images"]] == ["a.png", "b.png"]
    assert labels.dataset["categories"] == [{"id": 1, "name": "bead"}, {"id": 2, "name": "cell"}]
    masks = masks_of(labels)
    assert np.array_equal(masks[("a.png", "cell")][0], box_mask(4, 4, 14, 12))
    assert np.array_equal(masks[("a.png", "bead")][0], brush > 0)
    assert np.array_equal(masks[("a.png", "bead")][1], box_mask(20, 5, 30, 15))
    # 10 x 4 box at (10, 10) turned 90 degrees clockwise about its top-left corner: x 6..10, y 10..20
    assert np.array_equal(masks[("b.png", "cell")][0], box_mask(6, 10, 10, 20))
    assert_boxes_match_masks(labels)
    assert labels.problems == [
        f"{export}: [0].annotations[0].result[3]: polygon with 2 points (needs 3 or more): skipped",
        f"{export}: [0].annotations[0].result[4]: a 'keypointlabels' region is not an area: skipped",
        f"{export}: [2]: picture {tmp_path / 'images' / '9f8e7d6c-c.png'} is missing: skipped",
        f"{export}: [3]: 11111111-a.png has no annotation (or only cancelled ones) and no prediction: skipped",
    ]


def test_label_studio_coco_export(tmp_path):
    """Label Studio's COCO export: result.json, file names "images/...", category and image ids from 0."""
    picture(tmp_path / "images" / "0a1b2c3d-a.png")
    document = {
        "images": [{"width": 40, "height": 30, "id": 0, "file_name": "images/0a1b2c3d-a.png"}],
        "categories": [{"id": 0, "name": "bead"}, {"id": 1, "name": "cell"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 1, "segmentation": [[4.0, 4.0, 14.0, 4.0, 14.0, 12.0, 4.0, 12.0]],
             "bbox": [4.0, 4.0, 10.0, 8.0], "ignore": 0, "iscrowd": 0, "area": 80.0},
            {"id": 1, "image_id": 0, "category_id": 0, "segmentation": [], "bbox": [20.0, 5.0, 10.0, 10.0],
             "ignore": 0, "iscrowd": 0, "area": 100.0}],
        "info": {"year": 2024, "version": "1.0", "description": "", "contributor": "Label Studio", "url": "",
                 "date_created": "2024-05-02 09:31:17.532964"}}
    (tmp_path / "result.json").write_text(json.dumps(document, indent=2))

    labels = load_labels(tmp_path)
    assert labels.images == tmp_path and labels.problems == []
    assert labels.dataset["categories"] == [{"id": 1, "name": "bead"}, {"id": 2, "name": "cell"}]
    assert labels.dataset["images"] == [{"id": 1, "file_name": "images/0a1b2c3d-a.png", "width": 40, "height": 30}]
    masks = masks_of(labels)
    assert np.array_equal(masks[("images/0a1b2c3d-a.png", "cell")][0], box_mask(4, 4, 14, 12))
    assert np.array_equal(masks[("images/0a1b2c3d-a.png", "bead")][0], box_mask(20, 5, 30, 15))


# --- YOLO segmentation -------------------------------------------------------------------------------------

def yolo_line(index: int, points) -> str:
    return f"{index} " + " ".join(f"{x / W:.6f} {y / H:.6f}" for x, y in points)  # Ultralytics writes 6 digits


def test_yolo_segmentation_folder(tmp_path):
    root = tmp_path / "yolo"
    picture(root / "images" / "train" / "a.png")
    picture(root / "images" / "train" / "empty.png")
    picture(root / "images" / "val" / "b.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n\nnames:\n  0: cell\n  1: bead\n")
    label_file = root / "labels" / "train" / "a.txt"
    label_file.write_text("\n".join([
        yolo_line(0, [(4, 4), (14, 4), (14, 12), (4, 12)]),
        yolo_line(1, [(20, 5), (30, 5), (30, 15), (20, 15)]),
        yolo_line(2, [(1, 1), (5, 1), (5, 5)]),
        yolo_line(0, [(1, 1)]),
        "0 0.500000 0.500000 0.200000 0.200000",
        "",
        "cell 0.1 0.1 0.2 0.2 0.3 0.1",
        "1 0.1 0.1 0.2 0.2 1.5 0.1",
    ]) + "\n")
    (root / "labels" / "train" / "empty.txt").write_text("")
    (root / "labels" / "train" / "orphan.txt").write_text(yolo_line(0, [(1, 1), (5, 1), (5, 5)]) + "\n")
    (root / "labels" / "val" / "b.txt").write_text(yolo_line(1, [(0, 0), (40, 0), (40, 30)]) + "\n")

    assert detect_format(root) == detect_format(root / "data.yaml") == "yolo"
    labels = load_labels(root)
    assert labels.images == root / "images"
    assert labels.dataset["categories"] == [{"id": 1, "name": "cell"}, {"id": 2, "name": "bead"}]
    assert [i["file_name"] for i in labels.dataset["images"]] == ["train/a.png", "train/empty.png", "val/b.png"]
    masks = masks_of(labels)
    assert np.array_equal(masks[("train/a.png", "cell")][0], box_mask(4, 4, 14, 12))
    assert np.array_equal(masks[("train/a.png", "bead")][0], box_mask(20, 5, 30, 15))
    triangle = masks[("val/b.png", "bead")][0]
    assert triangle[0, 39] and triangle[1, 20] and not triangle[29, 0] and triangle.sum() == 600
    assert_boxes_match_masks(labels)
    assert labels.problems == [
        f"{label_file}: line 3: unknown class 2 (the dataset names 2: 0..1): skipped",
        f"{label_file}: line 4: polygon with 1 point (needs 3 or more): skipped",
        f"{label_file}: line 5: 4 coordinates: a detection box or a 2-point polygon, not an area: skipped",
        f"{label_file}: line 7: not 'class x1 y1 x2 y2 ...' numbers: 'cell 0.1 0.1 0.2 0.2 0.3 0.1': skipped",
        f"{label_file}: line 8: points reach (4.0, 3.0)-(60.0, 6.0), outside the 40x30 picture: skipped",
        f"{root / 'labels' / 'train' / 'orphan.txt'}: no picture of this name in {root / 'images'}: skipped",
    ]

    split = load_labels(root / "images" / "val")  # one split: its pictures only
    assert [i["file_name"] for i in split.dataset["images"]] == ["b.png"]


@pytest.mark.parametrize("names_file, text", [("data.yaml", "names: [cell, bead]\n"),
                                              ("classes.txt", "cell\nbead\n")])
def test_yolo_class_names(tmp_path, names_file, text):
    picture(tmp_path / "images" / "a.png")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text(yolo_line(1, [(4, 4), (14, 4), (14, 12)]) + "\n")
    (tmp_path / names_file).write_text(text)
    labels = load_labels(tmp_path, "yolo")
    assert labels.dataset["categories"] == [{"id": 1, "name": "cell"}, {"id": 2, "name": "bead"}]
    assert [a["category_id"] for a in labels.dataset["annotations"]] == [2]


def test_unusable_paths_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_labels(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not labels of a known format"):
        load_labels(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="no data.yaml, classes.txt or obj.names"):
        load_labels(tmp_path)
    with pytest.raises(DatasetError, match="unknown labels format 'voc'"):
        load_labels(tmp_path, "voc")


# --- training on converted labels (slow: real Model Garden steps) ----------------------------------------------

def _shapes_labels(root: Path, kind: str) -> Path:
    """Six generated shapes pictures with their exact instances, labelled as `kind` writes them; the --labels path."""
    from object_detection_utils.shapes import SHAPE_CLASSES, random_shapes_picture

    rng = np.random.default_rng(5)
    pictures = []
    for i in range(6):
        shapes = random_shapes_picture(rng, (64, 64), max_shapes=3)
        polygons = []
        for mask, class_id in zip(shapes.masks, shapes.class_ids):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(float)
            if len(contour) >= 3:
                polygons.append((SHAPE_CLASSES[int(class_id)], contour))
        pictures.append((f"p{i}.png", shapes.image, polygons))
    folder = {"labelme": root, "yolo": root / "images", "cvat": root / "images"}[kind]
    for name, image, _ in pictures:
        folder.mkdir(parents=True, exist_ok=True)
        write_image(folder / name, image)
    if kind == "labelme":
        for name, _, polygons in pictures:
            labelme_file(root / name.replace(".png", ".json"), name,
                         [labelme_shape(label, points) for label, points in polygons], 64, 64)
        return root
    if kind == "yolo":
        names = sorted(SHAPE_CLASSES.values())
        (root / "data.yaml").write_text("names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(names)))
        (root / "labels").mkdir()
        for name, _, polygons in pictures:
            (root / "labels" / name.replace(".png", ".txt")).write_text("".join(
                f"{names.index(label)} " + " ".join(f"{x / 64:.6f} {y / 64:.6f}" for x, y in points) + "\n"
                for label, points in polygons))
        return root
    images = "".join(
        f'  <image id="{i}" name="{name}" width="64" height="64">\n' + "".join(
            f'    <polygon label="{label}" source="manual" occluded="0" points="'
            + ";".join(f"{x:.2f},{y:.2f}" for x, y in points) + '" z_order="0">\n    </polygon>\n'
            for label, points in polygons) + "  </image>\n"
        for i, (name, _, polygons) in enumerate(pictures))
    meta = CVAT_META.replace("<name>cell</name>", "<name>circle</name>").replace("<name>bead</name>",
                                                                                 "<name>square</name>")
    meta = meta.replace("      </labels>", "        <label>\n          <name>triangle</name>\n"
                                            "          <color>#b83df5</color>\n          <type>any</type>\n"
                                            "          <attributes>\n          </attributes>\n        </label>\n"
                                            "      </labels>")
    (root / "annotations.xml").write_text(cvat_xml(images).replace(CVAT_META, meta))
    return root / "annotations.xml"


@pytest.mark.slow
@pytest.mark.parametrize("kind, val_kind", [("yolo", "cvat")])
def test_training_command_trains_on_converted_labels_and_exports(tmp_path, kind, val_kind, capsys):
    """Labels through the command: YOLO's as --labels, CVAT's as --val-labels. Every format goes through the same
    conversion (read_labels, tested format by format above), so one training run stands for them all (a run
    costs half a minute of the suite); `val_kind` None holds out --val-fraction of the pictures instead."""
    pytest.importorskip("official.vision", reason="tf-models-official is not installed: training tests skipped")
    import instance_segmentation_train
    from object_detection_utils import load_model

    labels = _shapes_labels(tmp_path / kind, kind)
    run = tmp_path / "run"
    validation = ["--val-fraction", "0.2"] if val_kind is None else [
        "--val-labels", str(_shapes_labels(tmp_path / val_kind, val_kind))]
    assert instance_segmentation_train.main([
        "train", "--labels", str(labels), "--model-dir", str(run), "--steps", "2", "--backbone", "resnet10",
        "--input-size", "64", "--batch-size", "2", "--warmup-steps", "1", "--checkpoint-every", "1", *validation]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected_pictures = (5, 1) if val_kind is None else (6, 6)
    assert (summary["steps"], summary["train_pictures"], summary["validation_pictures"]) == (2, *expected_pictures)
    for name in ("train",) if val_kind is None else ("train", "validation"):
        converted = json.loads((run / "data" / f"labels_{name}.json").read_text())
        assert [c["name"] for c in converted["categories"]] == ["circle", "square", "triangle"]
        assert len(converted["images"]) == 6 and converted["annotations"]
        assert (run / "data" / f"labels_{name}_problems.txt").read_text() == ""
    model = load_model(run / "export")
    assert dict(model.label_map) == {1: "circle", 2: "square", 3: "triangle"}
    assert (run / "export" / "saved_model").is_dir()
