"""Infidelity (Yeh et al. 2019): how far the map's linear prediction of score changes misses.

  infidelity = E_I[(I . a - (f_c(x) - f_c(x - I)))^2],   I . a = sum_{y,x,c} I_yxc a_yx

over perturbations I of the image x (the map a is shared by the channels);
lower is better (0: the map predicts every change exactly, as the gradient of
a linear model does). C.-K. Yeh, C.-Y. Hsieh, A. S. Suggala, D. I. Inouye,
P. Ravikumar, "On the (In)fidelity and Sensitivity of Explanations", NeurIPS
2019, arXiv:1901.09392. The expectation is the mean over J perturbations:

- perturbation="gaussian" (default; the paper's noisy perturbations):
  I_j ~ N(0, noise_std^2) independently for every value, j = 1..`num_samples`
  (100), drawn from (key, j); noise_std 0.2 as the authors' code. x - I may
  leave [0, 1].
- perturbation="patches" (Quantus 0.6.0's `Infidelity` with its defaults):
  deterministic. The image is cut into `patch_size` (4) squares in raster
  order (those at the bottom and right edges may be smaller), and copy j
  has patches 0..j replaced by the `baseline` (Quantus's "black" is each
  image's minimum: baseline="min"); I_j = x - copy_j. Quantus's
  `n_perturb_samples` repeats the same J copies and averages equal numbers.
  Equal to Quantus where patch_size divides H and W (Quantus fails otherwise).

Scores: `score`, the logit by default (as Quantus scores) or the softmax.
The paper's optional rescaling of the map by the loss-minimising factor is
not applied (nor is it by Quantus).

    infidelity(clf, images, maps, key=jax.random.key(0)).infidelity   # f32[B]
"""

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import attribution_groups as groups_lib
from salijax.metrics import baselines
from salijax.metrics.per_image_draws import per_image
from salijax.metrics.perturbed_scores import class_scores, per_forward, perturbed_scores

PERTURBATIONS = ("gaussian", "patches")


class Infidelity(NamedTuple):
  """Per image: the mean squared error of the map's prediction of the score changes."""

  infidelity: jax.Array  # f32[B], lower is better


def gaussian_noise(key: jax.Array, job: jax.Array, shape: tuple[int, ...],
                   noise_std: float) -> jax.Array:
  """f32[B,H,W,3], the perturbation I_j of every image for job j (perturbation="gaussian")."""
  return noise_std * per_image(jax.random.fold_in(key, job), shape[0],
                               lambda k: jax.random.normal(k, shape[1:]))


def patch_index(height: int, width: int, patch_size: int) -> jax.Array:
  """i32[H,W], each pixel's patch in raster order of the patch_size squares."""
  columns = math.ceil(width / patch_size)
  rows = jnp.arange(height, dtype=jnp.int32)[:, None] // patch_size
  return rows * columns + jnp.arange(width, dtype=jnp.int32)[None, :] // patch_size


@functools.partial(jax.jit, static_argnames=(
    "perturbation", "num_samples", "noise_std", "patch_size", "baseline", "score",
    "copies_per_forward"))
def _infidelity(clf: Classifier, images: jax.Array, maps: jax.Array, labels: jax.Array,
                key: jax.Array | None, *, perturbation: str, num_samples: int, noise_std: float,
                patch_size: int, baseline: Any, score: str,
                copies_per_forward: int) -> Infidelity:
  batch, height, width, _ = images.shape
  original = class_scores(clf, images[:, None], labels, score)  # f32[B,1]
  if perturbation == "gaussian":
    shape = images.shape

    def noise(jobs: jax.Array) -> jax.Array:  # i32[s] -> f32[B,s,H,W,3]
      return jax.vmap(lambda j: gaussian_noise(key, j, shape, noise_std), out_axes=1)(jobs)

    scores = perturbed_scores(clf, lambda jobs: images[:, None] - noise(jobs), labels,
                              num_jobs=num_samples, per_forward=copies_per_forward,
                              score=score)
    dots = jax.lax.map(lambda j: jnp.einsum("bhwc,bhw->b", noise(j[None])[:, 0], maps,
                                                 precision=jax.lax.Precision.HIGHEST),
                       jnp.arange(num_samples, dtype=jnp.int32)).T  # f32[B,J]
  else:
    count = math.ceil(height / patch_size) * math.ceil(width / patch_size)
    patches = patch_index(height, width, patch_size)
    colour = baselines.baseline_images(images, baseline)  # f32[B,H,W,3]

    def copies(jobs: jax.Array) -> jax.Array:  # copy j: patches 0..j at the baseline
      removed = patches[None, None, :, :, None] <= jobs[None, :, None, None, None]
      return jnp.where(removed, colour[:, None], images[:, None])

    scores = perturbed_scores(clf, copies, labels, num_jobs=count,
                              per_forward=copies_per_forward, score=score)
    # I . a of copy j: the sum over patches 0..j of sum_p a_p sum_c (x_pc - colour).
    terms = maps * (images - colour).sum(axis=3)
    per_patch = groups_lib.group_sums(terms, jnp.broadcast_to(patches, maps.shape), count)
    dots = jnp.cumsum(per_patch, axis=1)
  errors = dots - (original - scores)
  return Infidelity((errors * errors).mean(axis=1))


@takes_compute_dtype
def infidelity(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
               key: Any = None, perturbation: str = "gaussian", num_samples: int = 100,
               noise_std: float = 0.2, patch_size: int = 4, baseline: Any = "min",
               score: str = "logit", chunk: int = 256) -> Infidelity:
  """Infidelity of saliency maps (Yeh et al. 2019; module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] attributions (their values count: a map is a linear model of f).
    labels: i32[B] classes scored; None = the predicted classes.
    key: a PRNG key drawing the noise (perturbation="gaussian"; unused for "patches").
    perturbation: "gaussian" (the paper) or "patches" (Quantus's default).
    num_samples: J, the noise draws (gaussian).
    noise_std: the noise's standard deviation in pixel units (gaussian).
    patch_size: the side of the squares (patches); ceil(H / p) ceil(W / p) forwards.
    baseline: what removed patches become: "min" (Quantus's "black"), "black" (0), or any
      other name, value or 3 channel values of `salijax.metrics.baselines`.
    score: "logit" or "softmax".
    chunk: perturbed images per forward; changes memory and speed, not the result.

  Returns:
    Infidelity: infidelity f32[B], lower is better.
  """
  if perturbation not in PERTURBATIONS:
    raise ValueError(f"perturbation must be one of {list(PERTURBATIONS)}, got {perturbation!r}")
  labels = groups_lib.check_inputs(clf, images, maps, labels, score=score, chunk=chunk)
  baseline = baselines.check_baseline(baseline, images, names=baselines.DETERMINISTIC,
                                      arrays=False)
  batch, height, width = maps.shape
  if perturbation == "gaussian":
    validation.check_key(key)
    validation.check_positive_int(num_samples, "num_samples")
    number = isinstance(noise_std, (int, float)) and not isinstance(noise_std, bool)
    if not number or not 0 < noise_std < math.inf:
      raise ValueError(f"noise_std must be a positive number, got {noise_std!r}")
  else:
    groups_lib.check_at_most(patch_size, min(height, width), "patch_size",
                             "the image's shorter side")
    key = None
  return _infidelity(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), key, perturbation=perturbation,
      num_samples=int(num_samples), noise_std=float(noise_std), patch_size=int(patch_size),
      baseline=baseline, score=score, copies_per_forward=per_forward(chunk, batch))
