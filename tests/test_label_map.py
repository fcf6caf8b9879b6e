from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from object_detection_utils.errors import LabelMapError
from object_detection_utils.label_map import COCO_LABELS, LabelMap, parse_pbtxt


def test_builtin_coco_map_has_80_classes_on_original_ids():
    assert len(COCO_LABELS) == 80
    assert COCO_LABELS[1] == "person" and COCO_LABELS[18] == "dog" and COCO_LABELS[90] == "toothbrush"
    assert 12 not in COCO_LABELS and COCO_LABELS[13] == "stop sign"


def test_builtin_map_equals_the_published_pbtxt():
    path = SHARED_DATA / "labels" / "mscoco_label_map.pbtxt"
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
    [("", "no `item"), ('item { name: "x" }', "no integer id"), ("item { id: 3 }", "has no name")],
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
