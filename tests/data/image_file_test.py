"""Tests of salijax.data.image_file.read_image: formats, pixel-mode conversions, errors."""

import logging

import numpy as np
import pytest
from PIL import Image

from salijax.data.image_file import SUPPORTED_FORMATS, read_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix,options", [
    (".png", {}), (".bmp", {}), (".tiff", {}), (".webp", {"lossless": True})])
def test_lossless_rgb_round_trip_is_exact(tmp_path, suffix, options):
  path = tmp_path / f"image{suffix}"
  Image.fromarray(RGB).save(path, **options)
  image = read_image(path)
  assert image.dtype == np.float32 and image.shape == (5, 7, 3)
  np.testing.assert_array_equal(image, RGB.astype(np.float32) / 255)


def test_jpeg_round_trip_is_close(tmp_path):
  smooth = np.linspace(0, 255, 32 * 48 * 3).reshape(32, 48, 3).astype(np.uint8)
  path = tmp_path / "photo.jpg"
  Image.fromarray(smooth).save(path, quality=95)
  image = read_image(path)
  assert image.shape == (32, 48, 3) and image.dtype == np.float32
  assert np.abs(image - smooth / 255).mean() < 0.01


def test_grey_is_replicated_to_three_channels(tmp_path):
  grey = RGB[..., 0]
  path = tmp_path / "grey.png"
  Image.fromarray(grey).save(path)
  image = read_image(path)
  for channel in range(3):
    np.testing.assert_array_equal(image[..., channel], grey.astype(np.float32) / 255)


def test_black_and_white_gives_zero_and_one(tmp_path):
  bits = RNG.integers(0, 2, size=(6, 9)).astype(bool)
  path = tmp_path / "bits.png"
  Image.fromarray(bits).convert("1").save(path)
  assert Image.open(path).mode == "1"
  np.testing.assert_array_equal(read_image(path), np.repeat(bits[..., None], 3, -1))


def test_16_bit_grey_keeps_its_precision(tmp_path, caplog):
  values = np.array([[0, 1, 256, 257], [32768, 65534, 65535, 1000]], np.uint16)
  path = tmp_path / "deep.png"
  Image.fromarray(values).save(path)
  assert Image.open(path).mode.startswith("I")  # a 16-bit mode, not 8-bit L
  with caplog.at_level(logging.INFO, logger="absl"):
    image = read_image(path)
  np.testing.assert_allclose(image[..., 1], values / 65535, rtol=1e-6, atol=0)
  assert image[0, 2, 0] < image[0, 3, 0]  # 256 and 257 stay distinct (8 bits would merge them)
  assert image.max() == 1.0
  assert "16-bit grey" in caplog.text and str(path) in caplog.text


def test_32_bit_integer_and_float_grey(tmp_path):
  path = tmp_path / "int32.tiff"
  Image.fromarray(np.array([[0, 300], [65535, 7]], np.int32)).save(path)
  assert Image.open(path).mode == "I"
  np.testing.assert_allclose(read_image(path)[..., 2], [[0, 300 / 65535], [1, 7 / 65535]],
                             rtol=1e-6)
  Image.fromarray(np.array([[0, 70000]], np.int32)).save(path)
  with pytest.raises(ValueError, match=r"values in \[0, 70000\], outside 16 bits"):
    read_image(path)
  path = tmp_path / "float.tiff"
  Image.fromarray(np.array([[0, 0.25], [1, 0.5]], np.float32)).save(path)
  np.testing.assert_array_equal(read_image(path)[..., 0], [[0, 0.25], [1, 0.5]])
  Image.fromarray(np.array([[0, 2.0]], np.float32)).save(path)
  with pytest.raises(ValueError, match=r"float.tiff is not an image .*outside \[0, 1\]"):
    read_image(path)


def test_palette_is_looked_up(tmp_path):
  palette = RNG.integers(0, 256, size=(256, 3), dtype=np.uint8)
  indices = RNG.integers(0, 256, size=(4, 6), dtype=np.uint8)
  image = Image.fromarray(indices, mode="P")
  image.putpalette(palette.tobytes())
  for suffix in (".png", ".gif"):
    path = tmp_path / f"palette{suffix}"
    image.save(path)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_image(path), palette[indices] / np.float32(255))


def test_rgba_is_composited_on_white(tmp_path):
  rgba = np.zeros((2, 3, 4), np.uint8)
  rgba[..., :3] = RGB[:2, :3]
  rgba[..., 3] = [[0, 255, 128], [64, 0, 255]]
  path = tmp_path / "alpha.png"
  Image.fromarray(rgba, mode="RGBA").save(path)
  image = read_image(path)
  alpha = rgba[..., 3:] / 255
  np.testing.assert_allclose(image, rgba[..., :3] / 255 * alpha + 1 - alpha, atol=1e-6)
  np.testing.assert_array_equal(image[0, 0], 1.0)  # fully transparent -> white
  np.testing.assert_array_equal(image[0, 1], RGB[0, 1] / np.float32(255))  # opaque: unchanged


def test_grey_with_alpha_is_composited_on_white(tmp_path):
  la = np.stack([np.full((2, 2), 100, np.uint8),
                 np.array([[0, 255], [255, 0]], np.uint8)], axis=-1)
  path = tmp_path / "grey_alpha.png"
  Image.fromarray(la, mode="LA").save(path)
  image = read_image(path)
  np.testing.assert_array_equal(image[0, 0], 1.0)
  np.testing.assert_allclose(image[0, 1], 100 / 255, rtol=1e-6)


def test_cmyk_is_converted_to_rgb(tmp_path, caplog):
  cmyk = np.array([[[255, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 255]]], np.uint8)
  path = tmp_path / "print.tiff"
  Image.fromarray(cmyk, mode="CMYK").save(path)
  with caplog.at_level(logging.INFO, logger="absl"):
    image = read_image(path)
  # Pure cyan, white and black (the same under every CMYK -> RGB formula).
  np.testing.assert_array_equal(image[0], [[0, 1, 1], [1, 1, 1], [0, 0, 0]])
  assert "CMYK" in caplog.text


def test_exif_orientation_is_applied(tmp_path):
  pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
  image = Image.fromarray(pixels)
  exif = image.getexif()
  exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
  path = tmp_path / "rotated.png"
  image.save(path, exif=exif)
  upright = read_image(path)
  assert upright.shape == (3, 2, 3)
  np.testing.assert_array_equal(upright, np.rot90(pixels, k=-1) / np.float32(255))


def test_text_file_named_png_is_rejected_with_its_name(tmp_path):
  path = tmp_path / "notes.png"
  path.write_text("not an image\n")
  with pytest.raises(ValueError, match="notes.png is not an image salijax can read") as info:
    read_image(path)
  assert all(name in str(info.value) for name in SUPPORTED_FORMATS)


def test_truncated_file_is_rejected(tmp_path):
  path = tmp_path / "cut.png"
  Image.fromarray(RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)).save(path)
  path.write_bytes(path.read_bytes()[:200])
  with pytest.raises(ValueError, match="cut.png is not an image"):
    read_image(path)


def test_unsupported_format_is_rejected(tmp_path):
  path = tmp_path / "image.ppm"
  Image.fromarray(RGB).save(path)  # Pillow reads PPM, salijax does not accept it
  with pytest.raises(ValueError, match=r"image.ppm is not an image salijax can read \(supported"):
    read_image(path)


def test_missing_file_and_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match="absent.png"):
    read_image(tmp_path / "absent.png")
  with pytest.raises(ValueError, match="is a directory"):
    read_image(tmp_path)
