"""The images every method explains: a seeded sample of the evaluation split.

The data stage prepares the dataset (generating the synthetic one on first use)
and writes data/eval_set.json: the dataset indices, in increasing order, of the
`num_images` images (0: all) drawn with `numpy.random.default_rng(seed)`, their
labels and the class names: the dataset's own images, at their resolution.
Later stages rebuild any batch of them for a run with `eval_batch`, resizing
and centre-cropping each image to config.image_size (config.crop_fraction),
the geometry training evaluates with and the same for every run, with the
run's interpolation (`benchmark_config.eval_interpolation`: its checkpoint's
evaluation transform, bicubic for a pretrained EfficientNet-B0).
"""

import dataclasses
import os
import pathlib
from typing import Any

import ml_collections
import numpy as np

from salijax import data
from salijax.data import example_pool, preprocessing
from salijax.pipeline import benchmark_workdir as bw


@dataclasses.dataclass(frozen=True)
class EvaluationSet:
  """What data/eval_set.json holds."""

  dataset: str
  split: str
  indices: tuple[int, ...]  # dataset indices of the explained images
  labels: tuple[int, ...]  # their ground-truth classes
  class_names: tuple[str, ...]
  has_mask: bool
  has_bbox: bool

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, value: dict[str, Any]) -> "EvaluationSet":
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})

  def batch_indices(self, batch_size: int) -> list[np.ndarray]:
    """Positions (into `indices`) of each batch; the last one may be shorter."""
    positions = np.arange(len(self.indices))
    return [positions[i:i + batch_size] for i in range(0, len(positions), batch_size)]


def path(workdir: str | os.PathLike) -> pathlib.Path:
  """data/eval_set.json."""
  return pathlib.Path(workdir) / "data" / "eval_set.json"


def read(workdir: str | os.PathLike) -> EvaluationSet:
  """The evaluation set the data stage wrote."""
  return EvaluationSet.from_json(bw.read_json(path(workdir)))


def load_source(config: ml_collections.ConfigDict, split: str) -> data.Source:
  """The benchmark dataset's `split`."""
  synthetic = config.synthetic.to_dict() if config.dataset == "synthetic" else None
  return data.load(config.dataset, split, data_dir=config.data_dir or None, synthetic=synthetic)


def select(config: ml_collections.ConfigDict, source: data.Source) -> EvaluationSet:
  """The evaluation set of `config` from its evaluation split `source`."""
  total = len(source)
  count = config.num_images or total
  if count > total:
    raise ValueError(f"config.num_images: expected at most the {total} images of "
                     f"{source.name!r} split {source.split!r}, got {count}")
  rng = np.random.default_rng(config.seed)
  indices = np.sort(rng.choice(total, size=count, replace=False)) if count < total else (
      np.arange(total))
  labels = [int(source[int(i)]["label"]) for i in indices]
  return EvaluationSet(dataset=source.name, split=source.split,
                       indices=tuple(int(i) for i in indices), labels=tuple(labels),
                       class_names=tuple(source.class_names), has_mask=bool(source.has_mask),
                       has_bbox=bool(source.has_bbox))


def eval_batch(config: ml_collections.ConfigDict, source: data.Source,
               eval_set: EvaluationSet, positions: np.ndarray, batch_size: int,
               interpolation: str = "bilinear") -> dict[str, np.ndarray]:
  """The images at `positions` of the evaluation set, padded to `batch_size`, read and
  preprocessed by one thread per host core (`salijax.data.example_pool`), resampled with
  `interpolation` ("bilinear" or "bicubic"; the mask is resampled nearest either way).

  Returns:
    {"image": f32[batch_size,H,W,3] in [0, 1], "label": i32[..], "position": i32[..],
     "valid": bool[batch_size] (False for the padding, copies of the last image),
     "mask": bool[..,H,W] where the dataset has masks, else "bbox": f32[..,4] where
     it has boxes}.
  """
  rows = example_pool.map_examples(
      lambda p: preprocessing.eval_example(source[eval_set.indices[int(p)]], config.image_size,
                                           config.crop_fraction, interpolation), positions)
  valid = np.arange(batch_size) < len(rows)
  rows += [rows[-1]] * (batch_size - len(rows))
  padded = np.concatenate([positions, np.full(batch_size - len(positions), positions[-1])])
  batch = {"image": np.stack([r["image"] for r in rows]).astype(np.float32),
           "label": np.array([r["label"] for r in rows], np.int32),
           "position": padded.astype(np.int32), "valid": valid}
  for key in ("mask", "bbox"):
    if key in rows[0]:
      batch[key] = np.stack([r[key] for r in rows])
  return batch
