"""experiments/anchor_speed.py: the side-by-side benchmark against Captum and PAIR runs, gives
both sides the same model, and its rows add up."""

import jax
import numpy as np
import pytest

from experiments import anchor_speed, quantus_speed
from salijax import methods

pytestmark = pytest.mark.slow  # a ResNet18 in torch and in JAX, both compiled/run


def test_every_pair_times_a_registered_method():
  assert set(anchor_speed.PAIRS) <= set(methods.names())
  for pair in anchor_speed.PAIRS.values():
    assert pair.anchor in ("captum", "pair", "zennit") and pair.goal >= 1


def test_pairs_call_model_function_is_the_gradient_of_salijaxs_port(saliency_pair, torch):
  """PAIR sees salijax's own model: its gradients are salijax's `gradient` attributions."""
  from saliency.core import base  # noqa: PLC0415

  del saliency_pair, torch
  batch = quantus_speed.inputs(32, 2)
  label = int(batch.labels[0])
  got = anchor_speed.call_model_function(batch.clf, label)(
      np.asarray(batch.images[:1]))[base.INPUT_OUTPUT_GRADIENTS]
  expected = methods.gradient(batch.clf, batch.images[:1], batch.labels[:1], reduce="none")
  np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5, atol=1e-7)


def test_rows_of_a_captum_a_pair_and_a_zennit_method(captum, saliency_pair, zennit, torch,
                                                     capsys):
  del captum, saliency_pair, zennit, torch  # the benchmark imports them; the fixtures fail CI
  rows = anchor_speed.anchor_benchmark(["occlusion", "guided_ig", "lrp"], image_size=32,
                                       batch_size=2, repeats=1)
  assert [(r["method"], r["anchor"]) for r in rows] == [("occlusion", "captum"),
                                                         ("guided_ig", "pair"), ("lrp", "zennit")]
  for row in rows:
    assert row["salijax_sec"] > 0 and row["anchor_sec"] > 0
    assert row["device"] == jax.devices()[0].device_kind
    assert row["floor_sec"] > 0
    # Seconds keep 4 significant digits (each within 5e-4 relative), ratios 2 decimals.
    for ratio, top, bottom in (("speedup", "anchor_sec", "salijax_sec"),
                               ("floor_ratio", "salijax_sec", "floor_sec"),
                               ("bound", "anchor_sec", "floor_sec")):
      recomputed = row[top] / row[bottom]
      assert abs(row[ratio] - recomputed) <= 0.005 + 1e-3 * recomputed, (ratio, row)
  assert capsys.readouterr().out.count("benchmark=anchors") == 3


def test_unknown_method():
  with pytest.raises(ValueError, match="got unknown .'gradcam'"):
    anchor_speed.anchor_benchmark(["gradcam"])
