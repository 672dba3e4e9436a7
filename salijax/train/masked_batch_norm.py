"""`valid_rows_only(valid)`: BatchNorm statistics of a padded batch's valid rows only.

A training batch padded to fill every device (`salijax.train.data_parallel`)
holds rows that must not count. Inside the context, every `flax.linen.BatchNorm`
call gets `mask` = `valid` broadcast over its input, so the batch mean and
variance (and the running statistics they update) are those of the valid rows:
the valid rows come out as in a batch without the padding. The models take no
argument for it; a Flax method interceptor adds the mask.

    with valid_rows_only(valid):               # valid bool[B]
      logits, updated = module.apply(variables, images, train=True, mutable=["batch_stats"])
"""

import contextlib
from collections.abc import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp


@contextlib.contextmanager
def valid_rows_only(valid: jax.Array) -> Iterator[None]:
  """Masks the batch statistics of every BatchNorm called inside (module doc).

  Args:
    valid: bool[B], the rows whose statistics count; every BatchNorm input
      has the batch B on axis 0.

  Raises:
    ValueError: (when a BatchNorm is called) its input's axis 0 is not B.
  """

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
      x = args[0] if args else kwargs["x"]
      if x.ndim == 0 or x.shape[0] != valid.shape[0]:
        raise ValueError(f"valid: expected the batch of {valid.shape[0]} rows on axis 0 of every "
                         f"BatchNorm input, got input shape {tuple(x.shape)}")
      mask = jnp.broadcast_to(valid.reshape((-1,) + (1,) * (x.ndim - 1)), x.shape)
      kwargs = {**kwargs, "mask": mask}
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    yield
