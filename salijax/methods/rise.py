"""RISE: randomized input sampling for explanation (Petsiuk et al., BMVC 2018).

With N random masks M_i f32[H,W] (`salijax.methods.rise_masks`; mask i from
`jax.random.fold_in(key, i)`, shared by every image of the batch), the masked
image I * M_i + fill * (1 - M_i) (pixel space) and f_c its softmax probability
of the target class c:

  L = 1 / (N p) sum_i f_c(I * M_i + fill * (1 - M_i)) M_i

One compiled loop runs over chunks of `chunk` masks, generating them on the
device and carrying the running sum f32[B,H,W]; each step is one forward of
B * chunk images. Memory grows with B * chunk, not with N; the result does not
depend on `chunk` or on the other images of the batch (up to float summation
order).

    maps = rise(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.registry import register
from salijax.methods.rise_masks import rise_mask


@functools.partial(jax.jit, static_argnames=("num_masks", "cell", "p", "chunk", "fill"))
def _rise(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
          num_masks: int, cell: int, p: float, chunk: int, fill: float) -> jax.Array:
  """The jitted RISE: f32[B,H,W,3], i32[B] -> f32[B,H,W] (see the module doc)."""
  batch, height, width, _ = images.shape
  masks_of = jax.vmap(lambda i: rise_mask(jax.random.fold_in(key, i), height, width, cell, p))

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    index = step * chunk + jnp.arange(chunk)
    masks = masks_of(index)  # f32[chunk,H,W]
    weights = masks[None, :, :, :, None]
    masked = images[:, None] * weights + fill * (1.0 - weights)  # f32[B,chunk,H,W,3]
    logits = clf.apply(clf.variables, masked.reshape(batch * chunk, height, width, 3))
    probs = jax.nn.softmax(logits.reshape(batch, chunk, -1), axis=-1)
    scores = jnp.take_along_axis(probs, labels[:, None, None], axis=-1)[..., 0]  # f32[B,chunk]
    scores = jnp.where(index < num_masks, scores, 0.0)  # the padded tail adds nothing
    return total + jnp.einsum("bn,nhw->bhw", scores, masks,
                              precision=jax.lax.Precision.HIGHEST)

  total = jax.lax.fori_loop(0, math.ceil(num_masks / chunk), add_chunk,
                            jnp.zeros((batch, height, width), jnp.float32))
  return total / (num_masks * p)


@register("rise")
def rise(clf: Classifier, images: Any, labels: Any = None, *, key: jax.Array | None = None,
         num_masks: int = 4000, cell: int = 7, p: float = 0.5, chunk: int = 256,
         fill: float = 0.0) -> jax.Array:
  """RISE maps (see the module doc).

  Args:
    clf: the Classifier; only `clf.apply` is used.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for each image; None = the predicted class.
    key: a `jax.random.key`; required.
    num_masks: N, the number of masks.
    cell: s, the grid is s x s cells.
    p: the probability that a grid cell is on, in (0, 1].
    chunk: masks per step of the loop (each step forwards B * chunk images);
      changes memory and speed, not the result.
    fill: the substrate's pixel value in [0, 1], shown where masks are 0.

  Returns:
    f32[B,H,W], >= 0.

  Raises:
    ValueError: bad images/labels or hyperparameters.
    TypeError: wrong types of clf, images, labels or key.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  validation.check_classifier_inputs(clf, images, labels)
  validation.check_key(key)
  validation.check_positive_int(num_masks, "num_masks")
  validation.check_positive_int(cell, "cell")
  validation.check_positive_int(chunk, "chunk")
  validation.check_probability(p, "p")
  validation.check_probability(fill, "fill", open_low=False)
  return _rise(clf, jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32), key,
               num_masks=int(num_masks), cell=int(cell), p=float(p),
               chunk=int(min(chunk, num_masks)), fill=float(fill))
