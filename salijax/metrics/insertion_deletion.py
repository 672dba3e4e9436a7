"""Insertion and deletion curves (Petsiuk, Das, Saenko, BMVC 2018) as one compiled program.

Pixels are ranked by decreasing saliency (`salijax.metrics.saliency_order`:
all channels of a pixel move together; ties go to the lower raster index).
With k = `step_pixels` and n = ceil(H W / k) steps, the step images are a pure
function of the step t and the pixel rank:

  x_t = where(rank < t k, finish, start),   t = 0..n
  deletion:  start = I,            finish = the deletion substrate
  insertion: start = the insertion substrate (default: blur(I)),  finish = I

y_t = f_c(x_t), the softmax probability (or logit) of the class c = `labels`;
AUC = (sum_{t=0}^{n} y_t - y_0 / 2 - y_n / 2) / n. Insertion: higher is better;
deletion: lower is better. Substrates: `salijax.metrics.substrates`.

labels=None scores the predicted classes (`predicted_labels`, the RISE
reference); or pass the ground truth. All 2 (n + 1) step images of all B images
are scored by one jitted loop; each forward takes the same s = max(1, chunk // B)
steps of every image (B s <= max(chunk, B) step images), built from the ranks
(computed once per image), so memory grows with `chunk` (plus the image and
its two substrates per image), not with n, and the result does not depend on
`chunk` or on the rest of the batch. The batch axis stays the outermost axis
of every step, so a batch sharded over devices (`salijax.parallel`) is scored
by each device on its own images.

    result = insertion_deletion(clf, images, maps)           # the predicted classes
    result = insertion_deletion(clf, images, maps, labels)   # or given classes
    result.insertion_auc, result.deletion_auc                # f32[B]

Seed parity: the ResNet18/VGG11 benchmark scores the ground-truth labels with
`step_pixels=500, blur_size=127, blur_sigma=17.0, deletion_substrate="zero",
substrate_space="pixel"`; the ACML 2024 study with `step_pixels=1792,
blur_size=5, blur_sigma=5.0`. The RISE reference code blurs normalised tensors
with zero padding: `blur_padding="zero"` in the default normalised space (its
kernel, scipy's `gaussian_filter` of a delta, folds the Gaussian's tails back
in, so it differs slightly from the sampled Gaussian used here).
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
from salijax.metrics import substrates
from salijax.metrics.perturbed_scores import SCORES, perturbed_scores
from salijax.metrics.saliency_order import pixel_ranks
from salijax.models.normalization import IMAGENET_MEAN


class InsertionDeletion(NamedTuple):
  """Per-image curves and areas under them; n = ceil(H W / step_pixels)."""

  insertion_curve: jax.Array  # f32[B, n + 1], y_t of the insertion images
  deletion_curve: jax.Array  # f32[B, n + 1], y_t of the deletion images
  insertion_auc: jax.Array  # f32[B], higher is better
  deletion_auc: jax.Array  # f32[B], lower is better


def num_steps(height: int, width: int, step_pixels: int) -> int:
  """n = ceil(H W / k), the number of steps of each curve (it has n + 1 points)."""
  return math.ceil(height * width / step_pixels)


def curve_auc(curves: jax.Array) -> jax.Array:
  """f32[..., n + 1] -> f32[...], the trapezoidal area over t / n in [0, 1]."""
  steps = curves.shape[-1] - 1
  return (curves.sum(axis=-1) - 0.5 * (curves[..., 0] + curves[..., -1])) / steps


def predicted_labels(clf: Classifier, images: Any) -> jax.Array:
  """i32[B], the classes the classifier predicts for f32[B,H,W,3] images (argmax logit)."""
  return validation.labels_or_predicted(clf, images, None)


@functools.partial(jax.jit, static_argnames=(
    "step_pixels", "insertion_substrate", "deletion_substrate", "substrate_space", "mean",
    "blur_size", "blur_sigma", "blur_padding", "score", "steps_per_forward"))
def _insertion_deletion(clf: Classifier, images: jax.Array, maps: jax.Array,
                        labels: jax.Array, *, step_pixels: int, insertion_substrate: str,
                        deletion_substrate: str, substrate_space: str,
                        mean: tuple[float, float, float], blur_size: int, blur_sigma: float,
                        blur_padding: str, score: str, steps_per_forward: int
                        ) -> InsertionDeletion:
  """The jitted metric: f32[B,H,W,3], f32[B,H,W], i32[B] -> curves (module doc).

  Each forward scores `steps_per_forward` (s) steps of every image: f32[B*s,H,W,3].
  """
  batch, height, width, _ = images.shape
  points = num_steps(height, width, step_pixels) + 1  # n + 1 step images per curve
  make = functools.partial(substrates.substrate, space=substrate_space, mean=mean,
                           blur_size=blur_size, blur_sigma=blur_sigma,
                           blur_padding=blur_padding)
  # Curve 0 = insertion (substrate -> image), curve 1 = deletion (image -> substrate).
  inserted_from = make(images, insertion_substrate)[:, None]  # f32[B,1,H,W,3]
  deleted_to = make(images, deletion_substrate)[:, None]
  image = images[:, None]
  ranks = pixel_ranks(maps)[:, None, ..., None]  # i32[B,1,H,W,1]

  def copies(jobs: jax.Array) -> jax.Array:
    """i32[s] (curve, step) indices, the same for every image -> f32[B,s,H,W,3] step images."""
    curve, step = jnp.divmod(jobs, points)
    insertion = (curve == 0)[None, :, None, None, None]
    start = jnp.where(insertion, inserted_from, image)  # f32[B,s,H,W,3]
    finish = jnp.where(insertion, image, deleted_to)
    finished = ranks < (step * step_pixels)[None, :, None, None, None]
    return jnp.where(finished, finish, start)

  curves = perturbed_scores(clf, copies, labels, num_jobs=2 * points,
                            per_forward=steps_per_forward, score=score)
  curves = curves.reshape(batch, 2, points)
  aucs = curve_auc(curves)
  return InsertionDeletion(insertion_curve=curves[:, 0], deletion_curve=curves[:, 1],
                           insertion_auc=aucs[:, 0], deletion_auc=aucs[:, 1])


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> None:
  if value not in choices:
    raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_colour(value: Any, name: str) -> tuple[float, float, float]:
  colour = np.asarray(value, np.float64) if np.ndim(value) == 1 else None
  if colour is None or colour.shape != (3,) or not ((colour >= 0) & (colour <= 1)).all():
    raise ValueError(f"{name} must be 3 values in [0, 1] (one per channel), got {value!r}")
  return tuple(float(c) for c in colour)


@takes_compute_dtype
def insertion_deletion(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                       step_pixels: int = 224, insertion_substrate: str = "blur",
                       deletion_substrate: str = "mean", substrate_space: str = "normalised",
                       blur_size: int = 11, blur_sigma: float = 5.0,
                       blur_padding: str = "reflect",
                       mean: Sequence[float] = IMAGENET_MEAN, score: str = "softmax",
                       chunk: int = 256, allow_constant_maps: bool = False
                       ) -> InsertionDeletion:
  """Insertion and deletion curves and AUCs of saliency maps (see the module doc).

  Args:
    clf: the Classifier; only `clf.apply` is used.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W], larger = more salient; only the order of the pixels counts.
    labels: i32[B], the class scored for each image (e.g. the ground truth);
      None = the predicted class (`predicted_labels`).
    step_pixels: k, the pixels inserted or deleted per step (the last step may
      move fewer); n = ceil(H W / k).
    insertion_substrate: the image insertion starts from: "blur", "mean" or
      "zero" (`salijax.metrics.substrates`).
    deletion_substrate: what deleted pixels become: "blur", "mean" or "zero".
    substrate_space: "normalised" or "pixel", the space whose 0 "zero" (and
      blur_padding "zero") means: the colour `mean`, or black.
    blur_size: the blur kernel's width in pixels (odd).
    blur_sigma: the blur's standard deviation in pixels.
    blur_padding: "reflect" (mirror at the borders) or "zero" (pad with 0 in
      `substrate_space`).
    mean: the classifier's normalisation mean (3 values in [0, 1]): the pixel
      colour of 0 in normalised space. The std is not needed (the substrates
      are per-channel affine in it and it cancels).
    score: "softmax" (the class probability) or "logit".
    chunk: step images per forward (at least one step of every image: each
      forward scores max(1, chunk // B) steps of each of the B images);
      changes memory and speed, not the result.
    allow_constant_maps: rank a constant map in raster order (the tie rule)
      instead of raising, e.g. to score an all-ones control map. Under a
      caller's `jax.jit` values are not checked and this rule always applies.

  Returns:
    InsertionDeletion: curves f32[B, n + 1] and AUCs f32[B].

  Raises:
    ValueError: bad images, maps (shape, non-finite, constant), labels or options.
    TypeError: wrong types of clf, images, maps or labels.
  """
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images, allow_constant=allow_constant_maps)
  validation.check_positive_int(step_pixels, "step_pixels")
  validation.check_positive_int(chunk, "chunk")
  validation.check_positive_int(blur_size, "blur_size")
  if blur_size % 2 == 0:
    raise ValueError(f"blur_size must be odd (a kernel centred on the pixel), got {blur_size}")
  number = isinstance(blur_sigma, (int, float, np.integer, np.floating))
  if isinstance(blur_sigma, bool) or not number or not 0 < blur_sigma < math.inf:
    raise ValueError(f"blur_sigma must be a positive number of pixels, got {blur_sigma!r}")
  _check_choice(insertion_substrate, "insertion_substrate", substrates.SUBSTRATES)
  _check_choice(deletion_substrate, "deletion_substrate", substrates.SUBSTRATES)
  _check_choice(substrate_space, "substrate_space", substrates.SPACES)
  _check_choice(blur_padding, "blur_padding", substrates.PADDINGS)
  _check_choice(score, "score", SCORES)
  batch, height, width = maps.shape
  step_pixels = min(int(step_pixels), height * width)  # every k >= H W is one step
  per_image = 2 * (num_steps(height, width, step_pixels) + 1)  # step images per image
  return _insertion_deletion(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), step_pixels=step_pixels,
      insertion_substrate=insertion_substrate, deletion_substrate=deletion_substrate,
      substrate_space=substrate_space, mean=_check_colour(mean, "mean"),
      blur_size=int(blur_size), blur_sigma=float(blur_sigma), blur_padding=blur_padding,
      score=score, steps_per_forward=min(max(1, int(chunk) // batch), per_image))
