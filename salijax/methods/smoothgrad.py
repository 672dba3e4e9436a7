"""SmoothGrad (Smilkov et al., 2017) around any gradient method.

With A the wrapped method's raw attribution f32[B,H,W,3] (`method`: "gradient",
"guided_backprop" or "integrated_gradients", called with reduce="none" and
`**method_options`), n = `num_samples` and sigma = `noise` * (max - min) of
each image (over its pixels and channels):

  L = reduce_c( (1/n) sum_s A(I + sigma eps_s) ),   eps_s ~ N(0, 1)^{H x W x 3}

The mean is taken over the RAW attributions and the channel reduction after it
(`reduce="max_abs"` by default; "none" gives the mean raw attribution): the
authors' own implementation (PAIR-code/saliency, `GetSmoothedMask`) averages
the raw gradients and visualises the average. The noisy images are not clipped
to [0, 1] (neither are they there).

Noise: eps_s is drawn from `jax.random.fold_in(key, s)` with shape [H, W, 3] and
shared by every image of the batch (scaled by each image's own sigma), so an
image's map depends only on the image, the key and the options, not on the
rest of the batch or on `sample_chunk` (RISE shares its masks the same way).
The images of one call therefore see the same noise pattern; calls with
different keys see independent ones.

One compiled loop runs over chunks of `sample_chunk` samples; each step runs
the wrapped method on B * sample_chunk noisy images (each image's copies as
one batch, vmapped over the images: the model's batch is image-major and
splits with the images over devices) and carries the running sum
f32[B,H,W,3]. An array option with the images' rank and batch size (a
per-image integrated-gradients baseline f32[B,H,W,3]) goes with its image;
other arrays are shared. Memory grows with B * sample_chunk times the wrapped
method's own (integrated gradients: B * sample_chunk * its `chunk` images per
backward pass), not with n. Cost: n times the wrapped method's.

The options are checked on the host first by a dry run of the wrapped method
on the clean images (`jax.eval_shape`: traced, not computed).

    maps = smoothgrad(clf, images, labels, key=jax.random.key(0))
    maps = smoothgrad(clf, images, labels, key=key, method="integrated_gradients",
                      num_samples=10, steps=20)
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.methods import input_gradients, integrated_gradients  # noqa: F401 (registers them)
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import (
    Option,
    PassCount,
    Shapes,
    get,
    info,
    number,
    one_of,
    positive_int,
    register,
)

GRADIENT_METHODS = ("gradient", "guided_backprop", "integrated_gradients")


@functools.partial(jax.jit, static_argnames=("method", "static_options", "num_samples",
                                             "noise", "sample_chunk", "reduce"))
def _smoothgrad(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
                shared_options: dict[str, jax.Array], image_options: dict[str, jax.Array], *,
                method: str, static_options: tuple[tuple[str, Any], ...], num_samples: int,
                noise: float, sample_chunk: int, reduce: str) -> jax.Array:
  """The jitted SmoothGrad: f32[B,H,W,3], i32[B] -> f32[B,H,W] (see the module doc).

  `image_options` hold one value per image (axis 0), `shared_options` one for all.
  """
  _, height, width, _ = images.shape
  sigma = noise * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))  # f32[B]
  noise_of = jax.vmap(
      lambda s: jax.random.normal(jax.random.fold_in(key, s), (height, width, 3)))

  def explain_copies(copies: jax.Array, label: jax.Array, options: dict[str, jax.Array]):
    """One image's noisy copies f32[S,H,W,3] as one batch -> raw attributions f32[S,H,W,3]."""
    return get(method)(clf, copies, jnp.full(copies.shape[0], label),
                                    reduce="none", **dict(static_options), **shared_options,
                                    **options)

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    index = step * sample_chunk + jnp.arange(sample_chunk)
    noisy = images[:, None] + sigma[:, None, None, None, None] * noise_of(index)  # [B,S,H,W,3]
    # Mapped over the images (not the samples), so that the model's batch of B * S
    # copies is image-major and splits with the images over devices.
    raw = jax.vmap(explain_copies)(noisy, labels, image_options)  # f32[B,S,H,W,3]
    kept = (index < num_samples).astype(raw.dtype)  # the padded tail adds nothing
    return total + jnp.einsum("bshwc,s->bhwc", raw, kept, precision=jax.lax.Precision.HIGHEST)

  # Unrolled (up to 8 chunks), as integrated_gradients.
  num_chunks = math.ceil(num_samples / sample_chunk)
  total = jax.lax.fori_loop(0, num_chunks, add_chunk, jnp.zeros_like(images),
                            unroll=min(num_chunks, 8))
  return reduce_channels(total / num_samples, reduce)


def _cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """n times the averaged method's cost, `sample_chunk` copies per step."""
  averaged = info(options["method"])
  own = info("smoothgrad").options
  cost = averaged.cost(averaged.resolve({k: v for k, v in options.items() if k not in own}),
                       shapes)
  samples = options["num_samples"]
  return PassCount(cost.kind, samples * cost.passes,
                   min(options["sample_chunk"], samples) * cost.per_pass)


@register("smoothgrad", title="SmoothGrad",
          summary="a gradient method averaged over noisy copies of the image", cost=_cost,
          options={"method": Option("gradient", one_of(*GRADIENT_METHODS)),
                   "num_samples": Option(25, positive_int), "noise": Option(0.15, number(0.0)),
                   "sample_chunk": Option(5, positive_int), "reduce": REDUCE_OPTION},
          needs_key=True, jitted=_smoothgrad, takes_extra_options=True)
def smoothgrad(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
               method: str, num_samples: int, noise: float, sample_chunk: int, reduce: str,
               **method_options: Any) -> jax.Array:
  """SmoothGrad maps f32[B,H,W] (the mean raw attribution f32[B,H,W,3] with reduce="none").

  Options: method, the averaged one (`GRADIENT_METHODS`); num_samples, n;
  noise, sigma as a fraction of each image's max - min; sample_chunk, copies
  per loop step (memory and speed, not the result); the averaged method's own
  options (integrated gradients: baseline, steps, rule, chunk), but not
  `reduce`, which is SmoothGrad's.
  """
  # A dry run (traced, not computed) checks the method's options with their values.
  jax.eval_shape(functools.partial(get(method), clf, images, labels, reduce="none",
                                   **method_options))
  arrays = {k: v for k, v in method_options.items() if isinstance(v, (np.ndarray, jax.Array))}
  # An array with the images' rank and batch (B > 1) holds one value per image.
  per_image = {k for k, v in arrays.items()
               if np.ndim(v) == images.ndim and np.shape(v)[0] == images.shape[0] > 1}
  static_options = tuple(sorted((k, v) for k, v in method_options.items() if k not in arrays))
  for name, value in static_options:
    try:
      hash(value)
    except TypeError:
      raise TypeError(f"{name}: expected a number, a string or an array, got"
                      f" {type(value).__name__}") from None
  return _smoothgrad(clf, images, labels, key,
                     {k: v for k, v in arrays.items() if k not in per_image},
                     {k: v for k, v in arrays.items() if k in per_image}, method=method,
                     static_options=static_options, num_samples=num_samples, noise=noise,
                     sample_chunk=min(sample_chunk, num_samples), reduce=reduce)
