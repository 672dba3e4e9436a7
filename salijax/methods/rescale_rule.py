"""DeepLIFT's rescale rule in any JAX function, by rewriting its jaxpr.

`rescaled(fn)(variables, images, baselines)` returns `fn(variables, images)`,
the same values, but its reverse-mode derivative in `images` is DeepLIFT's
(Shrikumar, Greenside, Kundaje, ICML 2017): at every elementwise
nonlinearity y = f(x) the local derivative f'(x) is replaced by the
multiplier

  m = (f(x) - f(x0)) / (x - x0)      (f'(x) where |x - x0| < 1e-10, Captum's eps)

with x0 the same unit's input when the function runs on the baseline. The
function's jaxpr is evaluated on both streams at once: the images and the
baselines stacked on a new leading "stream" axis, every equation with a
stacked input `jax.vmap`ped over that axis (its batching rule merges it into
the batch: a convolution runs once on 2B images), every equation of the
variables alone bound once. Each nonlinearity becomes a `jax.custom_vjp` of
the stacked [x, x0] whose backward pass multiplies both streams' incoming
gradients by m (as Captum does for its 2B batch). No equation needs to be
per-sample or to keep the batch on one axis: the reference stream is the
whole function on the baselines.

Nonlinearities rewritten (`NONLINEARITIES`): the ReLU (a `max` with a literal
0 operand, as found by `salijax.wrapping.guide_relus`: `jax.nn.relu`, Flax's,
Haiku's and Equinox's ReLUs; its derivative taken as 1[x > 0]), `tanh` and
`logistic` (`jax.nn.sigmoid`). Every other operation passes its own gradient:
linear ones are exact under DeepLIFT, and a max-pool (`reduce_window_max`)
passes the gradient to the maximum of its window (module doc of
`salijax.methods.deeplift`). Nonlinearities are found through nested `jit`s,
custom derivatives and `remat` (inlined); one inside a loop or branch (`scan`,
`while`, `cond`) is refused with a NotImplementedError.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core

from salijax.wrapping.jaxpr_rewriting import INLINED, bind, inlined_body, relu_operand, sub_jaxprs

EPS = 1e-10  # |x - x0| below which the multiplier is the gradient (Captum's default eps)


def _relu(x: jax.Array) -> jax.Array:
  return jnp.maximum(x, jnp.zeros((), x.dtype))


def _relu_derivative(x: jax.Array, y: jax.Array) -> jax.Array:
  del y
  return (x > 0).astype(x.dtype)


NONLINEARITIES: dict[str, tuple[Callable[[jax.Array], jax.Array],
                                Callable[[jax.Array, jax.Array], jax.Array]]] = {
    # name: (f, (x, f(x)) -> f'(x))
    "relu": (_relu, _relu_derivative),
    "tanh": (jnp.tanh, lambda x, y: 1 - y * y),
    "logistic": (jax.nn.sigmoid, lambda x, y: y * (1 - y)),
}


def _make_rescaled(kind: str) -> Callable[[jax.Array], jax.Array]:
  f, derivative = NONLINEARITIES[kind]

  @jax.custom_vjp
  def rescaled_pair(pair: jax.Array) -> jax.Array:
    return f(pair)

  def forward(pair):
    y = f(pair)
    return y, (pair, y)

  def backward(residuals, g):
    pair, y = residuals  # [2, ...]: the image stream, the reference stream
    delta_in = pair[0] - pair[1]
    small = jnp.abs(delta_in) < EPS
    multiplied = g * (y[0] - y[1]) / jnp.where(small, jnp.ones_like(delta_in), delta_in)
    return (jnp.where(small, g * derivative(pair, y), multiplied),)

  rescaled_pair.defvjp(forward, backward)
  return rescaled_pair


_RESCALED = {kind: _make_rescaled(kind) for kind in NONLINEARITIES}


def _nonlinearity(eqn: core.JaxprEqn) -> tuple[str, Any] | None:
  """(kind, operand) of a rewritten nonlinearity on floats, or None."""
  name = eqn.primitive.name
  if name in ("tanh", "logistic"):
    operand = eqn.invars[0]
  elif (operand := relu_operand(eqn)) is not None:
    name = "relu"
  else:
    return None
  aval = getattr(operand, "aval", None)
  if aval is None or not jnp.issubdtype(aval.dtype, jnp.floating):
    return None
  return name, operand


def _has_nonlinearity(jaxpr: core.Jaxpr) -> bool:
  return any(_nonlinearity(eqn) is not None or any(_has_nonlinearity(s) for s in sub_jaxprs(eqn))
             for eqn in jaxpr.eqns)


def _bind_paired(eqn: core.JaxprEqn, args: Sequence[Any], paired: Sequence[bool]) -> list[Any]:
  """`eqn` on both streams at once: vmapped over the stream axis of the paired arguments."""
  axes = [0 if p else None for p in paired]
  return jax.vmap(lambda *a: bind(eqn, a), in_axes=axes)(*args)


def _evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any],
              paired: Sequence[bool], count: list[int]) -> tuple[list[Any], list[bool]]:
  """Evaluates `jaxpr` on both streams: a value is either paired ([2, ...]: its value on the
  images, then on the baselines) or shared by both; count[0] counts the nonlinearities."""
  env: dict[Any, tuple[Any, bool]] = {}

  def read(atom: Any) -> tuple[Any, bool]:
    return (atom.val, False) if isinstance(atom, core.Literal) else env[atom]

  for var, value in zip(jaxpr.constvars, consts, strict=True):
    env[var] = (value, False)
  env.update(zip(jaxpr.invars, zip(args, paired, strict=True), strict=True))
  for eqn in jaxpr.eqns:
    read_ins = [read(a) for a in eqn.invars]
    ins = [value for value, _ in read_ins]
    ins_paired = [is_paired for _, is_paired in read_ins]
    found = _nonlinearity(eqn)
    if not any(ins_paired):  # the same on both streams
      outs, outs_paired = bind(eqn, ins), [False] * len(eqn.outvars)
    elif found is not None:
      outs, outs_paired = [_RESCALED[found[0]](read(found[1])[0])], [True]
      count[0] += 1
    elif any(_has_nonlinearity(s) for s in sub_jaxprs(eqn)):
      if eqn.primitive.name not in INLINED:
        raise NotImplementedError(
            f"DeepLIFT: nonlinearities inside `{eqn.primitive.name}` (a loop or branch) are"
            " not supported")
      body, body_consts = inlined_body(eqn)
      outs, outs_paired = _evaluate(body, body_consts, ins, ins_paired, count)
    else:
      outs, outs_paired = _bind_paired(eqn, ins, ins_paired), [True] * len(eqn.outvars)
    for var, value, is_paired in zip(eqn.outvars, outs, outs_paired, strict=True):
      if not isinstance(var, core.DropVar):
        env[var] = (value, is_paired)
  results = [read(a) for a in jaxpr.outvars]
  return [value for value, _ in results], [is_paired for _, is_paired in results]


@dataclasses.dataclass(frozen=True)
class Rescaled:
  """(variables, images, baselines) -> fn(variables, images) with DeepLIFT's derivative in
  `images` (module doc); hashable if `fn` is."""

  fn: Callable[[Any, jax.Array], Any]

  def __call__(self, variables: Any, images: jax.Array, baselines: jax.Array) -> Any:
    closed, out_shapes = jax.make_jaxpr(self.fn, return_shape=True)(variables, images)
    leaves = jax.tree.leaves(variables)
    pair = jnp.stack([images, jax.lax.stop_gradient(baselines).astype(images.dtype)])
    outs, outs_paired = _evaluate(closed.jaxpr, closed.consts, [*leaves, pair],
                                  [False] * len(leaves) + [True], [0])
    outs = [value[0] if is_paired else value
            for value, is_paired in zip(outs, outs_paired, strict=True)]
    return jax.tree.unflatten(jax.tree.structure(out_shapes), outs)


def rescaled(fn: Callable[[Any, jax.Array], Any]) -> Rescaled:
  """`fn(variables, images)` with DeepLIFT's rescale rule at its nonlinearities (module doc)."""
  return Rescaled(fn)
