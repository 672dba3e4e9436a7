"""Tests of salijax.report.confidence_interval."""

import math
import statistics

import numpy as np
import pytest
from scipy import stats

from salijax.report.confidence_interval import (
    mean_confidence_interval,
    metric_confidence_interval,
    rate_confidence_interval,
)


def test_matches_a_slow_reference():
  values = [0.31, 0.52, 0.47, 0.90, 0.12]
  mean = statistics.fmean(values)
  half = stats.t.ppf(0.975, df=4) * statistics.stdev(values) / math.sqrt(5)
  np.testing.assert_allclose(mean_confidence_interval(values), (mean, mean - half, mean + half),
                             rtol=1e-12)
  # scipy's own interval of a t distribution centred on the mean, scaled by the standard error.
  low, high = stats.t.interval(0.9, df=4, loc=mean, scale=stats.sem(values))
  np.testing.assert_allclose(mean_confidence_interval(np.array(values), level=0.9),
                             (mean, low, high), rtol=1e-12)


def test_returns_python_floats():
  result = mean_confidence_interval(np.array([1, 2, 4], np.int32))
  assert all(type(x) is float for x in result)


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_coverage_of_normal_samples(level):
  rng = np.random.default_rng(0)
  trials, n, true_mean = 2000, 8, 3.0
  samples = rng.normal(true_mean, 2.0, size=(trials, n))
  covered = 0
  for sample in samples:
    _, low, high = mean_confidence_interval(sample, level)
    covered += low <= true_mean <= high
  # Binomial standard error sqrt(0.95 * 0.05 / 2000) ~ 0.005: a tolerance of 4 of them.
  assert abs(covered / trials - level) < 4 * math.sqrt(level * (1 - level) / trials)


def test_a_normal_approximation_would_be_too_narrow():
  values = [1.0, 2.0, 4.0]
  _, low, high = mean_confidence_interval(values)
  normal_half = 1.959964 * statistics.stdev(values) / math.sqrt(3)
  assert (high - low) / 2 > 2 * normal_half  # t_{0.975, 2} = 4.30 vs 1.96


def test_nan_values_are_dropped():
  assert mean_confidence_interval([1.0, math.nan, 3.0, 2.0, math.nan]) \
      == mean_confidence_interval([1.0, 3.0, 2.0])


def test_one_value_and_no_value():
  mean, low, high = mean_confidence_interval([0.25])
  assert mean == 0.25 and math.isnan(low) and math.isnan(high)
  mean, low, high = mean_confidence_interval([math.nan, 0.25])
  assert mean == 0.25 and math.isnan(low) and math.isnan(high)
  for empty in ([], [math.nan, math.nan], np.zeros(0)):
    assert all(math.isnan(x) for x in mean_confidence_interval(empty))


def test_equal_values_give_a_zero_width_interval():
  mean, low, high = mean_confidence_interval([0.5] * 6)
  assert mean == low == high == 0.5


@pytest.mark.parametrize("values, level, pattern", [
    ([1.0, 2.0], 1.0, "level"),
    ([1.0, 2.0], 0.0, "level"),
    ([1.0, 2.0], True, "level"),
    ([1.0, 2.0], "0.95", "level"),
    ([[1.0, 2.0], [3.0, 4.0]], 0.95, "1-D"),
    (["a", "b"], 0.95, "real numbers"),
])
def test_bad_inputs_are_rejected(values, level, pattern):
  with pytest.raises(ValueError, match=pattern):
    mean_confidence_interval(values, level)


def _score_test_interval(hits: int, n: int, level: float) -> tuple[float, float]:
  """Slow reference: the ends of the rates r on a fine grid whose score test
  |k/n - r| <= z sqrt(r (1 - r) / n) accepts."""
  z = stats.norm.ppf((1 + level) / 2)
  rates = np.linspace(0.0, 1.0, 2_000_001)
  accepted = rates[np.abs(hits / n - rates) <= z * np.sqrt(rates * (1 - rates) / n)]
  return accepted.min(), accepted.max()


@pytest.mark.parametrize(("hits", "n", "level"), [(7, 10, 0.95), (0, 10, 0.95), (10, 10, 0.95),
                                                  (1, 3, 0.8), (40, 64, 0.99)])
def test_rate_interval_is_the_score_test_inversion(hits, n, level):
  values = [1.0] * hits + [0.0] * (n - hits) + [math.nan]
  mean, low, high = rate_confidence_interval(values, level=level)
  assert mean == hits / n
  np.testing.assert_allclose((low, high), _score_test_interval(hits, n, level), atol=2e-6)
  assert 0.0 <= low <= mean <= high <= 1.0
  assert low < high  # never a point, even when every image hits (or none does)


def test_rate_interval_scales_with_the_hit_value():
  ones = rate_confidence_interval([1, 0, 1, 1])
  hundreds = rate_confidence_interval([100, 0, 100, 100], hit_value=100.0)
  np.testing.assert_allclose(hundreds, [100 * x for x in ones], rtol=1e-12)
  assert rate_confidence_interval([]) == pytest.approx((math.nan,) * 3, nan_ok=True)


def test_rate_interval_refuses_other_values():
  with pytest.raises(ValueError, match="each be 0 or 1.0"):
    rate_confidence_interval([1.0, 0.5])
  with pytest.raises(ValueError, match="each be 0 or 100.0"):
    rate_confidence_interval([1.0, 0.0], hit_value=100.0)


def test_metric_interval_follows_the_catalogue():
  hits = [1.0, 0.0, 1.0, 1.0, 1.0]
  assert metric_confidence_interval("pointing_game", hits) == rate_confidence_interval(hits)
  assert metric_confidence_interval("increase_in_confidence", [100.0, 0.0]) == (
      rate_confidence_interval([100.0, 0.0], hit_value=100.0))
  assert metric_confidence_interval("insertion_auc", hits) == mean_confidence_interval(hits)
  assert metric_confidence_interval("not_in_catalogue", hits) == mean_confidence_interval(hits)
  fractions = [0.5, 1.0, 0.0]  # e.g. a pointing game averaged over several objects
  assert metric_confidence_interval("pointing_game", fractions) == (
      mean_confidence_interval(fractions))
