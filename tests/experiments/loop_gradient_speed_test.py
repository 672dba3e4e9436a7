"""experiments/loop_gradient_speed.py: three rows that time the same gradients three ways."""

import jax
import pytest

from experiments import loop_gradient_speed


def test_three_ways_each_timed_relative_to_the_called_gradient(capsys):
  rows = loop_gradient_speed.loop_gradient_benchmark(image_size=32, batch_size=2, steps=2,
                                                     warmup=0, repeats=1)
  assert [row["way"] for row in rows] == ["called", "scan", "scan_explicit"]
  assert rows[0]["ratio"] == 1.0
  for row in rows:
    assert row["ms_per_image"] > 0 and row["device"] == jax.devices()[0].device_kind
    assert row["ratio"] == pytest.approx(row["ms_per_image"] / rows[0]["ms_per_image"],
                                         rel=0.01, abs=0.002)
  assert capsys.readouterr().out.count("benchmark=loop_gradients") == 3
