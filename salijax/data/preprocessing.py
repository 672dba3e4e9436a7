"""Per-example geometry: random-resized crop + flip (training), resize + centre crop (eval).

Every transform is a crop box in the source image (continuous pixel
coordinates: the image spans [0, W] x [0, H]) resized to S x S with PIL, in one
`Image.resize(..., box=...)` call: bilinear (antialiased when shrinking) for the
image, or bicubic where a model's evaluation asks for it (`interpolation`,
e.g. torchvision's EfficientNet-B0 weights), nearest for the mask. The same box
maps the bounding box.

Usage:

  rng = np.random.default_rng(0)
  out = train_example(example, rng, image_size=64)   # out["image"]: f32[64, 64, 3]
  out = eval_example(example, image_size=64)
"""

import math
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

RATIO = (3 / 4, 4 / 3)
INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class Box(NamedTuple):
  """A crop box in pixels: rows [top, top + height), columns [left, left + width)."""

  top: float
  left: float
  height: float
  width: float


def random_resized_crop_box(
  rng: np.random.Generator,
  height: int,
  width: int,
  scale: tuple[float, float] = (0.08, 1.0),
  ratio: tuple[float, float] = RATIO,
) -> Box:
  """torchvision's RandomResizedCrop box.

  Up to 10 tries: area fraction uniform in `scale`, aspect ratio (w / h)
  log-uniform in `ratio`, side lengths rounded, kept if they fit, position
  uniform. Otherwise a centre crop of the whole image, clamped to `ratio`.

  Returns:
    An integer box.
  """
  area = height * width
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target_area = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(*log_ratio))
    w = round(math.sqrt(target_area * aspect))
    h = round(math.sqrt(target_area / aspect))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return Box(top, left, h, w)
  in_ratio = width / height
  if in_ratio < min(ratio):
    w, h = width, round(width / min(ratio))
  elif in_ratio > max(ratio):
    h, w = height, round(height * max(ratio))
  else:
    h, w = height, width
  return Box((height - h) // 2, (width - w) // 2, h, w)


def center_crop_box(height: int, width: int, image_size: int, crop_fraction: float) -> Box:
  """The box that "resize the shorter side to round(S / crop_fraction), then centre
  crop S x S" takes from an H x W image (as torchvision's Resize + CenterCrop)."""
  resized = round(image_size / crop_fraction)
  if height <= width:
    new_h, new_w = resized, int(resized * width / height)
  else:
    new_h, new_w = int(resized * height / width), resized
  top = round((new_h - image_size) / 2)
  left = round((new_w - image_size) / 2)
  sy, sx = height / new_h, width / new_w
  return Box(top * sy, left * sx, image_size * sy, image_size * sx)


def _resize(array: np.ndarray, box: Box, size: int, resample: Image.Resampling) -> np.ndarray:
  height, width = array.shape[:2]
  if box == (0, 0, height, width) and height == width == size:
    return array  # Pass-through: no resampling.
  pil_box = (box.left, box.top, box.left + box.width, box.top + box.height)
  return np.asarray(Image.fromarray(array).resize((size, size), resample, box=pil_box))


def crop_resize(example: dict[str, Any], box: Box, image_size: int, flip: bool,
                interpolation: str = "bilinear") -> dict[str, Any]:
  """Crops `box` from an example, resizes it to S x S and optionally flips it.

  Args:
    example: `image` uint8[H, W, 3], `label`, optional `mask` bool[H, W] and
      `bbox` f32[4] (normalised ymin, xmin, ymax, xmax).
    box: the crop, in pixels of the source image.
    image_size: S.
    flip: mirror left-right after the crop.
    interpolation: the image's resampling, a key of `INTERPOLATIONS`.

  Returns:
    `image` f32[S, S, 3] in [0, 1], `label`, and where given `mask` bool[S, S]
    (nearest) and `bbox` f32[4] (the box in crop coordinates, clipped to [0, 1];
    zero area where the object lies outside the crop).
  """
  if interpolation not in INTERPOLATIONS:
    raise ValueError(f"interpolation: expected one of {sorted(INTERPOLATIONS)}, "
                     f"got {interpolation!r}")
  image = _resize(example["image"], box, image_size, INTERPOLATIONS[interpolation])
  out = {"image": image, "label": example["label"]}
  if "mask" in example:
    mask = example["mask"].astype(np.uint8)
    out["mask"] = _resize(mask, box, image_size, Image.Resampling.NEAREST).astype(bool)
  if "bbox" in example:
    height, width = example["image"].shape[:2]
    ymin, xmin, ymax, xmax = np.asarray(example["bbox"], np.float64)
    ys = (np.array([ymin, ymax]) * height - box.top) / box.height
    xs = (np.array([xmin, xmax]) * width - box.left) / box.width
    if flip:
      xs = 1 - xs[::-1]
    out["bbox"] = np.clip([ys[0], xs[0], ys[1], xs[1]], 0, 1).astype(np.float32)
  if flip:
    out["image"] = out["image"][:, ::-1]
    if "mask" in out:
      out["mask"] = out["mask"][:, ::-1]
  out["image"] = out["image"].astype(np.float32) / 255
  return out


def train_example(
  example: dict[str, Any],
  rng: np.random.Generator,
  image_size: int,
  crop_scale: tuple[float, float] = (0.08, 1.0),
) -> dict[str, Any]:
  """Random-resized crop (area fraction in `crop_scale`, aspect ratio in 3/4..4/3)
  to S x S, then a left-right flip with probability 1/2, all drawn from `rng`."""
  height, width = example["image"].shape[:2]
  box = random_resized_crop_box(rng, height, width, crop_scale)
  return crop_resize(example, box, image_size, flip=bool(rng.random() < 0.5))


def eval_example(
  example: dict[str, Any], image_size: int, crop_fraction: float = 0.875,
  interpolation: str = "bilinear",
) -> dict[str, Any]:
  """Resize the shorter side to round(S / crop_fraction), centre crop S x S, with
  `interpolation` ("bilinear" or "bicubic").

  An S x S image with crop_fraction 1.0 passes through unchanged."""
  height, width = example["image"].shape[:2]
  box = center_crop_box(height, width, image_size, crop_fraction)
  return crop_resize(example, box, image_size, flip=False, interpolation=interpolation)
