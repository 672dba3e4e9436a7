"""Weighted ridge regression with an unpenalised intercept, in closed form.

Minimises sum_s w_s (y_s - b0 - z_s . b)^2 + alpha |b|^2 (what scikit-learn's
`Ridge(alpha, fit_intercept=True).fit(Z, y, sample_weight=w)` solves): with the
weighted means zbar = w'Z / sum(w), ybar = w'y / sum(w) and Zc = Z - zbar,
yc = y - ybar,

  b = (Zc' W Zc + alpha I)^{-1} Zc' W yc,      b0 = ybar - zbar . b.

A column that is constant over the samples is zero after centring (up to
rounding), so b_j = 0 and the other coefficients are those of the fit without it. Pure jnp: vmap it
over problems of the same shape.
"""

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST


def weighted_ridge(features: jax.Array, targets: jax.Array, weights: jax.Array,
                   alpha: float | jax.Array) -> tuple[jax.Array, jax.Array]:
  """Coefficients and intercept of the weighted ridge fit (see the module doc).

  Args:
    features: Z, f32[S,K].
    targets: y, f32[S].
    weights: w, f32[S], >= 0 with a positive sum.
    alpha: the ridge penalty (> 0 makes the system always solvable).

  Returns:
    (coef f32[K], intercept f32[]).
  """
  features = jnp.asarray(features, jnp.float32)
  targets = jnp.asarray(targets, jnp.float32)
  weights = jnp.asarray(weights, jnp.float32)
  total = weights.sum()
  feature_mean = jnp.dot(weights, features, precision=_HIGHEST) / total
  target_mean = jnp.dot(weights, targets, precision=_HIGHEST) / total
  centred = features - feature_mean
  weighted = centred * weights[:, None]
  gram = jnp.dot(weighted.T, centred, precision=_HIGHEST)
  gram = gram + alpha * jnp.eye(features.shape[1], dtype=jnp.float32)
  rhs = jnp.dot(weighted.T, targets - target_mean, precision=_HIGHEST)
  coef = jax.scipy.linalg.solve(gram, rhs, assume_a="pos")
  return coef, target_mean - jnp.dot(feature_mean, coef, precision=_HIGHEST)
