"""Tests of the synthetic dataset's drawing."""

import itertools

import numpy as np
import pytest

from salijax.data import synthetic_shapes

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("data_synthetic")

SIZE = 32
NUM_EXAMPLES = 120


@pytest.fixture(scope="module")
def examples():
  return [
    synthetic_shapes.draw_example(synthetic_shapes.example_rng(0, "train", i), SIZE)
    for i in range(NUM_EXAMPLES)
  ]


def _iou(a, b):
  return (a & b).sum() / (a | b).sum()


def test_same_seed_gives_identical_bytes():
  for index in (0, 5):
    a = synthetic_shapes.draw_example(synthetic_shapes.example_rng(7, "test", index), SIZE)
    b = synthetic_shapes.draw_example(synthetic_shapes.example_rng(7, "test", index), SIZE)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.mask.tobytes() == b.mask.tobytes()
    assert a.bbox.tobytes() == b.bbox.tobytes()


@pytest.mark.parametrize("other", [(8, "test", 0), (7, "train", 0), (7, "test", 1)])
def test_different_seed_split_or_index_differs(other):
  a = synthetic_shapes.draw_example(synthetic_shapes.example_rng(7, "test", 0), SIZE)
  b = synthetic_shapes.draw_example(synthetic_shapes.example_rng(*other), SIZE)
  assert a.image.tobytes() != b.image.tobytes()


def test_shapes_and_dtypes(examples):
  for example in examples[:10]:
    assert example.image.shape == (SIZE, SIZE, 3) and example.image.dtype == np.uint8
    assert example.mask.shape == (SIZE, SIZE) and example.mask.dtype == np.bool_
    assert example.bbox.shape == (4,) and example.bbox.dtype == np.float32
    assert 0 <= example.label < len(synthetic_shapes.SHAPE_NAMES)
    num = len(example.distractor_labels)
    assert example.distractor_masks.shape == (num, SIZE, SIZE)


def test_at_least_ten_classes_all_present(examples):
  assert len(synthetic_shapes.SHAPE_NAMES) >= 10
  assert len(set(synthetic_shapes.SHAPE_NAMES)) == len(synthetic_shapes.SHAPE_NAMES)
  assert {e.label for e in examples} == set(range(len(synthetic_shapes.SHAPE_NAMES)))


def test_bbox_is_the_extent_of_the_mask(examples):
  for example in examples:
    rows, cols = np.nonzero(example.mask)
    expected = np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]) / SIZE
    np.testing.assert_allclose(example.bbox, expected, rtol=0, atol=1e-6)


def test_object_is_whole_and_inside_the_image(examples):
  pad = 20
  for example in examples:
    assert example.mask.any()
    cy, cx = example.center
    assert example.radius <= cy <= SIZE - example.radius
    assert example.radius <= cx <= SIZE - example.radius
    # The same shape drawn on a larger canvas loses no pixel to the image border.
    name = synthetic_shapes.SHAPE_NAMES[example.label]
    padded = synthetic_shapes.shape_mask(
      name, SIZE + 2 * pad, (cy + pad, cx + pad), example.radius, example.angle
    )
    np.testing.assert_array_equal(padded[pad:-pad, pad:-pad], example.mask)
    assert padded.sum() == example.mask.sum()


def test_object_is_painted_in_one_colour_that_contrasts(examples):
  for example in examples:
    pixels = example.image[example.mask].astype(float)
    noise = synthetic_shapes.PIXEL_NOISE
    assert np.ptp(pixels, axis=0).max() <= 2 * noise + 1
    ring = np.zeros_like(example.mask)
    rows, cols = np.nonzero(example.mask)
    ring[max(rows.min() - 3, 0) : rows.max() + 4, max(cols.min() - 3, 0) : cols.max() + 4] = True
    ring &= ~example.mask
    for d_mask in example.distractor_masks:
      ring &= ~d_mask
    if ring.sum() > 20:
      gap = np.abs(np.median(example.image[ring], axis=0) - np.median(pixels, axis=0))
      assert np.linalg.norm(gap) > 30


def test_distractors_are_other_shapes_smaller_and_outside_the_mask(examples):
  counts = set()
  for example in examples:
    counts.add(len(example.distractor_labels))
    assert 1 <= len(example.distractor_labels) <= synthetic_shapes.MAX_DISTRACTORS
    assert example.label not in example.distractor_labels
    for d_mask in example.distractor_masks:
      assert d_mask.any()
      assert not (d_mask & example.mask).any()
      assert d_mask.sum() < example.mask.sum()
      rows, cols = np.nonzero(d_mask)
      assert max(np.ptp(rows), np.ptp(cols)) < max(
        np.ptp(np.nonzero(example.mask)[0]), np.ptp(np.nonzero(example.mask)[1])
      )
  assert counts == {1, 2, 3}


