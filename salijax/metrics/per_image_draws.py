"""Random draws of a batch that do not depend on the batch's size or padding.

Image b of a batch draws from `fold_in(key, b)` alone, so its draws are the
same whether it is scored with 1 or 100 other images, and when
`salijax.parallel.run_sharded` pads the batch for the devices (a draw of
shape [B, ...] from one key would change with B).

    noise = per_image(jax.random.fold_in(key, job), 8,
                      lambda k: jax.random.normal(k, (32, 32, 3)))  # f32[8,32,32,3]
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp


def per_image(key: jax.Array, batch: int, draw: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """[B, ...]: draw(fold_in(key, b)) for image b = 0..B-1 (module doc)."""
  images = jnp.arange(batch, dtype=jnp.int32)
  return jax.vmap(lambda b: draw(jax.random.fold_in(key, b)))(images)
