"""Reading pictures into RGB uint8 arrays, and writing them without ever leaving a half-written file."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ImageReadError, PictureTooLargeError
from .atomic import write_bytes_atomic

# Suffixes Pillow or OpenCV read, for picking pictures out of a folder.
IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .png .bmp .dib .gif .tif .tiff .webp .ppm .pgm .pbm .pnm .jp2 .ico .tga".split()
)
DEFAULT_MAX_PIXELS = 30_000 * 30_000  # big scans are fine; decompression bombs beyond this are not


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a picture as an (H, W, 3) RGB uint8 array, upright as its EXIF orientation says.

    Grayscale, palette, RGBA/LA (alpha dropped), CMYK, 16-bit and float pictures become 8-bit RGB.
    A picture declaring more than `max_pixels` pixels is refused before any of it is decoded.
    Raises `ImageReadError` naming the file for anything that is not a complete, readable picture.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes)")
        with path.open("rb") as file:
            return _decode(file, str(path), max_pixels)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not a picture") from None
    except OSError as error:
        raise ImageReadError(f"{path}: unreadable picture ({error})") from None


def decode_image(data: bytes, name: str = "picture", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """`read_image` for a picture's bytes held in memory (an upload): `name` only labels the error messages."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(file: BinaryIO, name: str, max_pixels: int) -> np.ndarray:
    """The picture in an open binary file as `read_image` returns it; every failure an `ImageReadError`."""
    try:
        with _open_unchecked(file, name) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise PictureTooLargeError(
                    f"{name}: {width}x{height} pixels is over the limit of {max_pixels} pixels "
                    "(--max-pixels, or read_image's max_pixels, raises it)"
                )
            image.load()  # raises on truncated data, where a lazy open would not
            return to_rgb_array(ImageOps.exif_transpose(image))
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a picture (unrecognised format)") from None
    except Image.DecompressionBombError as error:  # TIFF, WebP and ICO decoders check Pillow's limit themselves
        raise PictureTooLargeError(
            f"{name}: over Pillow's process-wide limit for this format ({error}); raise PIL.Image.MAX_IMAGE_PIXELS "
            "to read it"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{name}: unreadable picture ({error})") from None


def _open_unchecked(file: BinaryIO, name: str) -> ImageFile.ImageFile:
    """`Image.open` without its decompression-bomb check, which compares against the process-wide
    `Image.MAX_IMAGE_PIXELS`: `read_image` applies its own limit instead, and changes no global to do so.

    Tries Pillow's registered formats in Pillow's order, on the same terms as `Image.open`.
    """
    Image.preinit()  # the common formats first, as `Image.open` tries them
    Image.init()
    prefix = file.read(16)
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        accepted = not accept or accept(prefix)
        if not accepted or isinstance(accepted, str):  # a string says why the format cannot be read here
            continue
        file.seek(0)
        try:
            return factory(file, name)
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError(f"cannot identify image file {name!r}")


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


def write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB picture atomically, in the format of the path's suffix."""
    path = Path(path)
    write_bytes_atomic(path, encode_image(image, path.suffix or ".png", jpeg_quality))
