"""Mask search of Thakur & Fischmeister (ICPR 2020), as docs/methods.md#mask_search defines it.

The state of image b is a grid of cell values v f32[g,g] (g = `grid` = 8); a
cell is on when v > 0. Initially each cell is on (v = 1) with probability
`initial_fraction` = 0.3. Step t = 1..N (N = `num_steps` = 5000):

  p_t = f_c(I * M + fill * (1 - M)),  M = up(v)   softmax probability of class c
  d_t = p_t - p_{t-1}                             (p_0 = 0)
  u ~ U[0, 1)^{g x g}
  a cell on stays on (keeping its value) if u < p_t, else turns off (v = 0);
  a cell off turns on if u < 1 - p_t, with v = 1 - rate |d_t|  (rate = 0.02)
  S += up(v)                                      (the mask after the update)

so on cells hold values in [1 - rate, 1] and "scaled" means "scaled from 1".
The map is  L = ReLU(S - threshold * mean(S)) / max(...)  (threshold = 0.96;
L = 0 everywhere when no pixel exceeds the threshold), mean and max over the
image's pixels. `up` is bilinear upsampling to H x W (`salijax.methods.map_ops`,
half-pixel centres); it is linear, so S = up(sum_t v_t) is upsampled once.

Choices where the paper is silent, from the authors' notebook
(explainer-prototype.ipynb): p_0 = 0; the sum takes the masks after each
update. Differences from that notebook (docs/methods.md#mask_search):
the notebook re-draws every cell as 1 or 0 each step and then scales every
cell whose value rose (also cells that stayed on after a scaling), and it
crops each upsampled mask at a random offset as RISE does; here a cell that
stays on keeps its value and masks are upsampled without a random shift. The
notebook masks the preprocessed input (its 0 is the mean colour); here the
masked image is in pixel space, with the substrate `fill` (0 = black, as RISE
in salijax).

Randomness: image b (its index in the batch) draws its initial grid from
`fold_in(fold_in(key, b), 0)` and the uniforms of step t from
`fold_in(fold_in(key, b), t)` (each as a flat draw of g^2 values, reshaped), so
a map depends on (key, index), not on the batch size.

Cost: N forwards of the B images, one per step: the search is sequential, a
`lax.scan` over steps carrying the B states, with per-image randomness.

Its objective: the search keeps the states whose masked image keeps the class
score, so each step's p_t is recorded, `objective` f32[B,N] (column t - 1 is
p_t, the score of the mask up(v_{t-1}) before step t's update). It is neither
a descent nor an ascent: p_t is not monotone. At a fixed score every cell is
on half of the time; states with a high score last longer (each cell keeps
its state with probability p_t), so the search's mean score exceeds that of
masks drawn without feedback (tests/methods/mask_search_test.py).
`mask_search_with_objective` returns it beside the maps, from the same jitted
search as the registered `mask_search`, which drops it.

    maps = mask_search(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]
    found = mask_search_with_objective(clf, images, labels, key=key)
    found.maps, found.objective, found.mask   # f32[B,H,W], f32[B,N], f32[B,H,W]
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import (
  Option,
  PassCount,
  core_arguments,
  number,
  positive_int,
  register,
)


class MaskSearch(NamedTuple):
  """The mask search's maps with its objective per step (module doc)."""

  maps: jax.Array  # f32[B,H,W] in [0, 1], what `mask_search` returns
  objective: jax.Array  # f32[B,N]: p_t of step t = 1..N, the score of up(v_{t-1})
  mask: jax.Array  # f32[B,H,W]: up(v_{N-1}), the last mask scored (objective[:, -1] is its p)


def _uniform_grids(keys: jax.Array, step: jax.Array | int, grid: int) -> jax.Array:
  """U[0,1) f32[B,g,g], image b's drawn from fold_in(keys[b], step)."""
  # Drawn flat: a multi-axis shape makes XLA:CPU compile the sampler much longer.
  return jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, step), (grid * grid,)))(
      keys).reshape(-1, grid, grid)


