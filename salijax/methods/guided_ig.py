"""Guided integrated gradients (Kapishnikov, Venugopalan, Avci, Wedin, Terry, Bolukbasi,
CVPR 2021).

An adaptive path from the baseline B (black, 0, by default) to the image I:
at each of m = `steps` steps the features (pixels x channels) with the
smallest absolute gradient move first, so that the path avoids the features
the class score is most sensitive to until it must. With x the path's point
(x = B at the start), g = dy_c/dI (x) at the step's start (y_c the target
class's logit), alpha = k/m at step k = 1..m, delta = `max_dist`:

  every feature stays within the straight-line interval [alpha - delta, alpha + delta]
  (relative position (x - B) / (I - B), clipped to [0, 1]); the features behind
  alpha - delta are first moved up to it. The step must bring the L1 distance
  |x - I|_1 down to (1 - alpha) |B - I|_1: repeatedly, the features whose |g| is at
  most the `fraction` quantile of |g| ("lower" interpolation; features already at
  their upper bound count as +inf and are never selected) move towards their upper
  bound x_max, all the way if that is not enough, else by the ratio gamma of the
  missing L1 distance to the selected features' own.
  A += (x_new - x_old) * g   for every move of the step.

The map L = reduce_c(A) ("max_abs" by default, "none" returns A f32[B,H,W,3]).
delta = 0 is integrated gradients on the straight line; delta = 1 the unbounded
Guided IG. Completeness: sum of A ~ y_c(I) - y_c(B).

This is PAIR's `guided_ig_impl` (saliency 0.2.1, `GuidedIG.GetMask`; defaults
m = 200, fraction = 0.25, max_dist = 0.02), in float32 instead of float64:
PAIR's test "has the step reached its L1 target" (relative tolerance 1e-9) is
here |l1 - target| <= 2^-16 |B - I|_1, the rounding of a float32 sum over
the features, and a step whose selected features cannot move (PAIR then
loops for ever) ends.

The steps are sequential (each gradient is taken at the point the previous
steps reached): a `lax.scan` over the m steps, each one gradient pass of the
B images, with an inner `lax.while_loop` over the selections (each quantile
found by `kth_smallest`, linear passes over the H*W*3 features). Cost: m
gradient passes per image.

    maps = guided_ig(clf, images, labels)                           # f32[B,H,W]
    attributions = guided_ig(clf, images, labels, reduce="none")    # f32[B,H,W,3]
"""

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.methods.input_gradients import logit_gradients
from salijax.methods.integrated_gradients import _check_baseline
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import (
    Option,
    PassCount,
    Shapes,
    number,
    positive_int,
    register,
)
from salijax.order_statistics import kth_smallest

_L1_TOLERANCE = 2.0 ** -16  # relative to |B - I|_1: a float32 sum's rounding


def _quantile_index(size: int, fraction: float) -> int:
  """The index in the sorted values of numpy's "lower" quantile `fraction` of `size`."""
  return int(np.floor((size - 1) * fraction))


