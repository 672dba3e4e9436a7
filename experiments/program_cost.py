"""FLOPs and bytes of a jitted function from XLA's cost analysis, each loop counted as often as
it runs.

XLA's `jax.jit(f).lower(...).compile().cost_analysis()` counts the body of a while loop once,
whatever its trip count (XLA:CPU, jax 0.10: a `lax.scan` of n matmuls reports one matmul for
every n >= 1), and XLA unrolls some loops before counting and not others. `program_cost`
therefore splits the function's jaxpr at its loops and compiles the parts:

  cost(jaxpr) = cost_analysis(the jaxpr with each loop replaced by its results, given as
                              inputs, and the loops' operands returned as outputs)
                + sum over the loops of  trips x cost(the loop's body)

recursively: a loop inside a nested jit, a custom_jvp/vjp function, a cond branch or a loop
body is split the same way. A `scan` runs `length` times. A `while` loop's trip count is
unknown before it runs: its condition and body are counted once each and the loop is counted
in `Cost.uncounted_loops`. A `cond` counts its costliest branch. XLA's own loops inside one
operation (threefry's rounds in random number generation) stay counted once. Splitting keeps
every operation but not XLA's fusion across a loop's boundary: the bytes of a loop's operands
and results are counted as written and read, as they are in a rolled loop.

    cost = program_cost(lambda x: jax.lax.scan(step, x, None, length=8)[0], x)
    cost.flops, cost.bytes_accessed    # 8 x one step's, plus what is outside the loop
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.extend as jex

_LOOPS = ("scan", "while")


class Cost(NamedTuple):
  """What a program does: FLOPs, bytes accessed and the while loops counted once."""

  flops: float
  bytes_accessed: float
  uncounted_loops: int = 0

  def plus(self, other: "Cost") -> "Cost":
    return Cost(self.flops + other.flops, self.bytes_accessed + other.bytes_accessed,
                self.uncounted_loops + other.uncounted_loops)

  def times(self, trips: int) -> "Cost":
    return Cost(self.flops * trips, self.bytes_accessed * trips, self.uncounted_loops)


def _avals(avals: Sequence[Any]) -> list[jax.ShapeDtypeStruct]:
  return [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in avals]


def compiled_cost(fun: Callable[..., Any], *args: Any) -> Cost:
  """XLA's cost analysis of `jax.jit(fun)` on `args` (arrays or ShapeDtypeStructs), loops
  counted once."""
  analysis = jax.jit(fun).lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):  # one entry per program in older jaxlibs
    analysis = analysis[0]
  return Cost(float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0.0)))


def _sub_jaxprs(eqn: Any) -> list[jex.core.ClosedJaxpr]:
  """The jaxprs of an equation's parameters, closed."""
  found = []
  for value in eqn.params.values():
    for item in value if isinstance(value, tuple) else (value,):
      if isinstance(item, jex.core.ClosedJaxpr):
        found.append(item)
      elif isinstance(item, jex.core.Jaxpr):
        found.append(jex.core.ClosedJaxpr(item, ()))
  return found


def _has_loop(eqn: Any) -> bool:
  return eqn.primitive.name in _LOOPS or any(
      _has_loop(inner) for sub in _sub_jaxprs(eqn) for inner in sub.jaxpr.eqns)


def _loop_eqn_cost(eqn: Any) -> Cost:
  """The cost of an equation that holds a loop (see the module doc)."""
  name = eqn.primitive.name
  if name == "scan":
    return _jaxpr_cost(eqn.params["jaxpr"]).times(eqn.params["length"])
  if name == "while":
    body = _jaxpr_cost(eqn.params["cond_jaxpr"]).plus(_jaxpr_cost(eqn.params["body_jaxpr"]))
    return body.plus(Cost(0.0, 0.0, 1))
  if name == "cond":
    return max((_jaxpr_cost(branch) for branch in eqn.params["branches"]),
               key=lambda cost: (cost.flops, cost.bytes_accessed))
  total = Cost(0.0, 0.0)
  for sub in _sub_jaxprs(eqn):
    total = total.plus(_jaxpr_cost(sub))
  return total


def _outside_loops(closed: jex.core.ClosedJaxpr, split: set[int]) -> tuple[Callable, list]:
  """(fun, the operands it keeps): `closed` with the equations `split` removed.

  fun(consts, args, loop_results) evaluates every other equation, takes the removed
  equations' results from `loop_results` and returns (the outputs, the removed equations'
  operands computed here), so that nothing feeding a loop is dead code.
  """
  jaxpr = closed.jaxpr
  produced = {v for i, eqn in enumerate(jaxpr.eqns) if i not in split for v in eqn.outvars}
  kept = list(dict.fromkeys(v for i in sorted(split) for v in jaxpr.eqns[i].invars
                            if not isinstance(v, jex.core.Literal) and v in produced))

  def fun(consts, args, loop_results):
    env = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    results = iter(loop_results)

    def read(v):
      return v.val if isinstance(v, jex.core.Literal) else env[v]

    for i, eqn in enumerate(jaxpr.eqns):
      if i in split:
        outs = [next(results) for _ in eqn.outvars]
      else:
        params = eqn.primitive.get_bind_params(eqn.params)
        outs = eqn.primitive.bind(*map(read, eqn.invars), **params)
        outs = outs if eqn.primitive.multiple_results else [outs]
      for v, out in zip(eqn.outvars, outs, strict=True):
        if not isinstance(v, jex.core.DropVar):
          env[v] = out
    return [read(v) for v in jaxpr.outvars], [env[v] for v in kept]

  return fun, kept


def _jaxpr_cost(closed: jex.core.ClosedJaxpr) -> Cost:
  jaxpr = closed.jaxpr
  split = {i for i, eqn in enumerate(jaxpr.eqns) if _has_loop(eqn)}
  consts = _avals([v.aval for v in jaxpr.constvars])
  args = _avals(closed.in_avals)
  if not jaxpr.eqns:
    return Cost(0.0, 0.0)
  fun, _ = _outside_loops(closed, split)
  results = _avals([v.aval for i in sorted(split) for v in jaxpr.eqns[i].outvars])
  total = compiled_cost(fun, consts, args, results)
  for i in sorted(split):
    total = total.plus(_loop_eqn_cost(jaxpr.eqns[i]))
  return total


def program_cost(fun: Callable[..., Any], *args: Any) -> Cost:
  """The cost of `jax.jit(fun)(*args)` with every scan counted `length` times (module doc).

  Args:
    fun: a function `jax.jit` can compile.
    *args: its arguments: arrays, pytrees of arrays or ShapeDtypeStructs.
  """
  closed = jax.make_jaxpr(fun)(*args)
  return _jaxpr_cost(closed)
