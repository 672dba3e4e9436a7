"""Tests of experiments.method_speed: the cost table, option handling and a tiny timed run."""

import importlib
import math
import pkgutil
import time

import jax
import pytest

from experiments import method_speed
from salijax import methods
from salijax.methods.registry import PASS_KINDS, PassCount, Shapes

# ResNet18 explained at layer4 (512 channels), two 80 px images.
SHAPES = Shapes(batch=2, height=80, width=80, channels=512)


@pytest.fixture(scope="module", autouse=True)
def every_method_registered():
  """Imports every module of salijax.methods, so every method there is registered."""
  for info in pkgutil.iter_modules(methods.__path__):
    importlib.import_module(f"{methods.__name__}.{info.name}")


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


def test_every_registered_method_is_benchmarked():
  assert set(method_speed.benchmarked_methods()) == set(methods.names()) | {"insertion_deletion"}


@pytest.mark.parametrize("name", method_speed.benchmarked_methods())
def test_every_cost_reads_its_methods_default_options(name):
  cost = method_speed.cost(name, method_speed.resolve_options(name, {}), SHAPES)
  assert cost.kind in PASS_KINDS + (None,)
  if cost.kind is None:
    assert cost == PassCount(None, 0, 0)
  else:
    assert cost.passes >= 1 and cost.per_pass >= 1


@pytest.mark.parametrize("name, given, expected", [
    # Forward counts of the performance model: RISE N, LIME S, SIDU / Score-CAM /
    # Ablation-CAM k + 1, mask search one per step, insertion + deletion 2 (n + 1);
    # per pass: min(chunk, count) images of each image.
    ("rise", {"num_masks": 300}, ("forward", 300, 256)),
    ("rise", {"num_masks": 8, "chunk": 4}, ("forward", 8, 4)),
    ("lime", {"num_samples": 50}, ("forward", 50, 50)),
    ("sidu", {}, ("forward", 513, 64)),
    ("sidu_feature_space", {"chunk": 100}, ("forward", 512, 100)),
    ("score_cam", {"chunk": 32}, ("forward", 513, 32)),
    ("ablation_cam", {}, ("forward", 513, 64)),
    ("mask_search", {"num_steps": 70}, ("forward", 70, 1)),
    ("eigencam", {}, ("forward", 1, 1)),
    # n = 80 * 80 / 400 = 16 steps: 34 forwards; chunk 256 // B = 128 steps per forward.
    ("insertion_deletion", {"step_pixels": 400}, ("forward", 34, 34)),
    ("insertion_deletion", {"step_pixels": 400, "chunk": 20}, ("forward", 34, 10)),
    # Gradient passes: one for the plain gradient methods and the gradient CAMs.
    ("gradient", {}, ("gradient", 1, 1)),
    ("guided_backprop", {}, ("gradient", 1, 1)),
    ("guided_gradcam", {}, ("gradient", 1, 1)),
    ("gradcam", {}, ("gradient", 1, 1)),
    ("gradcam_plus_plus", {}, ("gradient", 1, 1)),
    ("xgradcam", {}, ("gradient", 1, 1)),
    ("layercam", {}, ("gradient", 1, 1)),
    ("integrated_gradients", {"steps": 20, "chunk": 8}, ("gradient", 20, 8)),
    ("integrated_gradients", {"steps": 20, "rule": "trapezoid"}, ("gradient", 21, 10)),
    ("smoothgrad", {"num_samples": 6, "sample_chunk": 4}, ("gradient", 6, 4)),
    ("smoothgrad", {"method": "integrated_gradients", "num_samples": 3, "steps": 5, "chunk": 5},
     ("gradient", 15, 3 * 5)),
    ("iba", {"steps": 3, "num_samples": 4}, ("gradient", 12, 4)),
    ("fake_cam", {}, (None, 0, 0)),
    ("random", {}, (None, 0, 0)),
])
def test_pass_counts_follow_the_performance_model(name, given, expected):
  cost = method_speed.cost(name, method_speed.resolve_options(name, given), SHAPES)
  assert cost == PassCount(*expected)


def test_resolve_options_fills_defaults_and_rejects_unknown_options():
  resolved = method_speed.resolve_options("rise", {"num_masks": 3})
  assert resolved["num_masks"] == 3 and resolved["chunk"] == 256 and "key" not in resolved
  with pytest.raises(ValueError, match="method_options: rise: unknown option"):
    method_speed.resolve_options("rise", {"masks": 3})
  # SmoothGrad passes the options it does not know on to the wrapped method.
  assert method_speed.resolve_options("smoothgrad", {"steps": 5})["steps"] == 5


