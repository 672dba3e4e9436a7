"""Complexity of saliency maps: sparseness, entropy, the pixels holding 90 % of the mass, and
the effective complexity (the pixels above a threshold).

Each is computed from the magnitudes x = |L| f32[n], n = H W pixels, of one map:

  sparseness        the Gini index (Hurley and Rickard, 2009; Chalasani et al.,
                    2020): with x sorted ascending, x_(1) <= ... <= x_(n),
                    G = sum_i (2 i - n - 1) x_(i) / (n sum_i x_i), in [0, 1 - 1/n];
                    0 for a uniform map, 1 - 1/n for a map with one non-zero pixel.
  entropy           the Shannon entropy of p = x / sum x in nats (natural log),
                    -sum_i p_i log p_i with 0 log 0 = 0; log n for a uniform map,
                    0 for a map with one non-zero pixel.
  mass_fraction_90  k / n for the smallest k such that the k largest x hold 90 %
                    of sum x: the first k where the descending cumulative sum
                    reaches 0.9 (1 - 1e-5) sum x (the relative slack 1e-5 absorbs
                    float32 rounding of the cumulative sum at an exact boundary,
                    e.g. a map uniform on half the image gives 0.45).

An all-zero map has no mass to distribute; it counts as a uniform map (Gini 0,
entropy log n, mass fraction ceil(0.9 n) / n), as a constant non-zero map
would. Sparser maps have a larger Gini index, a smaller entropy and a smaller
mass fraction.

`sparseness_offset` c (default 0) adds c max_i x_i to every x_i before the
Gini index: G_c = sum_i (2 i - n - 1) x_(i) / (n (sum_i x_i + n c max_i x_i))
(the numerator does not change, as sum_i (2 i - n - 1) = 0). Quantus 0.6.0's
Sparseness adds 1e-7 to its max-normalised |L|: c = 1e-7 is its reading (it
normalises by the maximum over the whole batch, salijax by each map's own).
Quantus's Complexity is `entropy` (up to its 1e-12 inside the logarithm).

Effective complexity (Nguyen and Martinez, "On quantitative aspects of model
interpretability", arXiv:2007.07584, 2020; as Quantus's EffectiveComplexity):
the number of pixels with |L| > eps (default 1e-5), and that number over n;
with `normalise=True`, |L| / max |L| > eps (Quantus's default normalisation,
which divides by the maximum over the whole batch instead of each map's).
Fewer pixels above the threshold = a simpler explanation.

    result = complexity(maps)    # .sparseness, .entropy, .mass_fraction_90: f32[B]
    simple = effective_complexity(maps, eps=1e-5)    # .count i32[B], .fraction f32[B]
"""

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation

MASS = 0.9
MASS_SLACK = 1e-5  # relative slack of the mass threshold (module doc)


class Complexity(NamedTuple):
  """Per-image complexity of |L| (see the module doc)."""

  sparseness: jax.Array  # f32[B], Gini index, larger = sparser
  entropy: jax.Array  # f32[B], Shannon entropy of |L| / sum |L| in nats, smaller = sparser
  mass_fraction_90: jax.Array  # f32[B], share of the pixels holding 90 % of |L|


class EffectiveComplexity(NamedTuple):
  """Per-image effective complexity (see the module doc)."""

  count: jax.Array  # i32[B], pixels with |L| > eps (relative to max |L| with normalise=True)
  fraction: jax.Array  # f32[B], count / (H W)


@jax.jit
def _complexity(maps: jax.Array, sparseness_offset: jax.Array) -> Complexity:
  """The jitted metric: f32[B,H,W], f32[] -> Complexity (module doc)."""
  batch = maps.shape[0]
  magnitudes = jnp.abs(maps.reshape(batch, -1))
  n = magnitudes.shape[1]
  total = magnitudes.sum(axis=1, keepdims=True)
  # An all-zero map counts as a uniform one (module doc).
  magnitudes = jnp.where(total > 0, magnitudes, 1.0)
  total = jnp.where(total > 0, total, float(n))
  ascending = jnp.sort(magnitudes, axis=1)
  weights = 2.0 * jnp.arange(1, n + 1, dtype=jnp.float32) - n - 1.0
  offset = n * sparseness_offset * ascending[:, -1]  # n c max x (module doc)
  gini = (ascending * weights).sum(axis=1) / (n * (total[:, 0] + offset))  # not a matmul
  p = magnitudes / total
  entropy = -jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
  held = jnp.cumsum(ascending[:, ::-1], axis=1)  # mass of the k largest, k = 1..n
  needed = (held < MASS * (1.0 - MASS_SLACK) * total).sum(axis=1) + 1
  return Complexity(sparseness=gini, entropy=entropy,
                    mass_fraction_90=jnp.minimum(needed, n).astype(jnp.float32) / n)


def _check_non_negative(value: Any, name: str) -> float:
  number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  if not number or not 0 <= value < math.inf:
    raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
  return float(value)


def complexity(maps: Any, *, sparseness_offset: float = 0.0) -> Complexity:
  """Sparseness, entropy and 90 % mass fraction of each map's magnitudes (module doc).

  Args:
    maps: f32[B,H,W], any real values (their absolute values are used).
    sparseness_offset: c >= 0, added (times each map's max |L|) to every
      magnitude before the Gini index; 1e-7 is Quantus's reading (module doc).

  Returns:
    Complexity of f32[B].

  Raises:
    ValueError: maps not [B,H,W] or non-finite; a negative or non-finite offset.
    TypeError: non-array or non-floating maps.
  """
  validation.check_map_batch(maps)
  offset = _check_non_negative(sparseness_offset, "sparseness_offset")
  return _complexity(jnp.asarray(maps, jnp.float32), jnp.float32(offset))


@functools.partial(jax.jit, static_argnames=("normalise",))
def _effective_complexity(maps: jax.Array, eps: jax.Array, normalise: bool
                          ) -> EffectiveComplexity:
  batch = maps.shape[0]
  magnitudes = jnp.abs(maps.reshape(batch, -1))
  if normalise:  # an all-zero map stays zero (no pixel above any eps >= 0)
    top = magnitudes.max(axis=1, keepdims=True)
    magnitudes = magnitudes / jnp.where(top > 0, top, 1.0)
  count = (magnitudes > eps).sum(axis=1).astype(jnp.int32)
  return EffectiveComplexity(count=count,
                             fraction=count.astype(jnp.float32) / magnitudes.shape[1])


def effective_complexity(maps: Any, *, eps: float = 1e-5,
                         normalise: bool = False) -> EffectiveComplexity:
  """The pixels of each map with |L| > eps (module doc).

  Args:
    maps: f32[B,H,W], any real values (their absolute values are used).
    eps: the threshold >= 0 (Quantus's default 1e-5).
    normalise: compare |L| / max |L| (each map's maximum) with eps instead of |L|.

  Returns:
    EffectiveComplexity: count i32[B] and fraction f32[B] (lower = simpler).

  Raises:
    ValueError: maps not [B,H,W] or non-finite; a negative or non-finite eps.
    TypeError: non-array or non-floating maps, a non-bool `normalise`.
  """
  validation.check_map_batch(maps)
  eps = _check_non_negative(eps, "eps")
  if not isinstance(normalise, bool):
    raise TypeError(f"normalise must be a bool, got {normalise!r}")
  return _effective_complexity(jnp.asarray(maps, jnp.float32), jnp.float32(eps),
                               normalise=normalise)
