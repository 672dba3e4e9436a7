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
from collections.abc import Callable
from typing import Any

import jax
from jax.extend import core

from salijax.guided_relu import guided_relu
from salijax.wrapping.jaxpr_rewriting import INLINED, evaluate, relu_operand, sub_jaxprs


def _has_relu(jaxpr: core.Jaxpr) -> bool:
  return any(relu_operand(eqn) is not None or any(_has_relu(s) for s in sub_jaxprs(eqn))
             for eqn in jaxpr.eqns)


def _enters(eqn: core.JaxprEqn) -> bool:
  if not any(_has_relu(s) for s in sub_jaxprs(eqn)):
    return False
  if eqn.primitive.name not in INLINED:
    raise NotImplementedError(
        f"guided ReLUs inside `{eqn.primitive.name}` (a loop or branch) are not supported")
  return True


@dataclasses.dataclass(frozen=True)
class GuidedRelus:
  """`fn` with every ReLU guided (see the module doc); hashable if `fn` is."""

  fn: Callable[..., Any]

  def __call__(self, *args: Any) -> Any:
    closed, out_shapes = jax.make_jaxpr(self.fn, return_shape=True)(*args)
    count = [0]

    def guide(eqn: core.JaxprEqn, read: Callable[[Any], Any]) -> list[Any] | None:
      operand = relu_operand(eqn)
      if operand is None:
        return None
      count[0] += 1
      return [guided_relu(read(operand))]

    outs = evaluate(closed.jaxpr, closed.consts, jax.tree.leaves(args), guide, _enters)
    if count[0] == 0:
      raise ValueError("guided methods need ReLUs (max(x, 0)), and this model has none; "
                       "use the plain gradient methods instead")
    return jax.tree.unflatten(jax.tree.structure(out_shapes), outs)


def guide_relus(fn: Callable[..., Any]) -> GuidedRelus:
  """`fn` with each ReLU replaced by `salijax.guided_relu` (same values, guided VJP)."""
  return GuidedRelus(fn)
