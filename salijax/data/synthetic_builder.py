"""The built-in synthetic dataset as a TFDS builder: `salijax_shapes`.

The examples come from `synthetic_shapes` (one large shape per image, its
segmentation mask and bounding box, see that module). The builder writes
array_record files that `tfds.data_source` reads, and needs no TensorFlow: every
feature is a `tfds.features.Tensor` (ZLIB-compressed) or a `ClassLabel`.

Each set of options (image size, split sizes, seed) is its own builder config,
named after the options (e.g. `size96_train2000_test500_seed0`), so different
options never share a directory: DATA_DIR/salijax_shapes/<config>/<version>/.

Usage:

  # Generated in seconds without network on first use, reused afterwards:
  builder = prepared_builder(image_size=64, num_train=512, num_test=128, seed=0,
                             data_dir="/tmp/tfds")
  train = builder.as_data_source("train")   # train[0]["image"]: uint8[64, 64, 3]
"""

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from salijax.data import synthetic_shapes

DEFAULT_OPTIONS = {"image_size": 96, "num_train": 2000, "num_test": 500, "seed": 0,
                   "num_classes": len(synthetic_shapes.SHAPE_NAMES),
                   "max_distractors": synthetic_shapes.MAX_DISTRACTORS}


@dataclasses.dataclass(eq=False, kw_only=True)
class ShapesConfig(tfds.core.BuilderConfig):
  """Options of the synthetic dataset; the config name is derived from them."""

  image_size: int = DEFAULT_OPTIONS["image_size"]
  num_train: int = DEFAULT_OPTIONS["num_train"]
  num_test: int = DEFAULT_OPTIONS["num_test"]
  seed: int = DEFAULT_OPTIONS["seed"]
  num_classes: int = DEFAULT_OPTIONS["num_classes"]
  max_distractors: int = DEFAULT_OPTIONS["max_distractors"]


def shapes_config(image_size: int, num_train: int, num_test: int, seed: int,
                  num_classes: int = DEFAULT_OPTIONS["num_classes"],
                  max_distractors: int = DEFAULT_OPTIONS["max_distractors"]) -> ShapesConfig:
  """The config for these options, named after them (num_classes and
  max_distractors only when not the default)."""
  checks = {
    "image_size": (image_size, 16),
    "num_train": (num_train, 1),
    "num_test": (num_test, 1),
    "seed": (seed, 0),
    "num_classes": (num_classes, 2),
    "max_distractors": (max_distractors, 0),
  }
  for name, (value, low) in checks.items():
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise TypeError(f"synthetic[{name!r}]: expected an int, got {value!r}")
    if value < low:
      raise ValueError(f"synthetic[{name!r}]: expected >= {low}, got {value}")
  all_classes = len(synthetic_shapes.SHAPE_NAMES)
  if num_classes > all_classes:
    raise ValueError(f"synthetic['num_classes']: expected <= {all_classes}, got {num_classes}")
  if max_distractors > synthetic_shapes.MAX_DISTRACTORS:
    raise ValueError(f"synthetic['max_distractors']: expected <= "
                     f"{synthetic_shapes.MAX_DISTRACTORS}, got {max_distractors}")
  classes = "" if num_classes == all_classes else f"_classes{num_classes}"
  if max_distractors != DEFAULT_OPTIONS["max_distractors"]:
    classes += f"_distractors{max_distractors}"
  return ShapesConfig(
    name=f"size{image_size}_train{num_train}_test{num_test}_seed{seed}{classes}",
    description=(
      f"{image_size}x{image_size} images, {num_train} train and {num_test} test"
      f" examples, seed {seed}, {num_classes} classes, up to {max_distractors}"
      " distractors."
    ),
    num_classes=int(num_classes),
    image_size=int(image_size),
    num_train=int(num_train),
    num_test=int(num_test),
    seed=int(seed),
    max_distractors=int(max_distractors),
  )


class SalijaxShapes(tfds.core.GeneratorBasedBuilder):
  """Textured images with one large shape (the label) and smaller distractors."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Ten shapes, value-noise/stripe/gradient backgrounds."}
  BUILDER_CONFIGS = [shapes_config(**DEFAULT_OPTIONS)]
  # TFDS 4.9.10 finds a packaged builder's code through the `importlib_resources`
  # backport, which it only requires on Python < 3.9; giving the path directly
  # avoids it (the path is only used to look for a checksums file).
  code_path = tfds.core.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    zlib = tfds.features.Encoding.ZLIB
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        "Textured images, each with one large shape (the label, with its mask and"
        " bounding box) and up to three (max_distractors) smaller distractor shapes."
      ),
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=(size, size, 3), dtype=np.uint8, encoding=zlib),
          "label": tfds.features.ClassLabel(
            names=list(synthetic_shapes.SHAPE_NAMES[: self.builder_config.num_classes])
          ),
          "mask": tfds.features.Tensor(shape=(size, size), dtype=np.bool_, encoding=zlib),
          "bbox": tfds.features.Tensor(shape=(4,), dtype=np.float32),
        }
      ),
      supervised_keys=("image", "label"),
      disable_shuffling=True,  # Example i of a split is drawn from (seed, split, i).
    )

  def _split_generators(self, dl_manager: Any) -> Mapping[str, Iterator]:
    del dl_manager  # Generated locally.
    config = self.builder_config
    return {
      "train": self._generate_examples("train", config.num_train),
      "test": self._generate_examples("test", config.num_test),
    }

  def _generate_examples(self, split: str, count: int) -> Iterator[tuple[int, dict]]:
    config = self.builder_config
    for index in range(count):
      rng = synthetic_shapes.example_rng(config.seed, split, index)
      # Cycling through the classes balances every split and every prefix of it.
      label = index % config.num_classes
      example = synthetic_shapes.draw_example(
        rng, config.image_size, label, num_classes=config.num_classes,
        max_distractors=config.max_distractors,
      )
      yield (
        index,
        {
          "image": example.image,
          "label": example.label,
          "mask": example.mask,
          "bbox": example.bbox,
        },
      )


def prepared_builder(*, data_dir: str | None = None, **options: int) -> SalijaxShapes:
  """The builder for `options`, generated into `data_dir` on first use.

  Args:
    data_dir: the TFDS data directory; None: TFDS's default
      (`$TFDS_DATA_DIR` or ~/tensorflow_datasets).
    **options: image_size, num_train, num_test, seed, num_classes (the first
      num_classes shapes of `synthetic_shapes.SHAPE_NAMES`), max_distractors (keys of
      DEFAULT_OPTIONS; missing ones take their default).

  Returns:
    The prepared builder (array_record files); `as_data_source(split)` reads it.
  """
  unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
  if unknown:
    raise ValueError(
      f"synthetic: unknown options {unknown}; expected keys among {sorted(DEFAULT_OPTIONS)}"
    )
  config = shapes_config(**{**DEFAULT_OPTIONS, **options})
  if config.name == SalijaxShapes.BUILDER_CONFIGS[0].name:
    config = SalijaxShapes.BUILDER_CONFIGS[0]  # The registered one (no TFDS warning).
  builder = SalijaxShapes(config=config, data_dir=data_dir, file_format="array_record")
  # try_download_gcs=False: never look for a prepared copy on the network.
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder
