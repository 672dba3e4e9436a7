"""Performance Information Curves: SIC and AIC (Kapishnikov et al., "XRAI: Better Attributions
Through Regions", ICCV 2019, section 4.1), as PAIR's `saliency.metrics.pic` (0.2.1) computes them.

An image is blurred by keeping a random 1% of its pixels (plus its 4 corners)
and filling every other pixel by linear interpolation over the Delaunay
triangulation of the kept pixels (scipy's `griddata`, qhull); then for each
saliency threshold t the pixels with saliency >= the (1 - t) quantile of the
map are kept too and the rest re-interpolated. Each image's information is
estimated by its lossless WebP size in bytes (PIL, quality 100). With the
original image I, the fully blurred image B and threshold image X_t:

  e_t = clip((size(X_t) - size(B)) / (size(I) - size(B)), 0, 1)
  y_t = clip((f(X_t) - f(B)) / (f(I) - f(B)), 0, 1),  then the running max over t
        (keep_monotonous, the paper's choice)

f is the softmax probability of the label (SIC) or 1 if the label is the
predicted class else 0 (AIC). The points (e_t, y_t) with (0, 0) and (1, 1) are
joined linearly (scipy's `interp1d`, x sorted stably, as PAIR), sampled at
x = 0, 1/N, ..., (N - 1)/N and closed with (1, 1) (N = `num_data_points`);
the AUC is the trapezoidal area. An image is invalid (PAIR raises
ComputePicMetricError and the caller skips it) when f(I) < `min_pred_value`,
f(B) >= f(I) or size(B) >= size(I): its curve and AUC are NaN and its
`*_valid` flag False. Aggregate over images with the median (PAIR's default)
or mean of the valid curves.

PAIR takes uint8 images: the [0, 1] images are rounded to 8 bits
(round(255 x)) and the classifier always sees u8 / 255, the original included.

Where the work runs. The triangulation (qhull) and the WebP sizes have no JAX
counterpart and the sizes need every blurred image on the host, so the
blurring and the sizes are computed on the host, in numpy and scipy exactly as
PAIR (float64 interpolation, cast to float32, rounded half to even); the
B (T + 2) forwards (fully blurred, T thresholds, original) are one compiled
program (`perturbed_scores`, chunked), and one forward gives both SIC and AIC.
So `pic` is not jittable as a whole; its model part is.

    result = pic(clf, images, maps, labels, key=jax.random.key(0))
    result.sic_auc, result.aic_auc      # f32[B], NaN where invalid
"""

import functools
import io
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics.per_image_draws import per_image
from salijax.metrics.perturbed_scores import per_forward, perturbed_scores
from salijax.metrics.road import signed_probabilities

# The thresholds of PAIR's documentation and notebook (fractions of the most salient pixels).
DEFAULT_THRESHOLDS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5,
                      0.75)


class Pic(NamedTuple):
  """Per-image SIC and AIC; N = num_data_points, T = the number of thresholds."""

  sic_curve: np.ndarray  # f32[B, N + 1] at x = 0, 1/N, ..., 1; NaN where invalid
  aic_curve: np.ndarray  # f32[B, N + 1]
  sic_auc: np.ndarray  # f32[B], higher is better; NaN where invalid
  aic_auc: np.ndarray  # f32[B], higher is better
  sic_valid: np.ndarray  # bool[B], PAIR would not raise ComputePicMetricError for SIC
  aic_valid: np.ndarray  # bool[B], nor for AIC
  probabilities: np.ndarray  # f32[B, T + 2], f of the fully blurred, threshold and original images
  correct: np.ndarray  # bool[B, T + 2], the label is the predicted class of those images
  information: np.ndarray  # i32[B, T + 2], their lossless WebP sizes in bytes


def random_masks(key: jax.Array, batch: int, height: int, width: int,
                 fraction: float = 0.01) -> np.ndarray:
  """bool[B,H,W], exactly floor(H W fraction) random pixels True per image (without
  replacement, as PAIR's generate_random_mask, from a JAX key; image b's from
  fold_in(key, b): `per_image_draws`)."""
  count = int(height * width * fraction)
  order = per_image(key, batch, lambda k: jax.random.permutation(k, height * width))
  masks = jnp.zeros((batch, height * width), bool).at[
      jnp.arange(batch)[:, None], order[:, :count]].set(True)
  return np.asarray(masks).reshape(batch, height, width)