def test_parse_method_options():
  assert method_speed.parse_method_options(
      ["rise.num_masks=256", " rise.chunk = 64", "smoothgrad.method=integrated_gradients",
       "iba.beta=0.5", "lime.hide=mean"]) == {
           "rise": {"num_masks": 256, "chunk": 64},
           "smoothgrad": {"method": "integrated_gradients"}, "iba": {"beta": 0.5},
           "lime": {"hide": "mean"}}
  assert method_speed.parse_method_options([]) == {}
  for bad in ("rise=3", "num_masks=3", "rise.num_masks", "rise.num_masks=", ".chunk=2"):
    with pytest.raises(ValueError, match="method_options"):
      method_speed.parse_method_options([bad])


def test_method_benchmark_rows_for_each_pass_kind(capsys):
  names = ["rise", "gradcam", "iba", "fake_cam"]
  rows = method_speed.method_benchmark(
      ["resnet18"], 32, 2, methods=names, num_masks=4, chunk=2,
      options={"iba": {"steps": 2, "num_samples": 2}}, warmup=0, repeats=1)
  assert [row["method"] for row in rows] == names
  by_method = {row["method"]: row for row in rows}
  assert {m: (r["pass_kind"], r["passes_per_image"], r["pass_batch"])
          for m, r in by_method.items()} == {
              "rise": ("forward", 4, 2 * 2),  # B * chunk
              "gradcam": ("gradient", 1, 2),
              "iba": ("gradient", 2 * 2, 2 * 2),  # steps x samples; B * samples per pass
              "fake_cam": (None, 0, 0)}
  assert by_method["rise"]["options"] == "chunk=2,num_masks=4"
  assert by_method["iba"]["options"] == "num_samples=2,steps=2"
  for row in rows:
    assert (row["model"], row["image_size"], row["batch_size"]) == ("resnet18", 32, 2)
    assert _positive_finite(row["method_sec"]) and _positive_finite(row["maps_per_sec"])
    if row["pass_kind"] is None:
      assert row["ratio"] is None and row["floor_sec"] is None and row["meets_target"] is None
      continue
    for field in ("pass_images_per_sec", "floor_sec", "ratio"):
      assert _positive_finite(row[field]), (row["method"], field, row[field])
    assert row["floor_sec"] == pytest.approx(
        row["batch_size"] * row["passes_per_image"] / row["pass_images_per_sec"], rel=1e-2)
    assert row["ratio"] == pytest.approx(row["method_sec"] / row["floor_sec"], rel=1e-2)
    assert row["target"] == method_speed.TARGET
    assert row["meets_target"] == (row["ratio"] <= method_speed.TARGET)
  printed = capsys.readouterr().out.splitlines()
  assert len(printed) == len(rows)
  assert all(f"method={row['method']}" in line and f"ratio={row['ratio']}" in line
             for row, line in zip(rows, printed, strict=True))


def test_rise_peak_memory_rows(monkeypatch):
  # The spawned processes share the tests' persistent compile cache through the environment.
  if jax.config.jax_compilation_cache_dir:
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  rows = method_speed.rise_peak_memory("resnet18", 32, masks=(4, 8), chunk=4)
  assert [row["num_masks"] for row in rows] == [4, 8]
  assert all(_positive_finite(row["peak_rss_mib"]) for row in rows)
  assert rows[0]["ratio"] == 1.0
  assert rows[1]["ratio"] == pytest.approx(rows[1]["peak_rss_mib"] / rows[0]["peak_rss_mib"],
                                           rel=1e-2)


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": ["fake_method"]}, "methods"),
    ({"num_masks": 0}, "num_masks"),
    ({"chunk": 0}, "chunk"),
    ({"warmup": -1}, "warmup"),
    ({"options": {"rise": {"masks": 8}}}, "method_options: rise: unknown option"),
    ({"options": {"rsie": {"num_masks": 8}}}, "method_options: expected method names"),
])
def test_method_benchmark_bad_arguments(kwargs, message):
  arguments = {"methods": ["rise"], "num_masks": 8, "warmup": 0, "repeats": 1} | kwargs
  with pytest.raises(ValueError, match=message):
    method_speed.method_benchmark(["resnet18"], 32, 1, **arguments)


def test_rise_peak_memory_bad_masks():
  with pytest.raises(ValueError, match="masks"):
    method_speed.rise_peak_memory("resnet18", 32, masks=())
