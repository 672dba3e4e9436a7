"""The mean of per-image values with its Student-t confidence interval.

For the n non-NaN values with mean m and sample standard deviation s
(denominator n - 1), the interval at `level` is

  m -+ t_{(1 + level) / 2, n - 1} s / sqrt(n),

t_{q, d} the q-quantile of Student's t with d degrees of freedom: it holds the
population mean with probability `level` when the values are independent
draws of a normal variable, and approximately so for other distributions as
n grows (the central limit theorem). One value has no interval: (v, nan, nan);
no value: (nan, nan, nan).

    mean, low, high = mean_confidence_interval(values)   # 95 %
"""

import math
from typing import Any

import numpy as np
from scipy import stats


def mean_confidence_interval(values: Any, level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high) of the non-NaN `values` (module doc).

  Args:
    values: a 1-D sequence or array of real numbers; NaN values are dropped.
    level: the coverage probability, in (0, 1).

  Returns:
    Python floats (mean, low, high).

  Raises:
    ValueError: values not 1-D or not real numbers; level outside (0, 1).
  """
  if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not (
      0.0 < level < 1.0):
    raise ValueError(f"level must be a number in (0, 1), got {level!r}")
  try:
    array = np.asarray(values, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise ValueError(f"values must be real numbers, got {values!r:.80}") from error
  if array.ndim != 1:
    raise ValueError(f"values must be 1-D, got shape {array.shape}")
  array = array[~np.isnan(array)]
  n = array.size
  if n == 0:
    return math.nan, math.nan, math.nan
  mean = float(array.mean())
  if n == 1:
    return mean, math.nan, math.nan
  half_width = float(stats.t.ppf((1.0 + level) / 2.0, n - 1) * array.std(ddof=1) / math.sqrt(n))
  return mean, mean - half_width, mean + half_width
