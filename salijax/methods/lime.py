"""LIME for images (Ribeiro, Singh, Guestrin, KDD 2016), as one compiled program.

Segments: SLIC superpixels, K possible labels per image (`segmentation="jax"`:
`salijax.methods.slic` inside the compiled program; `"skimage"`:
`skimage.segmentation.slic` on the host first). Samples z_s in {0,1}^K: sample
s keeps segment j when bit (j mod 32) of the 32-bit word
`jax.random.bits(fold_in(fold_in(key, s), j // 32))` is 1, a fair coin per
(sample, segment) that does not depend on the number of segments, the
chunking or the batch; z_0 keeps every segment. With the perturbed image x_s
(kept segments shown, the others hidden by `hide`: "mean", the image's mean
colour over all its pixels; "segment_mean", each hidden segment's own mean
colour (the `lime` package's default, `hide_color=None`); "black"; "blur", the
image smoothed by a Gaussian of std 5 px, 11 x 11 taps) and c the target
class:

  y_s  = softmax(f(x_s))_c
  d_s  = 1 - cos(z_s, 1)         over the segments the image has (d_s = 1 if none kept)
  pi_s = sqrt(exp(-d_s^2 / width^2))
  (b, b0) = argmin sum_s pi_s (y_s - b0 - z_s . b)^2 + alpha |b|^2    (`weighted_ridge`)

(the weighted ridge fit with an unpenalised intercept, as scikit-learn's
`Ridge(alpha).fit(Z, y, sample_weight=w)`, in closed form: with weighted means
zbar, ybar and centred Zc, yc, b = (Zc' W Zc + alpha I)^{-1} Zc' W yc and
b0 = ybar - zbar . b; a column constant over the samples gets b_j = 0)
  L(pixel) = b_(segment of pixel)                                    (continuous)

With `num_features` n smaller than the number of segments, the fit keeps
only n segments (the others get b_j = 0), chosen as the `lime` package's
`feature_selection="auto"` does: n <= 6, forward selection (greedily the
segment whose weighted least-squares fit, with intercept and no penalty,
has the highest weighted R^2); n > 6, the n largest |b_j| of a first fit
with alpha = 0.01. The default n = 100000 keeps every segment.

Labels that no pixel holds (SLIC can leave some of its K labels empty) get
an all-ones column, so b_j = 0 for them (set exactly) and the fit equals the
fit on the segments present.

One compiled loop runs over chunks of `chunk` samples (each step forwards
B * chunk perturbed images) and keeps only the scores y f32[B,S]; memory grows
with `chunk`, not with S, and the result does not depend on `chunk` or on the
other images of the batch (the samples are shared by the batch).

    maps = lime(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]

`lime_segment_weights` is the same computation for given segments and
samples (for instance the `lime` package's draws): the coefficients b per
segment and the scores y.
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
HIDE_MODES = ("mean", "segment_mean", "black", "blur")
_BITS = 32
_BLUR_SIGMA = 5.0
_BLUR_TRUNCATE = 1.0  # radius int(5 * 1 + 0.5) = 5: 11 x 11 taps
_HIGHEST = jax.lax.Precision.HIGHEST
_FORWARD_SELECTION_MAX = 6  # lime's "auto": forward selection up to 6 features
_SELECTION_ALPHA = 0.01  # lime's "highest_weights" first fit


def kept_segments(key: jax.Array, samples: jax.Array, num_segments: int) -> jax.Array:
  """bool[N, num_segments], which segments samples i32[N] keep (see the module doc)."""
  words = -(-num_segments // _BITS)

  def sample_bits(sample):
    sample_key = jax.random.fold_in(key, sample)
    word = jax.vmap(lambda w: jax.random.bits(jax.random.fold_in(sample_key, w), (), jnp.uint32))
    bits = (word(jnp.arange(words))[:, None] >> jnp.arange(_BITS, dtype=jnp.uint32)) & 1
    return (bits.reshape(-1)[:num_segments] == 1) | (sample == 0)

  return jax.vmap(sample_bits)(samples)


def segment_means(image: jax.Array, segments: jax.Array, num_columns: int) -> jax.Array:
  """f32[H,W,3]: each pixel's segment's mean colour, for image f32[H,W,3], segments i32[H,W]."""
  flat = segments.reshape(-1)
  sums = jax.ops.segment_sum(image.reshape(-1, 3), flat, num_columns)
  counts = jax.ops.segment_sum(jnp.ones(flat.shape, jnp.float32), flat, num_columns)
  return (sums / jnp.maximum(counts, 1.0)[:, None])[segments]


def hidden_fill(images: jax.Array, hide: str, segments: jax.Array | None = None,
                num_columns: int = 0) -> jax.Array:
  """f32[B,H,W,3] -> what hides removed segments, f32[B,H,W,3] or f32[B,1,1,3].

  "segment_mean" needs the segments i32[B,H,W] (labels < num_columns).
  """
  if hide == "mean":
    return images.mean(axis=(1, 2), keepdims=True)
  if hide == "segment_mean":
    return jax.vmap(segment_means, (0, 0, None))(images, segments, num_columns)
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


def _centred_system(features: jax.Array, targets: jax.Array, weights: jax.Array):
  """Weighted-centred Z and y, the Gram matrix Zc' W Zc and right-hand side Zc' W yc."""
  total = weights.sum()
  centred = features - jnp.dot(weights, features, precision=_HIGHEST) / total
  target = targets - jnp.dot(weights, targets, precision=_HIGHEST) / total
  weighted = centred * weights[:, None]
  return (centred, target, jnp.dot(weighted.T, centred, precision=_HIGHEST),
          jnp.dot(weighted.T, target, precision=_HIGHEST))


def forward_selection(features: jax.Array, targets: jax.Array, weights: jax.Array,
                      candidates: jax.Array, steps: int) -> jax.Array:
  """bool[K]: `steps` columns of features f32[S,K] chosen greedily (lime's forward selection).

  Each step adds the candidate (bool[K]) column whose weighted least-squares fit on the
  chosen columns and it (intercept, no penalty) has the highest weighted R^2, the lowest
  index on ties; a step with no candidate left adds nothing.
  """
  num_columns = features.shape[1]
  centred, target, gram, rhs = _centred_system(features, targets, weights)
  total_squares = jnp.dot(weights, target ** 2, precision=_HIGHEST)

  def r_squared(mask):
    masked = gram * mask[:, None] * mask[None, :] + jnp.diag(1.0 - mask)
    coef = jax.scipy.linalg.solve(masked, rhs * mask, assume_a="pos")
    residual = target - jnp.dot(centred, coef, precision=_HIGHEST)
    return 1.0 - jnp.dot(weights, residual ** 2, precision=_HIGHEST) / total_squares

  def step(chosen, _):
    masks = jnp.eye(num_columns, dtype=bool) | chosen[None, :]
    scores = jax.vmap(r_squared)(masks.astype(jnp.float32))
    scores = jnp.where(candidates & ~chosen & ~jnp.isnan(scores), scores, -jnp.inf)
    best = jnp.argmax(scores)
    return chosen.at[best].set(chosen[best] | jnp.isfinite(scores[best])), None

  chosen, _ = jax.lax.scan(step, jnp.zeros(num_columns, bool), None, length=steps)
  return chosen


def highest_weights(features: jax.Array, targets: jax.Array, weights: jax.Array,
                    candidates: jax.Array, count: int) -> jax.Array:
  """bool[K]: the `count` candidate columns with the largest |coef| of a ridge fit with
  alpha = 0.01 (lime's "highest_weights"; ties to the lowest index)."""
  coef, _ = weighted_ridge(features, targets, weights, _SELECTION_ALPHA)
  magnitude = jnp.where(candidates, jnp.abs(coef), -1.0)
  order = jnp.argsort(-magnitude, stable=True)
  rank = jnp.zeros(features.shape[1], jnp.int32).at[order].set(
      jnp.arange(features.shape[1], dtype=jnp.int32))
  return candidates & (rank < count)


def _explanation(segments: jax.Array, scores: jax.Array, keep: jax.Array, *, kernel_width: float,
                 ridge_alpha: float, num_features: int) -> jax.Array:
  """Per-segment coefficients f32[K] of one image: i32[H,W], f32[S], bool[S,K]."""
  num_columns = keep.shape[1]
  present = jax.ops.segment_sum(jnp.ones(segments.size, jnp.int32), segments.reshape(-1),
                                num_columns) > 0
  kept = (keep & present).sum(axis=1).astype(jnp.float32)
  cosine = jnp.sqrt(kept / present.sum())  # z.1 / (|z| |1|) for z in {0,1}
  distance = 1.0 - cosine
  weights = jnp.sqrt(jnp.exp(-distance ** 2 / kernel_width ** 2))
  features = jnp.where(present, keep, True).astype(jnp.float32)
  chosen = present
  if num_features < num_columns:  # else every segment present is kept (lime's too)
    select = (forward_selection if num_features <= _FORWARD_SELECTION_MAX else highest_weights)
    chosen = select(features, scores, weights, present, num_features)
    features = jnp.where(chosen, features, 1.0)
  coef, _ = weighted_ridge(features, scores, weights, ridge_alpha)
  return jnp.where(chosen, coef, 0.0)  # constant columns: 0 up to rounding, made exact


def _sample_scores(clf: Classifier, images: jax.Array, labels: jax.Array, fill: jax.Array,
                   segments: jax.Array, keep: jax.Array, chunk: int) -> jax.Array:
  """f32[B,S]: the class probabilities of the perturbed images of keep bool[S,K], `chunk`
  samples per step."""
  batch, height, width, _ = images.shape
  num_samples = keep.shape[0]
  steps = math.ceil(num_samples / chunk)
  padded = jnp.pad(keep, ((0, steps * chunk - num_samples), (0, 0)))

  def score_chunk(_, step):
    chunk_keep = jax.lax.dynamic_slice_in_dim(padded, step * chunk, chunk)
    perturbed = jax.vmap(perturb, (0, 0, 0, None))(images, fill, segments, chunk_keep)
    logits = clf.logits(perturbed.reshape(batch * chunk, height, width, 3))
    probs = jax.nn.softmax(logits.reshape(batch, chunk, -1), axis=-1)
    return None, jnp.take_along_axis(probs, labels[:, None, None], axis=-1)[..., 0]

  _, scores = jax.lax.scan(score_chunk, None, jnp.arange(steps))
  return jnp.moveaxis(scores, 0, 1).reshape(batch, -1)[:, :num_samples]  # padded tail dropped


@functools.partial(jax.jit, static_argnames=(
    "num_samples", "num_columns", "num_segments", "compactness", "slic_sigma", "slic_iterations",
    "kernel_width", "ridge_alpha", "num_features", "hide", "chunk"))
def _lime(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
          segments: jax.Array | None, *, num_samples: int, num_columns: int, num_segments: int,
          compactness: float, slic_sigma: float, slic_iterations: int, kernel_width: float,
          ridge_alpha: float, num_features: int, hide: str, chunk: int) -> jax.Array:
  """The jitted LIME: f32[B,H,W,3], i32[B] -> f32[B,H,W]; segments None: JAX SLIC."""
  batch, height, width, _ = images.shape
  if segments is None:
    segments = jax.vmap(functools.partial(
        slic, num_segments=num_segments, compactness=compactness, sigma=slic_sigma,
        iterations=slic_iterations))(images)
  keep = kept_segments(key, jnp.arange(num_samples), num_columns)
  coef, _ = _segment_weights(clf, images, labels, segments, keep, kernel_width=kernel_width,
                             ridge_alpha=ridge_alpha, num_features=num_features, hide=hide,
                             chunk=chunk)
  return jnp.take_along_axis(coef, segments.reshape(batch, -1), axis=1).reshape(
      batch, height, width)


def _segment_weights(clf: Classifier, images: jax.Array, labels: jax.Array, segments: jax.Array,
                     keep: jax.Array, *, kernel_width: float, ridge_alpha: float,
                     num_features: int, hide: str, chunk: int) -> tuple[jax.Array, jax.Array]:
  """(coef f32[B,K], scores f32[B,S]) for segments i32[B,H,W] and samples keep bool[S,K]."""
  fill = hidden_fill(images, hide, segments, keep.shape[1])
  scores = _sample_scores(clf, images, labels, fill, segments, keep, chunk)
  coef = jax.vmap(functools.partial(_explanation, keep=keep, kernel_width=kernel_width,
                                    ridge_alpha=ridge_alpha, num_features=num_features))(
                                        segments, scores)
  return coef, scores


_segment_weights_jit = jax.jit(_segment_weights, static_argnames=(
    "kernel_width", "ridge_alpha", "num_features", "hide", "chunk"))


def lime_segment_weights(clf: Classifier, images: Any, labels: Any, segments: Any,
                         samples: Any, *, kernel_width: float = 0.25, ridge_alpha: float = 1.0,
                         num_features: int = 100000, hide: str = "mean",
                         chunk: int = 128) -> tuple[jax.Array, jax.Array]:
  """LIME's fit for given segments and samples: (coef f32[B,K], scores f32[B,S]).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the explained classes.
    segments: integer [B,H,W], labels in [0, K).
    samples: z, bool or {0, 1} [S,K]: sample s shows segment j when z[s, j] (the `lime`
      package's `data`; its row 0 is all ones). Shared by the images.
    kernel_width, ridge_alpha, num_features, hide, chunk: as `lime`'s options.

  Returns:
    coef[b, j], segment j's coefficient (0 for labels no pixel holds), and scores[b, s],
    softmax(f(x_s))_c of the perturbed images.
  """
  images = jnp.asarray(images, jnp.float32)
  labels = jnp.asarray(validation.checked_labels(clf, images, labels), jnp.int32)
  samples = np.asarray(samples)
  if samples.ndim != 2 or not np.isin(samples, (0, 1)).all():
    raise ValueError(f"samples must be a {{0, 1}} array [S, K], got shape {samples.shape}")
  segments = np.asarray(segments)
  if (segments.shape != images.shape[:3] or not np.issubdtype(segments.dtype, np.integer)
      or segments.min() < 0 or segments.max() >= samples.shape[1]):
    raise ValueError(f"segments must be integers [B, H, W] = {images.shape[:3]} in "
                     f"[0, {samples.shape[1]}), got {segments.dtype} {segments.shape}")
  options = {name: lime.info.options[name].resolve(value, name) for name, value in dict(
      kernel_width=kernel_width, ridge_alpha=ridge_alpha, num_features=num_features, hide=hide,
      chunk=chunk).items()}
  options["chunk"] = min(options["chunk"], samples.shape[0])
  return _segment_weights_jit(clf, images, labels, jnp.asarray(segments, jnp.int32),
                              jnp.asarray(samples, bool), **options)


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


# The superpixel options LIME shares with Kernel SHAP (`salijax.methods.kernel_shap`).
SEGMENT_OPTIONS = {"num_segments": Option(50, positive_int),
                   "compactness": Option(10.0, number(0.0, low_open=True)),
                   "slic_sigma": Option(1.0, number(0.0)),
                   "segmentation": Option("jax", one_of(*SEGMENTATIONS)),
                   "slic_iterations": Option(10, positive_int)}


@register("lime", title="LIME", summary="a weighted linear fit of the class score on "
          "superpixels shown or hidden",
          cost=lambda options, shapes: chunked("forward", options["num_samples"],
                                               options["chunk"]),
          needs_key=True, jitted=_lime,
          options={"num_samples": Option(1000, positive_int), **SEGMENT_OPTIONS,
                   "kernel_width": Option(0.25, number(0.0, low_open=True)),
                   "ridge_alpha": Option(1.0, number(0.0, low_open=True)),
                   "num_features": Option(100000, positive_int),
                   "hide": Option("mean", one_of(*HIDE_MODES)),
                   "chunk": Option(128, positive_int)})
def lime(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
         num_samples: int, num_segments: int, compactness: float, slic_sigma: float,
         kernel_width: float, ridge_alpha: float, num_features: int, hide: str,
         segmentation: str, chunk: int, slic_iterations: int) -> jax.Array:
  """LIME maps f32[B,H,W], each pixel painted with its segment's coefficient (module doc).

  Options: num_samples, S (sample 0 is the image itself); num_segments,
  compactness, slic_sigma (0: no pre-smoothing) and slic_iterations, SLIC's;
  kernel_width, the kernel's on cosine distances; ridge_alpha, the penalty;
  num_features, how many segments the fit keeps (lime's "auto" selection;
  the default keeps all); hide, what replaces a removed segment; segmentation, "jax" (compiled with
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
               kernel_width=kernel_width, ridge_alpha=ridge_alpha,
               num_features=num_features, hide=hide, chunk=min(chunk, num_samples))
