"""`load`: a dataset split by name, as a `Source`.

load("synthetic", "train", synthetic={"image_size": 64})  # built-in, generated once
load("folder:/data/pets", "test")                          # image folder
load("oxford_iiit_pet", "train", data_dir="~/tfds")        # prepared TFDS dataset
"""

from collections.abc import Mapping

from salijax.data import image_folder, synthetic_builder, tfds_source
from salijax.data.source import Source

SYNTHETIC = "synthetic"
FOLDER_PREFIX = "folder:"


def load(
  name: str,
  split: str,
  *,
  data_dir: str | None = None,
  synthetic: Mapping[str, int] | None = None,
) -> Source:
  """Loads a split of a dataset.

  Args:
    name: "synthetic": the built-in dataset (`synthetic_builder`), generated into
      `data_dir` on first use, then reused; "folder:PATH": an image folder
      (`image_folder` states the layout rule); any other name: a TFDS dataset
      prepared as array_record in `data_dir` (`tfds_source`).
    split: "train" or "test" for the synthetic dataset; a split folder or any name
      for an image folder; a TFDS split or slice ("train[:80%]").
    data_dir: the TFDS data dir (synthetic and TFDS datasets); None: TFDS's
      default, $TFDS_DATA_DIR or ~/tensorflow_datasets.
    synthetic: options of the synthetic dataset: image_size, num_train,
      num_test, seed (missing ones take `synthetic_builder.DEFAULT_OPTIONS`).

  Returns:
    The source: `len`, `source[i]` -> {"image": uint8[H, W, 3], "label": int,
    and "mask": bool[H, W] / "bbox": f32[4] where `has_mask` / `has_bbox`}.
  """
  if not isinstance(name, str) or not name:
    raise TypeError(f"name: expected a non-empty str, got {name!r}")
  if not isinstance(split, str) or not split:
    raise TypeError(f"split: expected a non-empty str, got {split!r}")
  if synthetic is not None and name != SYNTHETIC:
    raise ValueError(f"synthetic: expected None for dataset {name!r}, got {dict(synthetic)}")
  if name == SYNTHETIC:
    if split not in ("train", "test"):
      raise ValueError(
        f"split: expected 'train' or 'test' for the synthetic dataset, got {split!r}"
      )
    if synthetic is not None and not isinstance(synthetic, Mapping):
      raise TypeError(f"synthetic: expected a mapping of options, got {synthetic!r}")
    builder = synthetic_builder.prepared_builder(data_dir=data_dir, **dict(synthetic or {}))
    return tfds_source.source_from_builder(builder, name=name, split=split, data_dir=data_dir)
  if name.startswith(FOLDER_PREFIX):
    return image_folder.load_image_folder(name[len(FOLDER_PREFIX) :], split, name=name)
  return tfds_source.load_tfds(name, split, data_dir=data_dir)
