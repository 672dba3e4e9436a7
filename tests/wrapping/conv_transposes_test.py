"""Tests of `explicit_kernel_transposes`: the same values and derivatives as the function it
rewrites, for every kind of convolution; the input gradient reads the kernel in the forward's
layout; grouped convolutions and custom derivatives are left alone."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.extend import core

from salijax.wrapping.conv_transposes import MIN_SIDE, explicit_kernel_transposes
from salijax.wrapping.jaxpr_rewriting import sub_jaxprs

# (lhs shape, kernel shape, dimension numbers, conv keyword arguments)
CASES = {
    "nhwc_same": ((2, 9, 9, 3), (3, 3, 3, 5), ("NHWC", "HWIO", "NHWC"),
                  {"window_strides": (1, 1), "padding": "SAME"}),
    "strided_valid": ((2, 13, 12, 3), (7, 7, 3, 4), ("NHWC", "HWIO", "NHWC"),
                      {"window_strides": (2, 2), "padding": "VALID"}),
    "explicit_padding_dilated": ((1, 12, 12, 2), (3, 2, 2, 3), ("NHWC", "HWIO", "NHWC"),
                                 {"window_strides": (2, 1), "padding": ((1, 2), (0, 1)),
                                  "lhs_dilation": (1, 2), "rhs_dilation": (2, 1)}),
    "nchw_oihw": ((2, 3, 8, 8), (4, 3, 3, 3), ("NCHW", "OIHW", "NCHW"),
                  {"window_strides": (1, 1), "padding": "SAME"}),
    "one_dimensional": ((2, 16, 3), (5, 3, 4), ("NWC", "WIO", "NWC"),
                        {"window_strides": (3,), "padding": "SAME"}),
}


def _conv(lhs, rhs, numbers, **kwargs):
  return lax.conv_general_dilated(lhs, rhs, dimension_numbers=numbers,
                                  precision=lax.Precision.HIGHEST, **kwargs)


def _two_layers(rhs, lhs, numbers, kwargs):
  """conv -> tanh -> sum of squares: a scalar whose gradients pass through the conv."""
  return jnp.sum(jnp.tanh(_conv(lhs, rhs, numbers, **kwargs)) ** 2)


def _inputs(case):
  lhs_shape, rhs_shape, numbers, kwargs = CASES[case]
  lhs = jax.random.normal(jax.random.key(0), lhs_shape)
  rhs = jax.random.normal(jax.random.key(1), rhs_shape) * 0.3
  return lhs, rhs, numbers, kwargs


def _assert_close(actual, expected):
  """Both sides run the same products and sums; XLA may order the sums differently."""
  expected = np.asarray(expected)
  np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("case", CASES)
def test_values_and_both_gradients_equal_the_plain_functions(case):
  lhs, rhs, numbers, kwargs = _inputs(case)
  plain = functools.partial(_two_layers, numbers=numbers, kwargs=kwargs)
  rewritten = explicit_kernel_transposes(plain)
  _assert_close(rewritten(rhs, lhs), plain(rhs, lhs))
  for argnum in (0, 1):  # the kernel's gradient and the input's
    _assert_close(jax.grad(rewritten, argnum)(rhs, lhs), jax.grad(plain, argnum)(rhs, lhs))


def _conv_kernel_specs(jaxpr: core.Jaxpr, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
  """The kernel dimension numbers (rhs_spec) of every convolution in `jaxpr` (nested too)
  whose output has `shape`."""
  specs = []
  for eqn in jaxpr.eqns:
    if (eqn.primitive is lax.conv_general_dilated_p
        and eqn.outvars[0].aval.shape == shape):
      specs.append(tuple(eqn.params["dimension_numbers"].rhs_spec))
    for sub in sub_jaxprs(eqn):
      specs.extend(_conv_kernel_specs(sub, shape))
  return specs


@pytest.mark.parametrize("case", ["nhwc_same", "nchw_oihw"])
def test_the_input_gradient_reads_the_kernel_in_the_forwards_layout(case):
  lhs, rhs, numbers, kwargs = _inputs(case)
  plain = functools.partial(_two_layers, numbers=numbers, kwargs=kwargs)
  forward = jax.make_jaxpr(lambda w, x: _conv(x, w, numbers, **kwargs))(rhs, lhs)
  (forward_spec,) = _conv_kernel_specs(forward.jaxpr, forward.out_avals[0].shape)

  def input_gradient_specs(fn):  # the convolutions that give d fn / d lhs
    return set(_conv_kernel_specs(jax.make_jaxpr(jax.grad(fn, 1))(rhs, lhs).jaxpr, lhs.shape))

  assert input_gradient_specs(explicit_kernel_transposes(plain)) == {forward_spec}
  # Without the rewrite, JAX's own input gradient reads the kernel with its features swapped.
  swapped = (forward_spec[1], forward_spec[0], *forward_spec[2:])
  assert swapped in input_gradient_specs(plain)


def test_a_gradient_inside_a_scan_equals_the_plain_one():
  lhs, rhs, numbers, kwargs = _inputs("strided_valid")

  def steps(fn):
    def step(x, _):
      return x - 0.1 * jax.grad(fn, 1)(rhs, x), None
    return jax.jit(lambda x: lax.scan(step, x, None, length=3)[0])(lhs)

  plain = functools.partial(_two_layers, numbers=numbers, kwargs=kwargs)
  _assert_close(steps(explicit_kernel_transposes(plain)), steps(plain))


def _primitive_names(jaxpr: core.Jaxpr) -> list[str]:
  return [eqn.primitive.name for eqn in jaxpr.eqns]


def test_grouped_convolutions_are_left_as_they_are():
  lhs = jax.random.normal(jax.random.key(0), (1, 6, 6, 4))
  depthwise = jax.random.normal(jax.random.key(1), (3, 3, 1, 4))

  def fn(rhs, x):
    return lax.conv_general_dilated(x, rhs, (1, 1), "SAME", feature_group_count=4,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC")).sum()

  names = _primitive_names(jax.make_jaxpr(explicit_kernel_transposes(fn))(depthwise, lhs).jaxpr)
  assert "conv_general_dilated" in names
  _assert_close(jax.grad(explicit_kernel_transposes(fn), 1)(depthwise, lhs),
                jax.grad(fn, 1)(depthwise, lhs))


@pytest.mark.parametrize("lhs_shape", [(1, 2, 6, 4), (1, 6, 6, 4)])
def test_convolutions_with_a_side_below_min_side_are_left_as_they_are(lhs_shape):
  lhs = jax.random.normal(jax.random.key(0), lhs_shape)
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 4))
  stride = 1 if lhs_shape[1] < MIN_SIDE else 3  # 6 -> 2: the output's side is too small

  def fn(rhs, x):
    return lax.conv_general_dilated(x, rhs, (stride, stride), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC")).sum()

  names = _primitive_names(jax.make_jaxpr(explicit_kernel_transposes(fn))(kernel, lhs).jaxpr)
  assert "conv_general_dilated" in names and "custom_vjp_call" not in names


def test_a_convolution_under_a_custom_derivative_keeps_its_rule():
  lhs, rhs, numbers, kwargs = _inputs("nhwc_same")

  @jax.custom_vjp
  def conv(x):
    return _conv(x, rhs, numbers, **kwargs)

  conv.defvjp(lambda x: (conv(x), None), lambda _, g: (jnp.full(lhs.shape, 7.0),))

  gradient = jax.grad(lambda x: explicit_kernel_transposes(conv)(x).sum())(lhs)
  np.testing.assert_array_equal(gradient, 7.0)


def test_nested_jits_are_rewritten_too():
  lhs, rhs, numbers, kwargs = _inputs("nhwc_same")
  plain = jax.jit(functools.partial(_two_layers, numbers=numbers, kwargs=kwargs))
  rewritten = explicit_kernel_transposes(lambda w, x: plain(w, x))
  names = _primitive_names(jax.make_jaxpr(rewritten)(rhs, lhs).jaxpr)
  assert "conv_general_dilated" not in names and "custom_vjp_call" in names
  _assert_close(jax.grad(rewritten, 1)(rhs, lhs), jax.grad(plain, 1)(rhs, lhs))
