"""Complexity of saliency maps: sparseness, entropy and the pixels holding 90 % of the mass.

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

    result = complexity(maps)    # .sparseness, .entropy, .mass_fraction_90: f32[B]
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation

MASS = 0.9
MASS_SLACK = 1e-5  # relative slack of the mass threshold (module doc)


class Complexity(NamedTuple):
  """Per-image complexity of |L| (see the module doc)."""

  sparseness: jax.Array  # f32[B], Gini index, larger = sparser
  entropy: jax.Array  # f32[B], Shannon entropy of |L| / sum |L| in nats, smaller = sparser
  mass_fraction_90: jax.Array  # f32[B], share of the pixels holding 90 % of |L|


@jax.jit
def _complexity(maps: jax.Array) -> Complexity:
  """The jitted metric: f32[B,H,W] -> Complexity (module doc)."""
  batch = maps.shape[0]
  magnitudes = jnp.abs(maps.reshape(batch, -1))
  n = magnitudes.shape[1]
  total = magnitudes.sum(axis=1, keepdims=True)
  # An all-zero map counts as a uniform one (module doc).
  magnitudes = jnp.where(total > 0, magnitudes, 1.0)
  total = jnp.where(total > 0, total, float(n))
  ascending = jnp.sort(magnitudes, axis=1)
  weights = 2.0 * jnp.arange(1, n + 1, dtype=jnp.float32) - n - 1.0
  gini = (ascending * weights).sum(axis=1) / (n * total[:, 0])  # not a matmul: full f32 on GPU/TPU
  p = magnitudes / total
  entropy = -jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
  held = jnp.cumsum(ascending[:, ::-1], axis=1)  # mass of the k largest, k = 1..n
  needed = (held < MASS * (1.0 - MASS_SLACK) * total).sum(axis=1) + 1
  return Complexity(sparseness=gini, entropy=entropy,
                    mass_fraction_90=jnp.minimum(needed, n).astype(jnp.float32) / n)


def complexity(maps: Any) -> Complexity:
  """Sparseness, entropy and 90 % mass fraction of each map's magnitudes (module doc).

  Args:
    maps: f32[B,H,W], any real values (their absolute values are used).

  Returns:
    Complexity of f32[B].

  Raises:
    ValueError: maps not [B,H,W] or non-finite.
    TypeError: non-array or non-floating maps.
  """
  validation.check_map_batch(maps)
  return _complexity(jnp.asarray(maps, jnp.float32))
