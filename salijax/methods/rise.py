"""RISE: randomized input sampling for explanation (Petsiuk et al., BMVC 2018).

With N random masks M_i f32[H,W] (mask i from `jax.random.fold_in(key, i)`,
shared by every image of the batch), the masked
image I * M_i + fill * (1 - M_i) (pixel space) and f_c its softmax probability
of the target class c:

  L = 1 / (N p) sum_i f_c(I * M_i + fill * (1 - M_i)) M_i

One compiled loop runs over chunks of `chunk` masks, generating them on the
device and carrying the running sum f32[B,H,W]; each step is one forward of
B * chunk images. Memory grows with B * chunk, not with N; the result does not
depend on `chunk` or on the other images of the batch (up to float summation
order).

A mask, for an H x W image and an s x s grid (s = `cell`): each grid cell is
1 with probability exactly p (`jax.random.bernoulli`), the grid is upsampled
bilinearly (half-pixel centres, edge values beyond the border) to
((s + 1) C_H, (s + 1) C_W) with C_H = ceil(H / s), C_W = ceil(W / s), and the
mask is the H x W crop at a uniform random integer offset (dy, dx) in
[0, C_H) x [0, C_W). Masks are real-valued, in [0, 1].

    maps = rise(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]
"""

import functools
import math

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import Option, chunked, number, positive_int, register


def cell_size(height: int, width: int, cell: int) -> tuple[int, int]:
  """(C_H, C_W) = (ceil(H / s), ceil(W / s)), the size of one grid cell in pixels."""
  return math.ceil(height / cell), math.ceil(width / cell)


def draw_grid(key: jax.Array, height: int, width: int, cell: int,
              p: float) -> tuple[jax.Array, jax.Array]:
  """The random part of one mask: (grid f32[s,s] in {0, 1}, offset i32[2] = (dy, dx))."""
  grid_key, offset_key = jax.random.split(key)
  grid = jax.random.bernoulli(grid_key, p, (cell, cell)).astype(jnp.float32)
  offset = jax.random.randint(offset_key, (2,), 0, jnp.array(cell_size(height, width, cell)))
  return grid, offset


def grid_mask(grid: jax.Array, offset: jax.Array, height: int, width: int) -> jax.Array:
  """f32[s,s] grid, i32[2] offset -> the mask f32[height, width] (see the module doc)."""
  cell = grid.shape[0]
  cell_h, cell_w = cell_size(height, width, cell)
  smooth = upsample_bilinear(grid, (cell + 1) * cell_h, (cell + 1) * cell_w)
  return jax.lax.dynamic_slice(smooth, (offset[0], offset[1]), (height, width))


def rise_mask(key: jax.Array, height: int, width: int, cell: int, p: float) -> jax.Array:
  """One mask f32[height, width] from `key`; vmap over keys for many."""
  grid, offset = draw_grid(key, height, width, cell, p)
  return grid_mask(grid, offset, height, width)


@register("rise", title="RISE", summary="masked forwards weighted by the class probability",
          cost=lambda options, shapes: chunked("forward", options["num_masks"], options["chunk"]),
          options={"num_masks": Option(4000, positive_int), "cell": Option(7, positive_int),
                   "p": Option(0.5, number(0.0, 1.0, low_open=True)),
                   "chunk": Option(256, positive_int), "fill": Option(0.0, number(0.0, 1.0))},
          needs_key=True)
@functools.partial(jax.jit, static_argnames=("num_masks", "cell", "p", "chunk", "fill"))
def rise(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
         num_masks: int, cell: int, p: float, chunk: int, fill: float) -> jax.Array:
  """RISE maps f32[B,H,W] >= 0 (module doc).

  Options: num_masks, N; cell, s (an s x s grid); p, the probability that a
  cell is on, in (0, 1]; chunk, masks per loop step (memory and speed, not the
  result); fill, the substrate's pixel value in [0, 1] where masks are 0.
  """
  chunk = min(chunk, num_masks)
  batch, height, width, _ = images.shape
  masks_of = jax.vmap(lambda i: rise_mask(jax.random.fold_in(key, i), height, width, cell, p))

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    index = step * chunk + jnp.arange(chunk)
    masks = masks_of(index)  # f32[chunk,H,W]
    weights = masks[None, :, :, :, None]
    masked = images[:, None] * weights + fill * (1.0 - weights)  # f32[B,chunk,H,W,3]
    logits = clf.logits(masked.reshape(batch * chunk, height, width, 3))
    probs = jax.nn.softmax(logits.reshape(batch, chunk, -1), axis=-1)
    scores = jnp.take_along_axis(probs, labels[:, None, None], axis=-1)[..., 0]  # f32[B,chunk]
    scores = jnp.where(index < num_masks, scores, 0.0)  # the padded tail adds nothing
    return total + jnp.einsum("bn,nhw->bhw", scores, masks,
                              precision=jax.lax.Precision.HIGHEST)

  total = jax.lax.fori_loop(0, math.ceil(num_masks / chunk), add_chunk,
                            jnp.zeros((batch, height, width), jnp.float32))
  return total / (num_masks * p)
