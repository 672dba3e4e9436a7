"""Tests of salijax.perturbations.augmentation."""

import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.perturbations.augmentation import (
    Augmentation,
    augment_images,
    augment_maps,
    parse_augmentation,
    valid_pixels,
)


def random_images(batch=2, height=9, width=9, channels=3, seed=0):
  return np.random.default_rng(seed).uniform(size=(batch, height, width, channels)).astype(
      np.float32)


def reference(image, name):
  """Pixel loops in float64: each output pixel's source point and its bilinear value.

  The source points are written out from the definitions: a rotation turns the
  output pixel's offset from the centre by -d degrees as displayed (x right, y
  down); resize<f> divides the offset by f; crop<f> multiplies it by f.
  """
  kind, amount = parse_augmentation(name)
  height, width = image.shape[:2]
  cy, cx = (height - 1) / 2, (width - 1) / 2
  out = np.zeros(image.shape)
  valid = np.zeros((height, width), bool)
  for r in range(height):
    for c in range(width):
      x, y = c - cx, r - cy
      if kind == "rotate":
        t = math.radians(amount)
        sx, sy = math.cos(t) * x - math.sin(t) * y, math.sin(t) * x + math.cos(t) * y
      elif kind == "resize":
        sx, sy = x / amount, y / amount
      else:
        sx, sy = x * amount, y * amount
      row, col = cy + sy, cx + sx
      if not (-1e-3 <= row <= height - 1 + 1e-3 and -1e-3 <= col <= width - 1 + 1e-3):
        continue
      valid[r, c] = True
      row, col = min(max(row, 0.0), height - 1.0), min(max(col, 0.0), width - 1.0)
      r0, c0 = int(math.floor(row)), int(math.floor(col))
      r1, c1 = min(r0 + 1, height - 1), min(c0 + 1, width - 1)
      a, b = row - r0, col - c0
      out[r, c] = ((1 - a) * (1 - b) * image[r0, c0] + (1 - a) * b * image[r0, c1]
                   + a * (1 - b) * image[r1, c0] + a * b * image[r1, c1])
  return out, valid


def warp_atol(images: np.ndarray) -> float:
  """Bound on the float32 error of a bilinear warp of `images`: the source points (up to the
  image's size, through a rotation) round, then the four tap weights and their sum."""
  return float_tolerance.sum_atol(np.abs(images).max(), 8 * max(images.shape[1:3]) + 16)


@pytest.mark.parametrize("name", ["rotate45", "rotate135", "rotate-30", "resize0.75", "crop0.8",
                                  "crop0.5", "resize0.4"])
@pytest.mark.parametrize("shape", [(9, 9), (8, 11)])
def test_matches_the_pixel_loop_reference(name, shape):
  images = random_images(height=shape[0], width=shape[1])
  got = np.asarray(augment_images(images, name))
  valid = valid_pixels(name, *shape)
  for image, result in zip(images, got, strict=True):
    want, want_valid = reference(image.astype(np.float64), name)
    np.testing.assert_array_equal(valid, want_valid)
    np.testing.assert_allclose(result, want, rtol=0, atol=warp_atol(images))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_are_numpy_rot90(k):
  images = random_images(height=10, width=10)
  got = np.asarray(augment_images(images, f"rotate{90 * k}"))
  np.testing.assert_array_equal(got, np.rot90(images, k, axes=(1, 2)))
  assert valid_pixels(f"rotate{90 * k}", 10, 10).all()
  maps = images[..., 0]
  np.testing.assert_array_equal(np.asarray(augment_maps(maps, f"rotate{90 * k}")),
                                np.rot90(maps, k, axes=(1, 2)))


@pytest.mark.parametrize("name", ["rotate0", "rotate360", "resize1", "crop1.0"])
def test_identities_are_exact(name):
  images = random_images(height=7, width=12)
  np.testing.assert_array_equal(np.asarray(augment_images(images, name)), images)
  assert valid_pixels(name, 7, 12).all()