def test_size_ranges_order_every_pair_of_shapes_by_area():
  size, radius = 200, 80.0
  areas = {
    name: synthetic_shapes.shape_mask(name, size, (100, 100), radius, 0.0).sum() / radius**2
    for name in synthetic_shapes.SHAPE_NAMES
  }
  smallest_object = min(areas.values()) * synthetic_shapes.OBJECT_RADIUS[0] ** 2
  largest_distractor = max(areas.values()) * synthetic_shapes.DISTRACTOR_RADIUS[1] ** 2
  assert smallest_object > 1.2 * largest_distractor


def test_circle_matches_the_analytic_disk():
  center, radius = (13.3, 17.8), 9.4
  mask = synthetic_shapes.shape_mask("circle", SIZE, center, radius, 1.0)
  y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
  np.testing.assert_array_equal(mask, (y - center[0]) ** 2 + (x - center[1]) ** 2 <= radius**2)


def test_rotating_a_square_by_a_quarter_turn_changes_nothing():
  a = synthetic_shapes.shape_mask("square", SIZE, (16, 16), 10.0, 0.1)
  b = synthetic_shapes.shape_mask("square", SIZE, (16, 16), 10.0, 0.1 + np.pi / 2)
  assert _iou(a, b) > 0.97


def test_every_shape_touches_its_extent_circle():
  size, radius = 200, 80.0
  y, x = np.mgrid[0:size, 0:size] + 0.5
  for name in synthetic_shapes.SHAPE_NAMES:
    mask = synthetic_shapes.shape_mask(name, size, (100, 100), radius, 0.4)
    distance = np.hypot(y[mask] - 100, x[mask] - 100).max()
    assert 0.97 * radius <= distance <= radius, name


def test_shapes_are_distinct():
  size, radius = 128, 50.0
  masks = {
    name: synthetic_shapes.shape_mask(name, size, (64, 64), radius, 0.0)
    for name in synthetic_shapes.SHAPE_NAMES
  }
  for a, b in itertools.combinations(synthetic_shapes.SHAPE_NAMES, 2):
    # The same size and pose, and the second shape at other rotations.
    for angle in np.linspace(0, 2 * np.pi, 12, endpoint=False):
      rotated = synthetic_shapes.shape_mask(b, size, (64, 64), radius, angle)
      assert _iou(masks[a], rotated) < 0.8, (a, b, angle)


def test_label_argument_sets_the_class_object():
  for label in (0, 9):
    example = synthetic_shapes.draw_example(
      synthetic_shapes.example_rng(2, "train", 0), SIZE, label
    )
    assert example.label == label
    name = synthetic_shapes.SHAPE_NAMES[label]
    redrawn = synthetic_shapes.shape_mask(name, SIZE, example.center, example.radius, example.angle)
    np.testing.assert_array_equal(redrawn, example.mask)


def test_bad_arguments():
  with pytest.raises(ValueError, match="shape"):
    synthetic_shapes.shape_mask("blob", SIZE, (16, 16), 5.0, 0.0)
  with pytest.raises(ValueError, match="image_size"):
    synthetic_shapes.draw_example(synthetic_shapes.example_rng(0, "train", 0), 8)
  with pytest.raises(ValueError, match="label"):
    synthetic_shapes.draw_example(synthetic_shapes.example_rng(0, "train", 0), SIZE, 10)
  with pytest.raises(ValueError, match="split"):
    synthetic_shapes.example_rng(0, "validation", 0)


def test_num_classes_limits_the_class_objects_and_the_distractors():
  for index in range(40):
    example = synthetic_shapes.draw_example(
        synthetic_shapes.example_rng(1, "train", index), SIZE, num_classes=3)
    assert example.label < 3 and all(d < 3 for d in example.distractor_labels)
  with pytest.raises(ValueError, match="num_classes"):
    synthetic_shapes.draw_example(synthetic_shapes.example_rng(0, "train", 0), SIZE,
                                  num_classes=1)


@pytest.mark.parametrize("max_distractors", [0, 1, 2])
def test_max_distractors_caps_the_distractors(max_distractors):
  counts = set()
  for index in range(40):
    example = synthetic_shapes.draw_example(
        synthetic_shapes.example_rng(1, "train", index), SIZE, max_distractors=max_distractors)
    counts.add(len(example.distractor_labels))
    assert example.distractor_masks.shape == (len(example.distractor_labels), SIZE, SIZE)
  assert max(counts) == max_distractors and (max_distractors == 0 or min(counts) >= 1)


def test_bad_max_distractors():
  for value in (-1, synthetic_shapes.MAX_DISTRACTORS + 1):
    with pytest.raises(ValueError, match="max_distractors"):
      synthetic_shapes.draw_example(synthetic_shapes.example_rng(0, "train", 0), SIZE,
                                    max_distractors=value)
