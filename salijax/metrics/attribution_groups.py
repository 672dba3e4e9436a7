"""Shared pieces of the subset and correlation faithfulness metrics.

- `pixel_groups`: pixel group t = the pixels of ranks t k .. t k + k - 1 in
  descending (or ascending) attribution order (`saliency_order.pixel_ranks`:
  ties keep raster order); all channels of a pixel move together.
- `group_sums`: the attribution sum of each group, f32[B, n].
- `random_subsets`: a uniformly random n-subset of the pixels of every image
  for job j: the n pixels of smallest uniform draws, drawn from (key, j) and
  the image's place in the batch alone (`per_image_draws`), ties in raster
  order (the first n of a stable argsort of the draws; exactly n pixels), found
  without a sort (`order_statistics.smallest`).
- `pearson`, `spearman`: correlations of the rows of two f32[B, N] arrays,
  0 where a row has no variance (Spearman: average ranks for ties, as scipy).
  The attribution sums x count as constant when they differ by no more than
  float32 rounding of sums of `x_terms` values can make them differ:
  max x - min x <= x_terms * eps * max |x| (Higham's bound on a sum's
  relative rounding error). A map that is constant up to rounding (Grad-CAM
  upsampled from a 1 x 1 layer) then scores 0 everywhere, instead of the
  correlation of its rounding noise, which changes with the program's layout.
"""

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.metrics.map_similarity import _average_ranks, _pearson
from salijax.metrics.per_image_draws import per_image
from salijax.metrics.perturbed_scores import SCORES
from salijax.metrics.saliency_order import pixel_ranks
from salijax.order_statistics import smallest


def _varies(x: jax.Array, terms: int) -> jax.Array:
  """bool[B]: whether row b of f32[B,N] sums of `terms` values differs by more than their
  rounding (module doc)."""
  eps = float(jnp.finfo(jnp.float32).eps)
  return x.max(axis=1) - x.min(axis=1) > terms * eps * jnp.abs(x).max(axis=1)


def pearson(x: jax.Array, y: jax.Array, *, x_terms: int) -> jax.Array:
  """f32[B,N] sums of x_terms values, f32[B,N] -> f32[B], the Pearson correlation of each
  row pair (0: no variance beyond rounding, module doc)."""
  x = x.astype(jnp.float32)
  return jnp.where(_varies(x, x_terms), _pearson(x, y.astype(jnp.float32)), 0.0)


def spearman(x: jax.Array, y: jax.Array, *, x_terms: int) -> jax.Array:
  """f32[B,N] sums of x_terms values, f32[B,N] -> f32[B], Spearman's rank correlation per
  row (average ranks; 0: no variance beyond rounding, module doc)."""
  x = x.astype(jnp.float32)
  rank = jax.vmap(_average_ranks)
  return jnp.where(_varies(x, x_terms), _pearson(rank(x), rank(y.astype(jnp.float32))), 0.0)


def num_groups(height: int, width: int, group_size: int) -> int:
  """n = ceil(H W / k), the number of pixel groups (the last may hold fewer pixels)."""
  return -(-height * width // group_size)


def pixel_groups(maps: jax.Array, group_size: int, *, ascending: bool = False) -> jax.Array:
  """f32[B,H,W] -> i32[B,H,W], each pixel's group: its rank in attribution order // k.

  Descending order by default (group 0 = the most salient pixels); ascending
  puts the least salient first. Ties keep raster order either way.
  """
  ranks = pixel_ranks(-maps if ascending else maps)
  return ranks // group_size


def group_sums(maps: jax.Array, groups: jax.Array, count: int) -> jax.Array:
  """f32[B,H,W] maps, i32[B,H,W] groups in [0, count) -> f32[B, count], each group's sum."""
  batch = maps.shape[0]
  flat_groups = groups.reshape(batch, -1)
  flat_maps = maps.reshape(batch, -1).astype(jnp.float32)
  return jax.vmap(lambda g, m: jnp.zeros(count, jnp.float32).at[g].add(m))(flat_groups, flat_maps)


def random_draws(key: jax.Array, job: jax.Array, shape: tuple[int, int, int]) -> jax.Array:
  """f32[B,H*W] in [0, 1): the uniform draws that order each image's pixels for job `job`."""
  batch, height, width = shape
  return per_image(jax.random.fold_in(key, job), batch,
                   lambda k: jax.random.uniform(k, (height * width,)))


def random_subsets(key: jax.Array, job: jax.Array, shape: tuple[int, int, int],
                   size: int | jax.Array) -> jax.Array:
  """bool[B,H,W]: job `job`'s uniformly random subset of exactly `size` pixels of every image
  (module doc)."""
  chosen = jax.vmap(smallest, in_axes=(0, None))(random_draws(key, job, shape), size)
  return chosen.reshape(shape)


def check_inputs(clf, images, maps, labels, *, score: str, chunk: int,
                 allow_constant_maps: bool = True):
  """The host checks every metric here runs; returns the labels i32[B] (None: predicted)."""
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images, allow_constant=allow_constant_maps)
  validation.check_positive_int(chunk, "chunk")
  if score not in SCORES:
    raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}")
  return labels


def check_at_most(value, limit: int, name: str, what: str) -> None:
  """A positive int <= limit, else ValueError naming the argument."""
  validation.check_positive_int(value, name)
  if value > limit:
    raise ValueError(f"{name} must be at most {what} = {limit}, got {value}")
