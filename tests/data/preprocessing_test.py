"""Tests of the per-example crops, resizes and flips."""

import numpy as np
import pytest
from PIL import Image

from salijax.data import preprocessing


def _smooth_image(height, width):
  y, x = np.mgrid[0:height, 0:width]
  channels = [128 + 100 * np.sin(x / 9 + c) * np.cos(y / 7 - c) for c in range(3)]
  return np.stack(channels, axis=-1).round().astype(np.uint8)


def _rectangle_example(height, width, rows, cols):
  mask = np.zeros((height, width), bool)
  mask[rows[0] : rows[1], cols[0] : cols[1]] = True
  bbox = np.array(
    [rows[0] / height, cols[0] / width, rows[1] / height, cols[1] / width], np.float32
  )
  return {"image": _smooth_image(height, width), "label": 3, "mask": mask, "bbox": bbox}


def _mask_extent(mask):
  rows, cols = np.nonzero(mask)
  size = mask.shape[0]
  return np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]) / size


def test_random_resized_crop_box_follows_the_area_and_ratio_ranges():
  rng = np.random.default_rng(0)
  height, width, scale = 50, 70, (0.2, 0.6)
  fractions, ratios = [], []
  for _ in range(400):
    box = preprocessing.random_resized_crop_box(rng, height, width, scale)
    assert all(float(v).is_integer() for v in box)
    assert 0 <= box.top and box.top + box.height <= height
    assert 0 <= box.left and box.left + box.width <= width
    # Rounding each side moves the area by at most about half a pixel per side.
    slack = (box.height + box.width) / 2 + 0.25
    fraction = box.height * box.width / (height * width)
    assert scale[0] - slack / (height * width) <= fraction <= scale[1] + slack / (height * width)
    ratio = box.width / box.height
    assert (
      3 / 4 * (1 - 1 / box.width) - 1 / box.height
      <= ratio
      <= 4 / 3 * (1 + 1 / box.height) + 1 / box.height
    )
    fractions.append(fraction)
    ratios.append(ratio)
  assert min(fractions) < 0.25 and max(fractions) > 0.55
  assert min(ratios) < 0.8 and max(ratios) > 1.25


def test_random_resized_crop_box_falls_back_to_a_centre_crop():
  rng = np.random.default_rng(0)
  # A whole-image crop of a 10 x 100 image is far too wide for ratio <= 4/3.
  box = preprocessing.random_resized_crop_box(rng, 10, 100, (1.0, 1.0))
  assert box == (0, (100 - 13) // 2, 10, 13)


def test_eval_matches_resize_shorter_side_then_centre_crop():
  height, width, size, fraction = 60, 80, 32, 0.8
  example = {"image": _smooth_image(height, width), "label": 1}
  out = preprocessing.eval_example(example, size, fraction)
  # Reference: resize the shorter side to 40 (80 x 60 -> 53 x 40), crop the centre.
  resized = np.asarray(
    Image.fromarray(example["image"]).resize((53, 40), Image.Resampling.BILINEAR)
  )
  top, left = round((40 - size) / 2), round((53 - size) / 2)
  reference = resized[top : top + size, left : left + size] / 255
  assert out["image"].shape == (size, size, 3) and out["image"].dtype == np.float32
  assert out["label"] == 1
  assert np.abs(out["image"] - reference).max() < 0.01  # A 1-pixel shift gives > 0.06.


def test_eval_passes_an_image_of_the_right_size_through_unchanged():
  image = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
  out = preprocessing.eval_example({"image": image, "label": 0}, 24, crop_fraction=1.0)
  np.testing.assert_array_equal(out["image"] * 255, image)
  resampled = preprocessing.eval_example({"image": image, "label": 0}, 24, crop_fraction=0.875)
  assert not np.array_equal(resampled["image"] * 255, image)


def test_identity_scale_crop_is_a_plain_slice():
  rng = np.random.default_rng(2)
  image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
  mask = rng.random((40, 40)) < 0.5
  box = preprocessing.Box(top=5, left=9, height=16, width=16)
  out = preprocessing.crop_resize({"image": image, "label": 0, "mask": mask}, box, 16, flip=False)
  np.testing.assert_array_equal(out["image"] * 255, image[5:21, 9:25])
  np.testing.assert_array_equal(out["mask"], mask[5:21, 9:25])


@pytest.mark.parametrize("flip", [False, True])
def test_mask_crop_matches_a_numpy_nearest_reference(flip):
  mask = np.random.default_rng(3).random((48, 48)) < 0.5
  example = {"image": np.zeros((48, 48, 3), np.uint8), "label": 0, "mask": mask}
  box = preprocessing.Box(top=8, left=4, height=32, width=32)
  out = preprocessing.crop_resize(example, box, 16, flip=flip)
  # Nearest at scale 2: output pixel i samples source pixel top + 2i + 1.
  reference = mask[9:40:2, 5:36:2]
  if flip:
    reference = reference[:, ::-1]
  assert out["mask"].dtype == np.bool_
  np.testing.assert_array_equal(out["mask"], reference)


def test_flip_mirrors_image_mask_and_box():
  example = _rectangle_example(40, 50, (5, 20), (8, 30))
  box = preprocessing.Box(top=2.0, left=3.0, height=30.0, width=40.0)
  plain = preprocessing.crop_resize(example, box, 20, flip=False)
  flipped = preprocessing.crop_resize(example, box, 20, flip=True)
  np.testing.assert_array_equal(flipped["image"], plain["image"][:, ::-1])
  np.testing.assert_array_equal(flipped["mask"], plain["mask"][:, ::-1])
  ymin, xmin, ymax, xmax = plain["bbox"]
  np.testing.assert_allclose(flipped["bbox"], [ymin, 1 - xmax, ymax, 1 - xmin], atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_box_follows_the_mask_through_training_crops(seed):
  example = _rectangle_example(60, 60, (20, 44), (12, 40))
  out = preprocessing.train_example(example, np.random.default_rng(seed), 30, crop_scale=(0.6, 1.0))
  assert out["mask"].any()
  np.testing.assert_allclose(out["bbox"], _mask_extent(out["mask"]), atol=1.01 / 30)


def test_box_follows_the_mask_through_eval_crops():
  example = _rectangle_example(60, 90, (10, 50), (40, 70))
  out = preprocessing.eval_example(example, 32, 0.875)
  np.testing.assert_allclose(out["bbox"], _mask_extent(out["mask"]), atol=1.01 / 32)


def test_box_cropped_away_has_zero_area():
  example = _rectangle_example(40, 40, (0, 5), (0, 5))
  box = preprocessing.Box(top=20, left=20, height=20, width=20)
  out = preprocessing.crop_resize(example, box, 10, flip=False)
  ymin, xmin, ymax, xmax = out["bbox"]
  assert (ymax - ymin) * (xmax - xmin) == 0
  assert not out["mask"].any()


def test_training_transform_depends_only_on_the_generator():
  example = _rectangle_example(50, 40, (5, 30), (8, 30))
  a = preprocessing.train_example(example, np.random.default_rng(11), 24)
  b = preprocessing.train_example(example, np.random.default_rng(11), 24)
  c = preprocessing.train_example(example, np.random.default_rng(12), 24)
  np.testing.assert_array_equal(a["image"], b["image"])
  np.testing.assert_array_equal(a["mask"], b["mask"])
  assert not np.array_equal(a["image"], c["image"])
