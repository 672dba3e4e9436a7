"""Tests of the synthetic dataset's TFDS builder (no TensorFlow)."""

import os
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from salijax.data import synthetic_builder, synthetic_shapes

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("data_synthetic")

OPTIONS = {"image_size": 32, "num_train": 12, "num_test": 5, "seed": 3}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  synthetic_builder.prepared_builder(data_dir=path, **OPTIONS)
  return path


def test_round_trip_through_tfds_data_source_without_tensorflow(data_dir):
  config = synthetic_builder.shapes_config(**OPTIONS)
  for split, count in (("train", 12), ("test", 5)):
    records = tfds.data_source(
      "salijax_shapes",
      split=split,
      data_dir=data_dir,
      download=False,
      builder_kwargs={"config": config, "file_format": "array_record"},
    )
    assert len(records) == count
    for index in (0, count - 1):
      rng = synthetic_shapes.example_rng(OPTIONS["seed"], split, index)
      expected = synthetic_shapes.draw_example(rng, OPTIONS["image_size"], label=index % 10)
      record = records[index]
      assert record["image"].dtype == np.uint8
      assert record["image"].tobytes() == expected.image.tobytes()
      np.testing.assert_array_equal(record["mask"], expected.mask)
      np.testing.assert_array_equal(record["bbox"], expected.bbox)
      assert record["label"] == expected.label
  assert "tensorflow" not in sys.modules


def test_classes_cycle_so_that_splits_are_balanced(data_dir):
  builder = synthetic_builder.prepared_builder(data_dir=data_dir, **OPTIONS)
  records = builder.as_data_source("train")
  assert [records[i]["label"] for i in range(12)] == [i % 10 for i in range(12)]


def test_files_are_array_record_in_a_directory_named_after_the_options(data_dir):
  version_dir = os.path.join(
    data_dir,
    "salijax_shapes",
    "size32_train12_test5_seed3",
    str(synthetic_builder.SalijaxShapes.VERSION),
  )
  files = os.listdir(version_dir)
  assert any(".array_record" in f and "-train." in f for f in files)
  assert any(".array_record" in f and "-test." in f for f in files)


def test_second_use_reuses_the_prepared_files(data_dir):
  builder = synthetic_builder.prepared_builder(data_dir=data_dir, **OPTIONS)
  files = [os.path.join(builder.data_dir, f) for f in os.listdir(builder.data_dir)]
  before = {f: os.stat(f).st_mtime_ns for f in files}
  synthetic_builder.prepared_builder(data_dir=data_dir, **OPTIONS)
  assert {f: os.stat(f).st_mtime_ns for f in files} == before


def test_different_options_do_not_collide(data_dir):
  other = synthetic_builder.prepared_builder(data_dir=data_dir, **{**OPTIONS, "seed": 4})
  same = synthetic_builder.prepared_builder(data_dir=data_dir, **OPTIONS)
  assert other.data_dir != same.data_dir
  a, b = same.as_data_source("train")[0], other.as_data_source("train")[0]
  assert a["image"].tobytes() != b["image"].tobytes()


def test_default_config_is_the_registered_one():
  config = synthetic_builder.shapes_config(**synthetic_builder.DEFAULT_OPTIONS)
  assert config.name == synthetic_builder.SalijaxShapes.BUILDER_CONFIGS[0].name


@pytest.mark.parametrize(
  "options, error, match",
  [
    ({"colour": 1}, ValueError, "colour"),
    ({"image_size": 8}, ValueError, "image_size"),
    ({"num_train": 0}, ValueError, "num_train"),
    ({"seed": -1}, ValueError, "seed"),
    ({"num_test": 2.5}, TypeError, "num_test"),
  ],
)
def test_bad_options(tmp_path, options, error, match):
  with pytest.raises(error, match=match):
    synthetic_builder.prepared_builder(data_dir=str(tmp_path), **options)


def test_class_and_distractor_options_name_the_config_and_reach_the_examples(tmp_path):
  options = {**OPTIONS, "num_classes": 4, "max_distractors": 0}
  builder = synthetic_builder.prepared_builder(data_dir=str(tmp_path), **options)
  assert builder.builder_config.name == "size32_train12_test5_seed3_classes4_distractors0"
  assert builder.info.features["label"].names == list(synthetic_shapes.SHAPE_NAMES[:4])
  records = builder.as_data_source("test")
  for index in range(5):
    expected = synthetic_shapes.draw_example(
        synthetic_shapes.example_rng(3, "test", index), 32, label=index % 4, num_classes=4,
        max_distractors=0)
    assert records[index]["image"].tobytes() == expected.image.tobytes()


@pytest.mark.parametrize("options", [{"num_classes": 1}, {"max_distractors": 4},
                                     {"max_distractors": -1}])
def test_bad_class_and_distractor_options(tmp_path, options):
  with pytest.raises(ValueError, match=next(iter(options))):
    synthetic_builder.prepared_builder(data_dir=str(tmp_path), **options)
