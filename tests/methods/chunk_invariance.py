"""A shared check for the chunked channel-perturbation methods (Score-CAM, Ablation-CAM)."""

from collections.abc import Callable

import jax
import numpy as np


def check_same_map_whatever_the_batch_the_chunk_jit_and_vmap(
    run: Callable[..., jax.Array], images: jax.Array, labels: jax.Array, atol: float) -> None:
  """Asserts that `run(images f32[B,H,W,3], labels i32[B], chunk=c)` gives the same maps
  for one image or the batch, for chunk 1, 4 and 64 (more than the channels), inside
  jit and vmap.

  Each arrangement is another program with its own float32 rounding: the maps agree
  within `atol`, twice the method's rounding bound of one map.
  """
  batch = np.asarray(run(images, labels, chunk=4))
  np.testing.assert_allclose(run(images[1:2], labels[1:2], chunk=4)[0], batch[1], rtol=0,
                             atol=atol)
  for chunk in (1, 64):
    np.testing.assert_allclose(run(images, labels, chunk=chunk), batch, rtol=0, atol=atol)
  inside_jit = jax.jit(lambda x, y: run(x, y, chunk=4))(images, labels)
  np.testing.assert_allclose(inside_jit, batch, rtol=0, atol=atol)
  one_by_one = jax.vmap(lambda x, y: run(x[None], y[None], chunk=4)[0])(images, labels)
  np.testing.assert_allclose(one_by_one, batch, rtol=0, atol=atol)
