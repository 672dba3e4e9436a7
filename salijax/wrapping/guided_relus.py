"""Guided ReLUs in any JAX function, by rewriting its jaxpr.

Guided backpropagation needs every ReLU of a network to pass gradients
backward only where both its input and the incoming gradient are positive
(`salijax.guided_relu`). salijax's own models take the guided ReLU as a
module attribute; for any other model, `guide_relus(fn)` traces `fn` to a
jaxpr and evaluates it with every `max(x, 0)` (a `max` whose one operand is
the literal 0: `jax.nn.relu`, `jnp.maximum(x, 0)`, Flax's, Haiku's and
Equinox's ReLUs) replaced by the guided ReLU. The forward values are
unchanged; only reverse-mode derivatives differ.

    guided = guide_relus(clf.apply)            # (variables, images) -> logits
    grads = jax.grad(lambda x: guided(v, x)[0, c])(images)

ReLUs are found through nested `jit`s, custom derivatives (`custom_jvp` /
`custom_vjp`, inlined: the ReLU's own rule is what is being replaced) and
`remat`. A ReLU inside a loop or branch (`scan`, `while`, `cond`) is refused
with a NotImplementedError; a function with no ReLU at all with a ValueError,
since its guided backpropagation would silently be the plain gradient.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.extend import core

from salijax.guided_relu import guided_relu

# Primitives whose body runs once, in line: evaluating the body with guided
# ReLUs is the same function with guided ReLUs.
_INLINED = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
            "custom_vjp_call_jaxpr", "checkpoint", "remat", "remat2")


def _is_zero_literal(atom: Any) -> bool:
  if not isinstance(atom, core.Literal):
    return False
  value = atom.val
  return getattr(value, "shape", ()) == () and float(value) == 0.0


def _relu_operand(eqn: core.JaxprEqn) -> Any | None:
  """The non-zero operand of `max(x, 0)` / `max(0, x)`, or None for any other equation."""
  if eqn.primitive.name != "max" or len(eqn.invars) != 2:
    return None
  first, second = eqn.invars
  if _is_zero_literal(second) and not _is_zero_literal(first):
    return first
  if _is_zero_literal(first) and not _is_zero_literal(second):
    return second
  return None


def _sub_jaxprs(eqn: core.JaxprEqn) -> list[core.Jaxpr]:
  return [j.jaxpr if isinstance(j, core.ClosedJaxpr) else j for j in core.jaxprs_in_params(
      eqn.params)]


def _has_relu(jaxpr: core.Jaxpr) -> bool:
  return any(_relu_operand(eqn) is not None or any(_has_relu(s) for s in _sub_jaxprs(eqn))
             for eqn in jaxpr.eqns)


def _inlined_body(eqn: core.JaxprEqn) -> tuple[core.Jaxpr, Sequence[Any]]:
  for name in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
    body = eqn.params.get(name)
    if isinstance(body, core.ClosedJaxpr):
      return body.jaxpr, body.consts
    if isinstance(body, core.Jaxpr):
      return body, ()
  raise NotImplementedError(f"guided ReLUs: no body found in {eqn.primitive.name}")


def _evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any],
              count: list[int]) -> list[Any]:
  """Evaluates `jaxpr` with guided ReLUs; count[0] counts the ReLUs replaced."""
  env: dict[Any, Any] = {}

  def read(atom: Any) -> Any:
    return atom.val if isinstance(atom, core.Literal) else env[atom]

  env.update(zip(jaxpr.constvars, consts, strict=True))
  env.update(zip(jaxpr.invars, args, strict=True))
  for eqn in jaxpr.eqns:
    operand = _relu_operand(eqn)
    if operand is not None:
      outs = [guided_relu(read(operand))]
      count[0] += 1
    elif any(_has_relu(s) for s in _sub_jaxprs(eqn)):
      if eqn.primitive.name not in _INLINED:
        raise NotImplementedError(
            f"guided ReLUs inside `{eqn.primitive.name}` (a loop or branch) are not supported")
      body, body_consts = _inlined_body(eqn)
      outs = _evaluate(body, body_consts, [read(a) for a in eqn.invars], count)
    else:
      with eqn.ctx.manager:
        outs = eqn.primitive.bind(*[read(a) for a in eqn.invars],
                                  **eqn.primitive.get_bind_params(eqn.params))
      if not eqn.primitive.multiple_results:
        outs = [outs]
    for var, value in zip(eqn.outvars, outs, strict=True):
      if not isinstance(var, core.DropVar):
        env[var] = value
  return [read(atom) for atom in jaxpr.outvars]


@dataclasses.dataclass(frozen=True)
class GuidedRelus:
  """`fn` with every ReLU guided (see the module doc); hashable if `fn` is."""

  fn: Callable[..., Any]

  def __call__(self, *args: Any) -> Any:
    closed, out_shapes = jax.make_jaxpr(self.fn, return_shape=True)(*args)
    count = [0]
    outs = _evaluate(closed.jaxpr, closed.consts, jax.tree.leaves(args), count)
    if count[0] == 0:
      raise ValueError("guided methods need ReLUs (max(x, 0)), and this model has none; "
                       "use the plain gradient methods instead")
    return jax.tree.unflatten(jax.tree.structure(out_shapes), outs)


def guide_relus(fn: Callable[..., Any]) -> GuidedRelus:
  """`fn` with each ReLU replaced by `salijax.guided_relu` (same values, guided VJP)."""
  return GuidedRelus(fn)
