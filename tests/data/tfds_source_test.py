"""Tests of reading TFDS datasets, on small builders defined and prepared here."""

import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import salijax.data
from salijax.data import tfds_source

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("data_tfds")

_NO_GCS = tfds.download.DownloadConfig(try_download_gcs=False)
_CLASSES = ["cat", "dog", "fox"]


def _pet(index: int) -> dict[str, np.ndarray]:
  """Example `index` of SalijaxTestPets: a (10 + index) x 12 image, a trimap, boxes."""
  height, width = 10 + index, 12
  rng = np.random.default_rng(index)
  trimap = rng.integers(1, 4, size=(height, width)).astype(np.uint8)
  return {
    "image": rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8),
    "label": index % 3,
    "trimap": trimap,
    "bbox": np.array([0.1, 0.2, 0.5 + index / 20, 0.9], np.float32),
  }


class SalijaxTestPets(tfds.core.GeneratorBasedBuilder):
  """Like oxford_iiit_pet: PNG images, a trimap, a part box and an object box."""

  VERSION = tfds.core.Version("1.0.0")
  code_path = tfds.core.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(None, None, 3)),
          "label": tfds.features.ClassLabel(names=_CLASSES),
          "species": tfds.features.ClassLabel(names=["feline", "canine"]),
          "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
          "bbox": tfds.features.BBoxFeature(),
          "head_bbox": tfds.features.BBoxFeature(),
          "file_name": tfds.features.Text(),
        }
      ),
      supervised_keys=("image", "label"),
      disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(range(6)), "test": self._generate_examples([6, 7])}

  def _generate_examples(self, indices):
    for i in indices:
      pet = _pet(i)
      yield (
        i,
        {
          "image": Image.fromarray(pet["image"]),
          "label": pet["label"],
          "species": 0,
          "segmentation_mask": Image.fromarray(pet["trimap"]),
          "bbox": tfds.features.BBox(*pet["bbox"]),
          "head_bbox": tfds.features.BBox(0.0, 0.0, 0.1, 0.1),
          "file_name": f"{i}.png",
        },
      )


class SalijaxTestGrey(tfds.core.GeneratorBasedBuilder):
  """Grey-scale uint8 Tensor images under another name, label named "digit"."""

  VERSION = tfds.core.Version("1.0.0")
  code_path = tfds.core.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "pixels": tfds.features.Tensor(shape=(6, 7), dtype=np.uint8),
          "digit": tfds.features.ClassLabel(num_classes=4),
        }
      ),
      disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(4):
      yield i, {"pixels": np.full((6, 7), 10 * i, np.uint8), "digit": i}


class SalijaxTestNoLabel(tfds.core.GeneratorBasedBuilder):
  """Images with captions and no class label."""

  VERSION = tfds.core.Version("1.0.0")
  code_path = tfds.core.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=(4, 4, 3), dtype=np.uint8),
          "caption": tfds.features.Text(),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    yield 0, {"image": np.zeros((4, 4, 3), np.uint8), "caption": "nothing"}