def blurred_image(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
  """u8[H,W,C], bool[H,W] kept pixels -> u8[H,W,C]: the others linearly interpolated over
  the Delaunay triangulation of the kept pixels and the 4 corners (module doc)."""
  from scipy import interpolate  # noqa: PLC0415 - scipy comes with scikit-image

  keep = keep.copy()
  height, width = keep.shape
  keep[[0, 0, height - 1, height - 1], [0, width - 1, 0, width - 1]] = True
  if keep.all():
    return image
  known = np.argwhere(keep)
  unknown = np.argwhere(~keep)
  out = image * keep[..., None].astype(np.float32)
  # One triangulation for all channels: griddata's (qhull's Delaunay of the same points in
  # the same order, the same barycentric weights), once instead of once per channel.
  values = interpolate.LinearNDInterpolator(known, image[tuple(known.T)].astype(np.float64),
                                            fill_value=np.nan)(unknown)
  values = np.where(np.isnan(values), image.mean(axis=(0, 1)), values)
  out[tuple(unknown.T)] = values
  return np.round(out).astype(np.uint8)


def information(image: np.ndarray) -> int:
  """The lossless WebP size in bytes of a u8[H,W,C] image (PAIR's entropy estimate)."""
  from PIL import Image  # noqa: PLC0415 - pillow comes with scikit-image

  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="webp", lossless=True, quality=100)
  return buffer.getbuffer().nbytes


def information_curve(sizes: np.ndarray, predictions: np.ndarray, *, min_pred_value: float,
                      keep_monotonous: bool, num_data_points: int
                      ) -> tuple[np.ndarray, bool]:
  """One image's PIC (module doc) from the sizes and predictions f[T + 2] of its fully
  blurred, threshold and original images: (f64[N + 1] curve, valid)."""
  from scipy import interpolate  # noqa: PLC0415

  blurred_size, original_size = float(sizes[0]), float(sizes[-1])
  blurred_pred, original_pred = float(predictions[0]), float(predictions[-1])
  if (original_pred < min_pred_value or blurred_size >= original_size
      or blurred_pred >= original_pred):
    return np.full(num_data_points + 1, np.nan), False
  x = np.clip((sizes[1:-1] - blurred_size) / (original_size - blurred_size), 0.0, 1.0)
  y = np.clip((predictions[1:-1] - blurred_pred) / (original_pred - blurred_pred), 0.0, 1.0)
  if keep_monotonous:
    y = np.maximum.accumulate(np.maximum(y, 0.0))
  x = np.concatenate([x, [0.0, 1.0]])
  y = np.concatenate([y, [0.0, 1.0]])
  grid = np.linspace(0.0, 1.0, num_data_points, endpoint=False)
  curve = interpolate.interp1d(x, y)(grid)
  return np.append(curve, 1.0), True


@functools.partial(jax.jit, static_argnames=("per_image_forward",))
def _scores(clf: Classifier, blurred: jax.Array, labels: jax.Array, *,
            per_image_forward: int) -> jax.Array:
  """u8[B,J,H,W,3] images -> f32[B,J], +p where the label is predicted, -p elsewhere."""
  copies = lambda jobs: blurred[:, jobs].astype(jnp.float32) / 255.0  # noqa: E731
  return perturbed_scores(signed_probabilities(clf), copies, labels,
                          num_jobs=blurred.shape[1], per_forward=per_image_forward,
                          score="logit")


def _check_thresholds(thresholds: Any) -> tuple[float, ...]:
  try:
    values = tuple(float(t) for t in thresholds)
  except (TypeError, ValueError):
    raise ValueError(f"thresholds must be a sequence of numbers, got {thresholds!r}") from None
  if not values or not all(0 <= t <= 1 for t in values) or any(
      a >= b for a, b in zip(values, values[1:], strict=False)):
    raise ValueError("thresholds must be a non-empty, strictly increasing sequence of fractions"
                     f" in [0, 1], got {thresholds!r}")
  return values


