"""Tests of experiments.program_cost: every loop counted as often as it runs."""

import jax
import jax.numpy as jnp
import pytest
import tiny_classifiers

from experiments import program_cost
from salijax import methods

X = jnp.ones((16, 32))
W = jnp.ones((32, 32))
MATMUL_FLOPS = 2 * 16 * 32 * 32


def _scan(x, w, n):
  return jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=n)[0]


def test_xla_counts_a_loop_body_once():
  # Why program_cost exists: XLA's own count does not grow with the trip count.
  once = program_cost.compiled_cost(lambda x, w: _scan(x, w, 2), X, W)
  assert program_cost.compiled_cost(lambda x, w: _scan(x, w, 8), X, W).flops == once.flops


@pytest.mark.parametrize("n", [1, 2, 8])
def test_scan_counted_length_times(n):
  cost = program_cost.program_cost(lambda x, w: _scan(x, w, n), X, W)
  assert cost.flops == n * MATMUL_FLOPS
  assert cost.uncounted_loops == 0


def test_nested_loops_multiply_and_code_outside_adds():
  def nested(x, w):
    inner = lambda c, _: (_scan(c, w, 3), None)  # noqa: E731
    return jax.lax.scan(inner, x @ w, None, length=4)[0]

  assert program_cost.program_cost(nested, X, W).flops == (1 + 4 * 3) * MATMUL_FLOPS


def test_loop_inside_nested_jit_and_fori_loop():
  inner = jax.jit(lambda x, w: jax.lax.fori_loop(0, 5, lambda i, c: c @ w, x))
  flops = program_cost.program_cost(lambda x, w: inner(x, w) @ w, X, W).flops
  assert flops == pytest.approx(6 * MATMUL_FLOPS, abs=5)  # + the loop counter's 5 additions


def test_while_loop_of_unknown_trips_counted_once_and_reported():
  def until_large(x, w):
    return jax.lax.while_loop(lambda c: c.sum() < 1e9, lambda c: c @ w, x)

  cost = program_cost.program_cost(until_large, X, W)
  assert cost.uncounted_loops == 1
  assert cost.flops >= MATMUL_FLOPS


def test_rise_flops_scale_with_masks_and_match_one_chunk():
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  labels = jnp.array([0, 1])

  def rise(num_masks, chunk):
    def call(variables, x, y):
      return methods.rise(clf.replace(variables=variables), x, y, key=jax.random.key(2),
                          num_masks=num_masks, chunk=chunk)
    return program_cost.program_cost(call, clf.variables, images, labels).flops

  looped, single = rise(8, 2), rise(8, 8)  # four trips of a loop / no loop
  # The masks' forwards dominate; what differs (mask generation per trip, padding) is small.
  assert looped == pytest.approx(single, rel=0.02)
  assert rise(16, 2) == pytest.approx(2 * looped, rel=0.02)
