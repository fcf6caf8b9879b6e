"""Reading every kind of picture as upright RGB, clear errors for bad files and oversized pictures, atomic writes."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from object_detection_utils.errors import ImageReadError, PictureTooLargeError
from object_detection_utils.io.images import DEFAULT_MAX_PIXELS, decode_image, read_image, write_image


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


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "result.png"
    write_image(target, _gradient())
    np.testing.assert_array_equal(read_image(target), _gradient())
    (tmp_path / "out" / "taken.png").mkdir()  # renaming onto a folder fails after the picture is written
    with pytest.raises(OSError):
        write_image(tmp_path / "out" / "taken.png", _gradient())
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.png", "taken.png"]
    assert list((tmp_path / "out" / "taken.png").iterdir()) == []


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


def test_a_picture_declaring_too_many_pixels_is_refused_by_name_before_decoding(tmp_path, monkeypatch,
                                                                                  png_declaring):
    pillow_limit = Image.MAX_IMAGE_PIXELS
    (tmp_path / "bomb.png").write_bytes(png_declaring(40_000, 40_000))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: pytest.fail("the picture was decoded"))
    assert 40_000 * 40_000 > DEFAULT_MAX_PIXELS
    with pytest.raises(ImageReadError) as error:
        read_image(tmp_path / "bomb.png")
    assert str(error.value) == (f"{tmp_path / 'bomb.png'}: 40000x40000 pixels is over the limit of "
                                f"{DEFAULT_MAX_PIXELS} pixels (--max-pixels, or read_image's max_pixels, raises it)")
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_bytes_in_memory_decode_as_a_file_does_with_the_same_checks(tmp_path, png_declaring):
    Image.fromarray(_gradient()).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    assert np.array_equal(decode_image(data, "upload"), read_image(tmp_path / "a.png"))
    with pytest.raises(PictureTooLargeError, match=r"^upload: 40000x40000 pixels is over the limit of 2400 pixels"):
        decode_image(png_declaring(40_000, 40_000), "upload", max_pixels=2400)
    with pytest.raises(ImageReadError, match=r"^upload: unreadable picture"):
        decode_image(data[: len(data) // 2], "upload")
    with pytest.raises(ImageReadError, match=r"^upload: not a picture \(unrecognised format\)$"):
        decode_image(b"hello", "upload")
    with pytest.raises(ImageReadError, match=r"^upload: empty file \(0 bytes\)$"):
        decode_image(b"", "upload")


def test_max_pixels_is_the_limit_exactly(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "a.png")  # 60x40 = 2400 pixels
    assert read_image(tmp_path / "a.png", max_pixels=2400).shape == (40, 60, 3)
    with pytest.raises(ImageReadError, match=r"a.png: 60x40 pixels is over the limit of 2399 pixels"):
        read_image(tmp_path / "a.png", max_pixels=2399)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".gif"])
@pytest.mark.parametrize("pillow_limit", [2000, 100])  # Pillow would warn (over 2000) or refuse (over 2 x 100)
def test_our_limit_decides_not_pillows_process_wide_one(tmp_path, monkeypatch, suffix, pillow_limit):
    # A low MAX_IMAGE_PIXELS stands for Pillow's default 89 M-pixel threshold below our larger limit.
    Image.fromarray(_gradient()).save(tmp_path / f"a{suffix}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail the test
        assert read_image(tmp_path / f"a{suffix}").shape == (40, 60, 3)
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_tiff_over_pillows_own_limit_says_how_to_raise_it(tmp_path, monkeypatch):
    # TIFF decoding checks Pillow's process-wide limit itself; the error says which limit and how to raise it.
    Image.fromarray(_gradient()).save(tmp_path / "scan.tif")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageReadError, match=r"scan.tif: over Pillow's process-wide limit .* raise "
                                             r"PIL.Image.MAX_IMAGE_PIXELS to read it"):
        read_image(tmp_path / "scan.tif")


def test_importing_the_package_changes_no_global_state():
    code = """
import os, cv2, PIL.Image
before = (PIL.Image.MAX_IMAGE_PIXELS, cv2.utils.logging.getLogLevel(), dict(os.environ))
import object_detection_utils, object_detection_utils.io.images, object_detection_utils.io.video_sources
import object_detection_utils.io.frame_reader, object_detection_utils.io.video_sinks
after = (PIL.Image.MAX_IMAGE_PIXELS, cv2.utils.logging.getLogLevel(), dict(os.environ))
print(before == after)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout == "True\n", result.stderr
