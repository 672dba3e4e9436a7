"""Blur integrated gradients (Xu, Venugopalan, Sundararajan, Taly, CVPR 2020).

The path runs through Gaussian blurs of the image, from sigma_max (the most
blurred, the baseline) down to 0 (the image). With G(s) the image blurred by a
Gaussian of std s over its two spatial axes (each channel alone), y_c the
target class's logit and the blur levels s_i (i = 0..m, m = `steps`),

  s_i = i * sigma_max / m            (`sqrt=True`: s_i = sqrt(i * sigma_max / m))
  A   = - sum_{i<m} (s_{i+1} - s_i) * dG/ds(s_i) * dy_c/dI (G(s_i))     f32[B,H,W,3]
  dG/ds(s) ~ (G(s + h) - G(s)) / h,  h = `grad_step`

and the map L = reduce_c(A) (`salijax.methods.map_ops`; "max_abs" by
default, "none" returns A). The sign: the path is walked from the blurred
image to the image, against increasing s. Completeness (approximately, up to
the quadrature and the finite difference): sum of A = y_c(I) - y_c(G(sigma_max)).

The blur is PAIR's (`saliency.core.blur_ig.gaussian_blur`, scipy's
`gaussian_filter` with mode "constant"): taps proportional to
exp(-t^2 / (2 s^2)) for |t| <= int(4 s + 0.5), normalised to sum 1 over all of
them, the image padded with zeros (a large blur darkens the borders); s = 0
is the image. It is applied as dense [L, L] matrices built from the taps,
which are computed on the host in float64 for every s_i, with the differences
G(s + h) - G(s) taken between the float64 taps (not between two rounded
float32 blurs: the division by h = 0.01 would amplify their rounding 100x).

Defaults are PAIR's `BlurIG.GetMask` (saliency 0.2.1): sigma_max = 50, m = 100,
h = 0.01, sqrt=False. It equals PAIR's arithmetic, with one exception: PAIR's
`batch_size > 1` weights a whole batch of steps by the last step's
s_{i+1} - s_i (equal only for the linear spacing); here each step has its own.

One compiled loop runs over chunks of `chunk` blur levels; each step blurs the
images and runs one forward and one backward pass of B * chunk images. The
result does not depend on `chunk` or on the batch. Cost: m gradient passes.

    maps = blur_ig(clf, images, labels)                        # f32[B,H,W]
    attributions = blur_ig(clf, images, labels, reduce="none")  # f32[B,H,W,3]
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.methods.input_gradients import logit_gradients
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import (
    Option,
    PassCount,
    Shapes,
    chunked,
    number,
    one_of,
    positive_int,
    register,
)

_TRUNCATE = 4.0  # scipy's gaussian_filter default
_HIGHEST = jax.lax.Precision.HIGHEST


def blur_levels(max_sigma: float, steps: int, sqrt: bool) -> np.ndarray:
  """f64[steps + 1], the blur levels s_0 = 0, ..., s_m = max_sigma (module doc)."""
  levels = np.arange(steps + 1, dtype=np.float64) * max_sigma / steps
  return np.sqrt(levels) if sqrt else levels


def blur_taps(sigma: float, half: int) -> np.ndarray:
  """f64[2 * half + 1], scipy's normalised Gaussian taps at offsets -half..half (0 beyond
  its radius int(4 sigma + 0.5)); sigma = 0: the identity."""
  offsets = np.arange(-half, half + 1, dtype=np.float64)
  if sigma == 0:
    return (offsets == 0).astype(np.float64)
  radius = int(_TRUNCATE * sigma + 0.5)
  full = np.exp(-0.5 / (sigma * sigma) * np.arange(-radius, radius + 1, dtype=np.float64) ** 2)
  return np.where(np.abs(offsets) <= radius, np.exp(-0.5 / (sigma * sigma) * offsets ** 2),
                  0.0) / full.sum()


def _blur_matrices(taps: jax.Array, length: int) -> jax.Array:
  """f32[K, 2T+1] taps -> f32[K, length, length] M with (M @ v)[i] = sum_t w_t v[i + t]."""
  half = (taps.shape[-1] - 1) // 2
  index = np.arange(length)[None, :] - np.arange(length)[:, None] + half  # j - i + T
  return taps[:, index]


def _blur(rows: jax.Array, columns: jax.Array, images: jax.Array) -> jax.Array:
  """f32[K,H,H], f32[K,W,W], f32[B,H,W,3] -> f32[B,K,H,W,3], each image blurred K ways."""
  along_columns = jnp.einsum("kjq,bpqc->bkpjc", columns, images, precision=_HIGHEST)
  return jnp.einsum("kip,bkpjc->bkijc", rows, along_columns, precision=_HIGHEST)


@functools.partial(jax.jit, static_argnames=("reduce",))
def _blur_ig(clf: Classifier, images: jax.Array, labels: jax.Array, taps: jax.Array,
             taps_next: jax.Array, taps_step: jax.Array, weights: jax.Array, *,
             reduce: str) -> jax.Array:
  """The jitted Blur IG (module doc).

  Args:
    clf, images f32[B,H,W,3], labels i32[B]: as `blur_ig`.
    taps: f32[num_chunks, chunk, 2T+1], the taps of G(s_i) (T >= max(H, W) - 1).
    taps_next: same shape, the taps of G(s_i + h).
    taps_step: same shape, (taps of G(s_i + h) - taps of G(s_i)) / h (from float64).
    weights: f32[num_chunks, chunk], s_{i+1} - s_i (0 for the padded tail).
    reduce: as `blur_ig`.
  """
  batch, height, width, _ = images.shape
  num_chunks, chunk, _ = taps.shape
  chunk_labels = jnp.repeat(labels, chunk)

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    rows, columns = _blur_matrices(taps[step], height), _blur_matrices(taps[step], width)
    d_rows = _blur_matrices(taps_step[step], height)
    d_columns = _blur_matrices(taps_step[step], width)
    path = _blur(rows, columns, images)  # f32[B,K,H,W,3]
    # (G(s+h) - G(s)) / h = (R' C' x - R C x) / h = (dR C' x + R dC x) / h.
    derivative = (_blur(d_rows, _blur_matrices(taps_next[step], width), images)
                  + _blur(rows, d_columns, images))
    grads = logit_gradients(clf.apply, clf.variables,
                            path.reshape(batch * chunk, height, width, 3), chunk_labels)
    return total + jnp.einsum("bkhwc,bkhwc,k->bhwc", derivative,
                              grads.reshape(batch, chunk, height, width, 3), weights[step],
                              precision=_HIGHEST)

  # Unrolled (up to 8 chunks), as integrated_gradients.
  total = jax.lax.fori_loop(0, num_chunks, add_chunk, jnp.zeros_like(images),
                            unroll=min(num_chunks, 8))
  return reduce_channels(-total, reduce)


def _cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  del shapes
  return chunked("gradient", options["steps"], options["chunk"])


@register("blur_ig", title="Blur IG",
          summary="gradients integrated along a path of ever weaker Gaussian blurs", cost=_cost,
          options={"max_sigma": Option(50.0, number(0.0, low_open=True)),
                   "steps": Option(100, positive_int),
                   "grad_step": Option(0.01, number(0.0, low_open=True)),
                   "sqrt": Option(False, one_of(False, True)),
                   "chunk": Option(10, positive_int), "reduce": REDUCE_OPTION},
          jitted=_blur_ig)
def blur_ig(clf: Classifier, images: jax.Array, labels: jax.Array, *, max_sigma: float,
            steps: int, grad_step: float, sqrt: bool, chunk: int, reduce: str) -> jax.Array:
  """Blur integrated gradients maps f32[B,H,W] (f32[B,H,W,3] with reduce="none").

  Options: max_sigma, the blur of the path's start (pixels); steps, m; grad_step,
  h of the finite difference dG/ds; sqrt, levels spaced as sqrt(i); chunk, blur
  levels per loop step (memory and speed, not the result).
  """
  _, height, width, _ = images.shape
  levels = blur_levels(max_sigma, steps, sqrt)
  half = max(height, width) - 1
  taps = np.stack([blur_taps(s, half) for s in levels[:-1]])
  taps_next = np.stack([blur_taps(s + grad_step, half) for s in levels[:-1]])
  weights = np.diff(levels)
  chunk = min(chunk, steps)
  num_chunks = math.ceil(steps / chunk)
  padding = num_chunks * chunk - steps  # the padded tail has weight 0

  def chunks(values: np.ndarray) -> jax.Array:
    padded = np.pad(values, [(0, padding)] + [(0, 0)] * (values.ndim - 1))
    return jnp.asarray(padded.reshape((num_chunks, chunk) + values.shape[1:]), jnp.float32)

  return _blur_ig(clf, images, labels, chunks(taps), chunks(taps_next),
                  chunks((taps_next - taps) / grad_step), chunks(weights), reduce=reduce)
