"""Tests of the timing helper behind experiments/speed.py."""

import time

import jax
import jax.numpy as jnp
import pytest

from salijax.train import throughput


def test_time_calls_threads_the_carry_and_counts_images():
  calls = []

  def step(carry):
    calls.append(carry)
    time.sleep(0.01)
    return carry + 1

  result = throughput.time_calls(step, jnp.int32(0), batch_size=8, warmup=2, repeats=3)
  assert [int(c) for c in calls] == list(range(6))  # 1 compiling + 2 warm-up + 3 timed calls.
  assert result.median_sec >= 0.01
  assert result.images_per_sec == pytest.approx(8 / result.median_sec)
  assert result.compile_sec >= 0.01


def test_time_calls_waits_for_the_computation():
  x = jnp.ones((256, 256))
  matmul = jax.jit(lambda a: (a @ a) / 256)
  result = throughput.time_calls(matmul, x, batch_size=1, warmup=1, repeats=3)
  assert result.median_sec > 0 and result.images_per_sec > 0


@pytest.mark.parametrize(("kwargs", "field"), [({"repeats": 0}, "repeats"),
                                               ({"warmup": -1}, "warmup")])
def test_invalid_arguments(kwargs, field):
  with pytest.raises(ValueError, match=field):
    throughput.time_calls(lambda c: c, 0, batch_size=1, **kwargs)
