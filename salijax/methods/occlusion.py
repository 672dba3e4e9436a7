"""Occlusion (Zeiler & Fergus, ECCV 2014), as Captum's `Occlusion` computes it.

A w x w window (w = `window`, clipped to the image) slides over the image with
stride s (`stride` <= w): window (i, j) covers rows [i s, min(i s + w, H)) and
columns [j s, min(j s + w, W)), for i = 0..n_H - 1, n_H = ceil((H - w) / s) + 1
(the last window may be cut off by the border; every pixel is covered), and
likewise for j. With x_ij the image with the window set to `baseline` (a pixel
value; Zeiler & Fergus's grey square by default, 0.5) and y the target class's
`score` ("softmax": its probability, the paper's; "logit"):

  D_ij = y(I) - y(x_ij)                      the score's drop
  A(p) = mean of D_ij over the windows covering pixel p

With channels="all" (default) a window hides all three colour channels at
once and the map is A; with channels="each" every channel has its own windows
(3 n_H n_W of them) and A f32[B,H,W,3] is reduced over the channels by
`reduce` ("mean" by default; "sum", "max_abs", "abs_sum", "none" as the
gradient maps'; with channels="all" the three channels are equal, so "mean"
and "none" hold A itself). This is Captum's `Occlusion.attribute(
sliding_window_shapes=(3, w, w), strides=(3, s, s), baselines=b)` (with
channels="each": (1, w, w) and (1, s, s)) on a model returning the score.

Cost: n + 1 forwards (n windows and the image), as one compiled loop over
chunks of `chunk` windows of every image per forward (`salijax.metrics.
perturbed_scores`); memory grows with B * chunk, not with n, and the result
does not depend on `chunk` or on the other images of the batch.

    maps = occlusion(clf, images, labels)                        # f32[B,H,W]
    maps = occlusion(clf, images, labels, window=8, stride=4, baseline=0.0, score="logit")
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.map_ops import REDUCTIONS, reduce_channels
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
from salijax.metrics.perturbed_scores import SCORES, class_scores, perturbed_scores

CHANNELS = ("all", "each")
_HIGHEST = jax.lax.Precision.HIGHEST


def window_grid(size: int, window: int, stride: int) -> tuple[int, int]:
  """(w, n): the window clipped to the image's `size` and the window positions along it."""
  window = min(window, size)
  return window, math.ceil((size - window) / stride) + 1


def covered(size: int, window: int, stride: int) -> jax.Array:
  """f32[n, size]: 1 where window position i (of `window_grid`) covers the pixel."""
  window, count = window_grid(size, window, stride)
  start = jnp.arange(count)[:, None] * stride
  pixel = jnp.arange(size)[None, :]
  return ((pixel >= start) & (pixel < start + window)).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("window", "stride", "channels", "score", "chunk",
                                             "reduce"))
def _occlusion(clf: Classifier, images: jax.Array, labels: jax.Array, baseline: jax.Array, *,
               window: int, stride: int, channels: str, score: str, chunk: int,
               reduce: str) -> jax.Array:
  """The jitted occlusion: f32[B,H,W,3], i32[B], f32[] -> f32[B,H,W] (see the module doc)."""
  batch, height, width, _ = images.shape
  rows = covered(height, window, stride)  # f32[n_H,H]
  cols = covered(width, window, stride)   # f32[n_W,W]
  n_rows, n_cols = rows.shape[0], cols.shape[0]
  planes = 3 if channels == "each" else 1

  def copies(jobs: jax.Array) -> jax.Array:
    """i32[s] window indices -> f32[B,s,H,W,3], every image with those windows hidden."""
    plane, rest = jnp.divmod(jobs, n_rows * n_cols)
    inside = (rows[rest // n_cols][:, :, None] * cols[rest % n_cols][:, None, :]) > 0
    if channels == "each":
      inside = inside[..., None] & (jnp.arange(3) == plane[:, None, None, None])
    else:
      inside = inside[..., None]
    return jnp.where(inside[None], baseline, images[:, None])

  clean = class_scores(clf, images[:, None], labels, score)  # f32[B,1]
  scores = perturbed_scores(clf, copies, labels, num_jobs=planes * n_rows * n_cols,
                            per_forward=chunk, score=score)
  drops = (clean - scores).reshape(batch, planes, n_rows, n_cols)
  total = jnp.einsum("bcij,iy,jx->byxc", drops, rows, cols, precision=_HIGHEST)
  count = jnp.einsum("iy,jx->yx", rows, cols, precision=_HIGHEST)
  attributions = total / count[:, :, None]  # f32[B,H,W,planes]
  if reduce == "mean":
    return attributions.mean(axis=-1)
  return reduce_channels(jnp.broadcast_to(attributions, (batch, height, width, 3)), reduce)


def _cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  windows = (window_grid(shapes.height, options["window"], options["stride"])[1]
             * window_grid(shapes.width, options["window"], options["stride"])[1]
             * (3 if options["channels"] == "each" else 1))
  return chunked("forward", windows + 1, options["chunk"])


@register("occlusion", title="occlusion",
          summary="the class score's mean drop when a sliding window hides the pixel",
          cost=_cost, jitted=_occlusion,
          options={"window": Option(16, positive_int), "stride": Option(8, positive_int),
                   "baseline": Option(0.5, number(0.0, 1.0)),
                   "channels": Option("all", one_of(*CHANNELS)),
                   "score": Option("softmax", one_of(*SCORES)),
                   "chunk": Option(64, positive_int),
                   "reduce": Option("mean", one_of("mean", *REDUCTIONS))})
def occlusion(clf: Classifier, images: jax.Array, labels: jax.Array, *, window: int,
              stride: int, baseline: float, channels: str, score: str, chunk: int,
              reduce: str) -> jax.Array:
  """Occlusion maps f32[B,H,W] (f32[B,H,W,3] with reduce="none"; module doc).

  Options: window, w (pixels, square); stride, s <= w; baseline, the hiding
  pixel value; channels, "all" or "each"; score, "softmax" or "logit"; chunk,
  windows of every image per forward (memory and speed, not the result);
  reduce, over the channels.
  """
  if stride > window:
    raise ValueError(f"stride must be <= window (every pixel covered), got stride={stride},"
                     f" window={window}")
  return _occlusion(clf, images, labels, jnp.float32(baseline), window=window, stride=stride,
                    channels=channels, score=score, chunk=chunk, reduce=reduce)
