"""End to end: the tiny benchmark in process, killed and resumed, on 3 and 8 devices, and in
two processes (its later stages on the same models, and the whole of it in one command)."""

import json
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import headless_chromium
import numpy as np
import pytest
import tiny_benchmark
from binary_environment import binary_environment
from PIL import Image

from salijax import report
from salijax.pipeline import benchmark, benchmark_config

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = [pytest.mark.xdist_group("pipeline_benchmark"), pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_FILE = "tests/pipeline/tiny_benchmark.py"
TIMEOUT = 900


def _command(workdir: pathlib.Path, *flags: str) -> list[str]:
  """The binary on the ResNet18-only tiny config."""
  return [sys.executable, "-m", "experiments.benchmark", f"--config={CONFIG_FILE}:resnet18",
          f"--workdir={workdir}", "--noprogress", *flags]


def _values(rows, model=None):
  """{(model, mode, image, method, metric): value} of result rows."""
  return {(r["model"], r["mode"], r["image_id"], r["method"], r["metric"]): r["value"]
          for r in rows if model is None or r["model"] == model}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A complete in-process run of the tiny benchmark (ResNet18 and VGG11): (workdir, summary)."""
  workdir = tmp_path_factory.mktemp("benchmark")
  summary = benchmark.run_benchmark(tiny_benchmark.get_config(), workdir, progress=False)
  return workdir, summary


def test_every_stage_writes_its_outputs(finished):
  workdir, summary = finished
  config = tiny_benchmark.get_config()
  assert set(summary["stage_seconds"]) == set(benchmark.STAGES)
  assert set(summary["runs"]) == {"resnet18_scratch", "vgg11_scratch"}
  for stage in benchmark.STAGES:
    assert (workdir / stage / "DONE.json").exists(), stage
  out = workdir / "report"
  rows = report.read_results(out)
  methods = benchmark_config.method_names(config)
  per_image = {"insertion_auc", "deletion_auc", "average_drop", "increase_in_confidence",
               "average_gain", "sparseness", "entropy", "mass_fraction_90", "pointing_game",
               "energy_pointing_game"}
  for run in ("resnet18", "vgg11"):
    for method in methods:
      mine = [r for r in rows if r["model"] == run and r["method"] == method]
      assert len({r["image_id"] for r in mine}) == config.num_images
      assert per_image <= {r["metric"] for r in mine}, (run, method)
  # Sanity rows only for the sanity methods, on the sanity images.
  sanity_rows = [r for r in rows if r["metric"].startswith("sanity_")]
  assert {r["method"] for r in sanity_rows} == {"lime", "random"}
  assert len({r["image_id"] for r in sanity_rows}) == config.sanity.num_images
  # The random control ignores the model: identical maps before and after randomisation.
  assert all(r["value"] == pytest.approx(1.0) for r in sanity_rows
             if r["method"] == "random" and r["metric"] == "sanity_spearman")
  assert json.loads((out / "results.json").read_text())[0].keys() == set(report.COLUMNS)
  # The default: the ground-truth class of the clean images only.
  assert {(r["label_mode"], r["perturbation"]) for r in rows} == {("ground_truth", "none")}
  assert all(r["explained"] == r["label"] for r in rows)
  diagnostics = json.loads((out / "diagnostics.json").read_text())
  assert set(diagnostics["runs"]) == {"resnet18_scratch", "vgg11_scratch"}
  assert all(len(image["most_likely"]) == 4 for image in diagnostics["runs"]["vgg11_scratch"])
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["config"]["models"] == "resnet18,vgg11"
  assert {"packages", "devices", "xla_flags", "matmul_precision", "git"} <= set(manifest)
  summary_md = (out / "summary.md").read_text()
  assert "fake_cam (control)" in summary_md and "random (control)" in summary_md
  assert "resnet18_scratch" in summary_md and "Sanity check" in summary_md
  assert "## Perturbed images" not in summary_md and "least likely" not in summary_md
  for name in ("training.png", "resnet18_scratch_overlays.png", "vgg11_scratch_curves.png",
               "vgg11_scratch_sanity.png", "resnet18_scratch_pointing.png"):
    with Image.open(out / name) as image:
      assert image.size[0] > 100 and image.size[1] > 100
  figures = sorted(path.name for path in out.glob("*.png"))
  listed = re.findall(r"^!\[[^]]*\]\(([^)]+)\)$", summary_md.split("## Figures")[1], re.M)
  assert sorted(listed) == figures


def test_the_report_page_shows_every_map_and_opens_in_a_browser(finished, chromium, tmp_path):
  """report/index.html: a card per run x method x image with that map's values; in
  Chromium its script runs cleanly and every picture (embedded or beside it) loads."""
  workdir, _ = finished
  out = workdir / "report"
  rows = report.read_results(out)
  page = (out / "index.html").read_text()
  cards = re.findall(r'<figure class="card" data-model="([^"]*)" data-method="([^"]*)"'
                     r'[^>]*><img src="data:image/png;base64,[^"]+" alt="[^"]*"><figcaption>'
                     r"[^:<]+: image ([^<]+)<br>(.*?)</figure>", page, re.S)
  expected = {(f"{r['model']} ({r['mode']})", r["method"], str(r["image_id"])) for r in rows}
  assert len(cards) == len(expected)
  assert {card[:3] for card in cards} == expected
  for model, method, image, body in cards:
    metrics = {r["metric"] for r in rows if (f"{r['model']} ({r['mode']})", r["method"],
                                             str(r["image_id"])) == (model, method, image)}
    assert body.count('<td class="number">') == len(metrics)
  copy = tmp_path / "report"
  shutil.copytree(out, copy)
  driven = headless_chromium.driven_page(page, "", copy / "driven.html")
  dom, messages = headless_chromium.dom(chromium, driven, tmp_path)
  result = headless_chromium.driven_result(dom)
  assert messages == [] and result["errors"] == [] and 'data-script="ready"' in dom
  figures = sorted(path.name for path in out.glob("*.png"))
  sources = [src for src, _ in result["images"]]
  assert sorted(src for src in sources if src.endswith(".png")) == figures
  assert len(sources) == len(figures) + len(cards)
  assert all(width > 0 for _, width in result["images"])
  shot, messages = headless_chromium.screenshot(chromium, copy / "index.html", tmp_path,
                                                (1200, 1600))
  assert messages == []
  headless_chromium.check_screenshot(shot, (1200, 1600))


def test_maps_and_scores_match_the_library_functions(finished):
  """The stored maps and AUCs are what the methods and metrics give on the same images."""
  workdir, _ = finished
  config = tiny_benchmark.get_config()
  from salijax import methods, metrics, models  # noqa: PLC0415
  from salijax.pipeline import evaluation_set, stage_helpers, trained_models  # noqa: PLC0415
  run = benchmark_config.Run("resnet18", "scratch")
  module, variables = trained_models.load_run(str(workdir), run,
                                              trained_models.load_run_record(str(workdir), run))
  clf = models.classifier(module, variables)
  eval_set = evaluation_set.read(workdir)
  source = evaluation_set.load_source(config, config.eval_split)
  positions = eval_set.batch_indices(config.batch_size)[1]  # the padded batch
  batch = evaluation_set.eval_batch(config, source, eval_set, positions, len(positions))
  stored = benchmark.bw.load_arrays(
      benchmark.bw.batch_path(workdir, "explain", run.name, "rise", "ground_truth", "none",
                              batch=1))
  np.testing.assert_array_equal(stored["label"], batch["label"])  # ground-truth mode
  maps = methods.rise(clf, batch["image"], batch["label"],
                      key=stage_helpers.method_key(config.seed, "rise", 1),
                      **benchmark_config.method_options(config, "rise"))
  np.testing.assert_allclose(stored["maps"], maps, rtol=1e-5, atol=1e-6)
  scores = benchmark.bw.load_arrays(
      benchmark.bw.batch_path(workdir, "evaluate", run.name, "rise", "ground_truth", "none",
                              batch=1))
  expected = metrics.insertion_deletion(clf, batch["image"], maps, batch["label"],
                                        **config.insertion_deletion.to_dict())
  np.testing.assert_allclose(scores["insertion_auc"], expected.insertion_auc, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(scores["deletion_curve"], expected.deletion_curve, rtol=1e-5,
                             atol=1e-6)


def test_a_finished_run_is_not_redone(finished):
  workdir, summary = finished
  before = {p: p.stat().st_mtime_ns for p in (workdir / "report").iterdir()}
  again = benchmark.run_benchmark(tiny_benchmark.get_config(), workdir, progress=False)
  assert again["stage_seconds"] == summary["stage_seconds"]
  assert {p: p.stat().st_mtime_ns for p in (workdir / "report").iterdir()} == before


def test_another_config_in_the_same_workdir_is_refused(finished):
  workdir, _ = finished
  config = tiny_benchmark.get_config()
  config.num_images = 5
  with pytest.raises(ValueError, match="different config.*num_images"):
    benchmark.run_benchmark(config, workdir, progress=False)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
  """The ResNet18-only tiny benchmark, killed (SIGKILL) during the explain stage, then resumed."""
  workdir = tmp_path_factory.mktemp("killed")
  process = subprocess.Popen(_command(workdir), cwd=REPO, env=binary_environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + TIMEOUT
  while not list((workdir / "explain").glob("*/*/*/*/batch_*.npz")):
    assert process.poll() is None, "the benchmark ended before the explain stage"
    assert time.monotonic() < deadline, "no explain batch within the timeout"
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert not (workdir / "explain" / "DONE.json").exists()
  subprocess.run(_command(workdir), cwd=REPO, env=binary_environment(), check=True,
                 timeout=TIMEOUT, capture_output=True)
  return workdir


def test_killed_and_resumed_run_equals_the_uninterrupted_one(finished, resumed):
  reference = _values(report.read_results(finished[0] / "report"), model="resnet18")
  result = _values(report.read_results(resumed / "report"))
  assert result.keys() == reference.keys()
  for key, value in reference.items():
    assert result[key] == pytest.approx(value, rel=1e-5, abs=1e-6, nan_ok=True), key


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_with_two_devices_each_equal_one_process(resumed, tmp_path):
  """The explain/evaluate/sanity/report stages shared by two JAX processes, each splitting its
  batches over 2 simulated CPU devices, give the single-process results."""
  workdir = tmp_path / "shared"
  workdir.mkdir()
  for part in ("config.json", "data", "train", "models"):
    source = resumed / part
    (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / part)
  flags = [f"--coordinator_address=127.0.0.1:{_free_port()}", "--num_processes=2"]
  # Added to the caller's XLA_FLAGS (an instruction-set cap), as the reference run had them.
  env = binary_environment("--xla_force_host_platform_device_count=2")
  processes = [subprocess.Popen(_command(workdir, *flags, f"--process_id={i}"), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for i in range(2)]
  try:
    errors = [p.communicate(timeout=TIMEOUT)[1] for p in processes]
  finally:
    for p in processes:
      p.kill()
  assert [p.returncode for p in processes] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
  reference = _values(report.read_results(resumed / "report"))
  result = _values(report.read_results(workdir / "report"))
  assert result.keys() == reference.keys()
  # Float rounding of the 2-image per-device batches; the percent metrics (Average Drop is
  # 100 (Y - O) / Y) magnify it.
  for key, value in reference.items():
    assert result[key] == pytest.approx(value, rel=2e-3, abs=1e-4, nan_ok=True), key
  manifest = json.loads((workdir / "report" / "manifest.json").read_text())
  assert manifest["process_count"] == 2 and len(manifest["devices"]) == 4


def _run_records(workdir: pathlib.Path) -> dict:
  return {path.stem: json.loads(path.read_text()) for path in (workdir / "models").glob("*.json")}


def _assert_trained_alike(workdir: pathlib.Path, reference: pathlib.Path) -> None:
  """The same runs, trained alike: the test loss to 1e-2, the accuracy to one test image.

  Not their weights: one step on 1 device and on several agrees to float rounding (1e-7), but
  the second step's forward through the BatchNorms amplifies it (their batch statistics divide
  by the standard deviation of channels that the first AdamW step left nearly constant); the
  test loss after two steps differed by 3.5e-3 (relative) between 1 and 3 devices, by 2e-6
  between 3 and 8.
  """
  records, expected = _run_records(workdir), _run_records(reference)
  assert records.keys() == expected.keys() == {"resnet18_scratch"}
  num_test = tiny_benchmark.get_config().synthetic.num_test
  for name, record in records.items():
    assert record["test_loss"] == pytest.approx(expected[name]["test_loss"], rel=1e-2)
    assert abs(record["test_accuracy"] - expected[name]["test_accuracy"]) <= 1 / num_test
    assert record["steps"] == expected[name]["steps"]
  rows, reference_rows = (_values(report.read_results(w / "report")) for w in (workdir, reference))
  assert rows.keys() == reference_rows.keys()


@pytest.mark.parametrize("devices", [3, 8])
def test_the_default_batch_sizes_run_on_any_device_count(resumed, tmp_path, devices):
  """The tiny config keeps the default batch sizes (training 16, evaluation 100, explanation
  5): on 3 or 8 devices every batch is padded, and the run trains as on one device."""
  workdir = tmp_path / "devices"
  env = binary_environment(f"--xla_force_host_platform_device_count={devices}")
  run = subprocess.run(_command(workdir), cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT, check=False)
  assert run.returncode == 0, run.stderr[-5000:]
  _assert_trained_alike(workdir, resumed)
  manifest = json.loads((workdir / "report" / "manifest.json").read_text())
  assert len(manifest["devices"]) == devices


def test_the_whole_benchmark_runs_in_two_processes_in_one_command(resumed, tmp_path):
  """Two JAX processes with two devices each run every stage, training included, from an empty
  workdir: the models train as in one process."""
  workdir = tmp_path / "together"
  flags = [f"--coordinator_address=127.0.0.1:{_free_port()}", "--num_processes=2"]
  env = binary_environment("--xla_force_host_platform_device_count=2")
  processes = [subprocess.Popen(_command(workdir, *flags, f"--process_id={i}"), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for i in range(2)]
  try:
    errors = [p.communicate(timeout=TIMEOUT)[1] for p in processes]
  finally:
    for p in processes:
      p.kill()
  assert [p.returncode for p in processes] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
  for stage in benchmark.STAGES:
    assert (workdir / stage / "DONE.json").exists(), stage
  _assert_trained_alike(workdir, resumed)
  manifest = json.loads((workdir / "report" / "manifest.json").read_text())
  assert manifest["process_count"] == 2 and len(manifest["devices"]) == 4
