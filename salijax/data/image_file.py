"""`read_image(path)`: one image file as f32[H, W, 3] in [0, 1], whatever its pixel format.

    image = read_image("photos/cat.jpg")      # f32[H, W, 3], values in [0, 1]

Formats: PNG, JPEG, BMP, GIF, TIFF and WebP (Pillow decodes them; GIF and
multi-page TIFF give their first frame). The EXIF orientation is applied, so
the array is the picture as a viewer shows it. Pixel formats other than 8-bit
RGB are converted, with an absl INFO line saying what was converted:

  grey (L), black and white (1)   replicated to the three channels
  16-bit grey (I;16, I)           divided by 65535 (not truncated to 8 bits)
  palette (P)                     looked up in the palette
  with alpha (RGBA, LA, PA, P     composited on white: rgb a + (1 - a), so a
  with transparency)              fully transparent pixel is 1.0
  CMYK, YCbCr, LAB, HSV           Pillow's conversion to RGB

16-bit colour PNGs are decoded by Pillow to 8 bits per channel.
"""

import os
import pathlib

import numpy as np
from absl import logging
from PIL import Image, ImageOps

# Pillow's decoders (its JPEG decoder also opens the multi-picture JPEGs that phones write).
_PIL_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
SUPPORTED_FORMATS: tuple[str, ...] = tuple(name.lower() for name in _PIL_FORMATS)
_GREY_16_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _not_readable(path: pathlib.Path, reason: str) -> ValueError:
  return ValueError(f"{path} is not an image salijax can read (supported: "
                    f"{', '.join(SUPPORTED_FORMATS)}): {reason}")


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
  return np.repeat(grey[..., None], 3, axis=-1)


def _composite_on_white(image: Image.Image) -> tuple[np.ndarray, bool]:
  """(f32[H,W,3] composited on white, whether any pixel is not fully opaque)."""
  rgba = np.asarray(image.convert("RGBA"), np.float32) / 255
  alpha = rgba[..., 3:]
  return rgba[..., :3] * alpha + (1.0 - alpha), bool((alpha < 1).any())


def _to_rgb(image: Image.Image, path: pathlib.Path) -> tuple[np.ndarray, str | None]:
  """(f32[H,W,3] in [0, 1], a description of the conversion or None for 8-bit RGB)."""
  mode = image.mode
  if mode == "RGB":
    return np.asarray(image, np.float32) / 255, None
  if mode in ("L", "1"):
    kind = "grey (L)" if mode == "L" else "black and white (1)"
    return _grey_to_rgb(np.asarray(image.convert("L"), np.float32) / 255), kind
  if mode in _GREY_16_BIT or mode == "I":
    values = np.asarray(image)
    if values.min() < 0 or values.max() > 65535:
      raise _not_readable(path, f"32-bit integer pixels (mode I) with values in "
                                f"[{values.min()}, {values.max()}], outside 16 bits")
    return _grey_to_rgb(values.astype(np.float32) / 65535), f"16-bit grey ({mode})"
  if mode == "F":
    values = np.asarray(image, np.float32)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
      raise _not_readable(path, "floating-point pixels (mode F) outside [0, 1]")
    return _grey_to_rgb(values), "floating-point grey (F)"
  if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
    rgb, transparent = _composite_on_white(image)
    kind = "palette (P)" if mode == "P" else mode
    return rgb, f"{kind}{' composited on white' if transparent else ''}"
  if mode == "P":
    return np.asarray(image.convert("RGB"), np.float32) / 255, "palette (P)"
  try:
    return np.asarray(image.convert("RGB"), np.float32) / 255, mode
  except ValueError as err:
    raise _not_readable(path, f"pixel mode {mode} ({err})") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads an image file as RGB in pixel space (see the module doc for conversions).

  Args:
    path: the image file.

  Returns:
    f32[H, W, 3] in [0, 1], EXIF orientation applied.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: `path` is a directory, or not a readable image of a supported
      format (unknown format, corrupt or truncated file, unreadable pixels);
      the message names the path and the supported formats.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"{path}: no such file")
  if path.is_dir():
    raise _not_readable(path, "it is a directory")
  try:
    with Image.open(path, formats=_PIL_FORMATS) as image:
      image.load()
      frames = getattr(image, "n_frames", 1)
      upright = ImageOps.exif_transpose(image)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
    raise _not_readable(path, str(err) or type(err).__name__) from None
  rgb, conversion = _to_rgb(upright, path)
  if frames > 1:
    logging.info("%s: using the first of %d frames", path, frames)
  if conversion is not None:
    logging.info("%s: converted %s to RGB", path, conversion)
  return np.clip(rgb, 0.0, 1.0).astype(np.float32, copy=False)
