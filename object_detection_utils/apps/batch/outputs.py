"""One picture's outputs: where its overlay and mask PNGs go, writing them, and its journal record."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...detections import Detections
from ...io.atomic import write_bytes_atomic
from ...io.images import encode_image
from ...visualization.drawing import draw_detections
from .inputs import Picture
from .remote_files import RemotePath

# Overlays keep the source's format when OpenCV writes it; other formats (gif, ico, ...) get `<name>.png`.
WRITABLE_SUFFIXES = frozenset(".jpg .jpeg .jpe .png .bmp .webp .tif .tiff".split())


def overlay_path(output_dir: Path, name: str) -> Path:
    """Where a picture's drawn overlay goes: same relative path, same format if writable, else `<name>.png`."""
    relative = Path(name)
    if relative.suffix.lower() not in WRITABLE_SUFFIXES:
        relative = relative.with_name(relative.name + ".png")
    return output_dir / relative


def masks_dir(output_dir: Path, name: str) -> Path:
    """The folder of a picture's per-instance mask PNGs: `<name>.masks/` (`000_person.png`, ...)."""
    return output_dir / f"{name}.masks"


def mask_file_name(index: int, class_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", class_name).strip("_") or "class"
    return f"{index:03d}_{slug}.png"


def write_picture_outputs(
    output_dir: Path | RemotePath,
    picture: Picture,
    image: np.ndarray,
    detections: Detections,
    overlay: bool,
    masks: bool,
    jpeg_quality: int = 95,
) -> list[Path]:
    """Write the drawn overlay and/or one PNG per instance mask, each atomically, into a local or remote
    folder; returns the paths written.

    Mask PNGs of an earlier run that found more instances are removed.
    """
    written: list[Path] = []
    if overlay:
        path = overlay_path(output_dir, picture.name)
        _write(path, encode_image(draw_detections(image, detections), path.suffix, jpeg_quality))
        written.append(path)
    if masks:
        folder = masks_dir(output_dir, picture.name)
        new = []
        if detections.box_masks is not None:
            for i, class_name in enumerate(detections.class_names):  # one full-picture mask at a time
                path = folder / mask_file_name(i, class_name)
                _write(path, encode_image(detections.box_masks.dense(i).astype(np.uint8) * 255, ".png"))
                new.append(path)
        if folder.is_dir():
            for old in folder.glob("*.png"):
                if old not in new:
                    old.unlink()
        written += new
    return written


def _write(path: Path | RemotePath, data: bytes) -> None:
    """Local files go through a temporary name; a remote object is written whole or not at all by the store."""
    if isinstance(path, RemotePath):
        path.write_bytes(data)
    else:
        write_bytes_atomic(path, data)


def picture_record(
    picture: Picture,
    detections: Detections,
    settings: dict[str, Any],
    kinds: list[str],
    outputs: list[str],
    model_seconds: float,
    postprocess_started: float,
) -> dict[str, Any]:
    """The journal record of a finished picture: its source, settings, outputs, counts and COCO entries
    (without image ids, which the run's COCO JSON assigns)."""
    stat = picture.source.stat()
    height, width = detections.image_size
    return {
        "file": picture.name,
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "settings": settings,
        "kinds": kinds,
        "outputs": outputs,
        "width": width,
        "height": height,
        "instances": len(detections),
        "counts": detections.counts(),
        "inference_seconds": round(model_seconds, 4),
        "postprocess_seconds": round(time.perf_counter() - postprocess_started, 4),
        "coco": detections.to_coco(image_id=None),
    }