def test_resize_shrinks_into_a_zero_border_and_crop_keeps_every_pixel():
  # A ramp along the columns, value = column index: resize0.5 of 32 px keeps the central
  # 16 columns, whose values step by 2 (the input's columns 0..31, half as wide).
  ramp = np.broadcast_to(np.arange(32, dtype=np.float32)[None, None, :, None],
                         (1, 32, 32, 1)).copy()
  valid = valid_pixels("resize0.5", 32, 32)
  assert valid.sum() == 16 * 16 and valid[8:24, 8:24].all()
  shrunk = np.asarray(augment_images(ramp, "resize0.5"))[0, :, :, 0]
  assert np.all(shrunk[~valid] == 0.0)
  # Exact: every source point, weight and value here is a small multiple of 1/4.
  np.testing.assert_array_equal(shrunk[16, 8:24], 15.5 + 2 * (np.arange(8, 24) - 15.5))
  # crop0.5: the central 16 columns (8..23 and the half-pixels around) stretched to 32.
  cropped = np.asarray(augment_images(ramp, "crop0.5"))[0, :, :, 0]
  assert valid_pixels("crop0.5", 32, 32).all()
  np.testing.assert_array_equal(cropped[5], 15.5 + 0.5 * (np.arange(32) - 15.5))


def test_rotation_leaves_the_corners_out():
  valid = valid_pixels("rotate45", 32, 32)
  assert not valid[0, 0] and not valid[31, 31] and valid[16, 16] and valid[16, 0]
  # A rotated square keeps the pixels of the centred disc of radius 15.5.
  rows, cols = np.mgrid[:32, :32] - 15.5
  assert valid[np.hypot(rows, cols) <= 15.5].all()


def test_maps_are_warped_like_a_one_channel_image():
  images = random_images(batch=3, height=12, width=10)
  maps = images[..., 1] * 5 - 2
  for name in ("rotate45", "resize0.75", "crop0.8"):  # the same warp of the same numbers
    np.testing.assert_array_equal(np.asarray(augment_maps(maps, name)),
                                  np.asarray(augment_images(maps[..., None], name))[..., 0])


def test_batch_and_jit_invariance():
  images = random_images(batch=4, height=16, width=16, channels=2)
  whole = np.asarray(augment_images(images, "rotate135"))
  for i in range(4):
    np.testing.assert_array_equal(np.asarray(augment_images(images[i:i + 1], "rotate135"))[0],
                                  whole[i])
  jitted = jax.jit(lambda x: augment_images(x, "rotate135"))(images)
  atol = 2 * warp_atol(images)  # another program, each within the bound
  np.testing.assert_allclose(np.asarray(jitted), whole, rtol=0, atol=atol)
  maps = jax.jit(lambda m: augment_maps(m, "resize0.75"))(jnp.asarray(images[..., 0]))
  np.testing.assert_allclose(np.asarray(maps), np.asarray(augment_maps(images[..., 0],
                                                                       "resize0.75")),
                             rtol=0, atol=atol)


def test_names_are_parsed():
  assert parse_augmentation("rotate45") == Augmentation("rotate", 45.0)
  assert parse_augmentation("rotate-30.5") == Augmentation("rotate", -30.5)
  assert parse_augmentation("resize0.75") == Augmentation("resize", 0.75)
  assert parse_augmentation("crop1") == Augmentation("crop", 1.0)


@pytest.mark.parametrize("name, error", [
    ("rotate", ValueError), ("rotatex", ValueError), ("scale0.5", ValueError), ("", ValueError),
    ("resize0", ValueError), ("resize1.5", ValueError), ("crop-0.5", ValueError),
    ("crop 0.5", ValueError), ("fgsm0.03", ValueError), (45, TypeError), (None, TypeError),
])
def test_bad_names_are_named(name, error):
  with pytest.raises(error, match="name"):
    augment_images(random_images(), name)


def test_bad_arrays_are_named():
  with pytest.raises(ValueError, match="images"):
    augment_images(random_images()[0], "rotate45")
  with pytest.raises(TypeError, match="images"):
    augment_images(random_images().astype(np.int32), "rotate45")
  with pytest.raises(ValueError, match="images.*finite"):
    augment_images(np.full((1, 4, 4, 3), np.nan, np.float32), "rotate45")
  with pytest.raises(ValueError, match="maps"):
    augment_maps(random_images(), "rotate45")
  with pytest.raises(ValueError, match="height"):
    valid_pixels("rotate45", 0, 4)
