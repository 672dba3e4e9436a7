"""Relative input, representation and output stability (Agarwal et al., 2022) as one program.

For J copies x'_j = x + n_j, n_j uniform on [low, high] per pixel and channel
(not clipped to [0, 1]), each explained for x's class
(`salijax.metrics.perturbed_explanations`), with element-wise relative
changes r(u, u') = (u - u') / (u + eps [u == 0]) and eps = `eps_min`:

  ris = max_j ||r(a(x), a(x'_j))|| / max(||r(x, x'_j)||, eps)
  rrs = max_j ||r(a(x), a(x'_j))|| / max(||r(L(x), L(x'_j))||, eps)
  ros = max_j ||r(a(x), a(x'_j))|| / max(||h(x) - h(x'_j)||, eps)

L is the internal representation (`representation`, default the explained
layer `clf.features`), h the logits; norms are Euclidean over all elements.
The maximum runs over the copies whose predicted class (argmax logit) is
x's: NaN where none is (`changed_predictions="skip"`, the paper's
constraint). Lower is better.

Defaults are Quantus 0.6.0's RelativeInputStability /
RelativeRepresentationStability / RelativeOutputStability: J = 200, noise
uniform on [0.02, 0.2] (its batch_uniform_noise with lower_bound 0.02 and
upper_bound 0.2: positive noise only), eps = 1e-6. Quantus differs in two
ways: (1) by default (return_nan_when_prediction_changes=True) it returns NaN
for an image as soon as one copy changes the prediction (np.max of NaNs):
`changed_predictions="nan"`; with return_nan_when_prediction_changes=False
it maximises over every copy: `"keep"`. (2) It adds eps to a denominator
only where it is exactly 0, the paper takes max(., eps): they differ only for
a denominator in (0, eps).

C. Agarwal, N. Johnson, M. Pawelczyk, S. Krishna, E. Saxena, M. Zitnik,
H. Lakkaraju, "Rethinking Stability for Attribution-based Explanations",
ICLR 2022 PAIR2Struct workshop, arXiv:2203.06877.

    result = relative_stability(methods.gradient, clf, images, key=jax.random.key(0))
    result.ris, result.rrs, result.ros                       # f32[B]
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import perturbed_explanations as pe

CHANGED_PREDICTIONS = ("skip", "nan", "keep")


class RelativeStability(NamedTuple):
  """Per-image relative stabilities of the maps (see the module doc)."""

  ris: jax.Array  # f32[B], relative input stability, lower is better
  rrs: jax.Array  # f32[B], relative representation stability, lower is better
  ros: jax.Array  # f32[B], relative output stability, lower is better


def noise_of(low: float, high: float) -> pe.Uniform:
  """The noise of `relative_stability` (for `perturbed_explanations.perturbed_images`)."""
  return pe.Uniform(float(low), float(high))


def _flat_norm(values: jax.Array, axes: int) -> jax.Array:
  """The Euclidean norm over the last `axes` axes."""
  return jnp.sqrt(jnp.sum(jnp.square(values), axis=tuple(range(-axes, 0))))


def _relative(before: jax.Array, after: jax.Array, eps: float) -> jax.Array:
  return (before - after) / (before + eps * (before == 0))


@functools.partial(jax.jit, static_argnames=(
    "method", "options", "num_samples", "low", "high", "eps_min", "representation",
    "copies_per_forward"))
def _relative_stability(clf: Classifier, images: jax.Array, labels: jax.Array,
                        maps: jax.Array, key: jax.Array, method_key: jax.Array | None, *,
                        method: Callable[..., Any], options: tuple[tuple[str, Any], ...],
                        num_samples: int, low: float, high: float, eps_min: float,
                        representation: Callable[..., Any], copies_per_forward: int
                        ) -> tuple[jax.Array, ...]:
  """The jitted ratios f32[B,J] of ris, rrs, ros and bool[B,J], whether copy j keeps the
  prediction; maps = a(x) f32[B,H,W] (module doc)."""
  noise = noise_of(low, high)
  batch = images.shape[0]
  logits = clf.logits(images)  # f32[B,K]
  predicted = jnp.argmax(logits, axis=-1)
  features = representation(clf.variables, images).reshape(batch, -1)  # f32[B,D]

  def values(jobs: jax.Array) -> tuple[jax.Array, ...]:
    copies = pe.noisy_copies(images, key, jobs, noise)  # f32[B,s,H,W,3]
    s = copies.shape[1]
    perturbed = pe.explain_copies(method, clf, copies, labels, method_key, options)
    numerator = pe.pixel_norm(_relative(maps[:, None], perturbed, eps_min))  # f32[B,s]
    flat = copies.reshape(batch * s, *copies.shape[2:])
    copy_logits = clf.logits(flat).reshape(batch, s, -1)
    copy_features = representation(clf.variables, flat).reshape(batch, s, -1)
    floor = lambda d: jnp.maximum(d, eps_min)  # noqa: E731
    ris = numerator / floor(_flat_norm(_relative(images[:, None], copies, eps_min), 3))
    rrs = numerator / floor(_flat_norm(_relative(features[:, None], copy_features, eps_min), 1))
    ros = numerator / floor(_flat_norm(logits[:, None] - copy_logits, 1))
    same = jnp.argmax(copy_logits, axis=-1) == predicted[:, None]
    return ris, rrs, ros, same

  return pe.per_sample(values, num_jobs=num_samples, per_forward=copies_per_forward)


def _reduce(ratios: jax.Array, same: jax.Array, changed_predictions: str) -> jax.Array:
  """f32[B,J], bool[B,J] -> f32[B], the maximum by `changed_predictions` (module doc)."""
  if changed_predictions == "keep":
    return ratios.max(axis=1)
  if changed_predictions == "nan":
    return jnp.where(same.all(axis=1), ratios.max(axis=1), jnp.nan)
  best = jnp.where(same, ratios, -jnp.inf).max(axis=1)
  return jnp.where(same.any(axis=1), best, jnp.nan)


@takes_compute_dtype
def relative_stability(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                       key: jax.Array, num_samples: int = 200, low: float = 0.02,
                       high: float = 0.2, eps_min: float = 1e-6,
                       representation: Callable[..., Any] | None = None,
                       changed_predictions: str = "skip", chunk: int = 64,
                       method_options: Mapping[str, Any] | None = None) -> RelativeStability:
  """RIS, RRS and ROS of `method`'s maps of the images (see the module doc).

  Args:
    method: a saliency method (clf, images, labels, **options) -> f32[B,H,W],
      e.g. `salijax.methods.gradient`, or its registered name; traceable.
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for x and for every copy; None = x's
      predicted class.
    key: a PRNG key: the noise, and the method's key when it draws.
    num_samples: J, the noisy copies per image.
    low, high: the noise's bounds in pixel units, low < high.
    eps_min: eps, the floor of the denominators and the stand-in for a zero
      element divided by.
    representation: (variables, images f32[N,H,W,3]) -> f32[N, ...], the
      internal representation L; None = `clf.features` (the explained layer).
    changed_predictions: "skip" (the paper), "nan" or "keep" (module doc).
    chunk: images per call of the method (max(1, chunk // B) copies of each
      image); changes memory and speed, not the result.
    method_options: the method's options (hashable values).

  Returns:
    RelativeStability of f32[B].

  Raises:
    ValueError: bad images, labels, options; no representation (clf without
      `features` and none given); maps of a wrong shape or non-finite.
    TypeError: a bad method, clf, key, representation or method_options.
  """
  validation.check_positive_int(num_samples, "num_samples")
  validation.check_positive_int(chunk, "chunk")
  low = pe.check_number(low, "low")
  high = pe.check_number(high, "high")
  if not low < high:
    raise ValueError(f"low must be below high, got low={low!r}, high={high!r}")
  eps_min = pe.check_number(eps_min, "eps_min", positive=True)
  if changed_predictions not in CHANGED_PREDICTIONS:
    raise ValueError(f"changed_predictions must be one of {list(CHANGED_PREDICTIONS)}, got"
                     f" {changed_predictions!r}")
  if representation is None:
    representation = getattr(clf, "features", None)
    if representation is None and isinstance(clf, Classifier):
      raise ValueError("clf: relative_stability needs an internal representation: a"
                       " Classifier with `features` (salijax.wrap(model, variables,"
                       " layer=...)) or representation=(variables, images) -> activations")
  elif not callable(representation):
    raise TypeError(f"representation must be a function (variables, images) -> activations,"
                    f" got {type(representation).__name__}")
  prep = pe.prepare(method, clf, images, labels, key, method_options)
  *ratios, same = _relative_stability(
      clf, prep.images, prep.labels, prep.maps, key, prep.method_key, method=prep.method,
      options=prep.options, num_samples=int(num_samples), low=low, high=high, eps_min=eps_min,
      representation=representation,
      copies_per_forward=pe.copies_per_call(chunk, prep.images.shape[0], num_samples))
  ris, rrs, ros = (_reduce(r, same, changed_predictions) for r in ratios)
  return RelativeStability(ris=ris, rrs=rrs, ros=ros)
