"""A method's maps of many noisy copies of every image, in chunks: the robustness metrics' core.

The robustness metrics (`salijax.metrics.sensitivity`, `local_lipschitz`,
`relative_stability`) explain J noisy copies x'_j = x + n_j of each of B
images with a saliency method and compare each map a(x'_j) with a(x). Copy j
of image b adds the noise drawn from fold_in(fold_in(noise_key(key), j), b),
so every copy is a pure function of (key, j, b): it depends neither on how
the copies are chunked nor on J nor on the images after b. The method
explains copy j for the class it explains for x (Quantus's convention: the
label of a perturbed input is the original label y, or x's predicted class
when labels=None).

`per_sample` runs the J copies as one `lax.map` over chunks of s =
`per_forward` copies of every image; each chunk calls the method once on
f32[B s,H,W,3] (a method that draws, `needs_key`, is vmapped over the s
copies instead, with the same key for every copy and for x: common random
numbers, so that its own noise does not count as a change of the map). Memory
grows with s, not with J. The method must be traceable (a JAX function of
the images); one computing on the host (LIME with skimage's SLIC) cannot be used.

    copies = perturbed_images(key, images, J, Uniform(-0.2, 0.2))   # f32[J,B,H,W,3]
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import methods, validation
from salijax.classifier import Classifier
from salijax.metrics.per_image_draws import per_image


class Uniform(NamedTuple):
  """Noise uniform on [low, high] (per pixel and channel, in pixel units)."""

  low: float
  high: float


class Gaussian(NamedTuple):
  """Normal noise N(mean, std^2) (per pixel and channel, in pixel units)."""

  mean: float
  std: float


Noise = Uniform | Gaussian


def noise_key(key: jax.Array) -> jax.Array:
  """The key of the noise, from the metric's `key` (the method gets `method_key`)."""
  return jax.random.fold_in(key, 0)


def method_key(key: jax.Array) -> jax.Array:
  """The key passed to a method that draws (`needs_key`), for x and every copy."""
  return jax.random.fold_in(key, 1)


def draw_noise(key: jax.Array, shape: tuple[int, ...], jobs: jax.Array,
               noise: Noise) -> jax.Array:
  """f32[B,s,H,W,3]: the noise of copies `jobs` (i32[s]) of every image of f32[B,H,W,3].

  `key` is the noise key (`noise_key`); copy j of image b is drawn from
  fold_in(fold_in(key, j), b).
  """
  batch, rest = shape[0], tuple(shape[1:])

  def one(k: jax.Array) -> jax.Array:
    if isinstance(noise, Uniform):
      return jax.random.uniform(k, rest, jnp.float32, noise.low, noise.high)
    return noise.mean + noise.std * jax.random.normal(k, rest, jnp.float32)

  per_job = jax.vmap(lambda job: per_image(jax.random.fold_in(key, job), batch, one))
  return jnp.moveaxis(per_job(jobs), 0, 1)


def noisy_copies(images: jax.Array, key: jax.Array, jobs: jax.Array, noise: Noise) -> jax.Array:
  """f32[B,s,H,W,3]: copies `jobs` of every image, x + n (not clipped), from the metric's key."""
  return images[:, None] + draw_noise(noise_key(key), images.shape, jobs, noise)


@functools.partial(jax.jit, static_argnames=("num_samples", "noise"))
def _perturbed_images(images: jax.Array, key: jax.Array, *, num_samples: int,
                      noise: Noise) -> jax.Array:
  copies = noisy_copies(images, key, jnp.arange(num_samples, dtype=jnp.int32), noise)
  return jnp.moveaxis(copies, 1, 0)


def perturbed_images(key: jax.Array, images: Any, num_samples: int, noise: Noise) -> jax.Array:
  """f32[J,B,H,W,3]: the copies x'_j the robustness metrics explain for this `key`.

  The same `key`, `noise` and images as the metric's (its `noise_of` gives
  `noise` from its options); for tests and for other libraries fed the same
  perturbations (Quantus's `perturb_func`).
  """
  validation.check_key(key)
  validation.check_positive_int(num_samples, "num_samples")
  return _perturbed_images(jnp.asarray(images, jnp.float32), key,
                           num_samples=int(num_samples), noise=noise)


def explain_copies(method: Callable[..., Any], clf: Classifier, copies: jax.Array,
                   labels: jax.Array, key: jax.Array | None,
                   options: tuple[tuple[str, Any], ...]) -> jax.Array:
  """f32[B,s,H,W]: the method's maps of f32[B,s,H,W,3] copies, each for its image's label.

  key None: one call on f32[B s,H,W,3]; otherwise the method draws, and is
  vmapped over the s copies with this key for every copy (module doc).
  """
  batch, copies_per_image = copies.shape[:2]
  kwargs = dict(options)
  if key is None:
    flat = copies.reshape(batch * copies_per_image, *copies.shape[2:])
    maps = method(clf, flat, jnp.repeat(labels, copies_per_image), **kwargs)
    return jnp.asarray(maps, jnp.float32).reshape(batch, copies_per_image, *maps.shape[1:])
  explain = lambda x: method(clf, x, labels, key=key, **kwargs)  # noqa: E731
  return jnp.asarray(jax.vmap(explain, in_axes=1, out_axes=1)(copies), jnp.float32)


