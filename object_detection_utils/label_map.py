"""Label maps: class id -> name, from TF Object Detection API `.pbtxt` files or the built-in COCO map."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import LabelMapError

# The 80 COCO categories under their original ids (1..90, with gaps), as in mscoco_label_map.pbtxt.
COCO_LABELS: dict[int, str] = dict(enumerate(
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant _ stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe _ backpack umbrella _ _ "
    "handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard "
    "surfboard tennis_racket bottle _ wine_glass cup fork knife spoon bowl banana apple sandwich orange "
    "broccoli carrot hot_dog pizza donut cake chair couch potted_plant bed _ dining_table _ _ toilet _ tv "
    "laptop mouse remote keyboard cell_phone microwave oven toaster sink refrigerator _ book clock vase "
    "scissors teddy_bear hair_drier toothbrush".split(),
    start=1,
))
COCO_LABELS = {i: name.replace("_", " ") for i, name in COCO_LABELS.items() if name != "_"}

_ITEM = re.compile(r"item\s*\{(.*?)\}", re.DOTALL)
_FIELD = re.compile(r"(\w+)\s*:\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[-\w.]+)")


class LabelMap(Mapping[int, str]):
    """An immutable id -> display name mapping, with lookup by name."""

    def __init__(self, names: Mapping[int, str]) -> None:
        self._names = dict(sorted(names.items()))
        self._ids = {name.lower(): class_id for class_id, name in self._names.items()}

    def __getitem__(self, class_id: int) -> str:
        return self._names[class_id]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"LabelMap({len(self)} classes)"

    def name(self, class_id: int) -> str:
        """The display name of `class_id`, or `"class <id>"` for ids the map does not know."""
        return self._names.get(int(class_id), f"class {int(class_id)}")

    def resolve(self, classes: Iterable[int | str]) -> list[int]:
        """Turn class ids or names (case-insensitive; digits count as ids) into ids of this map."""
        ids: list[int] = []
        for cls in classes:
            text = str(cls).strip()
            if text.isdigit():
                ids.append(int(text))
            elif text.lower() in self._ids:
                ids.append(self._ids[text.lower()])
            else:
                raise LabelMapError(f"unknown class {text!r}; known classes: {', '.join(self._names.values())}")
        return ids

    def to_pbtxt(self) -> str:
        """The map as `.pbtxt` text (`item { id: 1 name: "..." }`), which `from_pbtxt` reads back."""
        return "".join(f'item {{\n  id: {i}\n  name: "{name}"\n}}\n' for i, name in self._names.items())

    @classmethod
    def coco(cls) -> LabelMap:
        return cls(COCO_LABELS)

    @classmethod
    def from_pbtxt(cls, path: str | Path) -> LabelMap:
        """Parse a TF OD API `StringIntLabelMap` text file (`item { id: 1 name: "..." display_name: "..." }`)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise LabelMapError(f"{path}: cannot read label map: {error}") from None
        return cls(parse_pbtxt(text, source=str(path)))


def parse_pbtxt(text: str, source: str = "label map") -> dict[int, str]:
    """id -> display name (or name, when an item has no display_name) from `.pbtxt` text."""
    text = re.sub(r"#[^\n]*", "", text)
    names: dict[int, str] = {}
    for match in _ITEM.finditer(text):
        fields = {key: value.strip("\"'") for key, value in _FIELD.findall(match.group(1))}
        if "id" not in fields or not fields["id"].lstrip("-").isdigit():
            raise LabelMapError(f"{source}: an item has no integer id: {match.group(0)!r}")
        name = fields.get("display_name") or fields.get("name")
        if not name:
            raise LabelMapError(f"{source}: item {fields['id']} has no name")
        names[int(fields["id"])] = name
    if not names:
        raise LabelMapError(f"{source}: no `item {{ id: ... name: ... }}` entries found")
    return names
