"""Tests of `load`: the built-in synthetic dataset and argument checks."""

import numpy as np
import pytest

import salijax.data
from salijax.data import synthetic_shapes

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("data_loading")

OPTIONS = {"image_size": 24, "num_train": 16, "num_test": 6, "seed": 1}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def test_synthetic_source(data_dir):
  train = salijax.data.load("synthetic", "train", data_dir=data_dir, synthetic=OPTIONS)
  test = salijax.data.load("synthetic", "test", data_dir=data_dir, synthetic=OPTIONS)
  assert isinstance(train, salijax.data.Source)
  assert (train.name, train.split, len(train), len(test)) == ("synthetic", "train", 16, 6)
  assert train.class_names == list(synthetic_shapes.SHAPE_NAMES)
  assert train.num_classes == len(synthetic_shapes.SHAPE_NAMES)
  assert train.has_mask and train.has_bbox
  example = test[4]
  rng = synthetic_shapes.example_rng(1, "test", 4)
  expected = synthetic_shapes.draw_example(rng, 24, label=4)
  np.testing.assert_array_equal(example["image"], expected.image)
  np.testing.assert_array_equal(example["mask"], expected.mask)
  np.testing.assert_array_equal(example["bbox"], expected.bbox)
  assert example["label"] == expected.label and example["mask"].dtype == np.bool_


def test_synthetic_batches_have_masks_and_boxes(data_dir):
  source = salijax.data.load("synthetic", "test", data_dir=data_dir, synthetic=OPTIONS)
  batch = next(
    salijax.data.batches(source, batch_size=4, image_size=24, training=False, crop_fraction=1.0)
  )
  assert batch["mask"].shape == (4, 24, 24) and batch["bbox"].shape == (4, 4)
  np.testing.assert_array_equal(batch["image"][2] * 255, source[2]["image"])
  np.testing.assert_array_equal(batch["mask"][2], source[2]["mask"])


@pytest.mark.parametrize(
  "args, kwargs, error, match",
  [
    ((1, "train"), {}, TypeError, "name"),
    (("synthetic", ""), {}, TypeError, "split"),
    (("synthetic", "validation"), {}, ValueError, "split: expected 'train' or 'test'"),
    (("synthetic", "train"), {"synthetic": {"size": 3}}, ValueError, "size"),
    (("synthetic", "train"), {"synthetic": [("image_size", 32)]}, TypeError, "synthetic"),
    (("mnist", "train"), {"synthetic": {"seed": 1}}, ValueError, "synthetic: expected None"),
  ],
)
def test_bad_arguments(tmp_path, args, kwargs, error, match):
  with pytest.raises(error, match=match):
    salijax.data.load(*args, data_dir=str(tmp_path), **kwargs)
