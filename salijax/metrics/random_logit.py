"""Random logit (Sixt, Granz, Landgraf, "When Explanations Lie: Why Many Modified BP
Attributions Fail", ICML 2020): the explanation of the image's class against the
explanation of a random other class.

  similarity = s(L(I, c), L(I, c')),   c' drawn uniformly from the K - 1 classes != c

A map that explains the class changes with it: lower similarity is better
(a method that ignores the class scores 1). s is SSIM by default (salijax's
`map_similarity.ssim`: 2-D Gaussian window on maps min-max normalised to
[0, 1]; needs H, W >= 11), or any of `map_similarity.SIMILARITIES`, or
"flat_ssim" (Quantus's reading, below), or a callable (a, b) -> f32[B].

Quantus 0.6.0's RandomLogit uses skimage's default SSIM on the raster-
flattened maps: a 1-D uniform window of 7 values, sample covariances
(7 / 6), K1 = 0.01, K2 = 0.03, the data range of both maps together
(max - min over a and b), averaged over the windows inside the vector
(`flat_ssim`; 1 where both maps are one constant). It normalises both batches
of maps by their batch's maximum |a| by default (normalise=True); without
that, similarity="flat_ssim" is its score. It draws c' with numpy's global
seed; here c' comes from `fold_in(key, 0)`, or pass `other_labels`.

The method gets the key `fold_in(key, 1)` for both maps, so only the class
differs.

    result = random_logit(methods.gradient, clf, images, labels, key=jax.random.key(0))
    result.similarity, result.other_labels    # f32[B], i32[B]
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import methods as methods_module
from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import map_similarity
from salijax.metrics.per_image_draws import per_image

FLAT_SSIM_WINDOW = 7
FLAT_SSIM_K1 = 0.01
FLAT_SSIM_K2 = 0.03


class RandomLogit(NamedTuple):
  """Per-image result of `random_logit` (see the module doc)."""

  similarity: jax.Array  # f32[B], maps of c and c', lower is better
  other_labels: jax.Array  # i32[B], the class c' of each image


@jax.jit
def _flat_ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  x, y = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
  both = jnp.concatenate([x, y], axis=1)
  data_range = both.max(axis=1, keepdims=True) - both.min(axis=1, keepdims=True)
  size = x.shape[1] - FLAT_SSIM_WINDOW + 1

  def mean(v: jax.Array) -> jax.Array:  # the window's mean at each position inside
    return sum(v[:, i:i + size] for i in range(FLAT_SSIM_WINDOW)) / FLAT_SSIM_WINDOW

  ux, uy = mean(x), mean(y)
  sample = FLAT_SSIM_WINDOW / (FLAT_SSIM_WINDOW - 1)
  vx = sample * (mean(x * x) - ux * ux)
  vy = sample * (mean(y * y) - uy * uy)
  vxy = sample * (mean(x * y) - ux * uy)
  c1, c2 = (FLAT_SSIM_K1 * data_range) ** 2, (FLAT_SSIM_K2 * data_range) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  constant = data_range[:, 0] == 0
  return jnp.where(constant, 1.0, jnp.where(constant[:, None], 1.0, s).mean(axis=1))


def flat_ssim(a: Any, b: Any) -> jax.Array:
  """f32[B,H,W], f32[B,H,W] (H W >= 7) -> f32[B]: Quantus's SSIM of the raster-flattened maps
  (skimage's defaults in 1-D, module doc)."""
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  if a.ndim != 3 or a.shape != b.shape:
    raise ValueError(f"a and b must have the same shape [B, H, W], got {a.shape} and {b.shape}")
  if a.shape[1] * a.shape[2] < FLAT_SSIM_WINDOW:
    raise ValueError(f"flat_ssim needs maps of at least {FLAT_SSIM_WINDOW} pixels, got"
                     f" {a.shape[1:]}")
  return _flat_ssim(a, b)


SIMILARITIES: dict[str, Callable[[Any, Any], jax.Array]] = {
    **map_similarity.SIMILARITIES, "flat_ssim": flat_ssim}


def resolve_method(method: Any, name: str = "method") -> Callable[..., Any]:
  """A method callable, or a registered name (`salijax.methods.get`); TypeError otherwise."""
  if isinstance(method, str):
    return methods_module.get(method)
  if not callable(method):
    raise TypeError(f"{name} must be a saliency method (clf, images, labels, *, key) or its"
                    f" registered name, got {type(method).__name__}")
  return method


def resolve_similarity(similarity: Any) -> Callable[[Any, Any], jax.Array]:
  """A similarity name of `SIMILARITIES` or a callable (a, b) -> f32[B]."""
  if callable(similarity):
    return similarity
  if similarity not in SIMILARITIES:
    raise ValueError(f"similarity must be one of {list(SIMILARITIES)} or a callable (a, b)"
                     f" -> f32[B], got {similarity!r}")
  return SIMILARITIES[similarity]


def explain(method: Callable[..., Any], clf: Classifier, images: jax.Array, labels: Any,
            key: jax.Array, options: Mapping[str, Any], name: str = "maps returned by method"
            ) -> jax.Array:
  """The method's maps f32[B,H,W] of the images for `labels`, checked."""
  maps = method(clf, images, labels, key=key, **options)
  validation.check_maps(maps, images, name=name)
  return jnp.asarray(maps, jnp.float32)


def draw_other_labels(key: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """i32[B]: for each label c a class drawn uniformly from the num_classes - 1 others
  (image b's from fold_in(key, b): `per_image_draws`)."""
  drawn = per_image(key, labels.shape[0],
                    lambda k: jax.random.randint(k, (), 0, num_classes - 1, dtype=jnp.int32))
  return drawn + (drawn >= labels).astype(jnp.int32)


@takes_compute_dtype
def random_logit(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                 key: jax.Array, similarity: Any = "ssim", other_labels: Any = None,
                 method_options: Mapping[str, Any] | None = None) -> RandomLogit:
  """The similarity of the maps of each image's class and of a random other class.

  Args:
    method: a saliency method `(clf, images, labels, *, key, **options) ->
      f32[B,H,W]` or its registered name (`salijax.methods.get`).
    clf: the Classifier (K >= 2 classes).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class c explained; None = the predicted class.
    key: a PRNG key (module doc).
    similarity: a name of `SIMILARITIES` ("ssim" default, "flat_ssim" =
      Quantus's) or a callable (a, b) -> f32[B].
    other_labels: i32[B], the classes c' (each != c); None = drawn with the key.
    method_options: keyword options of the method.

  Returns:
    RandomLogit: similarity f32[B] (lower is better), other_labels i32[B].

  Raises:
    ValueError: bad images or labels, K < 2, other labels equal to the labels,
      an unknown similarity, maps of the wrong shape or non-finite.
    TypeError: a method that is not callable, a bad clf or key.
  """
  method = resolve_method(method)
  measure = resolve_similarity(similarity)
  validation.check_key(key)
  labels = jnp.asarray(validation.checked_labels(clf, images, labels), jnp.int32)
  classes = validation.num_classes(clf, images)
  if classes < 2:
    raise ValueError(f"clf: random_logit needs K >= 2 classes, got K = {classes}")
  if other_labels is None:
    other_labels = draw_other_labels(jax.random.fold_in(key, 0), labels, classes)
  else:
    validation.check_labels(other_labels, images.shape[0], classes, name="other_labels")
    other_labels = jnp.asarray(other_labels, jnp.int32)
    if validation.is_concrete(other_labels) and validation.is_concrete(labels) and bool(
        (other_labels == labels).any()):
      raise ValueError("other_labels must differ from labels for every image")
  images = jnp.asarray(images, jnp.float32)
  method_key = jax.random.fold_in(key, 1)
  options = dict(method_options or {})
  original = explain(method, clf, images, labels, method_key, options)
  other = explain(method, clf, images, other_labels, method_key, options)
  return RandomLogit(similarity=jnp.asarray(measure(original, other), jnp.float32),
                     other_labels=other_labels)
