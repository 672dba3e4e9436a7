"""A local stand-in for TFDS's prepared `imagenet2012`: its own builder, fed given JPEGs.

TFDS's imagenet2012 builder (features, class list, version, file names) with
its validation split generated from JPEG bytes given here instead of the
manual-download tar, prepared as array_record into a data dir. Afterwards
`tfds.builder("imagenet2012", data_dir=...)`, and so `salijax.data.load`, read
it as they read the real one. No TensorFlow and no network: JPEG bytes are
stored as they are. The tests of experiments/configs/imagenet_val.py and the
input-pipeline benchmark use it.

  data_dir = prepare(tmp_path, [(photo_like_jpeg(rng, 375, 500), 65), ...])
  source = salijax.data.load("imagenet2012", "validation", data_dir=data_dir)
"""

import inspect
import io
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

NAME = "imagenet2012"
SPLIT = "validation"


def photo_like_jpeg(rng: np.random.Generator, height: int, width: int,
                    quality: int = 90, grain: float = 26.0) -> bytes:
  """A JPEG of smooth colour regions, hard-edged discs and grain. The grain sets the entropy,
  and so the file size and the decoding time: with the defaults a 500 x 375 image takes
  ~110 KB, as ImageNet's photos do (its validation tar holds 6.7 GB for 50,000 images).

  Args:
    rng: the randomness.
    height, width: the image's size in pixels.
    quality: the JPEG quality.
    grain: the standard deviation of the per-pixel noise, in 0-255 levels.

  Returns:
    The encoded bytes of a uint8[height, width, 3] image.
  """
  coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
  image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC),
                     np.float32)
  rows, cols = np.mgrid[0:height, 0:width]
  for _ in range(4):  # objects: discs of another colour with hard edges
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    radius = rng.uniform(0.1, 0.3) * min(height, width)
    inside = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
    image[inside] = image[inside] * 0.4 + rng.uniform(0, 255, 3) * 0.6
  image += rng.normal(0, grain, image.shape)
  buffer = io.BytesIO()
  Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
  return buffer.getvalue()


def prepare(data_dir: str | os.PathLike, examples: Sequence[tuple[bytes, int]]) -> str:
  """Prepares `imagenet2012`'s validation split of `examples` into `data_dir`.

  Args:
    data_dir: the TFDS data dir to write DATA_DIR/imagenet2012/<version>/ into.
    examples: (JPEG bytes, ImageNet class index in [0, 1000)) per image, in order.

  Returns:
    `data_dir` as a string.
  """
  real = tfds.builder_cls(NAME)

  with tfds.core.registered.skip_registration():

    class StandIn(real):
      """imagenet2012 with its validation split from `examples`."""

      name = NAME
      # Given, as salijax_shapes does: TFDS 4.9.10 otherwise looks for it through the
      # `importlib_resources` backport, which it only requires on Python < 3.9.
      code_path = tfds.core.Path(inspect.getfile(real))

      def _split_generators(self, dl_manager: object) -> dict[str, Iterator]:
        del dl_manager  # no manual download
        return {SPLIT: self._stand_in_examples()}

      def _stand_in_examples(self) -> Iterator[tuple[str, dict]]:
        for index, (jpeg, label) in enumerate(examples):
          file_name = f"ILSVRC2012_val_{index + 1:08d}.JPEG"
          yield file_name, {"file_name": file_name, "image": jpeg, "label": int(label)}

  builder = StandIn(data_dir=os.fspath(data_dir), file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return os.fspath(data_dir)
