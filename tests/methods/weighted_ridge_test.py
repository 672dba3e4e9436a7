"""Tests of LIME's weighted ridge fit (methods.lime) against a least-squares solve."""

import float_tolerance
import jax
import numpy as np
import pytest

from salijax.methods.lime import weighted_ridge


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


def ridge_atol(z, y, w, alpha, y_atol=0.0):
  """Bounds on the float32 errors of weighted_ridge's (coef, intercept), to first order.

  Its means, Gram matrix G and right-hand side are sums over the S samples (with the centring
  and the Cholesky solve, n = 2 S + K + 4 roundings), taken relative to the uncentred
  magnitudes; the targets may carry errors `y_atol` of their own (per sample). Then
  Delta coef = G^-1 (Delta rhs - Delta G coef) and intercept = mean(y) - mean(Z) coef.
  """
  z, y, w = (np.asarray(a, np.float64) for a in (z, y, w))
  y_atol = np.broadcast_to(np.asarray(y_atol, np.float64), y.shape)
  samples, k = z.shape
  rounding = (2 * samples + k + 4) * float_tolerance.EPS
  mean, y_mean, y_mean_atol = w @ z / w.sum(), w @ y / w.sum(), w @ y_atol / w.sum()
  centred = z - mean
  gram = centred.T @ (w[:, None] * centred) + alpha * np.eye(k)
  coef = np.linalg.solve(gram, centred.T @ (w * (y - y_mean)))
  magnitude = np.abs(z) + np.abs(mean)
  gram_error = rounding * magnitude.T @ (w[:, None] * magnitude)
  rhs_error = (rounding * magnitude.T @ (w * (np.abs(y) + abs(y_mean)))
               + np.abs(centred).T @ (w * (y_atol + y_mean_atol)))
  coef_atol = np.abs(np.linalg.inv(gram)) @ (rhs_error + gram_error @ np.abs(coef))
  intercept_atol = (rounding * (abs(y_mean) + np.abs(mean) @ np.abs(coef)) + y_mean_atol
                    + np.abs(mean) @ coef_atol)
  return coef_atol.max(), intercept_atol


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
  coef_atol, intercept_atol = ridge_atol(z, y, w, alpha)
  np.testing.assert_allclose(coef, want_coef, rtol=0, atol=coef_atol)
  np.testing.assert_allclose(intercept, want_intercept, rtol=0, atol=intercept_atol)


def test_constant_column_gets_zero_and_leaves_the_rest_unchanged():
  z, y, w = _problem(1)
  with_constant = np.concatenate([z[:, :5], np.ones((len(z), 1), np.float32), z[:, 5:]], axis=1)
  coef, intercept = weighted_ridge(with_constant, y, w, 1.0)
  want_coef, want_intercept = _lstsq_ridge(z, y, w, 1.0)
  assert abs(float(coef[5])) < 1e-7
  coef_atol, intercept_atol = ridge_atol(z, y, w, 1.0)  # the constant column decouples
  np.testing.assert_allclose(np.delete(np.asarray(coef), 5), want_coef, rtol=0, atol=coef_atol)
  np.testing.assert_allclose(intercept, want_intercept, rtol=0, atol=intercept_atol)


def test_vmap_over_problems_equals_one_by_one():
  problems = [_problem(seed) for seed in range(3)]
  z, y, w = (np.stack(parts) for parts in zip(*problems, strict=True))
  coefs, intercepts = jax.jit(jax.vmap(weighted_ridge, (0, 0, 0, None)))(z, y, w, 1.0)
  for i, problem in enumerate(problems):
    coef, intercept = weighted_ridge(*problem, 1.0)
    coef_atol, intercept_atol = ridge_atol(*problem, 1.0)  # each program within these
    np.testing.assert_allclose(coefs[i], coef, rtol=0, atol=2 * coef_atol)
    np.testing.assert_allclose(intercepts[i], intercept, rtol=0, atol=2 * intercept_atol)
