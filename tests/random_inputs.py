"""Random test inputs shared by the test files."""

import jax


def random_images(seed: int, shape: tuple[int, ...], low: float = 0.0,
                  high: float = 1.0) -> jax.Array:
  """f32[shape] uniform in [low, high), from `jax.random.key(seed)`."""
  return jax.random.uniform(jax.random.key(seed), shape, minval=low, maxval=high)
