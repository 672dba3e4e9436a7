"""experiments/quantus_speed.py: the side-by-side benchmark against Quantus runs and its rows
add up."""

import pytest

from experiments import quantus_speed
from salijax import metrics

pytestmark = pytest.mark.slow  # a ResNet18 in torch and in JAX, both compiled/run


def test_every_pair_times_a_catalogued_model_metric():
  for name in quantus_speed._pairs():
    assert metrics.info(name).needs_model, name


def test_rows_of_a_forward_and_a_gradient_metric(quantus, torch, capsys):
  del quantus, torch  # quantus_benchmark imports them; the fixtures make CI fail without them
  rows = quantus_speed.quantus_benchmark(["pixel_flipping", "sensitivity"], image_sizes=(32,),
                                         batch_size=2, warmup=0, repeats=1)
  assert [(r["metric"], r["pass_kind"]) for r in rows] == [
      ("pixel_flipping", "forward"), ("sensitivity", "gradient")]
  # ceil(32 * 32 / k) steps plus the unperturbed image, k = ceil(32 * 32 / STEPS).
  k = -(-32 * 32 // quantus_speed.STEPS)
  assert rows[0]["passes_per_image"] == -(-32 * 32 // k) + 1
  assert rows[1]["passes_per_image"] == quantus_speed.SAMPLES + 1
  for row in rows:
    assert row["salijax_sec"] > 0 and row["quantus_sec"] > 0 and row["floor_sec"] > 0
    assert row["speedup"] == pytest.approx(row["quantus_sec"] / row["salijax_sec"], rel=0.05,
                                           abs=0.1)
    assert row["floor_ratio"] == pytest.approx(row["salijax_sec"] / row["floor_sec"], rel=0.05,
                                               abs=0.01)
  assert capsys.readouterr().out.count("benchmark=quantus") == 2


def test_unknown_metric():
  with pytest.raises(ValueError, match="got unknown .'insertion_deletion'"):
    quantus_speed.quantus_benchmark(["insertion_deletion"])
