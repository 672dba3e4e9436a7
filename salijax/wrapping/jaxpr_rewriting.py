"""Evaluating a traced function's jaxpr with some of its equations replaced.

salijax changes how derivatives pass through models it did not write by
tracing them to a jaxpr and evaluating that jaxpr equation by equation, with
chosen equations replaced: guided ReLUs (`guided_relus`), DeepLIFT's rescale
rule (`salijax.methods.rescale_rule`), LRP's rules
(`salijax.methods.lrp_transform`) and explicit kernel transposes
(`conv_transposes`). This module holds what they share: which primitives
run their body once in line (so that evaluating the body in their place is
the same function), how to find a body, how to bind an equation again, and
`evaluate`, the interpreter for rewrites that replace single equations.
"""

from collections.abc import Callable, Sequence
from typing import Any

from jax.extend import core

# Primitives whose body runs once, in line: evaluating the body with some
# equations replaced is the same function with those equations replaced.
INLINED = ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
           "custom_vjp_call_jaxpr", "checkpoint", "remat", "remat2")

# A rule: (equation, read) -> the equation's outputs, or None to keep the
# equation; read(atom) gives an input's value.
Rule = Callable[[core.JaxprEqn, Callable[[Any], Any]], list[Any] | None]


def sub_jaxprs(eqn: core.JaxprEqn) -> list[core.Jaxpr]:
  """The jaxprs in an equation's parameters (a loop's body, a call's function, ...)."""
  return [j.jaxpr if isinstance(j, core.ClosedJaxpr) else j for j in core.jaxprs_in_params(
      eqn.params)]


def inlined_body(eqn: core.JaxprEqn) -> tuple[core.Jaxpr, Sequence[Any]]:
  """(jaxpr, consts) of an `INLINED` equation's body."""
  for name in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
    body = eqn.params.get(name)
    if isinstance(body, core.ClosedJaxpr):
      return body.jaxpr, body.consts
    if isinstance(body, core.Jaxpr):
      return body, ()
  raise NotImplementedError(f"no body found in {eqn.primitive.name}")


def bind(eqn: core.JaxprEqn, args: Sequence[Any]) -> list[Any]:
  """The equation's primitive applied to `args` as traced: its outputs, as a list."""
  with eqn.ctx.manager:
    outs = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
  return list(outs) if eqn.primitive.multiple_results else [outs]


def _is_zero_literal(atom: Any) -> bool:
  if not isinstance(atom, core.Literal):
    return False
  value = atom.val
  return getattr(value, "shape", ()) == () and float(value) == 0.0


def relu_operand(eqn: core.JaxprEqn) -> Any | None:
  """The non-zero operand of `max(x, 0)` / `max(0, x)`, or None for any other equation."""
  if eqn.primitive.name != "max" or len(eqn.invars) != 2:
    return None
  first, second = eqn.invars
  if _is_zero_literal(second) and not _is_zero_literal(first):
    return first
  if _is_zero_literal(first) and not _is_zero_literal(second):
    return second
  return None


def evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any], rule: Rule,
             enters: Callable[[core.JaxprEqn], bool]) -> list[Any]:
  """Evaluates `jaxpr` on `args`: an equation takes `rule`'s outputs where the rule gives
  some; an equation with a body that `enters` accepts (it must be one of `INLINED`) has
  its body evaluated in its place, by the same rule; every other one is bound as traced."""
  env: dict[Any, Any] = {}

  def read(atom: Any) -> Any:
    return atom.val if isinstance(atom, core.Literal) else env[atom]

  env.update(zip(jaxpr.constvars, consts, strict=True))
  env.update(zip(jaxpr.invars, args, strict=True))
  for eqn in jaxpr.eqns:
    outs = rule(eqn, read)
    if outs is None and sub_jaxprs(eqn) and enters(eqn):
      body, body_consts = inlined_body(eqn)
      outs = evaluate(body, body_consts, [read(a) for a in eqn.invars], rule, enters)
    if outs is None:
      outs = bind(eqn, [read(a) for a in eqn.invars])
    for var, value in zip(eqn.outvars, outs, strict=True):
      if not isinstance(var, core.DropVar):
        env[var] = value
  return [read(atom) for atom in jaxpr.outvars]
