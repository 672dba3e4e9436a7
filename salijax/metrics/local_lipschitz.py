"""The local Lipschitz estimate of a saliency method (Alvarez-Melis & Jaakkola, 2018).

For J copies x'_j = x + n_j, n_j ~ N(0, sigma^2) per pixel and channel
(sigma = `std`, not clipped to [0, 1]), each explained for x's class
(`salijax.metrics.perturbed_explanations`):

  L(x) = max_j ||a(x) - a(x'_j)||_2 / ||x - x'_j||_2

(Euclidean norms over all pixels of the map, and over all pixels and channels
of the image). Lower is better. The paper maximises over a ball around x
(by sampling or Bayesian optimisation); defaults are Quantus 0.6.0's
LocalLipschitzEstimate: J = 200 Gaussian samples, sigma = 0.1. Quantus
normalises the maps by default (normalise=True: every map divided by the
largest |value| of the whole batch, so an image's score depends on the other
images); the paper does not, nor does this function (Quantus with
normalise=False). Quantus adds 1e-10 to the denominator, below float32's
resolution of ||x - x'|| (about sigma sqrt(3 H W)).

D. Alvarez-Melis, T. S. Jaakkola, "On the Robustness of Interpretability
Methods", ICML 2018 Workshop on Human Interpretability, arXiv:1806.08049.

    result = local_lipschitz_estimate(methods.gradient, clf, images, key=jax.random.key(0))
    result.estimate                                          # f32[B]
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


class LocalLipschitzEstimate(NamedTuple):
  """Per-image local Lipschitz estimate of the maps (see the module doc)."""

  estimate: jax.Array  # f32[B], lower is better


def noise_of(std: float) -> pe.Gaussian:
  """The noise of `local_lipschitz_estimate` (for `perturbed_explanations.perturbed_images`)."""
  return pe.Gaussian(0.0, float(std))


@functools.partial(jax.jit, static_argnames=(
    "method", "options", "num_samples", "std", "copies_per_forward"))
def _local_lipschitz(clf: Classifier, images: jax.Array, labels: jax.Array, maps: jax.Array,
                     key: jax.Array, method_key: jax.Array | None, *,
                     method: Callable[..., Any], options: tuple[tuple[str, Any], ...],
                     num_samples: int, std: float,
                     copies_per_forward: int) -> LocalLipschitzEstimate:
  """The jitted metric; maps = a(x) f32[B,H,W] (module doc)."""
  noise = noise_of(std)

  def values(jobs: jax.Array) -> jax.Array:
    copies = pe.noisy_copies(images, key, jobs, noise)  # f32[B,s,H,W,3]
    perturbed = pe.explain_copies(method, clf, copies, labels, method_key, options)
    moved = copies - images[:, None]
    input_distance = jnp.sqrt(jnp.sum(jnp.square(moved), axis=(-3, -2, -1)))
    return pe.pixel_norm(maps[:, None] - perturbed) / input_distance  # f32[B,s]

  ratios = pe.per_sample(values, num_jobs=num_samples, per_forward=copies_per_forward)
  return LocalLipschitzEstimate(estimate=ratios.max(axis=1))


@takes_compute_dtype
def local_lipschitz_estimate(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                             key: jax.Array, num_samples: int = 200, std: float = 0.1,
                             chunk: int = 64, method_options: Mapping[str, Any] | None = None
                             ) -> LocalLipschitzEstimate:
  """The local Lipschitz estimate of `method`'s maps of the images (see the module doc).

  Args:
    method: a saliency method (clf, images, labels, **options) -> f32[B,H,W],
      e.g. `salijax.methods.gradient`, or its registered name; traceable.
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for x and for every copy; None = x's
      predicted class.
    key: a PRNG key: the noise, and the method's key when it draws.
    num_samples: J, the noisy copies per image.
    std: sigma, the noise's standard deviation in pixel units.
    chunk: images per call of the method (max(1, chunk // B) copies of each
      image); changes memory and speed, not the result.
    method_options: the method's options (hashable values).

  Returns:
    LocalLipschitzEstimate of f32[B].

  Raises:
    ValueError: bad images, labels, options; maps of a wrong shape or non-finite.
    TypeError: a bad method, clf, key or method_options.
  """
  validation.check_positive_int(num_samples, "num_samples")
  validation.check_positive_int(chunk, "chunk")
  std = pe.check_number(std, "std", positive=True)
  prep = pe.prepare(method, clf, images, labels, key, method_options)
  per_call = pe.copies_per_call(chunk, prep.images.shape[0], num_samples)
  return _local_lipschitz(clf, prep.images, prep.labels, prep.maps, key, prep.method_key,
                          method=prep.method, options=prep.options,
                          num_samples=int(num_samples), std=std, copies_per_forward=per_call)
