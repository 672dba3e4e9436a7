"""IBA: per-sample information bottleneck attribution (Schulz, Sixt, Tombari, Landgraf, ICLR 2020).

At the Classifier's explained layer, A = clf.features(I) f32[h,w,k], a noisy
bottleneck replaces the activations before clf.head:

  Z = lambda A + (1 - lambda) eps,   eps ~ N(mu, sigma^2)

with mu, sigma f32[h,w,k] the mean and standard deviation of each activation
(position, channel) over data, and lambda = smooth(sigmoid(alpha)), alpha
f32[h,w,k] per image, initialised to `initial_alpha` = 5 (lambda ~ 0.993).
`smooth` is the paper's fixed Gaussian on h and w, channel by channel:
std `smoothing` = 1 feature cell, 2 round(2 sigma) + 1 taps (5), mirrored
borders without repeating the edge (torch `ReflectionPad2d`, numpy/scipy
'mirror'), as in the authors' code. Per element, the information that flows
(the capacity) is the closed-form KL divergence, on activations normalised as
x = (A - mu) / sigma:

  C = KL(N(lambda A + (1 - lambda) mu, ((1 - lambda) sigma)^2) || N(mu, sigma^2))
    = -log(1 - lambda) + ((1 - lambda)^2 + lambda^2 x^2 - 1) / 2   (nats, >= 0)

alpha minimises  CE(head(Z), c) + beta * mean_{h,w,k} C  (CE averaged over
`num_samples` noise draws; beta = 10) by `steps` = 10 Adam steps at learning
rate 1 (optax.adam), from alpha = 5. The map is C at the final alpha, summed
over channels, in bits (/ log 2), f32[h,w], upsampled bilinearly to H x W.

The statistics. `feature_stats=(mean, std)`, each f32[h,w,k], are the
paper's setting: `iba_feature_stats(clf, images)` estimates them from images
of the data (the paper: about 10000 training images). With the default
`feature_stats=None` each image uses its own statistics: per channel, the mean
and (population) standard deviation of its activations over the h x w
positions, the same at every position (a salijax choice, so that a map depends
on its image only, whatever the batch, and a single image can be explained).
The authors' code clamps sigma to at least
`min_std` = 0.01 (done here too) and switches off the activations that are
rarely non-zero over the data (their capacity is 0 and Z = 0); from (mean,
std) alone salijax switches off the activations that are constant over the
data (std exactly 0): their capacity is 0 and Z = mu there.

Differences from the authors' code: their heatmap is the capacity computed in
the last of the `steps` forward passes, i.e. before the last Adam update, and
is divided by the upsampling area (H W / (h w)); salijax reports the
capacity at the final alpha, in bits per feature cell.

Randomness: eps = mu + max(sigma, min_std) n, where image b (its index in the
batch) draws the standard normal n f32[num_samples,h,w,k] of step t as
`jax.random.normal(fold_in(fold_in(key, b), t), (num_samples h w k,))`
reshaped, so a map depends on (key, index), not on the batch size.

Cost: one forward to the explained layer (two with feature_stats=None), then
`steps` x `num_samples` forward and backward passes through the head per image
(B x num_samples head images per step). Memory grows with B x num_samples, not
with steps.

    maps = iba(clf, images, labels, key=jax.random.key(0))        # f32[B,H,W]
    stats = iba_feature_stats(clf, training_images)               # (mean, std)
    maps = iba(clf, images, labels, key=key, feature_stats=stats)
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from salijax import validation
from salijax.classifier import Classifier
from salijax.gaussian_blur import gaussian_taps
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import (
  Option,
  PassCount,
  check_has_layer,
  feature_shape,
  number,
  positive_int,
  register,
)
from salijax.wrapping.conv_transposes import explicit_kernel_transposes

_HIGHEST = jax.lax.Precision.HIGHEST
_TINY = float(np.finfo(np.float32).tiny)  # keeps log(1 - lambda) finite when lambda rounds to 1


def mirror_index(index: np.ndarray, length: int) -> np.ndarray:
  """Integer positions folded into [0, length) by mirroring without repeating the edge.

  d c b | a b c d | c b a: numpy/scipy 'mirror', torch `ReflectionPad2d`, for any
  offset (a length-1 axis maps everything to 0).
  """
  if length == 1:
    return np.zeros_like(index)
  period = 2 * (length - 1)
  folded = np.mod(index, period)
  return np.where(folded < length, folded, period - folded)


def smoothing_matrix(length: int, sigma: float) -> np.ndarray:
  """f64[length, length] S with (S @ v)[i] = sum_t w_t v[mirror(i + t)] (the paper's smoothing).

  w_t, |t| <= round(2 sigma), are normalised Gaussian taps of std `sigma`; sigma = 0 gives
  the identity. Rows sum to 1.
  """
  if sigma == 0:
    return np.eye(length)
  radius = int(round(2 * sigma))
  taps = gaussian_taps(2 * radius + 1, sigma)
  matrix = np.zeros((length, length))
  for offset, weight in zip(range(-radius, radius + 1), taps, strict=True):
    np.add.at(matrix, (np.arange(length), mirror_index(np.arange(length) + offset, length)),
              weight)
  return matrix


def smooth(values: jax.Array, sigma: float) -> jax.Array:
  """f32[..., h, w, k] -> f32[..., h, w, k], the paper's Gaussian on h and w per channel."""
  height, width = values.shape[-3], values.shape[-2]
  rows = jnp.asarray(smoothing_matrix(height, sigma), jnp.float32)
  columns = jnp.asarray(smoothing_matrix(width, sigma), jnp.float32)
  values = jnp.einsum("yh,...hwk->...ywk", rows, values, precision=_HIGHEST)
  return jnp.einsum("xw,...ywk->...yxk", columns, values, precision=_HIGHEST)


def bottleneck_weights(alpha: jax.Array, sigma: float) -> tuple[jax.Array, jax.Array]:
  """alpha f32[..., h, w, k] -> (lambda, 1 - lambda), both smoothed: the weights of A and eps.

  Smoothing is linear with weights summing to 1, so 1 - smooth(sigmoid(alpha)) =
  smooth(sigmoid(-alpha)); computing it that way keeps 1 - lambda accurate near lambda = 1.
  """
  return smooth(jax.nn.sigmoid(alpha), sigma), smooth(jax.nn.sigmoid(-alpha), sigma)


def capacity(lam: jax.Array, noise_weight: jax.Array, normalised: jax.Array) -> jax.Array:
  """The per-element KL divergence in nats (see the module doc), >= 0.

  Args:
    lam: lambda in [0, 1].
    noise_weight: 1 - lambda (computed separately, for accuracy near lambda = 1).
    normalised: x = (A - mu) / sigma.

  Returns:
    -log(1 - lambda) + ((1 - lambda)^2 + lambda^2 x^2 - 1) / 2, written as
    -log(1 - lambda) - lambda (2 - lambda) / 2 + (lambda x)^2 / 2 (= lambda^2 (1 + x^2) / 2
    + O(lambda^3) for small lambda); the rounding left below 0 is clipped.
  """
  small = lam < 0.5
  log_noise = jnp.where(small, jnp.log1p(-jnp.where(small, lam, 0.0)),
                        jnp.log(jnp.maximum(jnp.where(small, 1.0, noise_weight), _TINY)))
  kl = -log_noise - lam * (1.0 + noise_weight) / 2.0 + jnp.square(lam * normalised) / 2.0
  return jnp.maximum(kl, 0.0)


def batch_moments(feats: jax.Array) -> tuple[jax.Array, jax.Array]:
  """f32[n,h,w,k] -> (mean, sum of squared deviations), each f32[h,w,k].

  Deviations are taken from the first sample, then from their mean (two passes),
  so an activation constant over the n samples gets exactly its value as mean
  and exactly 0 as sum of squares.
  """
  deviations = feats - feats[0]
  mean_deviation = deviations.mean(axis=0)
  return feats[0] + mean_deviation, jnp.square(deviations - mean_deviation).sum(axis=0)


_batch_moments = jax.jit(lambda clf, images: batch_moments(clf.features(clf.variables, images)))


@jax.jit
def _image_stats(clf: Classifier, images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Each image's own statistics: (mean, population std) f32[B,h,w,k] of its activations
  per channel over the positions, broadcast to every position (exactly 0 std for a
  channel constant over the image)."""
  feats = clf.features(clf.variables, images)
  per_image = jax.vmap(lambda f: batch_moments(f.reshape(-1, 1, 1, f.shape[-1])))
  mean, squares = per_image(feats)  # f32[B,1,1,k] each
  positions = feats.shape[1] * feats.shape[2]
  return (jnp.broadcast_to(mean, feats.shape),
          jnp.broadcast_to(jnp.sqrt(squares / positions), feats.shape))


def _fit_one(clf: Classifier, image: jax.Array, label: jax.Array, feats: jax.Array,
             key: jax.Array, mean: jax.Array, std: jax.Array, *, beta: float, steps: int,
             learning_rate: float, num_samples: int, initial_alpha: float, smoothing: float,
             min_std: float) -> tuple[jax.Array, jax.Array]:
  """One image: f32[H,W,3], i32[], f32[h,w,k] -> (capacity in nats, lambda), f32[h,w,k] each."""
  active = std > 0.0
  scale = jnp.maximum(std, min_std)
  normalised = (feats - mean) / scale
  images = jnp.broadcast_to(image, (num_samples,) + image.shape)

  head = explicit_kernel_transposes(clf.head)  # differentiated in a loop: faster on CPU

  def loss(alpha: jax.Array, normal: jax.Array) -> jax.Array:
    lam, noise_weight = bottleneck_weights(alpha, smoothing)
    # Z = lambda A + (1 - lambda) eps with eps = mu + scale normal.
    z = jnp.where(active, (lam * normalised + noise_weight * normal) * scale + mean, mean)
    logits = head(clf.variables, z, images)
    cross_entropy = -jax.nn.log_softmax(logits, axis=-1)[:, label].mean()
    information = jnp.where(active, capacity(lam, noise_weight, normalised), 0.0).mean()
    return cross_entropy + beta * information

  optimizer = optax.adam(learning_rate)

  def step(carry: tuple[jax.Array, Any], t: jax.Array) -> tuple[tuple[jax.Array, Any], None]:
    alpha, state = carry
    # Drawn flat: a multi-axis shape makes XLA:CPU compile the sampler seconds longer.
    normal = jax.random.normal(jax.random.fold_in(key, t), (num_samples * feats.size,))
    normal = normal.reshape((num_samples,) + feats.shape)
    updates, state = optimizer.update(jax.grad(loss)(alpha, normal), state, alpha)
    return (optax.apply_updates(alpha, updates), state), None

  alpha = jnp.full(feats.shape, initial_alpha, jnp.float32)
  (alpha, _), _ = jax.lax.scan(step, (alpha, optimizer.init(alpha)), jnp.arange(steps))
  lam, noise_weight = bottleneck_weights(alpha, smoothing)
  return jnp.where(active, capacity(lam, noise_weight, normalised), 0.0), lam


def bottleneck(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
               feature_stats: tuple[jax.Array, jax.Array], *, beta: float, steps: int,
               learning_rate: float, num_samples: int, initial_alpha: float, smoothing: float,
               min_std: float) -> tuple[jax.Array, jax.Array]:
  """The fitted bottlenecks: (bits summed over channels f32[B,h,w], lambda f32[B,h,w,k]).

  feature_stats: (mean, std), each f32[h,w,k] (shared) or f32[B,h,w,k] (per image).
  """
  feats = clf.features(clf.variables, images)
  mean, std = feature_stats
  stats_axis = 0 if mean.ndim == 4 else None
  keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(images.shape[0]))
  fit = functools.partial(_fit_one, clf, beta=beta, steps=steps, learning_rate=learning_rate,
                          num_samples=num_samples, initial_alpha=initial_alpha,
                          smoothing=smoothing, min_std=min_std)
  nats, lam = jax.vmap(fit, in_axes=(0, 0, 0, 0, stats_axis, stats_axis))(
      images, labels, feats, keys, mean, std)
  return nats.sum(axis=-1) / math.log(2.0), lam


@functools.partial(jax.jit, static_argnames=("steps", "num_samples", "smoothing"))
def _iba(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
         feature_stats: tuple[jax.Array, jax.Array], **hyperparameters: Any) -> jax.Array:
  """The jitted IBA: f32[B,H,W,3], i32[B] -> f32[B,H,W] (see the module doc).

  beta, learning_rate, initial_alpha and min_std are traced: changing them does not
  recompile; steps, num_samples and smoothing (shapes and constants) are static.
  """
  bits, _ = bottleneck(clf, images, labels, key, feature_stats, **hyperparameters)
  return upsample_bilinear(bits, images.shape[1], images.shape[2])


def _check_feature_stats(feature_stats: Any,
                         shape: tuple[int, int, int]) -> tuple[jax.Array, jax.Array]:
  """(mean, std) f32[h,w,k], finite, std >= 0; as jax arrays."""
  if not isinstance(feature_stats, (tuple, list)) or len(feature_stats) != 2:
    raise TypeError("feature_stats must be None or a pair (mean, std) of arrays"
                    f" f32{list(shape)}, got {type(feature_stats).__name__}")
  result = []
  for value, part in zip(feature_stats, ("mean", "std"), strict=True):
    if getattr(value, "shape", None) is None or getattr(value, "dtype", None) is None:
      raise TypeError(f"feature_stats {part} must be an array f32{list(shape)}, got"
                      f" {type(value).__name__}")
    if tuple(value.shape) != shape:
      raise ValueError(f"feature_stats {part} must have the shape of one image's features"
                       f" {list(shape)}, got {list(value.shape)}")
    if not jnp.issubdtype(value.dtype, jnp.floating):
      raise TypeError(f"feature_stats {part} must be floating point, got dtype {value.dtype}")
    if validation.is_concrete(value):
      values = np.asarray(value)
      if not np.isfinite(values).all():
        raise ValueError(f"feature_stats {part} has {int((~np.isfinite(values)).sum())}"
                         " non-finite values")
      if part == "std" and (values < 0).any():
        raise ValueError(f"feature_stats std must be >= 0, got minimum {float(values.min()):.4g}")
    result.append(jnp.asarray(value, jnp.float32))
  return tuple(result)


def iba_feature_stats(clf: Classifier, images: Any, *,
                      batch_size: int = 64) -> tuple[jax.Array, jax.Array]:
  """Mean and unbiased standard deviation of each activation at the explained layer.

  Args:
    clf: a Classifier with `features` and `head` (the layer IBA explains).
    images: f32[N,H,W,3] in [0, 1], N >= 2, images of the data (the paper: ~10000
      training images); a numpy array stays on the host, batch by batch.
    batch_size: images per forward pass (memory, not the result).

  Returns:
    (mean, std), each f32[h,w,k]: per (position, channel), over the N images
    (std with N - 1; exactly 0 for an activation constant over the images).

  Raises:
    ValueError: bad images, fewer than 2 images, a Classifier without features.
    TypeError: wrong types of clf or images.
  """
  if not isinstance(clf, Classifier):
    raise TypeError(f"clf must be a salijax.Classifier, got {type(clf).__name__}")
  validation.check_images(images)
  validation.check_positive_int(batch_size, "batch_size")
  check_has_layer(clf, "IBA")
  feature_shape(clf, images[:1])
  total = int(images.shape[0])
  if total < 2:
    raise ValueError(f"images must hold at least 2 images for a standard deviation, got {total}")
  # Batches merged by Chan et al.'s pairwise update, in float64 on the host.
  count, mean, squares = 0, 0.0, 0.0
  for start in range(0, total, batch_size):
    part = jnp.asarray(images[start:start + batch_size], jnp.float32)
    part_mean, part_squares = (np.asarray(x, np.float64) for x in _batch_moments(clf, part))
    part_count = part.shape[0]
    delta = part_mean - mean
    merged = count + part_count
    squares = squares + part_squares + delta ** 2 * count * part_count / merged
    mean = mean + delta * part_count / merged
    count = merged
  return jnp.asarray(mean, jnp.float32), jnp.asarray(np.sqrt(squares / (count - 1)), jnp.float32)


@register("iba", title="IBA", summary="per-sample information bottleneck at the layer",
          cost=lambda options, shapes: PassCount(
              "gradient", options["steps"] * options["num_samples"], options["num_samples"]),
          needs_key=True, needs_layer="features_and_head", jitted=_iba,
          options={"feature_stats": Option(None), "beta": Option(10.0, number(0.0)),
                   "steps": Option(10, positive_int),
                   "learning_rate": Option(1.0, number(0.0, low_open=True)),
                   "num_samples": Option(10, positive_int), "initial_alpha": Option(5.0, number()),
                   "smoothing": Option(1.0, number(0.0)),
                   "min_std": Option(0.01, number(0.0, low_open=True))})
def iba(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
        feature_stats: tuple[Any, Any] | None, beta: float, steps: int, learning_rate: float,
        num_samples: int, initial_alpha: float, smoothing: float, min_std: float) -> jax.Array:
  """Per-sample IBA maps f32[B,H,W] >= 0, bits per feature cell, upsampled (module doc).

  Options: feature_stats, (mean, std) each f32[h,w,k], the activations'
  statistics over the data (`iba_feature_stats`), or None for each image's own
  per-channel statistics; beta, the capacity's weight against the
  cross-entropy; steps, Adam steps per image; learning_rate, Adam's;
  num_samples, noise draws per step; initial_alpha, alpha's start (lambda =
  sigmoid(alpha) before smoothing); smoothing, the std of lambda's Gaussian
  smoothing in feature cells (0: none); min_std, the smallest sigma used to
  normalise and scale the noise.
  """
  if feature_stats is None:
    feature_stats = _image_stats(clf, images)
  else:
    feature_stats = _check_feature_stats(feature_stats, feature_shape(clf, images))
  return _iba(clf, images, labels, key, feature_stats, beta=beta, steps=steps,
              learning_rate=learning_rate, num_samples=num_samples,
              initial_alpha=initial_alpha, smoothing=smoothing, min_std=min_std)
