"""Tests of experiments.method_speed on a tiny configuration (fields, not timings)."""

import math
import time

import pytest

from experiments import method_speed


def _positive_finite(value) -> bool:
  return isinstance(value, float) and math.isfinite(value) and value > 0


def test_interleaved_medians_times_each_call():
  counts = [0, 0]

  def sleeper(index, seconds):
    def call():
      counts[index] += 1
      time.sleep(seconds)
      return index
    return call

  slow, fast = method_speed.interleaved_medians([sleeper(0, 0.02), sleeper(1, 0.0)],
                                                warmup=2, repeats=3)
  assert counts == [1 + 2 + 3, 1 + 2 + 3]  # compile + warmup + repeats, each
  assert 0.02 <= slow and fast < slow


def test_method_benchmark_rows(capsys):
  rows = method_speed.method_benchmark(
      ["resnet18"], 32, 1, methods=method_speed.METHODS, num_masks=8, lime_samples=8,
      step_pixels=256, warmup=0, repeats=1, chunk=None)
  assert [row["method"] for row in rows] == list(method_speed.METHODS)
  by_method = {row["method"]: row for row in rows}
  # Forward counts from the performance model: RISE N, SIDU c + 1 (ResNet18's
  # layer4 has 512 channels), LIME S, insertion + deletion 2 (ceil(32*32/256) + 1).
  assert {m: r["forwards_per_image"] for m, r in by_method.items()} == {
      "gradcam": 1, "rise": 8, "sidu": 513, "lime": 8, "insertion_deletion": 10}
  assert by_method["gradcam"]["forward_batch"] == 1
  assert by_method["rise"]["forward_batch"] == 8  # B * min(default chunk, N)
  for row in rows:
    assert (row["model"], row["image_size"], row["batch_size"]) == ("resnet18", 32, 1)
    for field in ("forward_images_per_sec", "method_sec", "maps_per_sec", "floor_sec",
                  "ratio"):
      assert _positive_finite(row[field]), (row["method"], field, row[field])
    assert row["floor_sec"] == pytest.approx(
        row["batch_size"] * row["forwards_per_image"] / row["forward_images_per_sec"],
        rel=1e-2)
    assert row["ratio"] == pytest.approx(row["method_sec"] / row["floor_sec"], rel=1e-2)
    assert row["meets_target"] == (row["ratio"] <= method_speed.TARGETS[row["method"]])
  printed = capsys.readouterr().out.splitlines()
  assert len(printed) == len(rows)
  assert all(f"method={row['method']}" in line and f"ratio={row['ratio']}" in line
             for row, line in zip(rows, printed))


def test_method_benchmark_chunk_sets_forward_batch():
  (row,) = method_speed.method_benchmark(
      ["resnet18"], 32, 2, methods=["rise"], num_masks=8, lime_samples=8, step_pixels=256,
      warmup=0, repeats=1, chunk=4)
  assert row["forward_batch"] == 2 * 4
  assert _positive_finite(row["ratio"])


def test_rise_peak_memory_rows():
  rows = method_speed.rise_peak_memory("resnet18", 32, masks=(4, 8), chunk=4)
  assert [row["num_masks"] for row in rows] == [4, 8]
  assert all(_positive_finite(row["peak_rss_mib"]) for row in rows)
  assert rows[0]["ratio"] == 1.0
  assert rows[1]["ratio"] == pytest.approx(rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"],
                                           rel=1e-2)


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": ["fake_cam"]}, "methods"),
    ({"num_masks": 0}, "num_masks"),
    ({"chunk": 0}, "chunk"),
    ({"warmup": -1}, "warmup"),
])
def test_method_benchmark_bad_arguments(kwargs, message):
  arguments = {"methods": ["rise"], "num_masks": 8, "lime_samples": 8, "step_pixels": 256,
               "warmup": 0, "repeats": 1, "chunk": None} | kwargs
  with pytest.raises(ValueError, match=message):
    method_speed.method_benchmark(["resnet18"], 32, 1, **arguments)


def test_rise_peak_memory_bad_masks():
  with pytest.raises(ValueError, match="masks"):
    method_speed.rise_peak_memory("resnet18", 32, masks=())
