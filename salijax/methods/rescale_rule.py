"""DeepLIFT's rescale rule in any JAX function, by rewriting its jaxpr.

`rescaled(fn)(variables, images, baselines)` returns `fn(variables, images)`,
the same values, but its reverse-mode derivative in `images` is DeepLIFT's
(Shrikumar, Greenside, Kundaje, ICML 2017): at every elementwise
nonlinearity y = f(x) the local derivative f'(x) is replaced by the
multiplier

  m = (f(x) - f(x0)) / (x - x0)      (f'(x) where |x - x0| < 1e-10, Captum's eps)

with x0 the same unit's input when the function runs on the baseline. The
function's jaxpr is evaluated twice in lockstep, on the images and on the
baselines (the reference stream, not differentiated): every equation is bound
on both streams (once where its inputs are the same on both, as for the
variables), and each nonlinearity of the image stream becomes a
`jax.custom_vjp` of (x, x0, f(x0)) whose backward pass is g -> g * m. No
equation needs to be per-sample or to keep the batch on one axis: the
reference stream is the whole function on the baselines.

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

from salijax.wrapping.guided_relus import _INLINED, _inlined_body, _relu_operand, _sub_jaxprs

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


def _make_rescaled(kind: str) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
  f, derivative = NONLINEARITIES[kind]

  @jax.custom_vjp
  def rescaled(x: jax.Array, x0: jax.Array, y0: jax.Array) -> jax.Array:
    del x0, y0
    return f(x)

  def forward(x, x0, y0):
    y = f(x)
    return y, (x, x0, y, y0)

  def backward(residuals, g):
    x, x0, y, y0 = residuals
    delta_in = x - x0
    small = jnp.abs(delta_in) < EPS
    multiplied = g * (y - y0) / jnp.where(small, jnp.ones_like(delta_in), delta_in)
    return (jnp.where(small, g * derivative(x, y), multiplied), jnp.zeros_like(x0),
            jnp.zeros_like(y0))

  rescaled.defvjp(forward, backward)
  return rescaled


_RESCALED = {kind: _make_rescaled(kind) for kind in NONLINEARITIES}


def _nonlinearity(eqn: core.JaxprEqn) -> tuple[str, Any] | None:
  """(kind, operand) of a rewritten nonlinearity on floats, or None."""
  name = eqn.primitive.name
  if name in ("tanh", "logistic"):
    operand = eqn.invars[0]
  elif (operand := _relu_operand(eqn)) is not None:
    name = "relu"
  else:
    return None
  aval = getattr(operand, "aval", None)
  if aval is None or not jnp.issubdtype(aval.dtype, jnp.floating):
    return None
  return name, operand


def _has_nonlinearity(jaxpr: core.Jaxpr) -> bool:
  return any(_nonlinearity(eqn) is not None or any(_has_nonlinearity(s) for s in _sub_jaxprs(eqn))
             for eqn in jaxpr.eqns)


def _bind(eqn: core.JaxprEqn, args: Sequence[Any]) -> list[Any]:
  with eqn.ctx.manager:
    outs = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
  return list(outs) if eqn.primitive.multiple_results else [outs]


def _evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any],
              ref_args: Sequence[Any], count: list[int]) -> tuple[list[Any], list[Any]]:
  """Evaluates `jaxpr` on both streams; count[0] counts the nonlinearities rewritten."""
  env: dict[Any, Any] = {}
  ref_env: dict[Any, Any] = {}

  def read(atom: Any, where: dict[Any, Any]) -> Any:
    return atom.val if isinstance(atom, core.Literal) else where[atom]

  for var, value in zip(jaxpr.constvars, consts, strict=True):
    env[var] = ref_env[var] = value
  env.update(zip(jaxpr.invars, args, strict=True))
  ref_env.update(zip(jaxpr.invars, ref_args, strict=True))
  for eqn in jaxpr.eqns:
    ins = [read(a, env) for a in eqn.invars]
    ref_ins = [read(a, ref_env) for a in eqn.invars]
    found = _nonlinearity(eqn)
    if all(a is b for a, b in zip(ins, ref_ins, strict=True)):  # equal on both streams
      outs = ref_outs = _bind(eqn, ins)
    elif found is not None:
      kind, operand = found
      x, x0 = read(operand, env), read(operand, ref_env)
      y0 = jax.lax.stop_gradient(NONLINEARITIES[kind][0](x0))
      outs, ref_outs = [_RESCALED[kind](x, x0, y0)], [y0]
      count[0] += 1
    elif any(_has_nonlinearity(s) for s in _sub_jaxprs(eqn)):
      if eqn.primitive.name not in _INLINED:
        raise NotImplementedError(
            f"DeepLIFT: nonlinearities inside `{eqn.primitive.name}` (a loop or branch) are"
            " not supported")
      body, body_consts = _inlined_body(eqn)
      outs, ref_outs = _evaluate(body, body_consts, ins, ref_ins, count)
    else:
      outs, ref_outs = _bind(eqn, ins), _bind(eqn, ref_ins)
    for var, value, ref_value in zip(eqn.outvars, outs, ref_outs, strict=True):
      if not isinstance(var, core.DropVar):
        env[var], ref_env[var] = value, ref_value
  return ([read(a, env) for a in jaxpr.outvars], [read(a, ref_env) for a in jaxpr.outvars])


@dataclasses.dataclass(frozen=True)
class Rescaled:
  """(variables, images, baselines) -> fn(variables, images) with DeepLIFT's derivative in
  `images` (module doc); hashable if `fn` is."""

  fn: Callable[[Any, jax.Array], Any]

  def __call__(self, variables: Any, images: jax.Array, baselines: jax.Array) -> Any:
    closed, out_shapes = jax.make_jaxpr(self.fn, return_shape=True)(variables, images)
    leaves = jax.tree.leaves(variables)
    baselines = jax.lax.stop_gradient(baselines)
    outs, _ = _evaluate(closed.jaxpr, closed.consts, [*leaves, images], [*leaves, baselines],
                        [0])
    return jax.tree.unflatten(jax.tree.structure(out_shapes), outs)


def rescaled(fn: Callable[[Any, jax.Array], Any]) -> Rescaled:
  """`fn(variables, images)` with DeepLIFT's rescale rule at its nonlinearities (module doc)."""
  return Rescaled(fn)
