"""Batches of preprocessed examples from a `Source`, reproducible from (seed, epoch).

Training (`training=True`): the order is a permutation drawn from (seed, epoch)
only; the incomplete last batch is dropped; each example gets a random-resized
crop and a left-right flip drawn from (seed, epoch, example index) only. So
batch k of an epoch can be recomputed alone: resuming with `start_batch=k`
yields exactly what an uninterrupted iteration yields from batch k on.

Evaluation (`training=False`): dataset order; resize + centre crop; the last
batch is padded to `batch_size` by repeating the last example, with
`valid=False` on the padding rows.

With `share=(i, n)` a batch holds only the rows of process i of n: its
contiguous block of the batch's rows, the only examples that process reads
(the blocks of `salijax.parallel.process_share`: in process order, their
sizes differing by at most one, the first ones larger).

Each batch is a dict of NumPy arrays:

  image: f32[B, S, S, 3] in [0, 1]
  label: i32[B]
  valid: bool[B]
  index: i32[B]         the example's index in the source
  mask:  bool[B, S, S]  where the source has masks (same crop, nearest)
  bbox:  f32[B, 4]      where the source has boxes: (ymin, xmin, ymax, xmax) in the
                        crop, clipped to [0, 1] (zero area if cropped away)

A background thread prepares the next `prefetch` batches while the caller works,
the examples of each batch read and preprocessed by a pool of threads, one per
host core by default (`example_pool`: one core keeps up with neither a GPU's
forwards nor its cheaper methods).

Usage:

  for epoch in range(num_epochs):
    for batch in batches(source, batch_size=128, image_size=80, training=True,
                         seed=0, epoch=epoch):
      state = train_step(state, batch)
"""

import collections
import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from salijax.data import example_pool, preprocessing
from salijax.data.source import Source

_ORDER_STREAM = 0
_AUGMENT_STREAM = 1


