"""experiments/quantus_speed.py: the side-by-side benchmark against Quantus runs and its rows
add up."""

import types

import numpy as np
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


def test_quantus_gets_the_work_salijax_does(torch):
  """ROAD: Quantus's runs only on one-channel images: the grey images, through a model that
  repeats the channel, on the maps and on the maps reversed (salijax removes the most and the
  least salient pixels); random logit: salijax explains both classes, so Quantus gets no
  maps and explains the images itself."""
  calls = []

  def recorder(name):
    class Metric:
      def __init__(self, **options):
        self.options = options

      def __call__(self, **args):
        calls.append((name, args))

    return Metric

  fake = types.SimpleNamespace(ROAD=recorder("ROAD"), RandomLogit=recorder("RandomLogit"),
                               explain=None)
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(2, 4, 4, 3)).astype(np.float32)
  maps = rng.normal(size=(2, 4, 4)).astype(np.float32)
  model = torch.nn.Conv2d(3, 5, 4)  # NCHW RGB -> 5 scores
  batch = quantus_speed.Inputs(None, model, images, maps, np.zeros(2, np.int32), num_classes=5)
  pairs = quantus_speed._pairs()
  quantus_speed._quantus_seconds(pairs["road"], fake, batch)
  quantus_speed._quantus_seconds(pairs["random_logit"], fake, batch)
  assert [name for name, _ in calls] == ["ROAD", "ROAD", "RandomLogit"]
  grey = images.mean(axis=-1)[:, None]
  for (_, args), want in zip(calls[:2], (maps, maps.max() - maps), strict=True):
    np.testing.assert_allclose(args["x_batch"], grey, rtol=1e-6)
    np.testing.assert_array_equal(args["a_batch"], want[:, None])
    x = torch.from_numpy(args["x_batch"])
    np.testing.assert_allclose(args["model"](x).detach().numpy(),
                               model(x.repeat(1, 3, 1, 1)).detach().numpy(), rtol=1e-6)
  assert calls[2][1]["a_batch"] is None
  np.testing.assert_array_equal(calls[2][1]["x_batch"], images.transpose(0, 3, 1, 2))


def test_rows_of_the_axiomatic_randomisation_and_road_metrics(quantus, torch):
  del quantus, torch
  names = ["road", "sensitivity_n", "completeness", "random_logit", "efficient_mprt"]
  rows = quantus_speed.quantus_benchmark(names, image_sizes=(32,), batch_size=2, warmup=0,
                                         repeats=1)
  assert [row["metric"] for row in rows] == names
  assert [row["quantus_error"] for row in rows] == [None] * len(names)
  passes = {row["metric"]: row["passes_per_image"] for row in rows}
  assert passes == {"road": 2 * len(quantus_speed.ROAD_PERCENTAGES),
                    "sensitivity_n": len(quantus_speed.SUBSET_FRACTIONS)
                    * (quantus_speed.STEPS // 4) + 1,
                    "completeness": 2, "random_logit": 2, "efficient_mprt": 2}
  assert all(row["salijax_sec"] > 0 and row["quantus_sec"] > 0 for row in rows)
