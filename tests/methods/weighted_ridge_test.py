"""Tests of salijax.methods.weighted_ridge against an independent least-squares solve."""

import jax
import numpy as np
import pytest

from salijax.methods.weighted_ridge import weighted_ridge


def _lstsq_ridge(z, y, w, alpha):
  """Solves [sqrt(w) [Z, 1]; [sqrt(alpha) I, 0]] [b; b0] = [sqrt(w) y; 0] by numpy lstsq."""
  z, y, w = (np.asarray(a, np.float64) for a in (z, y, w))
  samples, k = z.shape
  root = np.sqrt(w)[:, None]
  top = root * np.concatenate([z, np.ones((samples, 1))], axis=1)
  bottom = np.concatenate([np.sqrt(alpha) * np.eye(k), np.zeros((k, 1))], axis=1)
  rhs = np.concatenate([root[:, 0] * y, np.zeros(k)])
  solution, *_ = np.linalg.lstsq(np.concatenate([top, bottom]), rhs, rcond=None)
  return solution[:k], solution[k]


def _problem(seed, samples=200, k=12):
  rng = np.random.default_rng(seed)
  z = rng.integers(0, 2, (samples, k)).astype(np.float32)
  y = (z @ rng.normal(size=k) + 0.3 + 0.1 * rng.normal(size=samples)).astype(np.float32)
  w = rng.uniform(0.05, 1.0, samples).astype(np.float32)
  return z, y, w


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 25.0])
def test_equals_augmented_least_squares(alpha):
  z, y, w = _problem(0)
  coef, intercept = weighted_ridge(z, y, w, alpha)
  want_coef, want_intercept = _lstsq_ridge(z, y, w, alpha)
  np.testing.assert_allclose(coef, want_coef, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(intercept, want_intercept, rtol=1e-4, atol=1e-5)


def test_constant_column_gets_zero_and_leaves_the_rest_unchanged():
  z, y, w = _problem(1)
  with_constant = np.concatenate([z[:, :5], np.ones((len(z), 1), np.float32), z[:, 5:]], axis=1)
  coef, intercept = weighted_ridge(with_constant, y, w, 1.0)
  want_coef, want_intercept = _lstsq_ridge(z, y, w, 1.0)
  assert abs(float(coef[5])) < 1e-7
  np.testing.assert_allclose(np.delete(np.asarray(coef), 5), want_coef, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(intercept, want_intercept, rtol=1e-4, atol=1e-5)


def test_vmap_over_problems_equals_one_by_one():
  problems = [_problem(seed) for seed in range(3)]
  z, y, w = (np.stack(parts) for parts in zip(*problems, strict=True))
  coefs, intercepts = jax.jit(jax.vmap(weighted_ridge, (0, 0, 0, None)))(z, y, w, 1.0)
  for i, problem in enumerate(problems):
    coef, intercept = weighted_ridge(*problem, 1.0)
    np.testing.assert_allclose(coefs[i], coef, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(intercepts[i], intercept, rtol=1e-5, atol=1e-6)