def num_batches(source: Source, batch_size: int, training: bool) -> int:
  """Batches per epoch: floor(N / B) when training (drop last), else ceil(N / B)."""
  _check_positive_int("batch_size", batch_size)
  if training:
    return len(source) // batch_size
  return -(-len(source) // batch_size)


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The training order of an epoch: a permutation of range(N) from (seed, epoch)."""
  return np.random.default_rng([seed, epoch, _ORDER_STREAM]).permutation(num_examples)


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
  """The augmentation randomness of example `index` in `epoch`."""
  return np.random.default_rng([seed, epoch, _AUGMENT_STREAM, index])


def _block(batch_size: int, index: int, count: int) -> slice:
  """Rows of process `index` of `count` in a batch (module doc)."""
  small, extra = divmod(batch_size, count)
  start = index * small + min(index, extra)
  return slice(start, start + small + (index < extra))


def _check_positive_int(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name}: expected a positive int, got {value!r}")


def _check_args(
  source: Source,
  batch_size: int,
  image_size: int,
  seed: int,
  epoch: int,
  start_batch: int,
  crop_scale: tuple[float, float],
  crop_fraction: float,
  prefetch: int,
  total: int,
  share: tuple[int, int],
) -> None:
  _check_positive_int("batch_size", batch_size)
  _check_positive_int("image_size", image_size)
  for name, value in (("seed", seed), ("epoch", epoch), ("prefetch", prefetch)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
      raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
  if (
    isinstance(start_batch, bool)
    or not isinstance(start_batch, (int, np.integer))
    or not (0 <= start_batch <= total)
  ):
    raise ValueError(f"start_batch: expected an int in [0, {total}], got {start_batch!r}")
  index, count = share
  if not (isinstance(count, (int, np.integer)) and isinstance(index, (int, np.integer))
          and count <= batch_size and 0 <= index < count):
    raise ValueError(f"share: expected (index, count) with 0 <= index < count <= batch_size="
                     f"{batch_size}, got {share!r}")
  if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
    raise ValueError(
      f"crop_scale: expected (low, high) with 0 < low <= high <= 1, got {crop_scale}"
    )
  if not 0 < crop_fraction <= 1:
    raise ValueError(f"crop_fraction: expected a float in (0, 1], got {crop_fraction}")
  if not len(source):
    raise ValueError(
      f"source: expected a non-empty source, got {source.name!r} split"
      f" {source.split!r} with 0 examples"
    )


def batches(
  source: Source,
  *,
  batch_size: int,
  image_size: int,
  training: bool,
  seed: int = 0,
  epoch: int = 0,
  start_batch: int = 0,
  crop_scale: tuple[float, float] = (0.08, 1.0),
  crop_fraction: float = 0.875,
  prefetch: int = 2,
  workers: int | None = None,
  share: tuple[int, int] = (0, 1),
  interpolation: str = "bilinear",
) -> Iterator[dict[str, np.ndarray]]:
  """Iterates over one epoch of batches (see the module doc).

  Args:
    source: the examples.
    batch_size: B.
    image_size: S, the side of the square output images.
    training: training (shuffle, augment, drop last) or evaluation (in order,
      centre crop, pad last) mode.
    seed: the seed of the order and the augmentation (training only).
    epoch: the epoch, mixed into the order and the augmentation (training only).
    start_batch: the first batch to yield (resume), in [0, num_batches].
    crop_scale: area fraction range of the random-resized crop (training).
    crop_fraction: S / shorter side after resizing (evaluation); 1.0: the
      shorter side is resized to S.
    prefetch: batches prepared ahead by the background thread (0: none).
    workers: threads that read and preprocess a batch's examples
      (`example_pool`; None: one per host core).
    share: (i, n): only the rows of process i of n (module doc); (0, 1): all.
    interpolation: the evaluation images' resampling, "bilinear" or "bicubic"
      (`preprocessing.INTERPOLATIONS`; training resamples bilinearly).

  Returns:
    An iterator over the `num_batches(...) - start_batch` batch dicts (see the
    module doc), of B rows (or the share's). The arguments are checked when
    `batches` is called.
  """
  total = num_batches(source, batch_size, training)
  _check_args(
    source,
    batch_size,
    image_size,
    seed,
    epoch,
    start_batch,
    crop_scale,
    crop_fraction,
    prefetch,
    total,
    share,
  )
  if workers is not None:
    _check_positive_int("workers", workers)
  if interpolation not in preprocessing.INTERPOLATIONS:
    raise ValueError(f"interpolation: expected one of {sorted(preprocessing.INTERPOLATIONS)}, "
                     f"got {interpolation!r}")
  if training and total == 0:
    raise ValueError(
      f"batch_size: expected at most the {len(source)} examples of {source.name!r}"
      f" split {source.split!r} when training (the last partial batch is dropped),"
      f" got {batch_size}"
    )
  order = epoch_order(len(source), seed, epoch) if training else np.arange(len(source))
  crop_scale = tuple(crop_scale)
  block = _block(batch_size, *share)

  def prepare(i: np.integer) -> dict[str, Any]:
    example = source[int(i)]
    if training:
      rng = example_rng(seed, epoch, int(i))
      return preprocessing.train_example(example, rng, image_size, crop_scale)
    return preprocessing.eval_example(example, image_size, crop_fraction, interpolation)

  def make_batch(k: int) -> dict[str, np.ndarray]:
    indices = order[k * batch_size : (k + 1) * batch_size]
    valid = np.ones(batch_size, dtype=bool)
    valid[len(indices) :] = False
    indices = np.concatenate([indices, np.full(batch_size - len(indices), indices[-1])])
    indices, valid = indices[block], valid[block]
    # A block of padding only still needs one (padding) example to repeat.
    rows = example_pool.map_examples(prepare, indices[: max(int(valid.sum()), 1)],
                                     workers=workers)
    rows += [rows[-1]] * (len(indices) - len(rows))
    batch = {
      "image": np.stack([r["image"] for r in rows]),
      "label": np.array([r["label"] for r in rows], dtype=np.int32),
      "valid": valid,
      "index": indices.astype(np.int32),
    }
    for key in ("mask", "bbox"):
      if key in rows[0]:
        batch[key] = np.stack([r[key] for r in rows])
    return batch

  return _prefetched(make_batch, range(start_batch, total), prefetch)


def _prefetched(
  make_batch: Callable[[int], dict[str, np.ndarray]], ks: range, prefetch: int
) -> Iterator[dict[str, np.ndarray]]:
  """Yields make_batch(k) for k in ks, computing up to `prefetch` ahead in a thread."""
  if prefetch < 1:
    yield from map(make_batch, ks)
    return
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="salijax-batches")
  try:
    pending = collections.deque()
    for k in ks:
      pending.append(pool.submit(make_batch, k))
      if len(pending) > prefetch:  # Keep `prefetch` batches coming while the caller works.
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()
  finally:
    pool.shutdown(wait=True, cancel_futures=True)
