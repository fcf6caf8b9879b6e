"""Reading every kind of picture as upright RGB, clear errors for bad files, atomic writes."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest
from PIL import Image

from object_detection_utils.errors import ImageReadError
from object_detection_utils.io.images import read_image, write_image


def _gradient(height=40, width=60) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 4 % 256, ys * 6 % 256, (xs + ys) % 256], axis=2).astype(np.uint8)


def test_rgb_png_round_trips_exactly(tmp_path):
    picture = _gradient()
    Image.fromarray(picture).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), picture)


def test_exif_orientation_is_applied(tmp_path):
    picture = np.zeros((20, 50, 3), np.uint8)
    picture[:, :10] = 255  # white stripe on the left
    image = Image.fromarray(picture)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    upright = read_image(tmp_path / "rotated.jpg")
    assert upright.shape == (50, 20, 3)
    assert upright[:10].mean() > 200 and upright[15:].mean() < 30  # the stripe is now on top


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1"])
def test_modes_become_rgb(tmp_path, mode):
    source = Image.fromarray(_gradient()).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    source.save(tmp_path / f"x{suffix}")
    result = read_image(tmp_path / f"x{suffix}")
    assert result.shape == (40, 60, 3) and result.dtype == np.uint8
    expected = np.asarray(source.convert("RGB"))
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= (40 if mode == "CMYK" else 0)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16).repeat(4, axis=0)
    Image.fromarray(values).save(tmp_path / "deep.png")
    result = read_image(tmp_path / "deep.png")
    assert result.shape == (4, 3, 3)
    assert result[0, :, 0].tolist() == [0, 100, 255]


def test_palette_with_transparency_reads(tmp_path):
    image = Image.fromarray(_gradient()).convert("P")
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png").shape == (40, 60, 3)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jpg", b"", "empty file"),
        ("text.jpg", b"hello, not a picture", "not a picture"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as error:
        read_image(tmp_path / name)
    assert str(error.value).startswith(str(tmp_path / name)) and "\n" not in str(error.value)


def test_truncated_jpeg_is_an_error_not_a_grey_picture(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_gradient(200, 200)).save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg: unreadable picture"):
        read_image(tmp_path / "cut.jpg")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "out" / "result.png"
    write_image(target, _gradient())
    np.testing.assert_array_equal(read_image(target), _gradient())

    import object_detection_utils.io.images as image_io

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(image_io.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_image(target, np.zeros((5, 5, 3), np.uint8))
    np.testing.assert_array_equal(read_image(target), _gradient())  # the old file is intact
    assert [p.name for p in target.parent.iterdir()] == ["result.png"]


def test_jpeg_output_is_a_real_jpeg(tmp_path):
    write_image(tmp_path / "x.jpg", _gradient())
    assert (tmp_path / "x.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert np.abs(read_image(tmp_path / "x.jpg").astype(int) - _gradient()).mean() < 3


def test_written_files_get_ordinary_permissions_not_private_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        write_image(tmp_path / "shared.png", _gradient())
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "shared.png").stat().st_mode) == 0o644
