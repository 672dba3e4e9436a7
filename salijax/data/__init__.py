"""Input pipelines: datasets as random-access `Source`s, and batches for training.

source = salijax.data.load("synthetic", "train", synthetic={"image_size": 80})
for batch in salijax.data.batches(source, batch_size=128, image_size=80,
                                  training=True, seed=0, epoch=0):
  ...  # batch["image"]: f32[128, 80, 80, 3] in [0, 1], batch["label"]: i32[128]
"""

from salijax.data.batching import batches, num_batches
from salijax.data.image_file import read_image
from salijax.data.loading import load
from salijax.data.source import ArraySource, Source

__all__ = ["ArraySource", "Source", "batches", "load", "num_batches", "read_image"]
