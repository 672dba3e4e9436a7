"""The mean of per-image values with its confidence interval: Student-t, or Wilson for rates.

For the n non-NaN values with mean m and sample standard deviation s
(denominator n - 1), the interval at `level` is

  m -+ t_{(1 + level) / 2, n - 1} s / sqrt(n),

t_{q, d} the q-quantile of Student's t with d degrees of freedom: it holds the
population mean with probability `level` when the values are independent
draws of a normal variable, and approximately so for other distributions as
n grows (the central limit theorem). One value has no interval: (v, nan, nan);
no value: (nan, nan, nan).

A hit-or-miss metric (each value 0 or a hit value h, e.g. the pointing game)
has the mean h k / n for k hits in n images; `rate_confidence_interval` gives
h times the Wilson score interval of the rate p = k / n,

  (p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n),

z the (1 + level) / 2 quantile of the standard normal: the rates r whose
score test |p - r| <= z sqrt(r (1 - r) / n) accepts. It stays within [0, h]
and does not collapse to a point when every image hits (the Student-t
interval of 7 hits in 10 is [0.35, 1.05]; Wilson's is [0.40, 0.89]).
`metric_confidence_interval` picks the interval by the metric's catalogue entry.

    mean, low, high = mean_confidence_interval(values)   # 95 %
    mean, low, high = metric_confidence_interval("pointing_game", hits)
"""

import math
from typing import Any

import numpy as np
from scipy import stats

from salijax.report import metric_catalogue


def _checked_values(values: Any, level: float) -> np.ndarray:
  """The non-NaN values as f64[n]; ValueError on bad values or level."""
  if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not (
      0.0 < level < 1.0):
    raise ValueError(f"level must be a number in (0, 1), got {level!r}")
  try:
    array = np.asarray(values, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise ValueError(f"values must be real numbers, got {values!r:.80}") from error
  if array.ndim != 1:
    raise ValueError(f"values must be 1-D, got shape {array.shape}")
  return array[~np.isnan(array)]


def _hit_or_miss(array: np.ndarray, hit_value: float) -> bool:
  """Whether every value is 0 or `hit_value`."""
  return bool(np.all((array == 0.0) | (array == hit_value)))


def mean_confidence_interval(values: Any, level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high) of the non-NaN `values`, Student-t (module doc).

  Args:
    values: a 1-D sequence or array of real numbers; NaN values are dropped.
    level: the coverage probability, in (0, 1).

  Returns:
    Python floats (mean, low, high).

  Raises:
    ValueError: values not 1-D or not real numbers; level outside (0, 1).
  """
  array = _checked_values(values, level)
  n = array.size
  if n == 0:
    return math.nan, math.nan, math.nan
  mean = float(array.mean())
  if n == 1:
    return mean, math.nan, math.nan
  half_width = float(stats.t.ppf((1.0 + level) / 2.0, n - 1) * array.std(ddof=1) / math.sqrt(n))
  return mean, mean - half_width, mean + half_width


def rate_confidence_interval(values: Any, hit_value: float = 1.0,
                             level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high) of non-NaN hit-or-miss `values`, Wilson score (module doc).

  Args:
    values: a 1-D sequence or array, each 0 or `hit_value`; NaN values are dropped.
    hit_value: the value of a hit (1, or 100 for a percentage), > 0.
    level: the coverage probability, in (0, 1).

  Returns:
    Python floats (mean, low, high); (nan, nan, nan) without values.

  Raises:
    ValueError: a value other than 0 or `hit_value`; values not 1-D; level outside (0, 1).
  """
  array = _checked_values(values, level)
  if not _hit_or_miss(array, hit_value):
    raise ValueError(f"values must each be 0 or {hit_value!r}, got {values!r:.80}")
  n = array.size
  if n == 0:
    return math.nan, math.nan, math.nan
  rate = float(np.count_nonzero(array)) / n
  z = float(stats.norm.ppf((1.0 + level) / 2.0))
  centre = rate + z * z / (2 * n)
  spread = z * math.sqrt(rate * (1.0 - rate) / n + z * z / (4 * n * n))
  scale = 1.0 / (1.0 + z * z / n)
  low = min(rate, max(0.0, (centre - spread) * scale))  # exact ends at rates 0 and 1
  high = max(rate, min(1.0, (centre + spread) * scale))
  return hit_value * rate, hit_value * low, hit_value * high


def metric_confidence_interval(metric: str, values: Any,
                               level: float = 0.95) -> tuple[float, float, float]:
  """Wilson for a hit-or-miss metric of `metric_catalogue` whose values are all 0 or its
  hit value, else Student-t (e.g. for a pointing game averaged over several objects)."""
  hit_value = metric_catalogue.metric_info(metric).hit_value
  array = _checked_values(values, level)
  if hit_value is None or not _hit_or_miss(array, hit_value):
    return mean_confidence_interval(array, level)
  return rate_confidence_interval(array, hit_value, level)
