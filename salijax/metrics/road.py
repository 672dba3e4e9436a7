"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci, ICML 2022).

For each percentage p of a list, the k = floor(H W p / 100) most salient
pixels (MoRF) or the k least salient (LeRF) of every image are removed and
filled by noisy linear imputation: every removed pixel takes the weighted mean
of its 8 neighbours inside the image (direct neighbours weight 1/6, diagonal
ones 1/12, renormalised over the neighbours inside the image), a sparse linear
system over all removed pixels at once (removed neighbours are unknowns too),

  d_i u_i - sum_{o: i+o removed} w_o u_{i+o} = sum_{o: i+o kept} w_o x_{i+o},
  d_i = sum_{o: i+o inside} w_o,

one system per channel, plus Gaussian noise of std `noise` on the removed
pixels (pixel units, [0, 1] scale). The imputed image is scored by the
classifier: `accuracy` = 1 if its predicted class is the label, else 0 (what
Quantus's ROAD returns per percentage); `probability` = the softmax
probability of the label. Pixels are ranked by `salijax.metrics.saliency_order`
(ties to the lower raster index). MoRF curves should fall fast (lower is
better), LeRF curves stay high (higher is better); the paper reads both.
Areas: the trapezoidal area over the removed fraction p / 100 divided by its
span (the curve's mean height; the value itself for one percentage).

The system is symmetric positive definite on the removed pixels (the kept
neighbours of every connected removed region pin it), so it is solved by
conjugate gradients in float32, matrix-free (8 shifted copies per iteration),
batched over the images and channels of one job (a percentage, MoRF or LeRF)
at a time, from the kept pixels' mean colour, each system until its relative
residual |b - M u| / |b| <= `tol` (then it stops changing: the result does
not depend on what shares its chunk) or after `max_iterations` (a
`jax.lax.while_loop`: jittable). The accuracy is float32's, about eps times
the system's condition number, which grows with the square of the removed
region's width: against scipy's float64 sparse direct solve (Quantus), max
|pixel error| 1e-5 at 16 x 16, 3e-4 for a 64 x 64 image with one removed blob,
2e-3 for 90 % of a 224 x 224 image removed as one blob (half an 8-bit level;
the default noise is 0.01).
`road_images` returns the images and true residuals (~1e-5) to check.
p = 100 (everything removed) is refused: the system is then singular.

Defaults follow Quantus 0.6.0 (percentages 1, 3, ..., 99; noise 0.01).
All 2 P imputed images of the B images are built from the job index (order,
percentage) inside `perturbed_scores`, so the imputation is chunked with the
forwards: memory grows with `chunk`, not with P, and the result does not
depend on `chunk`.

    result = road(clf, images, maps, labels, key=jax.random.key(0))
    result.morf_accuracy, result.lerf_probability_auc
"""

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics.perturbed_scores import per_forward, perturbed_scores
from salijax.metrics.saliency_order import pixel_ranks

# (row offset, column offset) -> weight; the 4 direct neighbours 1/6, the 4 diagonal ones 1/12.
NEIGHBOURS = (((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12), ((0, -1), 1 / 6),
              ((0, 1), 1 / 6), ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12))
DEFAULT_PERCENTAGES = tuple(range(1, 100, 2))


class Road(NamedTuple):
  """Per-image ROAD curves over the P percentages, and their areas."""

  morf_accuracy: jax.Array  # f32[B, P], 1 where the most-salient-removed image is classified right
  lerf_accuracy: jax.Array  # f32[B, P], the same with the least salient pixels removed
  morf_probability: jax.Array  # f32[B, P], the softmax probability of the label, MoRF
  lerf_probability: jax.Array  # f32[B, P], LeRF
  morf_accuracy_auc: jax.Array  # f32[B], lower is better
  lerf_accuracy_auc: jax.Array  # f32[B], higher is better
  morf_probability_auc: jax.Array  # f32[B], lower is better
  lerf_probability_auc: jax.Array  # f32[B], higher is better


def signed_probabilities(clf: Classifier) -> Classifier:
  """The classifier whose "logits" are +p_k for the predicted class k and -p_k for the others.

  p = softmax of the logits. The predicted class has p_k >= 1/K > 0, so one
  value per copy (score="logit") carries both the class probability |v| and
  whether the class is predicted (v > 0): one forward gives accuracy and
  probability curves. The argmax takes the first of tied classes (as numpy).
  """

  def apply(variables, images):
    logits = clf.apply(variables, images)
    probabilities = jax.nn.softmax(logits, axis=-1)
    predicted = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=bool)
    return jnp.where(predicted, probabilities, -probabilities)

  return Classifier(variables=clf.variables, apply=apply)


def _ring(values: jax.Array) -> jax.Array:
  """f32[..., H, W] -> f32[..., H+2, W+2], a ring of zeros around every image."""
  return jnp.pad(values, [(0, 0)] * (values.ndim - 2) + [(1, 1), (1, 1)])


def _inner(ringed: jax.Array) -> jax.Array:
  """f32[..., H+2, W+2] -> f32[..., H, W], the image inside its ring."""
  return ringed[..., 1:-1, 1:-1]


def _ringed_neighbour_sum(ringed: jax.Array) -> jax.Array:
  """f32[..., H+2, W+2] with a zero ring -> f32[..., H, W], sum_o w_o values[i + o] over the
  neighbours inside the image."""
  height, width = ringed.shape[-2] - 2, ringed.shape[-1] - 2
  return sum(weight * ringed[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
             for (dy, dx), weight in NEIGHBOURS)


def _solve(images: jax.Array, removed: jax.Array, tol: float, max_iterations: int
           ) -> tuple[jax.Array, jax.Array]:
  """Linear imputation, channels first: f32[..., C, H, W] images, bool[..., 1, H, W] removed
  pixels -> (imputed images (kept pixels unchanged), f32[..., C] relative residuals
  |b - M u| / |b|). Every system runs until it converges, all until the last one does.

  The iterates are kept with their zero ring (f32[..., H+2, W+2]), so a neighbour
  sum reads them as they are, without padding a copy per iteration (an iteration
  1.2x faster on XLA:CPU at 224 px).
  """
  removed = removed.astype(images.dtype)
  kept = 1.0 - removed
  degree = _ringed_neighbour_sum(_ring(jnp.ones(images.shape[-2:], images.dtype)))

  def operator(u):  # ringed -> ringed; on the removed pixels: u and M u are 0 on the kept ones
    return _ring(removed * (degree * _inner(u) - _ringed_neighbour_sum(u)))

  def dot(a, b):  # -> f32[..., C, 1, 1]; a dot kernel runs it faster than a reduction
    products = jnp.einsum("...hw,...hw->...", a, b, precision=jax.lax.Precision.HIGHEST)
    return products[..., None, None]

  rhs = _ring(removed * _ringed_neighbour_sum(_ring(kept * images)))
  known = jnp.maximum(jnp.sum(kept, axis=(-2, -1), keepdims=True), 1.0)
  start = _ring(removed * jnp.sum(kept * images, axis=(-2, -1), keepdims=True) / known)
  residual = rhs - operator(start)
  bound = tol ** 2 * dot(rhs, rhs)

  def unfinished(state):
    _, _, _, rr, step = state
    return jnp.logical_and(step < max_iterations, jnp.any(rr > bound))

  def iteration(state):
    u, r, p, rr, step = state
    mp = operator(p)
    pmp = dot(p, mp)
    active = (rr > bound) & (pmp > 0)  # a converged system stops: independent of the others
    alpha = jnp.where(active, rr / jnp.where(active, pmp, 1.0), 0.0)
    u = u + alpha * p
    r = r - alpha * mp
    rr_new = dot(r, r)
    beta = jnp.where(active, rr_new / jnp.where(active, rr, 1.0), 0.0)
    return u, r, jnp.where(active, r + beta * p, p), jnp.where(active, rr_new, rr), step + 1

  state = (start, residual, residual, dot(residual, residual), jnp.int32(0))
  solution = jax.lax.while_loop(unfinished, iteration, state)[0]
  true = rhs - operator(solution)
  relative = jnp.sqrt(dot(true, true) / jnp.maximum(dot(rhs, rhs), jnp.finfo(images.dtype).tiny))
  return jnp.where(removed > 0, _inner(solution), images), relative[..., 0, 0]


def _removed(ranks: jax.Array, count: jax.Array, lerf: jax.Array) -> jax.Array:
  """i32[B,H,W] ranks, i32 count k, bool LeRF -> bool[B,H,W] removed pixels."""
  pixels = ranks.shape[1] * ranks.shape[2]
  return jnp.where(lerf, ranks >= pixels - count, ranks < count)


def _imputed(images: jax.Array, ranks: jax.Array, key: jax.Array, jobs: jax.Array, *,
             counts: tuple[int, ...], noise: float, tol: float, max_iterations: int
             ) -> tuple[jax.Array, jax.Array]:
  """Jobs i32[s] (j < P: MoRF at percentage j, else LeRF at j - P) -> the imputed images
  f32[B,s,H,W,3] and the relative residuals f32[B,s,3] of their linear systems.

  One job at a time (`lax.map`): its B images' systems stop when they have
  converged, whatever the other jobs need. Channels first inside the solver:
  its reductions then run over contiguous pixels (2x faster on XLA:CPU).
  """
  num = len(counts)
  count_of_job = jnp.asarray(counts, jnp.int32)
  channels_first = jnp.moveaxis(images, -1, 1)  # f32[B,3,H,W]
  # One noise key per (image, job): independent of the chunking and of B.
  image_keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(images.shape[0]))

  def one_job(job: jax.Array) -> tuple[jax.Array, jax.Array]:
    removed = _removed(ranks, count_of_job[job % num], job >= num)
    filled, residuals = _solve(channels_first, removed[:, None], tol, max_iterations)
    filled = jnp.moveaxis(filled, 1, -1)  # f32[B,H,W,3]
    if noise > 0:
      normal = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, job),
                                                    images.shape[1:]))(image_keys)
      filled = filled + removed[..., None] * (noise * normal)
    return filled, residuals  # f32[B,H,W,3], f32[B,3]

  filled, residuals = jax.lax.map(one_job, jobs)  # f32[s,B,H,W,3], f32[s,B,3]
  return jnp.moveaxis(filled, 0, 1), jnp.moveaxis(residuals, 0, 1)


def _iterations(height: int, width: int, max_iterations: int | None) -> int:
  return 4 * (height + width) if max_iterations is None else int(max_iterations)


@functools.partial(jax.jit, static_argnames=("percentages", "noise", "tol", "max_iterations"))
def road_images(images: jax.Array, maps: jax.Array, key: jax.Array, *,
                percentages: tuple[float, ...], noise: float = 0.0, tol: float = 1e-5,
                max_iterations: int | None = None) -> tuple[jax.Array, jax.Array]:
  """The images `road` scores, for inspection: (f32[B,2P,H,W,3] imputed images, MoRF at the
  P percentages then LeRF; f32[B,2P,3] relative residuals |b - M u| / |b| per channel).

  Arguments as `road` (key: any key when noise is 0), unchecked.
  """
  height, width = images.shape[1:3]
  counts = tuple(int(height * width * p / 100) for p in percentages)
  ranks = pixel_ranks(maps)
  return _imputed(images, ranks, key, jnp.arange(2 * len(counts)), counts=counts, noise=noise,
                  tol=tol, max_iterations=_iterations(height, width, max_iterations))


def curve_area(curves: jax.Array, fractions: Sequence[float]) -> jax.Array:
  """f32[..., P] over increasing fractions -> the trapezoidal area divided by the span."""
  if len(fractions) == 1:
    return curves[..., 0]
  x = jnp.asarray(fractions, curves.dtype)
  widths = x[1:] - x[:-1]
  area = jnp.sum(widths * 0.5 * (curves[..., 1:] + curves[..., :-1]), axis=-1)
  return area / (x[-1] - x[0])


@functools.partial(jax.jit, static_argnames=(
    "counts", "fractions", "noise", "tol", "max_iterations", "per_image_forward"))
def _road(clf: Classifier, images: jax.Array, maps: jax.Array, labels: jax.Array,
          key: jax.Array, *, counts: tuple[int, ...], fractions: tuple[float, ...], noise: float,
          tol: float, max_iterations: int, per_image_forward: int) -> Road:
  """The jitted metric (module doc): job j < P is MoRF at percentage j, j >= P LeRF."""
  batch = images.shape[0]
  num = len(counts)
  ranks = pixel_ranks(maps)  # i32[B,H,W]

  def copies(jobs: jax.Array) -> jax.Array:
    return _imputed(images, ranks, key, jobs, counts=counts, noise=noise, tol=tol,
                    max_iterations=max_iterations)[0]

  values = perturbed_scores(signed_probabilities(clf), copies, labels, num_jobs=2 * num,
                            per_forward=per_image_forward, score="logit")
  accuracy = (values > 0).astype(jnp.float32).reshape(batch, 2, num)
  probability = jnp.abs(values).reshape(batch, 2, num)
  accuracy_auc = curve_area(accuracy, fractions)
  probability_auc = curve_area(probability, fractions)
  return Road(morf_accuracy=accuracy[:, 0], lerf_accuracy=accuracy[:, 1],
              morf_probability=probability[:, 0], lerf_probability=probability[:, 1],
              morf_accuracy_auc=accuracy_auc[:, 0], lerf_accuracy_auc=accuracy_auc[:, 1],
              morf_probability_auc=probability_auc[:, 0],
              lerf_probability_auc=probability_auc[:, 1])


def _check_percentages(percentages: Any) -> tuple[float, ...]:
  try:
    values = tuple(float(p) for p in percentages)
  except (TypeError, ValueError):
    raise ValueError(f"percentages must be a sequence of numbers, got {percentages!r}") from None
  ok = values and all(0 <= p < 100 for p in values) and all(
      a < b for a, b in zip(values, values[1:], strict=False))
  if not ok:
    raise ValueError("percentages must be a non-empty, strictly increasing sequence in [0, 100)"
                     f" (100 removes every pixel: nothing to impute from), got {percentages!r}")
  return values


@takes_compute_dtype
def road(clf: Classifier, images: Any, maps: Any, labels: Any = None, *, key: Any = None,
         percentages: Sequence[float] = DEFAULT_PERCENTAGES, noise: float = 0.01,
         tol: float = 1e-5, max_iterations: int | None = None, chunk: int = 256,
         allow_constant_maps: bool = False) -> Road:
  """ROAD accuracy and probability curves, MoRF and LeRF (see the module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W], larger = more salient; only the order of the pixels counts.
    labels: i32[B], the class scored (e.g. the ground truth); None = the predicted class.
    key: PRNG key of the imputation noise; required when noise > 0.
    percentages: P strictly increasing values in [0, 100): k = floor(H W p / 100) pixels removed.
    noise: the std of the Gaussian noise added to the imputed pixels (pixel units); 0 = none.
    tol: the conjugate-gradient solver's relative residual target.
    max_iterations: its iteration limit; None = 4 (H + W).
    chunk: imputed images per forward (at least one per image); memory, not the result.
    allow_constant_maps: rank a constant map in raster order instead of raising.

  Returns:
    Road: curves f32[B, P] and areas f32[B].

  Raises:
    ValueError: bad images, maps, labels or options. TypeError: wrong types, missing key.
  """
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images, allow_constant=allow_constant_maps)
  values = _check_percentages(percentages)
  number = isinstance(noise, (int, float, np.integer, np.floating)) and not isinstance(noise, bool)
  if not number or not 0 <= noise < math.inf:
    raise ValueError(f"noise must be a finite number >= 0 (a standard deviation), got {noise!r}")
  if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
    raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
  if max_iterations is not None:
    validation.check_positive_int(max_iterations, "max_iterations")
  validation.check_positive_int(chunk, "chunk")
  if noise > 0:
    validation.check_key(key)
  else:
    key = jax.random.key(0) if key is None else key  # unused
  batch, height, width = maps.shape
  counts = tuple(int(height * width * p / 100) for p in values)
  return _road(clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
               jnp.asarray(labels, jnp.int32), key, counts=counts,
               fractions=tuple(p / 100 for p in values), noise=float(noise), tol=float(tol),
               max_iterations=_iterations(height, width, max_iterations),
               per_image_forward=per_forward(chunk, batch))
