"""Integrated gradients (Sundararajan, Taly, Yan, ICML 2017).

With y_c the target class's logit, I the image and B the baseline (pixel
space; black, 0, by default), the attribution of each pixel and channel is

  A = (I - B) * integral_0^1 dy_c/dI (B + a (I - B)) da      f32[B,H,W,3]

and the map L = reduce_c(A) (`salijax.methods.map_ops`;
reduce="max_abs" by default like the other gradient methods, "sum" keeps the
signed total, "none" returns A itself). Completeness: sum over pixels and
channels of A = y_c(I) - y_c(B), up to the error of the quadrature.

The integral is a Riemann sum over m = `steps` points a_k with weights w_k,
chosen by `rule`:
  "right" (default, the paper's eq. 3): a_k = k/m, k = 1..m, w_k = 1/m;
  "left": a_k = k/m, k = 0..m-1, w_k = 1/m;
  "midpoint": a_k = (k + 1/2)/m, k = 0..m-1, w_k = 1/m;
  "trapezoid": a_k = k/m, k = 0..m, w_k = 1/m (1/(2m) at both ends): m + 1 points.
Left and right sums converge as O(1/m), midpoint and trapezoid as O(1/m^2) on
a smooth classifier; on a linear one every rule is exact.

One compiled loop runs over chunks of `chunk` path points; each step is one
forward and one backward pass of B * chunk images, and carries the running
weighted sum f32[B,H,W,3]. Memory grows with B * chunk, not with `steps`; the
result does not depend on `chunk` or on the other images of the batch (up to
float summation order). The points and weights are arguments of the compiled
program: rules and step counts that make as many chunks of the same size share it.
Cost: m (m + 1 for trapezoid) forwards and backwards.

    maps = integrated_gradients(clf, images, labels)                    # f32[B,H,W]
    attributions = integrated_gradients(clf, images, labels, reduce="none",
                                        baseline=0.5, steps=100)        # f32[B,H,W,3]
"""

import functools
import math
from collections.abc import Mapping
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
    PassCount,
    Shapes,
    chunked,
    one_of,
    positive_int,
    register,
)

RULES = ("right", "left", "midpoint", "trapezoid")


def path_points(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
  """The quadrature's points a_k and weights w_k on [0, 1] (module doc), f64[n] each."""
  if rule == "trapezoid":
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2
    return np.arange(steps + 1) / steps, weights
  offset = {"right": 1.0, "left": 0.0, "midpoint": 0.5}[rule]
  return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def _check_baseline(baseline: Any, images: Any) -> None:
  """A number or an array broadcastable to the images, finite, in [0, 1]; else an error."""
  if isinstance(baseline, bool) or not isinstance(
      baseline, (int, float, np.number, np.ndarray, jax.Array)):
    raise TypeError(f"baseline: expected a number or an array of pixel values in [0, 1],"
                    f" got {type(baseline).__name__}")
  dtype = baseline.dtype if hasattr(baseline, "dtype") else np.asarray(baseline).dtype
  if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
    raise TypeError(f"baseline: expected real pixel values in [0, 1], got dtype {dtype}")
  shape = tuple(np.shape(baseline))
  try:
    fits = np.broadcast_shapes(shape, tuple(images.shape)) == tuple(images.shape)
  except ValueError:
    fits = False
  if not fits:
    raise ValueError(f"baseline: expected a number or an array broadcastable to the images"
                     f" {tuple(images.shape)}, got shape {shape}")
  if validation.is_concrete(baseline):
    values = np.asarray(baseline, np.float64)
    if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
      raise ValueError(f"baseline: expected finite pixel values in [0, 1], got values in"
                       f" [{values.min():.4g}, {values.max():.4g}]")


@functools.partial(jax.jit, static_argnames=("reduce",))
def _integrated_gradients(clf: Classifier, images: jax.Array, labels: jax.Array,
                          baseline: jax.Array, alphas: jax.Array, weights: jax.Array, *,
                          reduce: str) -> jax.Array:
  """The jitted integrated gradients (see the module doc).

  Args:
    clf, images f32[B,H,W,3], labels i32[B]: as `integrated_gradients`.
    baseline: f32[B,H,W,3].
    alphas, weights: f32[num_chunks, chunk], the path points and their weights
      (`path_points`), padded with weight 0.
    reduce: as `integrated_gradients`.
  """
  batch, height, width, _ = images.shape
  num_chunks, chunk = alphas.shape
  delta = images - baseline
  chunk_labels = jnp.repeat(labels, chunk)

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    a = alphas[step][None, :, None, None, None]
    path = (baseline[:, None] + a * delta[:, None]).reshape(batch * chunk, height, width, 3)
    grads = logit_gradients(clf.apply, clf.variables, path, chunk_labels)
    return total + jnp.einsum("bkhwc,k->bhwc", grads.reshape(batch, chunk, height, width, 3),
                              weights[step], precision=jax.lax.Precision.HIGHEST)

  # Unrolled (up to 8 chunks): on XLA:CPU the rolled loop of gradients runs 5-15 % slower
  # (BENCHMARKS.md; 2.3x before `explicit_kernel_transposes`).
  integral = jax.lax.fori_loop(0, num_chunks, add_chunk, jnp.zeros_like(images),
                               unroll=min(num_chunks, 8))
  return reduce_channels(delta * integral, reduce)


def _cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  del shapes
  return chunked("gradient", options["steps"] + (options["rule"] == "trapezoid"),
                 options["chunk"])


@register("integrated_gradients", title="integrated gradients",
          summary="gradients integrated along the path from a baseline", cost=_cost,
          options={"baseline": Option(0.0), "steps": Option(50, positive_int),
                   "rule": Option("right", one_of(*RULES)), "chunk": Option(10, positive_int),
                   "reduce": REDUCE_OPTION},
          jitted=_integrated_gradients)
def integrated_gradients(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                         baseline: Any, steps: int, rule: str, chunk: int,
                         reduce: str) -> jax.Array:
  """Integrated gradients maps f32[B,H,W] (attributions f32[B,H,W,3] with reduce="none").

  Options: baseline, the path's start in pixel space (a number in [0, 1], 0 =
  black, or an array broadcastable to the images); steps, m; rule (module
  doc); chunk, path points per loop step (memory and speed, not the result).
  """
  _check_baseline(baseline, images)
  alphas, weights = path_points(steps, rule)
  chunk = min(chunk, len(alphas))
  num_chunks = math.ceil(len(alphas) / chunk)
  padding = num_chunks * chunk - len(alphas)  # the padded tail has weight 0
  return _integrated_gradients(
      clf, images, labels, jnp.broadcast_to(jnp.asarray(baseline, jnp.float32), images.shape),
      jnp.asarray(np.pad(alphas, (0, padding)).reshape(num_chunks, chunk), jnp.float32),
      jnp.asarray(np.pad(weights, (0, padding)).reshape(num_chunks, chunk), jnp.float32),
      reduce=reduce)