def _step(image: jax.Array, baseline: jax.Array, x: jax.Array, grad: jax.Array,
          step: jax.Array, *, steps: int, fraction: float, max_dist: float
          ) -> tuple[jax.Array, jax.Array]:
  """One step of one image: (x, grad) f32[n] -> (new x, its attribution increment)."""
  diff = image - baseline
  l1_total = jnp.abs(diff).sum()
  alpha = (step + 1.0) / steps
  alpha_min = jnp.maximum(alpha - max_dist, 0.0)
  alpha_max = jnp.minimum(alpha + max_dist, 1.0)
  x_min = baseline + diff * alpha_min
  x_max = baseline + diff * alpha_max
  l1_target = l1_total * (1.0 - (step + 1.0) / steps)
  tolerance = _L1_TOLERANCE * l1_total
  index = _quantile_index(x.size, fraction)

  def select(state):
    x, _, _ = state
    x_alpha = jnp.where(diff != 0, (x - baseline) / jnp.where(diff != 0, diff, 1.0), alpha_max)
    x = jnp.where(x_alpha < alpha_min, x_min, x)
    l1_current = jnp.abs(x - image).sum()
    reached = jnp.abs(l1_current - l1_target) <= tolerance
    free = jnp.where(x == x_max, jnp.inf, jnp.abs(grad))
    threshold = kth_smallest(free, index)
    selected = (free <= threshold) & (free != jnp.inf) & ~reached
    l1_selected = jnp.where(selected, jnp.abs(x - x_max), 0.0).sum()
    gamma = jnp.where(l1_selected > 0, (l1_current - l1_target) / l1_selected, jnp.inf)
    moved = jnp.where(gamma > 1.0, x_max, x + (x_max - x) * jnp.maximum(gamma, 0.0))
    x = jnp.where(selected, moved, x)
    done = reached | (gamma <= 1.0) | (l1_selected <= 0)
    return x, done, l1_selected

  def not_done(state):
    return ~state[1]

  new_x, _, _ = jax.lax.while_loop(not_done, select, (x, jnp.array(False), jnp.array(1.0)))
  return new_x, (new_x - x) * grad


@functools.partial(jax.jit, static_argnames=("steps", "fraction", "max_dist", "reduce"))
def _guided_ig(clf: Classifier, images: jax.Array, labels: jax.Array, baseline: jax.Array, *,
               steps: int, fraction: float, max_dist: float, reduce: str) -> jax.Array:
  """The jitted Guided IG: f32[B,H,W,3], i32[B], baseline f32[B,H,W,3] -> maps (module doc)."""
  batch = images.shape[0]
  flat_images = images.reshape(batch, -1)
  flat_baseline = baseline.reshape(batch, -1)
  one_step = jax.vmap(functools.partial(_step, steps=steps, fraction=fraction,
                                        max_dist=max_dist), (0, 0, 0, 0, None))

  def scan_step(state, step):
    x, attribution = state
    grad = logit_gradients(clf.apply, clf.variables, x.reshape(images.shape), labels)
    x, increment = one_step(flat_images, flat_baseline, x, grad.reshape(batch, -1), step)
    return (x, attribution + increment), None

  (_, attribution), _ = jax.lax.scan(
      scan_step, (flat_baseline, jnp.zeros_like(flat_images)), jnp.arange(steps))
  # An image equal to its baseline gets no attribution (PAIR's early return).
  same = (flat_images == flat_baseline).all(axis=1, keepdims=True)
  attribution = jnp.where(same, 0.0, attribution)
  return reduce_channels(attribution.reshape(images.shape), reduce)


def _cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  del shapes
  return PassCount("gradient", options["steps"], 1)


@register("guided_ig", title="Guided IG",
          summary="gradients integrated along an adaptive path that moves the "
          "least sensitive features first", cost=_cost,
          options={"baseline": Option(0.0), "steps": Option(200, positive_int),
                   "fraction": Option(0.25, number(0.0, 1.0)),
                   "max_dist": Option(0.02, number(0.0, 1.0)), "reduce": REDUCE_OPTION},
          jitted=_guided_ig)
def guided_ig(clf: Classifier, images: jax.Array, labels: jax.Array, *, baseline: Any,
              steps: int, fraction: float, max_dist: float, reduce: str) -> jax.Array:
  """Guided integrated gradients maps f32[B,H,W] (f32[B,H,W,3] with reduce="none").

  Options: baseline, the path's start (a number in [0, 1], 0 = black, or an
  array broadcastable to the images); steps, m; fraction, the share of the
  features selected at a time; max_dist, delta, how far (relative) a feature
  may leave the straight line.
  """
  _check_baseline(baseline, images)
  return _guided_ig(clf, images, labels,
                    jnp.broadcast_to(jnp.asarray(baseline, jnp.float32), images.shape),
                    steps=steps, fraction=fraction, max_dist=max_dist, reduce=reduce)