def per_sample(values_of: Callable[[jax.Array], Any], *, num_jobs: int,
               per_forward: int) -> Any:
  """values_of(i32[s] jobs) -> pytree of f32[B,s]; returns the pytree of f32[B, num_jobs].

  Chunks of `per_forward` jobs (clipped to [1, J]) in one `lax.map`, then the rest.
  """
  per_forward = min(max(1, per_forward), num_jobs)
  jobs = jnp.arange(num_jobs, dtype=jnp.int32)
  full = num_jobs // per_forward * per_forward
  parts = []
  if full:
    chunks = jax.lax.map(values_of, jobs[:full].reshape(-1, per_forward))  # [F,B,s]
    parts.append(jax.tree.map(
        lambda c: jnp.moveaxis(c, 0, 1).reshape(c.shape[1], full), chunks))
  if full < num_jobs:
    parts.append(values_of(jobs[full:]))
  return jax.tree.map(lambda *p: jnp.concatenate(p, axis=1), *parts)


def copies_per_call(chunk: int, batch: int, num_samples: int) -> int:
  """s = min(max(1, chunk // B), J): the copies of each of B images per call of the method."""
  return min(max(1, int(chunk) // batch), int(num_samples))


def pixel_norm(maps: jax.Array) -> jax.Array:
  """f32[..., H, W] (or any trailing axes given as the last two) -> L2 over the last two axes."""
  return jnp.sqrt(jnp.sum(jnp.square(maps), axis=(-2, -1)))


class Prepared(NamedTuple):
  """What the public robustness metrics pass to their jitted cores."""

  method: Callable[..., Any]  # the method (a name resolved)
  images: jax.Array  # f32[B,H,W,3]
  labels: jax.Array  # i32[B]
  maps: jax.Array  # f32[B,H,W], a(x)
  method_key: jax.Array | None  # the method's key, None for a method that does not draw
  options: tuple[tuple[str, Any], ...]  # the method's options, sorted (static)


def needs_key(method: Callable[..., Any]) -> bool:
  """Whether `method` draws: a registered method's `info.needs_key`; False for others."""
  info = getattr(method, "info", None)
  return bool(getattr(info, "needs_key", False))


def prepare(method: Any, clf: Classifier, images: Any, labels: Any, key: Any,
            method_options: Mapping[str, Any] | None) -> Prepared:
  """Host checks shared by the robustness metrics, and the maps a(x) (checked).

  `method` may be a registered name (`salijax.methods.get`). Raises TypeError
  or ValueError naming the argument.
  """
  if isinstance(method, str):
    method = methods.get(method)
  if not callable(method):
    raise TypeError(f"method: expected a saliency method (clf, images, labels, **options) ->"
                    f" f32[B,H,W] such as salijax.methods.gradient, got {type(method).__name__}")
  if method_options is None:
    method_options = {}
  if not isinstance(method_options, Mapping) or not all(
      isinstance(name, str) for name in method_options):
    raise TypeError(f"method_options: expected a dict of the method's options, got"
                    f" {method_options!r}")
  if "key" in method_options:
    raise TypeError("method_options: pass the key as `key` (the metric derives the method's"
                    " key from it), not in method_options")
  validation.check_key(key)
  labels = jnp.asarray(validation.checked_labels(clf, images, labels), jnp.int32)
  images = jnp.asarray(images, jnp.float32)
  options = tuple(sorted(method_options.items()))
  try:
    hash(options)
  except TypeError as error:
    raise TypeError(f"method_options: values must be hashable (they are compiled in), got"
                    f" {method_options!r}") from error
  draw_key = method_key(key) if needs_key(method) else None
  extra = {} if draw_key is None else {"key": draw_key}
  maps = method(clf, images, labels, **extra, **dict(options))
  validation.check_maps(maps, images, name="maps returned by method")
  return Prepared(method=method, images=images, labels=labels, maps=jnp.asarray(maps, jnp.float32),
                  method_key=draw_key, options=options)


def check_number(value: Any, name: str, *, positive: bool = False) -> float:
  """A finite real number (> 0 with `positive`), as a float; ValueError naming it otherwise."""
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
        and bool(np.isfinite(value)) and (not positive or value > 0))
  if not ok:
    raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number, got"
                     f" {value!r}")
  return float(value)
