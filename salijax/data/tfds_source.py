"""Reads a prepared TFDS dataset as a `Source`, with `tfds.data_source`.

The dataset must be prepared as array_record (random access); salijax never
downloads or prepares a TFDS dataset other than its own synthetic one, it says
how to. No TensorFlow is needed to read: `Tensor`, `ClassLabel` and `BBoxFeature`
features decode with NumPy, `Image` features with PIL; where a feature would
need TensorFlow, `load_tfds` raises an ImportError that says to install the
`tf` extra.

Features are mapped to the example dict of `Source` as follows:

- image: the supervised input (`supervised_keys[0]`), else the feature named
  "image", else the only image feature (uint8 `Image`, or uint8 `Tensor` of
  rank 2 or 3); grey-scale is repeated to RGB, an alpha channel is dropped.
- label: the supervised target, else "label", else the only `ClassLabel`.
- mask: oxford_iiit_pet: `segmentation_mask == 1` (the pet; trimap values 2 and
  3 are background and border); other datasets: a feature named "mask" or
  "segmentation_mask", nonzero = object.
- bbox: a top-level `BBoxFeature` (or f32[4] `Tensor`) named "bbox", one box per
  image. Other boxes are not mapped: part boxes (oxford_iiit_pet's "head_bbox")
  and sequences of boxes (`objects/bbox`, a variable number per image).
"""

import difflib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import constants
from tensorflow_datasets.core.registered import DatasetNotFoundError

# Dataset name -> (mask feature, the values that are the labelled object).
_MASK_FOREGROUND: dict[str, tuple[str, tuple[int, ...]]] = {
  "oxford_iiit_pet": ("segmentation_mask", (1,)),
}
_MASK_KEYS = ("mask", "segmentation_mask")
_BBOX_KEY = "bbox"


class TfdsSource:
  """A `Source` over a split of a prepared TFDS dataset (see the module doc)."""

  def __init__(
    self,
    records: Sequence[dict[str, Any]],
    *,
    name: str,
    split: str,
    class_names: list[str],
    image_key: str,
    label_key: str,
    mask_key: str | None,
    mask_values: tuple[int, ...] | None,
    bbox_key: str | None,
  ):
    """Wraps `records` (a `tfds.data_source` split).

    Args:
      records: the decoded examples of the split.
      name: the dataset name, as given to `load`.
      split: the split, as given to `load`.
      class_names: the label names.
      image_key, label_key: the features that hold the image and the label.
      mask_key: the feature that holds the mask, or None.
      mask_values: the mask values that are the object; None: nonzero.
      bbox_key: the feature that holds the box, or None.
    """
    self.name = name
    self.split = split
    self.class_names = class_names
    self.num_classes = len(class_names)
    self.has_mask = mask_key is not None
    self.has_bbox = bbox_key is not None
    self._records = records
    self._image_key, self._label_key = image_key, label_key
    self._mask_key, self._mask_values, self._bbox_key = mask_key, mask_values, bbox_key

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self._records[index]
    image = np.asarray(record[self._image_key])
    if image.ndim == 2:
      image = image[..., None]
    if image.shape[-1] == 1:
      image = np.repeat(image, 3, axis=-1)
    example = {"image": image[..., :3], "label": int(record[self._label_key])}
    if self._mask_key is not None:
      mask = np.asarray(record[self._mask_key])
      if mask.ndim == 3:
        mask = mask[..., 0]
      example["mask"] = mask != 0 if self._mask_values is None else np.isin(mask, self._mask_values)
      if example["mask"].shape != image.shape[:2]:
        raise ValueError(
          f"{self.name}[{index}]: mask {self._mask_key!r} has shape"
          f" {list(example['mask'].shape)}, the image {list(image.shape[:2])}"
        )
    if self._bbox_key is not None:
      example["bbox"] = np.asarray(record[self._bbox_key], dtype=np.float32)
    return example


def _is_image(feature: Any) -> bool:
  if isinstance(feature, tfds.features.Image):
    return feature.np_dtype == np.uint8 and feature.shape[-1] in (1, 3, 4)
  shape = getattr(feature, "shape", ())
  return (
    isinstance(feature, tfds.features.Tensor)
    and not isinstance(feature, tfds.features.ClassLabel)
    and feature.np_dtype == np.uint8
    and (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4)))
  )


def _is_mask(feature: Any) -> bool:
  shape = getattr(feature, "shape", ())
  return isinstance(feature, (tfds.features.Image, tfds.features.Tensor)) and (
    len(shape) == 2 or (len(shape) == 3 and shape[-1] == 1)
  )


def _is_box(feature: Any) -> bool:
  return (
    isinstance(feature, tfds.features.Tensor)
    and feature.shape == (4,)
    and feature.np_dtype == np.float32
  )


