"""experiments/cpu_convolution_speed.py: every pass timed three ways, the same results."""

import jax
import pytest

from experiments import cpu_convolution_speed


def test_five_passes_timed_with_each_list(capsys):
  rows = cpu_convolution_speed.cpu_convolution_benchmark(["resnet18"], image_size=32,
                                                         batch_size=2, warmup=0, repeats=1)
  assert [row["pass"] for row in rows] == ["forward", "gradient", "scan_gradient",
                                           "parameter_gradient", "train_step"]
  for row in rows:
    assert row["ynnpack_ms"] > 0 and row["xla_ms"] > 0 and row["dots_only_ms"] > 0
    assert row["device"] == jax.devices()[0].device_kind
    assert row["speedup"] == pytest.approx(row["ynnpack_ms"] / row["xla_ms"], rel=0.01,
                                           abs=0.002)
    assert row["dots_only_speedup"] == pytest.approx(row["ynnpack_ms"] / row["dots_only_ms"],
                                                     rel=0.01, abs=0.002)
  # The logits: float32 rounding of ResNet18's sums (a few thousand terms deep, in a
  # different order), far below a changed result.
  assert rows[0]["relative_difference"] < 1e-4
  assert capsys.readouterr().out.count("benchmark=cpu_convolutions") == 5