def update_cells(cells: jax.Array, uniforms: jax.Array, score: jax.Array,
                 change: jax.Array, rate: float) -> jax.Array:
  """One step's update of the cell values (see the module doc).

  Args:
    cells: v f32[B,g,g], the current values (on where > 0).
    uniforms: u f32[B,g,g] in [0, 1).
    score: p_t f32[B].
    change: d_t = p_t - p_{t-1}, f32[B].
    rate: the scaling rate.

  Returns:
    f32[B,g,g], the new values.
  """
  score = score[:, None, None]
  on = cells > 0.0
  switched_on = ~on & (uniforms < 1.0 - score)
  scaled = (1.0 - rate * jnp.abs(change))[:, None, None]
  return jnp.where(on & (uniforms < score), cells, jnp.where(switched_on, scaled, 0.0))


def threshold_map(total: jax.Array, threshold: float) -> jax.Array:
  """S f32[B,H,W] -> ReLU(S - threshold mean(S)) / its max, 0 where that max is 0."""
  shifted = jax.nn.relu(total - threshold * total.mean(axis=(1, 2), keepdims=True))
  peak = shifted.max(axis=(1, 2), keepdims=True)
  return jnp.where(peak > 0.0, shifted / jnp.where(peak > 0.0, peak, 1.0), 0.0)


# The scan's state: cells v_t, score p_t, the sum of v_1..v_t, the cells v_{t-1} scored last.
_Carry = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


@functools.partial(jax.jit, static_argnames=("grid", "num_steps"))
def _search(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
            grid: int, initial_fraction: float, num_steps: int, rate: float,
            threshold: float, fill: float) -> MaskSearch:
  """The search of the module doc: its maps, objective and last scored mask."""
  batch, height, width, _ = images.shape
  keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(batch))

  def step(carry: _Carry, t: jax.Array) -> tuple[_Carry, jax.Array]:
    cells, previous, total, _ = carry
    masks = upsample_bilinear(cells, height, width)[..., None]  # f32[B,H,W,1]
    logits = clf.logits(images * masks + fill * (1.0 - masks))
    score = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), labels[:, None], axis=-1)[:, 0]
    updated = update_cells(cells, _uniform_grids(keys, t, grid), score, score - previous, rate)
    return (updated, score, total + updated, cells), score

  cells = (_uniform_grids(keys, 0, grid) < initial_fraction).astype(jnp.float32)
  start = (cells, jnp.zeros((batch,), jnp.float32), jnp.zeros_like(cells), cells)
  (_, _, total, scored), scores = jax.lax.scan(step, start, jnp.arange(1, num_steps + 1))
  return MaskSearch(maps=threshold_map(upsample_bilinear(total, height, width), threshold),
                    objective=scores.T, mask=upsample_bilinear(scored, height, width))


@register("mask_search", title="mask search",
          summary="a stochastic search for the masks that keep the class score",
          cost=lambda options, shapes: PassCount("forward", options["num_steps"], 1),
          needs_key=True, jitted=_search,
          options={"grid": Option(8, positive_int),
                   "initial_fraction": Option(0.3, number(0.0, 1.0)),
                   "num_steps": Option(5000, positive_int),
                   "rate": Option(0.02, number(0.0, 1.0, high_open=True)),
                   "threshold": Option(0.96, number(0.0)), "fill": Option(0.0, number(0.0, 1.0))})
def mask_search(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array,
                **options: Any) -> jax.Array:
  """Mask-search maps f32[B,H,W] in [0, 1], maximum 1 or all 0 (module doc).

  Options: grid, g (g x g cells); initial_fraction, the probability that a
  cell starts on; num_steps, N (one forward of the batch each); rate, the
  scaling rate of cells switching on, in [0, 1); threshold, the fraction of
  the mean subtracted from the summed masks; fill, the substrate's pixel value
  where masks are 0. The float options are traced: changing them does not
  recompile. `mask_search_with_objective` also returns the objective per step.
  """
  return _search(clf, images, labels, key, **options).maps


def mask_search_with_objective(clf: Classifier, images: Any, labels: Any = None, *,
                               key: jax.Array | None = None, compute_dtype: Any = None,
                               **options: Any) -> MaskSearch:
  """`mask_search`'s maps with its objective per step and last scored mask (`MaskSearch`).

  Called as `mask_search` (the same arguments, options and errors); the maps
  are the same numbers, from the same compiled search.
  """
  arguments, resolved = core_arguments(mask_search.info, clf, images, labels, key, options,
                                       compute_dtype)
  return _search(*arguments, **resolved)