def _feature_keys(info: tfds.core.DatasetInfo, dataset: str) -> dict[str, Any]:
  """Which features hold the image, label, mask and box (see the module doc)."""
  features = dict(info.features.items())
  listing = ", ".join(f"{key}: {type(f).__name__}" for key, f in features.items())
  supervised = tuple(info.supervised_keys or ())
  if len(supervised) != 2 or not all(isinstance(k, str) for k in supervised):
    supervised = (None, None)

  def pick(kind: str, test: Any, preferred: list[str | None], expected: str) -> str:
    candidates = [key for key, feature in features.items() if test(feature)]
    for key in preferred:
      if key in candidates:
        return key
    if len(candidates) == 1:
      return candidates[0]
    raise ValueError(
      f"TFDS dataset {dataset!r}: expected one {kind} feature ({expected}), found"
      f" {candidates or 'none'}. Its features: {listing}"
    )

  keys = {
    "image_key": pick("image", _is_image, [supervised[0], "image"], "uint8 Image or Tensor"),
    "label_key": pick(
      "label",
      lambda f: isinstance(f, tfds.features.ClassLabel),
      [supervised[1], "label"],
      "ClassLabel",
    ),
    "mask_key": None,
    "mask_values": None,
    "bbox_key": None,
  }
  if info.name in _MASK_FOREGROUND:
    keys["mask_key"], keys["mask_values"] = _MASK_FOREGROUND[info.name]
  else:
    keys["mask_key"] = next(
      (key for key in _MASK_KEYS if key in features and _is_mask(features[key])), None
    )
  if _BBOX_KEY in features and _is_box(features[_BBOX_KEY]):
    keys["bbox_key"] = _BBOX_KEY
  return keys


def _data_dir_root(data_dir: str | None) -> str:
  return os.path.expanduser(data_dir) if data_dir else constants.get_default_data_dir()


def _build_command(name: str, data_dir: str | None) -> str:
  return f"tfds build {name} --data_dir={_data_dir_root(data_dir)} --file_format=array_record"


def _not_prepared_error(builder: Any, name: str, data_dir: str | None) -> ValueError:
  root = _data_dir_root(data_dir)
  tools = (
    "TensorFlow, which most image datasets need to encode their images (pip install 'salijax[tf]')"
  )
  offline = (
    f"To use it on an offline machine, copy {os.path.join(root, builder.name)} to"
    f" that machine's data dir. salijax itself never downloads TFDS datasets."
  )
  if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
    manual_dir = os.path.join(root, "downloads", "manual")
    return ValueError(
      f"TFDS dataset {name!r} is not prepared in {builder.data_dir} and needs a"
      f" manual download:\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}\n"
      f"Put the files in {manual_dir}, then prepare it once, with {tools}:\n"
      f"  {_build_command(name, data_dir)}\n{offline}"
    )
  return ValueError(
    f"TFDS dataset {name!r} is not prepared in {builder.data_dir}. Prepare it once,"
    f" on a machine with network access and {tools}:\n"
    f"  {_build_command(name, data_dir)}\n{offline}"
  )


def source_from_builder(builder: Any, *, name: str, split: str, data_dir: str | None) -> TfdsSource:
  """The `Source` for `split` of a prepared builder (errors say what to do).

  Args:
    builder: a `tfds.core.DatasetBuilder`.
    name: the dataset name, as given to `load` (used in messages and `Source.name`).
    split: a split of the dataset; TFDS slicing works ("train[:80%]").
    data_dir: the data dir given to `load` (for messages).

  Returns:
    The source; its first example has been decoded.
  """
  if not builder.is_prepared():
    raise _not_prepared_error(builder, name, data_dir)
  info = builder.info
  random_access = tfds.core.file_adapters.FileFormat.with_random_access()
  if not info.available_file_formats() & random_access:
    raise ValueError(
      f"TFDS dataset {name!r} is prepared in {builder.data_dir} as"
      f" {sorted(f.value for f in info.available_file_formats())}, which has no"
      f" random access; convert it with\n  tfds convert_format"
      f" --dataset_dir={builder.data_dir} --out_file_format=array_record\n"
      f"or rebuild it with\n  {_build_command(name, data_dir)}"
    )
  keys = _feature_keys(info, name)
  splits = sorted(info.splits.keys())
  try:
    num_examples = info.splits[split].num_examples
  except (KeyError, ValueError) as error:
    raise ValueError(
      f"split: expected one of {splits} (or a TFDS slice of one, e.g. 'train[:80%]')"
      f" for TFDS dataset {name!r}, got {split!r}"
    ) from error
  if not num_examples:
    raise ValueError(f"split: {split!r} of TFDS dataset {name!r} is empty")
  records = builder.as_data_source(split=split)
  class_names = list(info.features[keys["label_key"]].names)
  source = TfdsSource(records, name=name, split=split, class_names=class_names, **keys)
  try:
    source[0]
  except ImportError as error:
    raise ImportError(
      f"Decoding TFDS dataset {name!r} needs TensorFlow ({error}); install it"
      f" with: pip install 'salijax[tf]'"
    ) from error
  return source


def _known_names(data_dir: str | None) -> list[str]:
  names = set(tfds.list_builders(with_community_datasets=False))
  root = _data_dir_root(data_dir)
  if os.path.isdir(root):
    names.update(entry for entry in os.listdir(root) if not entry.startswith("."))
  return sorted(names - {"downloads"})


def load_tfds(name: str, split: str, *, data_dir: str | None = None) -> TfdsSource:
  """Reads `split` of the prepared TFDS dataset `name` (see the module doc).

  Args:
    name: a TFDS name, optionally with config and version ("name/config:1.0.0").
    split: a split, or a TFDS slice of one ("train[:80%]").
    data_dir: the TFDS data dir; None: $TFDS_DATA_DIR or ~/tensorflow_datasets.

  Returns:
    The source.
  """
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except DatasetNotFoundError:
    base = name.split("/")[0].split(":")[0]
    close = difflib.get_close_matches(base, _known_names(data_dir) + ["synthetic"], n=5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
      f"name: unknown dataset {name!r}.{hint} Expected a TFDS dataset name (see"
      f" tfds.list_builders()), 'synthetic' (the built-in dataset) or 'folder:PATH'"
      f" (an image folder)."
    ) from None
  return source_from_builder(builder, name=name, split=split, data_dir=data_dir)
