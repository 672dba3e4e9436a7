"""Tolerances that follow from float32 arithmetic, not from one machine's rounding.

XLA:CPU picks kernels (and so summation orders and fused multiply-adds) per
instruction set, and GPUs reorder sums too, so two programs computing the same
float32 expression agree only to within rounding bounds. For a sum of n terms
in any order, the classic bound (Higham, "Accuracy and Stability of Numerical
Algorithms", 2nd ed., section 4.2) is

  |computed - exact| <= (n - 1) u sum_i |term_i|,   u = 2^-24 (float32 unit roundoff),

relative to the sum of the terms' magnitudes, not to the result: a sum whose
terms cancel has a large relative error. `sum_atol` gives that bound with u
rounded up to float32's machine epsilon (2^-23), covering one extra rounding
of each term (a product) too.
"""

import numpy as np

EPS = float(np.finfo(np.float32).eps)  # 2^-23


def sum_atol(abs_terms_sum, n: int) -> float:
  """Worst-case absolute error of float32 sums of n terms whose |terms| sum to `abs_terms_sum`.

  `abs_terms_sum` may be an array (one value per sum): the largest is used.
  """
  return float(n * EPS * np.max(abs_terms_sum))


def sum_rtol(n: int) -> float:
  """Relative error bound of float32 sums of n terms of one sign (there sum |terms| = |sum|),
  and of a chain of n roundings (products, quotients, square roots)."""
  return float(n * EPS)
