"""End to end: config.metrics, the extra metrics of the evaluation stage, in the files, tables
and figures, and a finished workdir that changes them computes only what changed."""

import json
import shutil

import ml_collections
import numpy as np
import pytest
import tiny_benchmark

from salijax import report
from salijax.metrics import catalogue
from salijax.pipeline import benchmark, benchmark_config, metric_calls
from salijax.pipeline import benchmark_workdir as bw

pytestmark = [pytest.mark.xdist_group("pipeline_extra_metrics"), pytest.mark.slow]

EXTRA = ("localisation", "complexity", "insertion_deletion")
EXTRA_METRICS = ",".join(EXTRA)


def _config(metrics=EXTRA_METRICS, options=None) -> ml_collections.ConfigDict:
  """The tiny ResNet18 benchmark with two methods, one perturbation and extra metrics."""
  config = tiny_benchmark.get_config("resnet18")
  config.methods = "gradcam,random"
  config.controls = "random"
  config.sanity.methods = "random"
  config.perturbations = "rotate45"
  config.metrics = metrics
  config.metric_options = ml_collections.ConfigDict({
      "localisation": {"k": 50}, "insertion_deletion": {"step_pixels": 128}}
      if options is None else options)
  return config


def _unit_files(workdir):
  return sorted((workdir / "evaluate").rglob("batch_*.npz"))


def _spy(monkeypatch):
  """The names of the metrics `metric_calls.call` computes from now on."""
  calls, call = [], metric_calls.call

  def spy(name, **kwargs):
    calls.append(name)
    return call(name, **kwargs)

  monkeypatch.setattr(metric_calls, "call", spy)
  return calls


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("extra_metrics")
  benchmark.run_benchmark(_config(), workdir, progress=False)
  return workdir


def test_unit_files_hold_every_per_image_field(finished):
  files = _unit_files(finished)
  assert len(files) == 2 * 2 * 2  # methods x perturbations x batches
  for path in files:
    arrays = bw.load_arrays(path)
    count = len(arrays["position"])
    for name in EXTRA:
      for field in catalogue.info(name).per_image_fields():
        value = arrays[f"{name}.{field}"]
        assert value.dtype == np.float32 and value.shape[0] == count, (path, name, field)
    assert arrays["insertion_deletion.insertion_curve"].shape == (count, 1024 // 128 + 1)
    # complexity with its defaults is the fixed metrics' complexity.
    np.testing.assert_array_equal(arrays["complexity.entropy"], arrays["entropy"])
    top_k = arrays["localisation.top_k_intersection"]
    assert np.all((top_k >= 0) & (top_k <= 1))
    assert json.loads(str(arrays["extra_metrics"])) == {
        "complexity": {"options": {}},
        "insertion_deletion": {"options": {"allow_constant_maps": True, "step_pixels": 128}},
        "localisation": {"options": {"k": 50}}}


def test_results_summary_and_figures_show_them(finished):
  out = finished / "report"
  rows = report.read_results(out)
  names = {r["metric"] for r in rows}
  for name in EXTRA:
    fields = catalogue.info(name).per_image_fields()
    assert {f"{name}.{f}" for f in fields if not f.endswith("_curve")} <= names
  assert not {n for n in names if n.endswith("_curve")}  # curves go to figures, not rows
  for method in ("gradcam", "random"):
    for perturbation in ("none", "rotate45"):
      mine = [r for r in rows if (r["method"], r["perturbation"], r["metric"])
              == (method, perturbation, "localisation.auc")]
      assert len(mine) == 6  # one per image
  summary = (out / "summary.md").read_text()
  assert "## `localisation` (k=50; docs/metrics.md#localisation)" in summary
  assert "| localisation.relevance_rank_accuracy ↑ |" in summary
  assert "complexity.entropy ↓" in summary and "insertion_deletion.deletion_auc ↓" in summary
  main_table = summary.split("## `localisation`")[0]
  assert "Insertion AUC ↑" in main_table and "localisation." not in main_table
  for field in ("insertion_curve", "deletion_curve"):
    assert (out / f"resnet18_scratch_insertion_deletion.{field}.png").exists()


def test_changed_metrics_recompute_only_themselves(finished, tmp_path, monkeypatch):
  workdir = tmp_path / "w"
  shutil.copytree(finished, workdir)
  before = {path.relative_to(workdir): bw.load_arrays(path) for path in _unit_files(workdir)}
  seconds = {s: bw.stage_done(workdir, s)["seconds"] for s in benchmark.STAGES}
  calls = _spy(monkeypatch)
  config = _config("localisation,complexity,pointing_game",
                   {"localisation": {"k": 60}, "pointing_game": {"tolerance": 2.0}})
  benchmark.run_benchmark(config, workdir, progress=False)
  assert sorted(set(calls)) == ["localisation", "pointing_game"]
  assert len(calls) == 2 * len(before)  # once per unit each
  for stage in ("data", "train", "perturb", "predict", "explain", "sanity"):
    assert bw.stage_done(workdir, stage)["seconds"] == seconds[stage], stage
  assert bw.stage_done(workdir, "evaluate")["config"] == {
      "metrics": "localisation,complexity,pointing_game",
      "metric_options": {"localisation": {"k": 60}, "pointing_game": {"tolerance": 2.0}}}
  for path, old in before.items():
    new = bw.load_arrays(workdir / path)
    assert not [k for k in new if k.startswith("insertion_deletion.")]
    assert "pointing_game.hit" in new and "pointing_game.num_maxima" in new
    for key, value in old.items():  # kept: the fixed metrics and complexity
      if "." not in key and key != "extra_metrics" or key.startswith("complexity."):
        np.testing.assert_array_equal(new[key], value, err_msg=f"{path} {key}")
  rows = report.read_results(workdir / "report")
  assert not [r for r in rows if r["metric"].startswith("insertion_deletion.")]
  assert [r for r in rows if r["metric"] == "pointing_game.hit"]
  # Unchanged metrics: nothing computed; another field changed: still refused.
  calls.clear()
  benchmark.run_benchmark(config, workdir, progress=False)
  assert calls == []
  config.num_images = 5
  with pytest.raises(ValueError, match=r"differs in num_images\)"):
    benchmark.run_benchmark(config, workdir, progress=False)


def test_a_workdir_from_before_config_metrics_resumes(finished, tmp_path, monkeypatch):
  """A workdir without the fields (nor the files' records) computes only the new metrics."""
  workdir = tmp_path / "w"
  shutil.copytree(finished, workdir)
  stored = bw.read_json(workdir / "config.json")
  for field in benchmark_config.RESULT_FIELDS:
    del stored[field]
  bw.write_json(workdir / "config.json", stored)
  for stage in ("evaluate", "report"):
    done = bw.stage_done(workdir, stage)
    del done["config"]
    bw.mark_done(workdir, stage, done)
  for path in _unit_files(workdir):
    bw.save_arrays(path, {k: v for k, v in bw.load_arrays(path).items()
                          if "." not in k and k != "extra_metrics"})
  calls = _spy(monkeypatch)
  seconds = bw.stage_done(workdir, "evaluate")["seconds"]
  benchmark.run_benchmark(_config("", {}), workdir, progress=False)  # as before: done
  assert calls == [] and bw.stage_done(workdir, "evaluate")["seconds"] == seconds
  benchmark.run_benchmark(_config("complexity", {}), workdir, progress=False)
  assert calls == ["complexity"] * len(_unit_files(workdir))
