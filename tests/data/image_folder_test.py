"""Tests of image-folder datasets, made in a temporary folder with PIL."""

import os

import numpy as np
import pytest
from PIL import Image

import salijax.data


def _save(path, array, mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array, mode).save(path, lossless=True)  # lossless: for WebP.


@pytest.fixture
def pixels():
  rng = np.random.default_rng(0)
  return {
    "rgb": rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8),
    "grey": rng.integers(0, 256, size=(6, 4), dtype=np.uint8),
    "rgba": rng.integers(0, 256, size=(3, 3, 4), dtype=np.uint8),
  }


@pytest.fixture
def split_folder(tmp_path, pixels):
  """train/{bird,cat}/ and test/{cat,dog}/ with RGB, grey-scale and RGBA files."""
  _save(str(tmp_path / "train" / "cat" / "a.png"), pixels["rgb"])
  _save(str(tmp_path / "train" / "cat" / "nested" / "b.PNG"), pixels["grey"])
  _save(str(tmp_path / "train" / "bird" / "c.webp"), pixels["rgba"], "RGBA")
  (tmp_path / "train" / "bird" / "notes.txt").write_text("not an image")
  _save(str(tmp_path / "test" / "dog" / "d.bmp"), pixels["rgb"])
  _save(str(tmp_path / "test" / "cat" / "e.png"), pixels["rgba"], "RGBA")
  return tmp_path


def test_split_subfolders_and_classes_shared_across_splits(split_folder, pixels):
  train = salijax.data.load(f"folder:{split_folder}", "train")
  test = salijax.data.load(f"folder:{split_folder}", "test")
  assert isinstance(train, salijax.data.Source)
  assert train.class_names == test.class_names == ["bird", "cat", "dog"]
  assert train.num_classes == 3 and not train.has_mask and not train.has_bbox
  assert (train.name, train.split, len(train), len(test)) == (
    f"folder:{split_folder}",
    "train",
    3,
    2,
  )
  examples = [train[i] for i in range(3)]
  assert [e["label"] for e in examples] == [0, 1, 1]
  # Lossless formats: RGBA loses alpha, grey-scale is repeated to RGB.
  np.testing.assert_array_equal(examples[0]["image"], pixels["rgba"][..., :3])
  np.testing.assert_array_equal(examples[1]["image"], pixels["rgb"])
  np.testing.assert_array_equal(
    examples[2]["image"], np.repeat(pixels["grey"][..., None], 3, axis=-1)
  )
  assert [test[i]["label"] for i in range(2)] == [1, 2]
  for example in examples:
    assert example["image"].dtype == np.uint8 and example["image"].shape[-1] == 3


def test_jpeg_is_read_as_rgb(tmp_path, pixels):
  _save(str(tmp_path / "a" / "x.jpeg"), np.full((8, 8), 128, np.uint8))
  _save(str(tmp_path / "b" / "y.JPG"), pixels["rgb"])
  source = salijax.data.load(f"folder:{tmp_path}", "train")
  assert source[0]["image"].shape == (8, 8, 3)
  assert np.abs(source[0]["image"].astype(int) - 128).max() <= 2
  assert source[1]["image"].shape == (5, 7, 3)


def test_other_split_names_work_when_present(split_folder, pixels):
  _save(str(split_folder / "holdout" / "eel" / "f.png"), pixels["rgb"])
  holdout = salijax.data.load(f"folder:{split_folder}", "holdout")
  assert holdout.class_names == ["bird", "cat", "dog", "eel"]
  assert [holdout[0]["label"]] == [3]


def test_folder_without_split_subfolders_is_the_split(tmp_path, pixels):
  _save(str(tmp_path / "one" / "a.png"), pixels["rgb"])
  _save(str(tmp_path / "two" / "b.png"), pixels["rgb"])
  for split in ("train", "test"):
    source = salijax.data.load(f"folder:{tmp_path}", split)
    assert source.class_names == ["one", "two"] and len(source) == 2


def test_missing_split_lists_the_split_folders(split_folder):
  with pytest.raises(
    ValueError, match=r"split: expected one of the split folders \['test', 'train'\]"
  ):
    salijax.data.load(f"folder:{split_folder}", "validation")


def test_corrupt_file_error_names_it(tmp_path, pixels):
  _save(str(tmp_path / "cat" / "good.png"), pixels["rgb"])
  bad = tmp_path / "cat" / "broken.jpg"
  bad.write_bytes(b"\xff\xd8 this is not a jpeg")
  source = salijax.data.load(f"folder:{tmp_path}", "train")
  assert source.paths[0] == str(bad)
  with pytest.raises(ValueError, match="broken.jpg"):
    source[0]
  assert source[1]["image"].shape == (5, 7, 3)


def test_empty_class_folder(tmp_path, pixels):
  _save(str(tmp_path / "cat" / "a.png"), pixels["rgb"])
  os.makedirs(tmp_path / "dog")
  (tmp_path / "dog" / "readme.md").write_text("no images here")
  with pytest.raises(ValueError, match="dog.*no image files"):
    salijax.data.load(f"folder:{tmp_path}", "train")


def test_empty_split(tmp_path, pixels):
  _save(str(tmp_path / "train" / "cat" / "a.png"), pixels["rgb"])
  os.makedirs(tmp_path / "test")
  with pytest.raises(ValueError, match="'test'.*found none"):
    salijax.data.load(f"folder:{tmp_path}", "test")


def test_missing_folder(tmp_path):
  with pytest.raises(ValueError, match="name: expected 'folder:PATH'"):
    salijax.data.load(f"folder:{tmp_path / 'absent'}", "train")
