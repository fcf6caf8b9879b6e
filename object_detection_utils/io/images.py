"""Reading pictures into RGB uint8 arrays, and writing them without ever leaving a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageReadError

# Suffixes Pillow or OpenCV read, for picking pictures out of a folder.
IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .png .bmp .dib .gif .tif .tiff .webp .ppm .pgm .pbm .pnm .jp2 .ico .tga".split()
)
TEMP_SUFFIX = ".part"  # suffix of the temporary files of atomic writes
Image.MAX_IMAGE_PIXELS = 30_000 * 30_000  # big scans are fine; decompression bombs beyond this are not


def read_image(path: str | Path) -> np.ndarray:
    """Read a picture as an (H, W, 3) RGB uint8 array, upright as its EXIF orientation says.

    Grayscale, palette, RGBA/LA (alpha dropped), CMYK, 16-bit and float pictures become 8-bit RGB.
    Raises `ImageReadError` naming the file for anything that is not a complete, readable picture.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # raises on truncated data, where a lazy open would not
                image = ImageOps.exif_transpose(image)
                return to_rgb_array(image)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not a picture") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a picture (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageReadError(f"{path}: unreadable picture ({error})") from None


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """An (H, W, 3) RGB uint8 array from a Pillow picture of any mode."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGBA" if image.mode == "P" and "transparency" in image.info else image.mode)
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def encode_image(image: np.ndarray, suffix: str, jpeg_quality: int = 95) -> bytes:
    """Encode an (H, W, 3) RGB uint8 array in the format that `suffix` (".jpg", ".png", ...) names."""
    suffix = suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix in (".jpg", ".jpeg", ".jpe") else []
    bgr = image[:, :, ::-1] if image.ndim == 3 else image
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(bgr), params)
    if not ok:
        raise ValueError(f"cannot encode a picture as {suffix}")
    return buffer.tobytes()


def temp_path_beside(path: Path, keep_suffix: bool = False) -> Path:
    """A new empty file beside `path` named `.<name>.<random>.part` (or `.<stem>.<random>.part<suffix>` with
    `keep_suffix`, for writers that pick the format from the suffix), with ordinary file permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_suffix:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMP_SUFFIX}{path.suffix}", dir=path.parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the finished file gets ordinary permissions
    return Path(tmp)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """A file open for writing under a temporary name beside `path`, renamed into place when the block ends
    without error and removed when it does not: `path` is never half-written."""
    path = Path(path)
    tmp = temp_path_beside(path)
    try:
        with tmp.open(mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as file:
            yield file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    with atomic_file(path) as file:
        file.write(data)


def write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB picture atomically, in the format of the path's suffix."""
    path = Path(path)
    write_bytes_atomic(path, encode_image(image, path.suffix or ".png", jpeg_quality))
