from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from object_detection_utils.errors import LabelMapError
from object_detection_utils.label_map import COCO_LABELS, LabelMap, find_label_map_file, parse_pbtxt


def test_builtin_coco_map_has_80_classes_on_original_ids():
    assert len(COCO_LABELS) == 80
    assert COCO_LABELS[1] == "person" and COCO_LABELS[18] == "dog" and COCO_LABELS[90] == "toothbrush"
    assert 12 not in COCO_LABELS and COCO_LABELS[13] == "stop sign"


def test_builtin_map_equals_the_published_pbtxt(shared_data):
    path = shared_data / "labels" / "mscoco_label_map.pbtxt"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    assert dict(LabelMap.from_pbtxt(path)) == COCO_LABELS


def test_parse_prefers_display_name_and_ignores_comments_and_quotes():
    text = """
    # a comment with item { id: 99 name: "nope" }
    item {
      name: "/m/01g317"
      id: 1
      display_name: "person"
    }
    item { id: 7 name: 'bubble' }
    """
    assert parse_pbtxt(text) == {1: "person", 7: "bubble"}


@pytest.mark.parametrize(
    "text, problem",
    [("", "no `item"),
     ('item { name: "x" }', "bad.pbtxt: item 1 \\('x'\\) has no id"),
     ("item { id: 3 }", "bad.pbtxt: item 1 \\(id 3\\) has no name"),
     ('item { id: 1 name: "a" }\nitem { id: 1 name: "b" }', "bad.pbtxt: item 2 \\('b'\\) repeats id 1 \\(already 'a'\\)"),
     ('item { id: 1 name: "a" ', 'bad.pbtxt:1:20: Expected "}" \\(not a label map in protobuf text format\\)'),
     ("item { id: one }", "bad.pbtxt:1:12: Couldn't parse integer: one"),
     ],
)
def test_malformed_label_maps_name_the_problem(text, problem):
    with pytest.raises(LabelMapError, match=problem):
        parse_pbtxt(text, source="bad.pbtxt")


def test_missing_label_map_file_is_one_clear_error(tmp_path):
    with pytest.raises(LabelMapError, match="missing.pbtxt: cannot read"):
        LabelMap.from_pbtxt(tmp_path / "missing.pbtxt")


def test_resolve_takes_ids_and_case_insensitive_names():
    labels = LabelMap.coco()
    assert labels.resolve(["Person", "18", 3, " traffic light "]) == [1, 18, 3, 10]
    with pytest.raises(LabelMapError, match="unknown class 'unicorn'"):
        labels.resolve(["unicorn"])


def test_unknown_id_gets_a_placeholder_name():
    assert LabelMap({1: "a"}).name(42) == "class 42"


# Shaped exactly like label maps the TF Object Detection API ships (research/object_detection/data/).
FACE_PERSON_WITH_KEYPOINTS = """item: {
 id: 1
 name: 'face'
 display_name: 'face'
 keypoints {
   id: 0
   label: "left_eye_center"
 }
 keypoints {
   id: 1
   label: "right_eye_center"
 }
}
item: {
 id: 2
 name: 'Person'
 display_name: 'PERSON'
 keypoints {
   id: 6
   label: "NOSE_TIP"
 }
}
"""
OPEN_IMAGES = """item {
  name: "/m/011k07"
  id: 1
  display_name: "Tortoise"
}
item {
  name: "/m/011q46kg"
  id: 2
  display_name: "Container"
}
"""
LVIS_STYLE = """item {
  name: "aerosol_can"
  id: 3
  display_name: "aerosol_can"
  frequency: RARE
  instance_count: 109
}
item {
  id: 1  # ids in any order
  name: "air_conditioner"
  frequency: FREQUENT
  instance_count: 1207
}
"""


def test_colon_form_and_nested_keypoints_keep_each_items_own_id():
    assert parse_pbtxt(FACE_PERSON_WITH_KEYPOINTS) == {1: "face", 2: "PERSON"}


def test_open_images_map_uses_display_names():
    assert parse_pbtxt(OPEN_IMAGES) == {1: "Tortoise", 2: "Container"}


def test_extra_fields_and_ids_in_any_order():
    assert parse_pbtxt(LVIS_STYLE) == {3: "aerosol_can", 1: "air_conditioner"}
    assert list(LabelMap(parse_pbtxt(LVIS_STYLE))) == [1, 3]


def test_escapes_and_both_quote_styles():
    text = r"""item { id: 1 name: "say \"hi\"" } item { id: 2 name: 'it\'s' } item { id: 3 name: "caf\303\251" }"""
    assert parse_pbtxt(text) == {1: 'say "hi"', 2: "it's", 3: "café"}


def test_a_model_folder_takes_its_label_map_by_content(tmp_path):
    folder = tmp_path / "mask_rcnn_inception_v2_coco_2018_01_28"
    folder.mkdir()
    (folder / "graph.pbtxt").write_text('node {\n  name: "image_tensor"\n  op: "Placeholder"\n}\n')
    assert find_label_map_file(folder) is None
    (folder / "a_labels.pbtxt").write_text("# classes\n" + OPEN_IMAGES)
    assert find_label_map_file(folder) == folder / "a_labels.pbtxt"
    (folder / "z_label_map.pbtxt").write_text(FACE_PERSON_WITH_KEYPOINTS)
    assert find_label_map_file(folder) == folder / "z_label_map.pbtxt"  # `label_map` in the name first


def test_the_script_ignores_a_graph_proto_beside_the_frozen_graph(repo_root, tiny_frozen_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_frozen_dir, folder)
    (folder / "graph.pbtxt").write_text('node {\n  name: "image_tensor"\n  op: "Placeholder"\n}\n')
    (folder / "mscoco_label_map.pbtxt").write_text('item {\n  name: "/m/01g317"\n  id: 1\n  display_name: "human"\n}\n')
    done = subprocess.run([sys.executable, str(repo_root / "instance_segmentation.py"), "--no-display", "--model",
                           str(folder), "-o", str(tmp_path / "out.png")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[1] for line in done.stdout.splitlines()] == ["human", "class 18"]


def test_a_label_map_option_naming_another_proto_is_one_line(repo_root, tiny_frozen_dir, tmp_path):
    graph = tmp_path / "graph.pbtxt"
    graph.write_text('node {\n  name: "image_tensor"\n  op: "Placeholder"\n}\n')
    done = subprocess.run([sys.executable, str(repo_root / "instance_segmentation.py"), "--no-display", "--model",
                           str(tiny_frozen_dir), "--label-map", str(graph), "-o", str(tmp_path / "out.png")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {graph}: no `item {{ id: ... name: ... }}` entries found (not a label map)"