class SalijaxTestManual(tfds.core.GeneratorBasedBuilder):
  """A dataset whose files must be downloaded by hand (never prepared here)."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Register at example.org and download pictures.zip."
  code_path = tfds.core.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(None, None, 3)),
          "label": tfds.features.ClassLabel(num_classes=2),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    raise AssertionError("never prepared in these tests")

  def _generate_examples(self):
    raise AssertionError("never prepared in these tests")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  for builder_class in (SalijaxTestPets, SalijaxTestGrey, SalijaxTestNoLabel):
    builder = builder_class(data_dir=path, file_format="array_record")
    builder.download_and_prepare(download_config=_NO_GCS)
  return path


def test_reads_images_labels_and_boxes_without_tensorflow(data_dir):
  source = salijax.data.load("salijax_test_pets", "train", data_dir=data_dir)
  assert isinstance(source, salijax.data.Source)
  assert (source.name, source.split, len(source)) == ("salijax_test_pets", "train", 6)
  assert source.class_names == _CLASSES and source.num_classes == 3
  assert source.has_mask and source.has_bbox
  for index in range(6):
    expected, example = _pet(index), source[index]
    assert example["image"].dtype == np.uint8
    np.testing.assert_array_equal(example["image"], expected["image"])
    assert example["label"] == expected["label"]
    np.testing.assert_array_equal(example["bbox"], expected["bbox"])
    assert example["bbox"].dtype == np.float32
  assert "tensorflow" not in sys.modules


def test_generic_mask_rule_is_nonzero(data_dir):
  example = salijax.data.load("salijax_test_pets", "test", data_dir=data_dir)[1]
  assert example["mask"].dtype == np.bool_
  np.testing.assert_array_equal(example["mask"], _pet(7)["trimap"] != 0)


def test_pet_rule_makes_the_trimap_foreground_the_mask(data_dir, monkeypatch):
  rule = tfds_source._MASK_FOREGROUND["oxford_iiit_pet"]
  assert rule == ("segmentation_mask", (1,))
  monkeypatch.setitem(tfds_source._MASK_FOREGROUND, "salijax_test_pets", rule)
  source = salijax.data.load("salijax_test_pets", "train", data_dir=data_dir)
  for index in (0, 3):
    trimap = _pet(index)["trimap"]
    np.testing.assert_array_equal(source[index]["mask"], trimap == 1)
    assert 0 < source[index]["mask"].sum() < trimap.size


def test_grey_tensor_images_become_rgb_and_the_only_class_label_is_used(data_dir):
  source = salijax.data.load("salijax_test_grey", "train", data_dir=data_dir)
  assert source.num_classes == 4 and not source.has_mask and not source.has_bbox
  example = source[2]
  assert example["image"].shape == (6, 7, 3)
  np.testing.assert_array_equal(example["image"], np.full((6, 7, 3), 20, np.uint8))
  assert example["label"] == 2


def test_split_slices(data_dir):
  source = salijax.data.load("salijax_test_pets", "train[2:5]", data_dir=data_dir)
  assert len(source) == 3
  np.testing.assert_array_equal(source[0]["image"], _pet(2)["image"])


def test_unknown_split(data_dir):
  with pytest.raises(ValueError, match=r"split: expected one of \['test', 'train'\]"):
    salijax.data.load("salijax_test_pets", "validation", data_dir=data_dir)


def test_empty_split(data_dir):
  with pytest.raises(ValueError, match="empty"):
    salijax.data.load("salijax_test_pets", "train[3:3]", data_dir=data_dir)


def test_dataset_without_label(data_dir):
  with pytest.raises(ValueError, match="label.*ClassLabel.*caption: Text"):
    salijax.data.load("salijax_test_no_label", "train", data_dir=data_dir)


def test_unknown_dataset_suggests_close_names(tmp_path):
  with pytest.raises(ValueError, match="'salijax_test_pets'"):
    salijax.data.load("salijax_test_petz", "train", data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="'oxford_iiit_pet'"):
    salijax.data.load("oxford_iiit_pett", "train", data_dir=str(tmp_path))


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
  with pytest.raises(ValueError, match="not prepared") as error:
    salijax.data.load("salijax_test_pets", "train", data_dir=str(tmp_path))
  assert f"tfds build salijax_test_pets --data_dir={tmp_path} --file_format=array_record" in str(
    error.value
  )


def test_manual_download_says_where_to_put_the_files(tmp_path):
  with pytest.raises(ValueError, match="manual download") as error:
    salijax.data.load("salijax_test_manual", "train", data_dir=str(tmp_path))
  message = str(error.value)
  assert str(tmp_path / "downloads" / "manual") in message
  assert "pictures.zip" in message


def test_decoding_that_needs_tensorflow_says_to_install_it(data_dir, monkeypatch):
  def needs_tensorflow(self, example):
    raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

  monkeypatch.setattr(tfds.features.Image, "decode_example_np", needs_tensorflow)
  with pytest.raises(ImportError, match=r"salijax\[tf\]"):
    salijax.data.load("salijax_test_pets", "train", data_dir=data_dir)
