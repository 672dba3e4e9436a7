"""GradientSHAP (Lundberg & Lee, NeurIPS 2017; the shap library's GradientExplainer, Captum's
`GradientShap`): expected gradients between the image and baselines drawn from a set.

With y_c the target class's logit, I the image and {B_1..B_N} the baseline set
(`baselines`: a pixel value, one baseline, or f32[N,H,W,3]), sample s = 1..n
draws a baseline index k_s uniform in [0, N), a point u_s uniform in [0, 1)
and noise e_s ~ N(0, noise^2) per pixel and channel (`noise` = 0 by default,
as in Captum and shap: no noise), and

  x_s = I + e_s                    the (noisy) image
  A   = (1/n) sum_s (x_s - B_k_s) * dy_c/dI (B_k_s + u_s (x_s - B_k_s))   f32[B,H,W,3]
  L   = reduce_c(A)                (`salijax.methods.map_ops`, max_abs by default)

As Captum and shap, the difference multiplied is the noisy image's. In
expectation sum A = E[y_c(x) - y_c(B)] (expected gradients average
integrated gradients' integrand over the path and the baselines).

Draws: sample s uses `jax.random.fold_in(key, s)` and is shared by every image
of the batch, so an image's map depends only on the image, the key and the
options, not on the rest of the batch or on `chunk`.

Cost: n forward and backward passes, as one compiled loop over chunks of
`chunk` samples (B * chunk images per pass); memory grows with B * chunk.

    maps = gradient_shap(clf, images, labels, key=jax.random.key(0))
    maps = gradient_shap(clf, images, labels, key=key, baselines=background,  # f32[N,H,W,3]
                         num_samples=50, reduce="none")
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.input_gradients import logit_gradients
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import (
    Option,
    chunked,
    number,
    positive_int,
    register,
)


@functools.partial(jax.jit, static_argnames=("num_baselines", "shape"))
def draws(key: jax.Array, samples: jax.Array, num_baselines: int, shape: tuple[int, ...]
          ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Samples i32[S]' draws: (baseline indices i32[S], points u f32[S], noise f32[S,*shape] ~
  N(0, 1), before scaling by `noise`)."""

  def one(sample):
    index_key, point_key, noise_key = jax.random.split(jax.random.fold_in(key, sample), 3)
    return (jax.random.randint(index_key, (), 0, num_baselines),
            jax.random.uniform(point_key, ()), jax.random.normal(noise_key, shape))

  return jax.vmap(one)(samples)


def _baseline_set(baselines: Any, images: jax.Array) -> jax.Array:
  """A number or an array of baselines -> f32[N,H,W,3]; TypeError/ValueError otherwise."""
  if isinstance(baselines, bool) or not isinstance(
      baselines, (int, float, np.number, np.ndarray, jax.Array)):
    raise TypeError(f"baselines: expected a pixel value or an array f32[N,H,W,3] of baseline"
                    f" images, got {type(baselines).__name__}")
  shape = tuple(np.shape(baselines))
  target = tuple(images.shape[1:])
  if shape:
    fits = len(shape) == 4 and shape[0] >= 1
    try:
      fits = fits and np.broadcast_shapes(shape[1:], target) == target
    except ValueError:
      fits = False
    if not fits:
      raise ValueError(f"baselines: expected a number or an array [N,H,W,3] broadcastable to"
                       f" [N, {', '.join(map(str, target))}], got shape {shape}")
  if validation.is_concrete(baselines):
    values = np.asarray(baselines, np.float64)
    if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
      raise ValueError(f"baselines: expected finite pixel values in [0, 1], got values in"
                       f" [{values.min():.4g}, {values.max():.4g}]")
  baselines = jnp.asarray(baselines, jnp.float32)
  if not shape:
    baselines = baselines.reshape(1, 1, 1, 1)
  return jnp.broadcast_to(baselines, (baselines.shape[0],) + target)


@functools.partial(jax.jit, static_argnames=("num_samples", "noise", "chunk", "reduce"))
def _gradient_shap(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
                   baselines: jax.Array, *, num_samples: int, noise: float, chunk: int,
                   reduce: str) -> jax.Array:
  """The jitted GradientSHAP: f32[B,H,W,3], i32[B], f32[N,H,W,3] -> f32[B,H,W] (module doc)."""
  batch, height, width, _ = images.shape
  chunk_labels = jnp.repeat(labels, chunk)

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    samples = step * chunk + jnp.arange(chunk)
    index, point, eps = draws(key, samples, baselines.shape[0], images.shape[1:])
    noisy = images[:, None] + noise * eps[None]           # f32[B,S,H,W,3]
    delta = noisy - baselines[index][None]
    path = baselines[index][None] + point[None, :, None, None, None] * delta
    grads = logit_gradients(clf.apply, clf.variables,
                            path.reshape(batch * chunk, height, width, 3), chunk_labels)
    kept = (samples < num_samples).astype(jnp.float32)  # the padded tail adds nothing
    return total + jnp.einsum("bshwc,s->bhwc", delta * grads.reshape(delta.shape), kept,
                              precision=jax.lax.Precision.HIGHEST)

  # Unrolled (up to 8 chunks), as integrated_gradients.
  num_chunks = math.ceil(num_samples / chunk)
  total = jax.lax.fori_loop(0, num_chunks, add_chunk, jnp.zeros_like(images),
                            unroll=min(num_chunks, 8))
  return reduce_channels(total / num_samples, reduce)


@register("gradient_shap", title="GradientSHAP",
          summary="input minus baseline times the gradient at random points between them, "
          "averaged over baselines drawn from a set",
          cost=lambda options, shapes: chunked("gradient", options["num_samples"],
                                               options["chunk"]),
          needs_key=True, jitted=_gradient_shap,
          options={"baselines": Option(0.0), "num_samples": Option(25, positive_int),
                   "noise": Option(0.0, number(0.0)), "chunk": Option(5, positive_int),
                   "reduce": REDUCE_OPTION})
def gradient_shap(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
                  baselines: Any, num_samples: int, noise: float, chunk: int,
                  reduce: str) -> jax.Array:
  """GradientSHAP maps f32[B,H,W] (attributions f32[B,H,W,3] with reduce="none").

  Options: baselines, the set drawn from (a pixel value in [0, 1], 0 = black,
  or f32[N,H,W,3] images, broadcastable); num_samples, n; noise, the standard
  deviation of the Gaussian noise added to the image (pixel units); chunk,
  samples per loop step (memory and speed, not the result).
  """
  return _gradient_shap(clf, images, labels, key, _baseline_set(baselines, images),
                        num_samples=num_samples, noise=noise, chunk=min(chunk, num_samples),
                        reduce=reduce)
