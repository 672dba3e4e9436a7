"""Tests of the warm-up + cosine learning-rate schedule."""

import math

import numpy as np
import pytest

from salijax.train import schedule


def reference(step, peak, total, warmup, floor):
  """The schedule written out per step in plain Python."""
  if step < warmup:
    return peak * (step + 1) / warmup
  t = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
  return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


@pytest.mark.parametrize(("peak", "total", "warmup", "floor"), [
    (0.1, 100, 10, 0.0), (0.5, 37, 0, 0.1), (1e-3, 20, 20, 0.5), (2.0, 1, 0, 0.0)])
def test_matches_reference(peak, total, warmup, floor):
  fn = schedule.warmup_cosine(peak, total_steps=total, warmup_steps=warmup, floor=floor)
  steps = np.arange(total + 5)
  got = np.array([fn(s) for s in steps])
  want = np.array([reference(s, peak, total, warmup, floor) for s in steps])
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * peak)  # f32 cosine


def test_shape_of_the_curve():
  peak, floor = 0.4, 0.25
  fn = schedule.warmup_cosine(peak, total_steps=50, warmup_steps=5, floor=floor)
  values = np.array([fn(s) for s in range(60)])
  assert np.all(np.diff(values[:5]) > 0)  # warm-up rises
  np.testing.assert_allclose(values[5], peak, rtol=1e-6)  # the peak right after it
  assert np.all(np.diff(values[5:51]) < 0)  # cosine falls
  np.testing.assert_allclose(values[50:], peak * floor, rtol=1e-6)  # then stays at the floor
  assert values.max() <= peak * (1 + 1e-6) and values.min() > 0


def test_jittable_with_traced_step():
  import jax  # noqa: PLC0415
  fn = schedule.warmup_cosine(0.1, total_steps=10, warmup_steps=2, floor=0.0)
  np.testing.assert_allclose(jax.jit(fn)(np.int32(4)), fn(4), rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"floor": 1.0}, "floor"), ({"floor": 1.5}, "floor"), ({"floor": -0.1}, "floor"),
    ({"peak_value": 0.0}, "peak_value"), ({"total_steps": 0}, "total_steps"),
    ({"warmup_steps": 11}, "warmup_steps"), ({"warmup_steps": -1}, "warmup_steps")])
def test_invalid_arguments(kwargs, field):
  args = {"peak_value": 0.1, "total_steps": 10, "warmup_steps": 2, "floor": 0.0, **kwargs}
  peak = args.pop("peak_value")
  with pytest.raises(ValueError, match=field):
    schedule.warmup_cosine(peak, **args)