@takes_compute_dtype
def pic(clf: Classifier, images: Any, maps: Any, labels: Any = None, *, key: Any = None,
        random_mask: Any = None, mask_fraction: float = 0.01,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS, min_pred_value: float = 0.8,
        keep_monotonous: bool = True, num_data_points: int = 1000, chunk: int = 256) -> Pic:
  """SIC and AIC of saliency maps, per image (see the module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1] (rounded to 8 bits).
    maps: f32[B,H,W], larger = more salient.
    labels: i32[B], the class scored; None = the predicted class.
    key: PRNG key of the random masks (`random_masks`); or pass `random_mask`.
    random_mask: bool[B,H,W], the pixels kept in the fully blurred image (PAIR's
      random_mask); overrides key.
    mask_fraction: the fraction of pixels in the generated random masks.
    thresholds: T strictly increasing fractions of the most salient pixels revealed.
    min_pred_value: images whose f(I) is lower are invalid (both curves).
    keep_monotonous: take the running maximum of the normalised predictions.
    num_data_points: N, the curve's samples before the closing point x = 1.
    chunk: images per forward; memory, not the result.

  Returns:
    Pic: numpy arrays (the curves are computed on the host).

  Raises:
    ValueError: bad images, maps, labels, masks or options. TypeError: wrong types, no key.
  """
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images)
  values = _check_thresholds(thresholds)
  validation.check_positive_int(num_data_points, "num_data_points")
  validation.check_positive_int(chunk, "chunk")
  validation.check_probability(mask_fraction, "mask_fraction", open_low=False)
  if isinstance(min_pred_value, bool) or not isinstance(min_pred_value, (int, float)):
    raise ValueError(f"min_pred_value must be a number, got {min_pred_value!r}")
  batch, height, width = maps.shape
  if random_mask is None:
    validation.check_key(key)
    masks = random_masks(key, batch, height, width, mask_fraction)
  else:
    masks = np.asarray(random_mask)
    if masks.shape != (batch, height, width) or masks.dtype != bool:
      raise ValueError(f"random_mask must be bool[B,H,W] = {(batch, height, width)}, got"
                       f" {masks.dtype}{list(masks.shape)}")
  pixels = np.round(np.asarray(images, np.float64) * 255.0).astype(np.uint8)
  saliency = np.asarray(maps)
  stack = np.empty((batch, len(values) + 2, height, width, 3), np.uint8)
  for b in range(batch):
    stack[b, 0] = blurred_image(pixels[b], masks[b])
    for t, threshold in enumerate(values):
      keep = (saliency[b] >= np.quantile(saliency[b], 1 - threshold)) | masks[b]
      stack[b, t + 1] = blurred_image(pixels[b], keep)
    stack[b, -1] = pixels[b]
  sizes = np.array([[information(image) for image in row] for row in stack], np.int32)
  signed = np.asarray(_scores(clf, jnp.asarray(stack), jnp.asarray(labels, jnp.int32),
                              per_image_forward=per_forward(chunk, batch)))
  probabilities, correct = np.abs(signed), signed > 0
  options = dict(min_pred_value=min_pred_value, keep_monotonous=keep_monotonous,
                 num_data_points=num_data_points)
  results = {}
  for name, predictions in (("sic", probabilities), ("aic", correct.astype(np.float64))):
    rows = [information_curve(sizes[b].astype(np.float64), predictions[b].astype(np.float64),
                              **options) for b in range(batch)]
    curves = np.stack([row[0] for row in rows])
    grid = np.append(np.linspace(0.0, 1.0, num_data_points, endpoint=False), 1.0)
    results[f"{name}_curve"] = curves.astype(np.float32)
    results[f"{name}_auc"] = np.trapezoid(curves, grid, axis=1).astype(np.float32)
    results[f"{name}_valid"] = np.array([row[1] for row in rows])
  return Pic(**results, probabilities=probabilities.astype(np.float32), correct=correct,
             information=sizes)
