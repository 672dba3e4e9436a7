"""Kernel SHAP on superpixels (Lundberg & Lee, NeurIPS 2017), as Captum's `KernelShap`.

Segments: SLIC superpixels, as `salijax.methods.lime` (`segmentation="jax"`
in the compiled program, or `"skimage"` on the host); the M segments an image
has are its players (labels that no pixel holds are not). A coalition
z in {0,1}^M shows the segments it keeps and hides the others by `hide`
(as LIME: "mean" colour, "black", "blur"); y(z) is the target class's
`score` ("softmax" probability or "logit") of that image.

Coalitions: z_0 = 1 (every segment), z_1 = 0 (none); for s >= 2 a size k is
drawn with probability proportional to the Shapley kernel's total weight of
the coalitions of that size, (M - 1) / (k (M - k)), k = 1..M-1, and z_s keeps
k segments chosen uniformly (the k smallest of uniform numbers, one per
segment). Sampling by the kernel makes every sampled coalition's weight 1;
z_0 and z_1, whose kernel weight is infinite (they pin the intercept to y(0)
and the sum to y(1) - y(0)), get weight 1e6, Captum's. Sample s draws from
`jax.random.fold_in(key, s)` and the image's own segmentation, so an image's
map does not depend on the rest of the batch or on `chunk`.

The weighted least-squares fit with an unpenalised intercept,

  (phi, phi_0) = argmin sum_s w_s (y(z_s) - phi_0 - z_s . phi)^2

(scikit-learn's `LinearRegression().fit(Z, y, sample_weight=w)`, Captum's
interpretable model), centred by the weighted means as
`salijax.methods.lime.weighted_ridge` but without a penalty and solved by
least squares on the sqrt(w)-scaled rows (SVD), not by the normal equations:
the two weights of 1e6 make the normal equations' matrix too ill-conditioned
for float32 (errors of ~1 % of phi), the scaled rows' SVD keeps ~1e-6. A
segment no sampled coalition varies gets phi = 0 (the minimum-norm solution).
L(pixel) = phi_(segment of pixel).

One compiled loop runs over chunks of `chunk` coalitions of every image per
forward and keeps the scores f32[B,S]. Cost: S forwards.

    maps = kernel_shap(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]
"""

import functools

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.lime import (
  _COLUMN_MULTIPLE,
  HIDE_MODES,
  SEGMENT_OPTIONS,
  _host_segments,
  hidden_fill,
  perturb,
)
from salijax.methods.registry import Option, chunked, one_of, positive_int, register
from salijax.methods.slic import slic, slic_grid
from salijax.metrics.perturbed_scores import SCORES, perturbed_scores

ENDPOINT_WEIGHT = 1e6  # Captum's weight of the empty and the full coalition
_HIGHEST = jax.lax.Precision.HIGHEST


def present_segments(segments: jax.Array, num_columns: int) -> jax.Array:
  """bool[num_columns]: which labels segments i32[H,W] holds."""
  return jax.ops.segment_sum(jnp.ones(segments.size, jnp.int32), segments.reshape(-1),
                             num_columns) > 0


@jax.jit
def coalitions(key: jax.Array, samples: jax.Array, present: jax.Array) -> jax.Array:
  """bool[S, K]: the coalitions samples i32[S] keep of an image with present bool[K] labels
  (module doc); labels not present are always kept (their column is constant: phi = 0)."""
  num_columns = present.shape[0]
  players = present.sum()
  sizes = jnp.arange(num_columns + 1)
  valid = (sizes >= 1) & (sizes <= players - 1)
  # log of 1 / (k (M - k)); the factor M - 1 is common. M < 2: size 0.
  logits = jnp.where(valid, -jnp.log(jnp.maximum(sizes * (players - sizes), 1)), -jnp.inf)
  logits = jnp.where((players < 2) & (sizes == 0), 0.0, logits)

  def one(sample):
    size_key, order_key = jax.random.split(jax.random.fold_in(key, sample))
    size = jax.random.categorical(size_key, logits)
    draws = jnp.where(present, jax.random.uniform(order_key, (num_columns,)), 2.0)
    rank = jnp.argsort(jnp.argsort(draws))
    keep = (rank < size) | ~present
    return jnp.where(sample == 0, True, jnp.where(sample == 1, ~present, keep))

  return jax.vmap(one)(samples)


