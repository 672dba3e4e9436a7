"""LIME for images (Ribeiro, Singh, Guestrin, KDD 2016), as one compiled program.

Segments: SLIC superpixels, K possible labels per image (`segmentation="jax"`:
`salijax.methods.slic` inside the compiled program; `"skimage"`:
`skimage.segmentation.slic` on the host first). Samples z_s in {0,1}^K
(`segment_perturbation.kept_segments`: fair bits from fold_in(key, s), z_0 all
ones). With the perturbed image x_s (kept segments shown, the others hidden by
`hide`) and c the target class:

  y_s  = softmax(f(x_s))_c
  d_s  = 1 - cos(z_s, 1)         over the segments the image has (d_s = 1 if none kept)
  pi_s = sqrt(exp(-d_s^2 / width^2))
  (b, b0) = argmin sum_s pi_s (y_s - b0 - z_s . b)^2 + alpha |b|^2    (`weighted_ridge`)
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
from salijax.methods.registry import register
from salijax.methods.segment_perturbation import HIDE_MODES, hidden_fill, kept_segments, perturb
from salijax.methods.slic import slic, slic_grid
from salijax.methods.weighted_ridge import weighted_ridge

SEGMENTATIONS = ("jax", "skimage")
_COLUMN_MULTIPLE = 32  # host segmentations: K rounded up, so batches rarely recompile


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
    logits = clf.apply(clf.variables, perturbed.reshape(batch * chunk, height, width, 3))
    probs = jax.nn.softmax(logits.reshape(batch, chunk, -1), axis=-1)
    return None, jnp.take_along_axis(probs, labels[:, None, None], axis=-1)[..., 0]

  _, scores = jax.lax.scan(score_chunk, None, jnp.arange(math.ceil(num_samples / chunk)))
  scores = jnp.moveaxis(scores, 0, 1).reshape(batch, -1)[:, :num_samples]  # padded tail dropped
  keep = kept_segments(key, jnp.arange(num_samples), num_columns)
  coef = jax.vmap(functools.partial(_explanation, keep=keep, kernel_width=kernel_width,
                                    ridge_alpha=ridge_alpha))(segments, scores)
  return jnp.take_along_axis(coef, segments.reshape(batch, -1), axis=1).reshape(
      batch, height, width)


def _check_positive_number(value: Any, name: str, *, allow_zero: bool = False) -> None:
  """A finite real number > 0 (>= 0 with allow_zero), else ValueError naming it."""
  ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
  if not ok:
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


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


@register("lime")
def lime(clf: Classifier, images: Any, labels: Any = None, *, key: jax.Array | None = None,
         num_samples: int = 1000, num_segments: int = 50, compactness: float = 10.0,
         slic_sigma: float = 1.0, kernel_width: float = 0.25, ridge_alpha: float = 1.0,
         hide: str = "mean", segmentation: str = "jax", chunk: int = 128,
         slic_iterations: int = 10) -> jax.Array:
  """LIME maps (see the module doc).

  Args:
    clf: the Classifier; only `clf.apply` is used.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for each image; None = the predicted class.
    key: a `jax.random.key`; required.
    num_samples: S, perturbed samples per image (sample 0 is the image itself).
    num_segments: the approximate number of SLIC superpixels.
    compactness: SLIC's weight of space against colour.
    slic_sigma: std (px) of SLIC's Gaussian pre-smoothing; 0 for none.
    kernel_width: the width of the exponential kernel on cosine distances.
    ridge_alpha: the ridge penalty, > 0.
    hide: what replaces a removed segment: "mean" (the image's mean colour),
      "black" or "blur".
    segmentation: "jax" (SLIC compiled with the rest) or "skimage"
      (`skimage.segmentation.slic` on the host, needs concrete images).
    chunk: samples per step of the loop (each step forwards B * chunk images);
      changes memory and speed, not the result.
    slic_iterations: SLIC's number of iterations.

  Returns:
    f32[B,H,W], each pixel painted with its segment's coefficient.

  Raises:
    ValueError: bad images/labels or hyperparameters.
    TypeError: wrong types of clf, images, labels or key.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  validation.check_classifier_inputs(clf, images, labels)
  validation.check_key(key)
  for value, name in ((num_samples, "num_samples"), (num_segments, "num_segments"),
                      (chunk, "chunk"), (slic_iterations, "slic_iterations")):
    validation.check_positive_int(value, name)
  for value, name in ((compactness, "compactness"), (kernel_width, "kernel_width"),
                      (ridge_alpha, "ridge_alpha")):
    _check_positive_number(value, name)
  _check_positive_number(slic_sigma, "slic_sigma", allow_zero=True)
  if hide not in HIDE_MODES:
    raise ValueError(f"hide must be one of {HIDE_MODES}, got {hide!r}")
  if segmentation not in SEGMENTATIONS:
    raise ValueError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")

  _, height, width, _ = images.shape
  num_columns = slic_grid(height, width, num_segments).size
  segments = None
  if segmentation == "skimage":
    segments = _host_segments(images, num_segments, compactness, slic_sigma, slic_iterations)
    num_columns = max(num_columns, int(segments.max()) + 1)
    num_columns = -(-num_columns // _COLUMN_MULTIPLE) * _COLUMN_MULTIPLE
  return _lime(clf, jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32), key,
               segments, num_samples=int(num_samples), num_columns=num_columns,
               num_segments=int(num_segments), compactness=float(compactness),
               slic_sigma=float(slic_sigma), slic_iterations=int(slic_iterations),
               kernel_width=float(kernel_width), ridge_alpha=float(ridge_alpha), hide=hide,
               chunk=int(min(chunk, num_samples)))
