"""Max- and Avg-Sensitivity of a saliency method (Yeh et al., NeurIPS 2019) as one program.

For J copies x'_j = x + n_j, n_j uniform on [-r, r] per pixel and channel
(r = `radius`, not clipped to [0, 1]), each explained for x's class
(`salijax.metrics.perturbed_explanations`):

  s_j = ||a(x'_j) - a(x)||_2 / ||a(x)||_2      (Frobenius norms of the maps)
  max_sensitivity = max_j s_j,   avg_sensitivity = mean_j s_j

Lower is better (a robust explanation changes little). Defaults are Quantus
0.6.0's MaxSensitivity / AvgSensitivity: J = 200, r = 0.2, Frobenius norms
(norm_numerator / norm_denominator), the division by ||a(x)||. The paper's
SENS_MAX and SENS_AVG do not divide (`relative=False`: s_j = ||a(x'_j) -
a(x)||_2), which makes them scale with the map; the ratio compares methods.
An all-zero a(x) gives NaN (0 / 0) with relative=True. Both fields come
from the same J copies.

C.-K. Yeh, C.-Y. Hsieh, A. S. Suggala, D. I. Inouye, P. Ravikumar, "On the
(In)fidelity and Sensitivity of Explanations", NeurIPS 2019, arXiv:1901.09392.

    result = sensitivity(methods.gradient, clf, images, key=jax.random.key(0))
    result.max_sensitivity, result.avg_sensitivity          # f32[B]
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import perturbed_explanations as pe


class Sensitivity(NamedTuple):
  """Per-image sensitivities of the maps to uniform noise (see the module doc)."""

  max_sensitivity: jax.Array  # f32[B], lower is better
  avg_sensitivity: jax.Array  # f32[B], lower is better


def noise_of(radius: float) -> pe.Uniform:
  """The noise of `sensitivity` (for `perturbed_explanations.perturbed_images`)."""
  return pe.Uniform(-float(radius), float(radius))


@functools.partial(jax.jit, static_argnames=(
    "method", "options", "num_samples", "radius", "relative", "copies_per_forward"))
def _sensitivity(clf: Classifier, images: jax.Array, labels: jax.Array, maps: jax.Array,
                 key: jax.Array, method_key: jax.Array | None, *,
                 method: Callable[..., Any], options: tuple[tuple[str, Any], ...],
                 num_samples: int, radius: float, relative: bool,
                 copies_per_forward: int) -> Sensitivity:
  """The jitted metric; maps = a(x) f32[B,H,W] (module doc)."""
  noise = noise_of(radius)

  def values(jobs: jax.Array) -> jax.Array:
    copies = pe.noisy_copies(images, key, jobs, noise)
    perturbed = pe.explain_copies(method, clf, copies, labels, method_key, options)
    return pe.pixel_norm(perturbed - maps[:, None])  # f32[B,s]

  change = pe.per_sample(values, num_jobs=num_samples, per_forward=copies_per_forward)
  if relative:
    change = change / pe.pixel_norm(maps)[:, None]
  return Sensitivity(max_sensitivity=change.max(axis=1), avg_sensitivity=change.mean(axis=1))


@takes_compute_dtype
def sensitivity(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                key: jax.Array, num_samples: int = 200, radius: float = 0.2,
                relative: bool = True, chunk: int = 64,
                method_options: Mapping[str, Any] | None = None) -> Sensitivity:
  """Max- and Avg-Sensitivity of `method`'s maps of the images (see the module doc).

  Args:
    method: a saliency method (clf, images, labels, **options) -> f32[B,H,W],
      e.g. `salijax.methods.gradient`, or its registered name; traceable.
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for x and for every copy; None = x's
      predicted class.
    key: a PRNG key: the noise, and the method's key when it draws.
    num_samples: J, the noisy copies per image.
    radius: r, the noise's half-width in pixel units.
    relative: divide by ||a(x)|| (Quantus); False = the paper's ||a(x') - a(x)||.
    chunk: images per call of the method (max(1, chunk // B) copies of each
      image); changes memory and speed, not the result.
    method_options: the method's options (hashable values).

  Returns:
    Sensitivity of f32[B].

  Raises:
    ValueError: bad images, labels, options; maps of a wrong shape or non-finite.
    TypeError: a bad method, clf, key or method_options.
  """
  validation.check_positive_int(num_samples, "num_samples")
  validation.check_positive_int(chunk, "chunk")
  radius = pe.check_number(radius, "radius", positive=True)
  if not isinstance(relative, bool):
    raise TypeError(f"relative must be a bool, got {relative!r}")
  prep = pe.prepare(method, clf, images, labels, key, method_options)
  per_call = pe.copies_per_call(chunk, prep.images.shape[0], num_samples)
  return _sensitivity(clf, prep.images, prep.labels, prep.maps, key, prep.method_key,
                      method=prep.method, options=prep.options, num_samples=int(num_samples),
                      radius=radius, relative=relative, copies_per_forward=per_call)
