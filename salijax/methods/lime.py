"""LIME for images (Ribeiro, Singh, Guestrin, KDD 2016), as one compiled program.

Segments: SLIC superpixels, K possible labels per image (`segmentation="jax"`:
`salijax.methods.slic` inside the compiled program; `"skimage"`:
`skimage.segmentation.slic` on the host first). Samples z_s in {0,1}^K: sample
s keeps segment j when bit (j mod 32) of the 32-bit word
`jax.random.bits(fold_in(fold_in(key, s), j // 32))` is 1, a fair coin per
(sample, segment) that does not depend on the number of segments, the
chunking or the batch; z_0 keeps every segment. With the perturbed image x_s
(kept segments shown, the others hidden by `hide`: "mean", the image's mean
colour over all its pixels; "black"; "blur", the image smoothed by a Gaussian
of std 5 px, 11 x 11 taps) and c the target class:

  y_s  = softmax(f(x_s))_c
  d_s  = 1 - cos(z_s, 1)         over the segments the image has (d_s = 1 if none kept)
  pi_s = sqrt(exp(-d_s^2 / width^2))
  (b, b0) = argmin sum_s pi_s (y_s - b0 - z_s . b)^2 + alpha |b|^2    (`weighted_ridge`)

(the weighted ridge fit with an unpenalised intercept, as scikit-learn's
`Ridge(alpha).fit(Z, y, sample_weight=w)`, in closed form: with weighted means
zbar, ybar and centred Zc, yc, b = (Zc' W Zc + alpha I)^{-1} Zc' W yc and
b0 = ybar - zbar . b; a column constant over the samples gets b_j = 0)
  L(pixel) = b_(segment of pixel)                                    (continuous)

Labels that no pixel holds (SLIC can leave some of its K labels empty) get
an all-ones column, so b_j = 0 for them (up to rounding) and the fit equals
the fit on the segments present.

One compiled loop runs over chunks of `chunk` samples (each step forwards
B * chunk perturbed images) and keeps only the scores y f32[B,S]; memory grows
with `chunk`, not with S, and the result does not depend on `chunk` or on the
other images of the batch (the samples are shared by the batch).

    maps = lime(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import skimage.segmentation

from salijax import validation
from salijax.classifier import Classifier
from salijax.gaussian_blur import gaussian_smooth
from salijax.methods.registry import (
    Option,
    chunked,
    number,
    one_of,
    positive_int,
    register,
)
from salijax.methods.slic import slic, slic_grid

SEGMENTATIONS = ("jax", "skimage")
_COLUMN_MULTIPLE = 32  # host segmentations: K rounded up, so batches rarely recompile
HIDE_MODES = ("mean", "black", "blur")
_BITS = 32
_BLUR_SIGMA = 5.0
_BLUR_TRUNCATE = 1.0  # radius int(5 * 1 + 0.5) = 5: 11 x 11 taps
_HIGHEST = jax.lax.Precision.HIGHEST


def kept_segments(key: jax.Array, samples: jax.Array, num_segments: int) -> jax.Array:
  """bool[N, num_segments], which segments samples i32[N] keep (see the module doc)."""
  words = -(-num_segments // _BITS)

  def sample_bits(sample):
    sample_key = jax.random.fold_in(key, sample)
    word = jax.vmap(lambda w: jax.random.bits(jax.random.fold_in(sample_key, w), (), jnp.uint32))
    bits = (word(jnp.arange(words))[:, None] >> jnp.arange(_BITS, dtype=jnp.uint32)) & 1
    return (bits.reshape(-1)[:num_segments] == 1) | (sample == 0)

  return jax.vmap(sample_bits)(samples)


def hidden_fill(images: jax.Array, hide: str) -> jax.Array:
  """f32[B,H,W,3] -> what hides removed segments, f32[B,H,W,3] or f32[B,1,1,3]."""
  if hide == "mean":
    return images.mean(axis=(1, 2), keepdims=True)
  if hide == "black":
    return jnp.zeros((images.shape[0], 1, 1, 3), images.dtype)
  if hide == "blur":
    return gaussian_smooth(images, _BLUR_SIGMA, _BLUR_TRUNCATE)
  raise ValueError(f"hide must be one of {HIDE_MODES}, got {hide!r}")


def perturb(image: jax.Array, fill: jax.Array, segments: jax.Array, keep: jax.Array) -> jax.Array:
  """Perturbed copies f32[N,H,W,3] of image f32[H,W,3] for keep bool[N,K], segments i32[H,W].

  `fill` f32[H,W,3] or f32[1,1,3] shows where a pixel's segment is not kept.
  """
  shown = keep[:, segments]  # bool[N,H,W]
  return jnp.where(shown[..., None], image, fill)


def weighted_ridge(features: jax.Array, targets: jax.Array, weights: jax.Array,
                   alpha: float | jax.Array) -> tuple[jax.Array, jax.Array]:
  """Coefficients and intercept of the weighted ridge fit (see the module doc).

  Args:
    features: Z, f32[S,K].
    targets: y, f32[S].
    weights: w, f32[S], >= 0 with a positive sum.
    alpha: the ridge penalty (> 0 makes the system always solvable).

  Returns:
    (coef f32[K], intercept f32[]).
  """
  features = jnp.asarray(features, jnp.float32)
  targets = jnp.asarray(targets, jnp.float32)
  weights = jnp.asarray(weights, jnp.float32)
  total = weights.sum()
  feature_mean = jnp.dot(weights, features, precision=_HIGHEST) / total
  target_mean = jnp.dot(weights, targets, precision=_HIGHEST) / total
  centred = features - feature_mean
  weighted = centred * weights[:, None]
  gram = jnp.dot(weighted.T, centred, precision=_HIGHEST)
  gram = gram + alpha * jnp.eye(features.shape[1], dtype=jnp.float32)
  rhs = jnp.dot(weighted.T, targets - target_mean, precision=_HIGHEST)
  coef = jax.scipy.linalg.solve(gram, rhs, assume_a="pos")
  return coef, target_mean - jnp.dot(feature_mean, coef, precision=_HIGHEST)


def _explanation(segments: jax.Array, scores: jax.Array, keep: jax.Array, *, kernel_width: float,
                 ridge_alpha: float) -> jax.Array:
  """Per-segment coefficients f32[K] of one image: i32[H,W], f32[S], bool[S,K]."""
  num_columns = keep.shape[1]
  present = jax.ops.segment_sum(jnp.ones(segments.size, jnp.int32), segments.reshape(-1),
                                num_columns) > 0
  kept = (keep & present).sum(axis=1).astype(jnp.float32)
  cosine = jnp.sqrt(kept / present.sum())  # z.1 / (|z| |1|) for z in {0,1}
  distance = 1.0 - cosine
  weights = jnp.sqrt(jnp.exp(-distance ** 2 / kernel_width ** 2))
  features = jnp.where(present, keep, True).astype(jnp.float32)
  coef, _ = weighted_ridge(features, scores, weights, ridge_alpha)
  return coef


@functools.partial(jax.jit, static_argnames=(
    "num_samples", "num_columns", "num_segments", "compactness", "slic_sigma", "slic_iterations",
    "kernel_width", "ridge_alpha", "hide", "chunk"))
def _lime(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
          segments: jax.Array | None, *, num_samples: int, num_columns: int, num_segments: int,
          compactness: float, slic_sigma: float, slic_iterations: int, kernel_width: float,
          ridge_alpha: float, hide: str, chunk: int) -> jax.Array:
  """The jitted LIME: f32[B,H,W,3], i32[B] -> f32[B,H,W]; segments None: JAX SLIC."""
  batch, height, width, _ = images.shape
  if segments is None:
    segments = jax.vmap(functools.partial(
        slic, num_segments=num_segments, compactness=compactness, sigma=slic_sigma,
        iterations=slic_iterations))(images)
  fill = hidden_fill(images, hide)

  def score_chunk(_, step):
    keep = kept_segments(key, step * chunk + jnp.arange(chunk), num_columns)
    perturbed = jax.vmap(perturb, (0, 0, 0, None))(images, fill, segments, keep)
    logits = clf.logits(perturbed.reshape(batch * chunk, height, width, 3))
    probs = jax.nn.softmax(logits.reshape(batch, chunk, -1), axis=-1)
    return None, jnp.take_along_axis(probs, labels[:, None, None], axis=-1)[..., 0]

  _, scores = jax.lax.scan(score_chunk, None, jnp.arange(math.ceil(num_samples / chunk)))
  scores = jnp.moveaxis(scores, 0, 1).reshape(batch, -1)[:, :num_samples]  # padded tail dropped
  keep = kept_segments(key, jnp.arange(num_samples), num_columns)
  coef = jax.vmap(functools.partial(_explanation, keep=keep, kernel_width=kernel_width,
                                    ridge_alpha=ridge_alpha))(segments, scores)
  return jnp.take_along_axis(coef, segments.reshape(batch, -1), axis=1).reshape(
      batch, height, width)


def _host_segments(images: Any, num_segments: int, compactness: float, sigma: float,
                   iterations: int) -> np.ndarray:
  """scikit-image SLIC labels i32[B,H,W] (from 0) of concrete images f32[B,H,W,3]."""
  if not validation.is_concrete(images):
    raise ValueError("segmentation='skimage' runs on the host and needs concrete images, "
                     "got traced ones (use segmentation='jax' inside jax.jit)")
  return np.stack([
      skimage.segmentation.slic(image, n_segments=num_segments, compactness=compactness,
                                sigma=sigma, max_num_iter=iterations, start_label=0)
      for image in np.asarray(images, np.float32)]).astype(np.int32)


@register("lime", title="LIME", summary="a weighted linear fit of the class score on "
          "superpixels shown or hidden",
          cost=lambda options, shapes: chunked("forward", options["num_samples"],
                                               options["chunk"]),
          needs_key=True, jitted=_lime,
          options={"num_samples": Option(1000, positive_int),
                   "num_segments": Option(50, positive_int),
                   "compactness": Option(10.0, number(0.0, low_open=True)),
                   "slic_sigma": Option(1.0, number(0.0)),
                   "kernel_width": Option(0.25, number(0.0, low_open=True)),
                   "ridge_alpha": Option(1.0, number(0.0, low_open=True)),
                   "hide": Option("mean", one_of(*HIDE_MODES)),
                   "segmentation": Option("jax", one_of(*SEGMENTATIONS)),
                   "chunk": Option(128, positive_int),
                   "slic_iterations": Option(10, positive_int)})
def lime(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
         num_samples: int, num_segments: int, compactness: float, slic_sigma: float,
         kernel_width: float, ridge_alpha: float, hide: str, segmentation: str, chunk: int,
         slic_iterations: int) -> jax.Array:
  """LIME maps f32[B,H,W], each pixel painted with its segment's coefficient (module doc).

  Options: num_samples, S (sample 0 is the image itself); num_segments,
  compactness, slic_sigma (0: no pre-smoothing) and slic_iterations, SLIC's;
  kernel_width, the kernel's on cosine distances; ridge_alpha, the penalty;
  hide, what replaces a removed segment; segmentation, "jax" (compiled with
  the rest) or "skimage" (on the host: concrete images only); chunk, samples
  per loop step (memory and speed, not the result).
  """
  _, height, width, _ = images.shape
  num_columns = slic_grid(height, width, num_segments).size
  segments = None
  if segmentation == "skimage":
    segments = _host_segments(images, num_segments, compactness, slic_sigma, slic_iterations)
    num_columns = max(num_columns, int(segments.max()) + 1)
    num_columns = -(-num_columns // _COLUMN_MULTIPLE) * _COLUMN_MULTIPLE
  return _lime(clf, images, labels, key, segments, num_samples=num_samples,
               num_columns=num_columns, num_segments=num_segments, compactness=compactness,
               slic_sigma=slic_sigma, slic_iterations=slic_iterations,
               kernel_width=kernel_width, ridge_alpha=ridge_alpha, hide=hide,
               chunk=min(chunk, num_samples))