def weighted_least_squares(features: jax.Array, targets: jax.Array,
                           weights: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Coefficients f32[K] and intercept f32[] of the weighted least-squares fit (module doc).

  features f32[S,K], targets f32[S], weights f32[S] > 0. Centred by the weighted
  means, rows scaled by sqrt(w), solved by `jnp.linalg.lstsq` (SVD: the
  minimum-norm solution, 0 for a constant column), as scikit-learn does.
  """
  total = weights.sum()
  feature_mean = jnp.dot(weights, features, precision=_HIGHEST) / total
  target_mean = jnp.dot(weights, targets, precision=_HIGHEST) / total
  root = jnp.sqrt(weights)
  coef = jnp.linalg.lstsq((features - feature_mean) * root[:, None],
                          (targets - target_mean) * root)[0]
  return coef, target_mean - jnp.dot(feature_mean, coef, precision=_HIGHEST)


def coalition_weights(keep: jax.Array, present: jax.Array) -> jax.Array:
  """f32[S]: 1e6 for the empty and the full coalition bool[S,K], 1 for the others."""
  kept = (keep & present).sum(axis=1)
  return jnp.where((kept == 0) | (kept == present.sum()), ENDPOINT_WEIGHT, 1.0)


@functools.partial(jax.jit, static_argnames=(
    "num_samples", "num_columns", "num_segments", "compactness", "slic_sigma", "slic_iterations",
    "hide", "score", "chunk"))
def _kernel_shap(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
                 segments: jax.Array | None, *, num_samples: int, num_columns: int,
                 num_segments: int, compactness: float, slic_sigma: float, slic_iterations: int,
                 hide: str, score: str, chunk: int) -> jax.Array:
  """The jitted Kernel SHAP: f32[B,H,W,3], i32[B] -> f32[B,H,W]; segments None: JAX SLIC."""
  batch, height, width, _ = images.shape
  if segments is None:
    segments = jax.vmap(functools.partial(
        slic, num_segments=num_segments, compactness=compactness, sigma=slic_sigma,
        iterations=slic_iterations))(images)
  present = jax.vmap(present_segments, (0, None))(segments, num_columns)  # bool[B,K]
  fill = hidden_fill(images, hide)
  fill = jnp.broadcast_to(fill, (batch,) + fill.shape[1:])

  def copies(jobs: jax.Array) -> jax.Array:
    keep = jax.vmap(coalitions, (None, None, 0))(key, jobs, present)  # bool[B,s,K]
    return jax.vmap(perturb)(images, fill, segments, keep)

  scores = perturbed_scores(clf, copies, labels, num_jobs=num_samples, per_forward=chunk,
                            score=score)  # f32[B,S]

  def explain(present, scores):
    keep = coalitions(key, jnp.arange(num_samples), present)
    coef, _ = weighted_least_squares(keep.astype(jnp.float32), scores,
                                     coalition_weights(keep, present))
    return coef

  coef = jax.vmap(explain)(present, scores)  # f32[B,K]
  return jnp.take_along_axis(coef, segments.reshape(batch, -1), axis=1).reshape(
      batch, height, width)


@register("kernel_shap", title="Kernel SHAP",
          summary="Shapley values of superpixels by a kernel-weighted linear fit on sampled "
          "coalitions",
          cost=lambda options, shapes: chunked("forward", options["num_samples"],
                                               options["chunk"]),
          needs_key=True, jitted=_kernel_shap,
          options={"num_samples": Option(500, positive_int), **SEGMENT_OPTIONS,
                   "hide": Option("mean", one_of(*HIDE_MODES)),
                   "score": Option("softmax", one_of(*SCORES)),
                   "chunk": Option(128, positive_int)})
def kernel_shap(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
                num_samples: int, num_segments: int, compactness: float, slic_sigma: float,
                hide: str, score: str, segmentation: str, chunk: int,
                slic_iterations: int) -> jax.Array:
  """Kernel SHAP maps f32[B,H,W], each pixel painted with its segment's phi (module doc).

  Options: num_samples, S (coalitions 0 and 1 are the full and the empty one);
  num_segments, compactness, slic_sigma, slic_iterations and segmentation,
  SLIC's (as LIME's); hide, what replaces a hidden segment; score, the class
  score explained; chunk,
  coalitions of every image per forward (memory and speed, not the result).
  """
  _, height, width, _ = images.shape
  num_columns = slic_grid(height, width, num_segments).size
  segments = None
  if segmentation == "skimage":
    segments = _host_segments(images, num_segments, compactness, slic_sigma, slic_iterations)
    num_columns = max(num_columns, int(segments.max()) + 1)
    num_columns = -(-num_columns // _COLUMN_MULTIPLE) * _COLUMN_MULTIPLE
  return _kernel_shap(clf, images, labels, key, segments, num_samples=num_samples,
                      num_columns=num_columns, num_segments=num_segments,
                      compactness=compactness, slic_sigma=slic_sigma,
                      slic_iterations=slic_iterations, hide=hide,
                      score=score, chunk=chunk)
