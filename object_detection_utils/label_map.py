"""Label maps: class id -> name, from TF Object Detection API `.pbtxt` files or the built-in COCO map."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import Message

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

LABEL_MAP_MESSAGE = "object_detection.protos.StringIntLabelMap"
# An `item {` or `item: {` opening a line, before any other field: how a label map starts (comments aside).
_LOOKS_LIKE_LABEL_MAP = re.compile(r"\A(?:\s*#[^\n]*\n|\s)*item\s*:?\s*\{")
_SNIFF_CHARS = 1 << 16


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


@functools.cache
def _label_map_class() -> type[Message]:
    """The TF OD API's `StringIntLabelMap` message (string_int_label_map.proto), built from its schema at run
    time so that no generated code or TF OD API install is needed."""
    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    package = LABEL_MAP_MESSAGE.rsplit(".", 1)[0]
    schema = descriptor_pb2.FileDescriptorProto(name="string_int_label_map.proto", package=package, syntax="proto2")

    def add(message, name: str, number: int, kind: int, label: int = optional, type_name: str | None = None) -> None:
        message.field.add(name=name, number=number, type=kind, label=label, type_name=type_name)

    item = schema.message_type.add(name="StringIntLabelMapItem")
    add(item, "name", 1, field.TYPE_STRING)
    add(item, "id", 2, field.TYPE_INT32)
    add(item, "display_name", 3, field.TYPE_STRING)
    keypoint = item.nested_type.add(name="KeypointMap")
    add(keypoint, "id", 1, field.TYPE_INT32)
    add(keypoint, "label", 2, field.TYPE_STRING)
    add(item, "keypoints", 4, field.TYPE_MESSAGE, repeated, f".{package}.StringIntLabelMapItem.KeypointMap")
    add(item, "ancestor_ids", 5, field.TYPE_INT32, repeated)
    add(item, "descendant_ids", 6, field.TYPE_INT32, repeated)
    frequency = item.enum_type.add(name="LVISFrequency")
    for number, name in enumerate(("UNSPECIFIED_LVIS_FREQUENCY", "FREQUENT", "COMMON", "RARE")):
        frequency.value.add(name=name, number=number)
    add(item, "frequency", 7, field.TYPE_ENUM, type_name=f".{package}.StringIntLabelMapItem.LVISFrequency")
    add(item, "instance_count", 8, field.TYPE_INT32)
    label_map = schema.message_type.add(name="StringIntLabelMap")
    add(label_map, "item", 1, field.TYPE_MESSAGE, repeated, f".{package}.StringIntLabelMapItem")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(LABEL_MAP_MESSAGE))


def looks_like_label_map(text: str) -> bool:
    """Whether `.pbtxt` text starts like a label map (its first field is an `item`), judged on its beginning
    only, so a large graph proto or pipeline config is told apart without parsing it."""
    return _LOOKS_LIKE_LABEL_MAP.match(text[:_SNIFF_CHARS]) is not None


def find_label_map_file(folder: Path) -> Path | None:
    """The label map among a model folder's `.pbtxt` files (and its subfolders'), told apart by content.

    Zoo archives hold other text protos beside it (`graph.pbtxt`, configs): those are passed over. Names
    with `label_map` come first, then the folder's own files before its subfolders', then by name.
    """
    candidates = sorted(folder.glob("*.pbtxt")) + sorted(folder.glob("*/*.pbtxt"))
    label_maps = [path for path in candidates if _starts_like_label_map(path)]
    label_maps.sort(key=lambda path: "label_map" not in path.name.lower())  # stable: keeps the order above
    return label_maps[0] if label_maps else None


def _starts_like_label_map(path: Path) -> bool:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as file:
            return looks_like_label_map(file.read(_SNIFF_CHARS))
    except OSError:
        return False


def parse_pbtxt(text: str, source: str = "label map") -> dict[int, str]:
    """id -> display name (or name, when an item has no display_name) from `StringIntLabelMap` text format.

    Protobuf text format as the TF OD API writes and reads it: `item {` or `item: {`, comments, single or
    double quotes with escapes, nested `keypoints`, ids in any order; fields newer than this schema are
    skipped. An item without an id or a name, or a repeated id, is an error naming the item.
    """
    message = _label_map_class()()
    try:
        text_format.Parse(text, message, allow_unknown_field=True)
    except text_format.ParseError as error:
        where = f"{error.GetLine()}:{error.GetColumn()}" if error.GetLine() else ""
        problem = re.sub(r"^'.*?': ", "", str(error).split(" : ", 1)[-1]).rstrip(".")  # without the echoed text
        raise LabelMapError(f"{source}:{where}: {problem} (not a label map in protobuf text format)") from None
    names: dict[int, str] = {}
    for number, item in enumerate(message.item, start=1):
        described = f"item {number}" + (f" ({item.name or item.display_name!r})" if item.name or item.display_name
                                        else "")
        if not item.HasField("id"):
            raise LabelMapError(f"{source}: {described} has no id")
        if not (item.display_name or item.name):
            raise LabelMapError(f"{source}: {described} (id {item.id}) has no name")
        if item.id in names:
            raise LabelMapError(f"{source}: {described} repeats id {item.id} (already {names[item.id]!r})")
        names[item.id] = item.display_name or item.name
    if not names:
        raise LabelMapError(f"{source}: no `item {{ id: ... name: ... }}` entries found (not a label map)")
    return names
