"""Convolutions whose input gradient reads an explicitly transposed kernel.

The gradient of a convolution with respect to its input is a convolution of
the cotangent with the kernel, flipped in space and with its input and output
feature axes swapped. JAX states the swap in the dimension numbers (a kernel
read as "HWOI"). In a program on its own, XLA:CPU turns that into a
transposed copy of the kernel and runs its fast convolution; inside a loop
body (`lax.scan`, `fori_loop`, `while_loop`: the steps of integrated and
Guided IG, the chunks of SmoothGrad and of the robustness metrics, the
optimisation steps of IBA) it keeps the swapped reading and falls back to a
convolution 2-4x slower. The same ResNet18 input gradient at 224 px, batch 8,
on a 2-core Xeon: 60 ms per image on its own, 124 ms inside a scan, 55 ms
inside a scan with the transform (BENCHMARKS.md).

`explicit_kernel_transposes(fn)` traces `fn` to a jaxpr and evaluates it with
every ungrouped convolution replaced by the same convolution under a custom
VJP whose input gradient transposes the kernel with an explicit `transpose`
and reads it in the forward's own layout. Values and derivatives are those of
`fn` (the same arithmetic); only the compiled layout differs. Left as they
are: convolutions inside loops, branches and custom derivatives of `fn`
itself; grouped ones (depthwise), whose swapped kernel is not a kernel of the
same grouping; and those with a spatial side below `MIN_SIDE` (3) in their
input or output, where XLA:CPU's convolution for the explicit kernel is the
slower one (a looped 3x3 input gradient of 16 images: 2x2 sides 1.8-2x
slower with it, sides 3 to 56 1.5-4x faster). Reverse mode only: the custom
VJP has no forward mode.

    apply = explicit_kernel_transposes(clf.apply)     # (variables, images) -> logits
    logits, pullback = jax.vjp(lambda x: apply(variables, x), images)
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core

from salijax.wrapping.jaxpr_rewriting import INLINED, evaluate, sub_jaxprs

_OPAQUE = ("custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr")  # their rules stay


MIN_SIDE = 3  # the smallest spatial side (input and output) of a rewritten convolution


def _is_ungrouped_conv(eqn: core.JaxprEqn) -> bool:
  return (eqn.primitive is lax.conv_general_dilated_p
          and eqn.params["feature_group_count"] == 1 and eqn.params["batch_group_count"] == 1)


def _is_rewritten(eqn: core.JaxprEqn) -> bool:
  """An ungrouped convolution whose input and output sides are all at least MIN_SIDE."""
  if not _is_ungrouped_conv(eqn):
    return False
  numbers = eqn.params["dimension_numbers"]
  lhs_shape, out_shape = eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape
  sides = [lhs_shape[d] for d in numbers.lhs_spec[2:]] + [
      out_shape[d] for d in numbers.out_spec[2:]]
  return min(sides) >= MIN_SIDE


def _has_rewritten(jaxpr: core.Jaxpr) -> bool:
  return any(_is_rewritten(eqn) or any(_has_rewritten(s) for s in sub_jaxprs(eqn))
             for eqn in jaxpr.eqns)


def _enters(eqn: core.JaxprEqn) -> bool:
  return (eqn.primitive.name in INLINED and eqn.primitive.name not in _OPAQUE
          and any(_has_rewritten(s) for s in sub_jaxprs(eqn)))


def _conv_with_transposed_kernel_gradient(params: dict[str, Any]
                                          ) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """(lhs, rhs) -> conv(lhs, rhs) as `params` says, with the input gradient above."""
  def conv(lhs, rhs, params=params):
    return lax.conv_general_dilated_p.bind(lhs, rhs, **params)

  numbers = params["dimension_numbers"]
  out_axis, in_axis = numbers.rhs_spec[:2]
  # The same convolution of a kernel whose feature axes are swapped in memory.
  swapped = dict(params, dimension_numbers=numbers._replace(
      rhs_spec=(in_axis, out_axis, *numbers.rhs_spec[2:])))

  @jax.custom_vjp
  def convolve(lhs, rhs):
    return conv(lhs, rhs)

  def forward(lhs, rhs):
    return conv(lhs, rhs), (lhs, rhs)

  def backward(residuals, cotangent):
    lhs, rhs = residuals
    transposed = jnp.swapaxes(rhs, out_axis, in_axis)
    (lhs_cotangent,) = jax.linear_transpose(lambda x: conv(x, transposed, swapped), lhs)(
        cotangent)
    (rhs_cotangent,) = jax.linear_transpose(lambda w: conv(lhs, w), rhs)(cotangent)
    return lhs_cotangent, rhs_cotangent

  convolve.defvjp(forward, backward)
  return convolve


def _replace_conv(eqn: core.JaxprEqn, read: Callable[[Any], Any]) -> list[Any] | None:
  if not _is_rewritten(eqn):
    return None
  lhs, rhs = (read(atom) for atom in eqn.invars)
  return [_conv_with_transposed_kernel_gradient(eqn.params)(lhs, rhs)]


@dataclasses.dataclass(frozen=True)
class ExplicitKernelTransposes:
  """`fn` whose convolutions' input gradients transpose their kernels explicitly (module
  doc); hashable if `fn` is."""

  fn: Callable[..., Any]

  def __call__(self, *args: Any) -> Any:
    closed, out_shapes = jax.make_jaxpr(self.fn, return_shape=True)(*args)
    outs = evaluate(closed.jaxpr, closed.consts, jax.tree.leaves(args), _replace_conv, _enters)
    return jax.tree.unflatten(jax.tree.structure(out_shapes), outs)


def explicit_kernel_transposes(fn: Callable[..., Any]) -> ExplicitKernelTransposes:
  """`fn` with the same values and derivatives, faster to differentiate in XLA:CPU loops."""
  return ExplicitKernelTransposes(fn)
