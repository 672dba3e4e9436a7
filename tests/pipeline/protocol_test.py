"""End to end: the label modes, diagnostics and perturbations of the protocol, and the mask
search's objective and convergence figure, on a tiny config (tiny_protocol)."""

import json
import logging
import shutil

import numpy as np
import pytest
import tiny_protocol
from PIL import Image

from salijax import methods, metrics, models, perturbations, report
from salijax.pipeline import (
    batch_units,
    benchmark,
    benchmark_config,
    evaluation_set,
    report_stage,
    stage_context,
    trained_models,
)
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.stage_helpers import method_key

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = [pytest.mark.xdist_group("pipeline_protocol"), pytest.mark.slow]

RUN = benchmark_config.Run("resnet18", "scratch")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A complete in-process run of the tiny protocol: its workdir."""
  workdir = tmp_path_factory.mktemp("protocol")
  benchmark.run_benchmark(tiny_protocol.get_config(), workdir, progress=False)
  return workdir


@pytest.fixture(scope="module")
def model(finished):
  """(classifier, every evaluation image as one batch, the model's softmax f64[N,K], eval set)."""
  config = tiny_protocol.get_config()
  module, variables = trained_models.load_run(str(finished), RUN,
                                              trained_models.load_run_record(str(finished), RUN))
  clf = models.classifier(module, variables)
  eval_set = evaluation_set.read(finished)
  source = evaluation_set.load_source(config, config.eval_split)
  count = len(eval_set.indices)
  batch = evaluation_set.eval_batch(config, source, eval_set, np.arange(count), count)
  logits = np.asarray(clf.apply(clf.variables, batch["image"]), np.float64)
  probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
  probabilities /= probabilities.sum(axis=1, keepdims=True)
  return clf, batch, probabilities, eval_set


def unit_file(workdir, stage, method, label_mode, perturbation, batch):
  return bw.load_arrays(bw.batch_path(workdir, stage, RUN.name, method, label_mode, perturbation,
                                      batch=batch))


def test_rows_cover_every_label_mode_perturbation_and_method(finished):
  config = tiny_protocol.get_config()
  rows = report.read_results(finished / "report")
  assert json.loads((finished / "report" / "results.json").read_text())[0].keys() == set(
      report.COLUMNS)
  robustness = {"robustness_spearman", "robustness_ssim", "prediction_flipped"}
  for label_mode in ("ground_truth", "predicted", "least_likely"):
    for perturbation in ("none", "rotate45", "resize0.75", "fgsm0.1"):
      for method in ("rise", "random"):
        mine = [r for r in rows if (r["label_mode"], r["perturbation"], r["method"]) == (
            label_mode, perturbation, method)]
        assert len({r["image_id"] for r in mine}) == config.num_images
        names = {r["metric"] for r in mine}
        assert {"insertion_auc", "deletion_auc", "pointing_game", "entropy"} <= names
        assert (robustness <= names) == (perturbation != "none"), (label_mode, perturbation)
  assert {r["perturbation"] for r in rows} == {"none", "rotate45", "resize0.75", "fgsm0.1"}


def test_explained_classes_follow_the_label_modes(finished, model):
  _, batch, probabilities, eval_set = model
  rows = report.read_results(finished / "report")
  position = {image_id: i for i, image_id in enumerate(eval_set.indices)}
  for row in rows:
    i = position[row["image_id"]]
    assert row["label"] == batch["label"][i]
    assert row["predicted"] == np.argmax(probabilities[i])
    want = {"ground_truth": row["label"], "predicted": np.argmax(probabilities[i]),
            "least_likely": np.argmin(probabilities[i])}[row["label_mode"]]
    assert row["explained"] == want, row
  # The least likely class is another class than the predicted one (4 classes).
  assert all(np.argmin(p) != np.argmax(p) for p in probabilities)


def test_diagnostics_are_the_models_own_softmax(finished, model):
  _, batch, probabilities, eval_set = model
  diagnostics = json.loads((finished / "report" / "diagnostics.json").read_text())
  assert diagnostics["top_k"] == 2
  entries = diagnostics["runs"][RUN.name]
  assert [e["image_id"] for e in entries] == list(eval_set.indices)
  for entry, p, label in zip(entries, probabilities, batch["label"], strict=True):
    assert entry["label"] == label and entry["label_name"] == eval_set.class_names[label]
    classes = range(len(p))
    for key, order in (("most_likely", sorted(classes, key=lambda c: (-p[c], c))),
                       ("least_likely", sorted(classes, key=lambda c: (p[c], c)))):
      assert [c["class"] for c in entry[key]] == order[:2], key
      assert [c["name"] for c in entry[key]] == [eval_set.class_names[c] for c in order[:2]]
      np.testing.assert_allclose([c["probability"] for c in entry[key]], p[order[:2]],
                                 rtol=1e-5)
    assert entry["predicted"] == entry["most_likely"][0]["class"]


def test_perturbed_units_match_the_library_functions(finished, model):
  """Batch 0 (images 0 and 1): the FGSM maps are RISE's maps of the library's FGSM images with
  the unit key; the robustness and flip metrics are recomputed from the stored maps."""
  clf, batch, probabilities, _ = model
  config = tiny_protocol.get_config()
  images, true = batch["image"][:2], batch["label"][:2]
  stored = unit_file(finished, "explain", "rise", "predicted", "fgsm0.1", 0)
  attacked = perturbations.fgsm(clf, images, true, epsilon=0.1)
  np.testing.assert_array_equal(stored["label"], np.argmax(probabilities[:2], axis=1))
  want = methods.rise(clf, attacked, stored["label"], key=method_key(config.seed, "rise", 0),
                      **benchmark_config.method_options(config, "rise"))
  np.testing.assert_allclose(stored["maps"], want, rtol=1e-5, atol=1e-6)
  scores = unit_file(finished, "evaluate", "rise", "predicted", "fgsm0.1", 0)
  attacked_predicted = np.asarray(clf.apply(clf.variables, attacked)).argmax(axis=1)
  np.testing.assert_array_equal(scores["prediction_flipped"],
                                attacked_predicted != np.argmax(probabilities[:2], axis=1))
  clean = unit_file(finished, "explain", "rise", "least_likely", "none", 0)
  rotated = unit_file(finished, "explain", "rise", "least_likely", "rotate45", 0)
  scores = unit_file(finished, "evaluate", "rise", "least_likely", "rotate45", 0)
  want = metrics.explanation_robustness(rotated["maps"],
                                        perturbations.augment_maps(clean["maps"], "rotate45"),
                                        perturbations.valid_pixels("rotate45", 32, 32))
  np.testing.assert_allclose(scores["robustness_spearman"], want.spearman, atol=1e-6)
  np.testing.assert_allclose(scores["robustness_ssim"], want.ssim, atol=1e-6)
  # The random control draws the same map for the clean and the attacked image (one key per
  # method and batch): perfectly robust to FGSM, and not to a rotation.
  rows = report.read_results(finished / "report")
  random = [r["value"] for r in rows if r["method"] == "random"
            and r["metric"] == "robustness_spearman"]
  assert len(random) == 3 * 3 * 3  # label modes x perturbations x images
  fgsm = [r["value"] for r in rows if r["method"] == "random" and r["perturbation"] == "fgsm0.1"
          and r["metric"] == "robustness_spearman"]
  np.testing.assert_allclose(fgsm, 1.0, atol=1e-6)
  rotation = [r["value"] for r in rows if r["method"] == "random"
              and r["perturbation"] == "rotate45" and r["metric"] == "robustness_spearman"]
  assert max(abs(v) for v in rotation) < 0.3


def test_summary_and_figures_show_label_modes_and_perturbations(finished):
  out = finished / "report"
  text = (out / "summary.md").read_text()
  assert "3 images, ground truth, predicted, least likely classes" in text
  for heading in ("### resnet18 (scratch), ground truth class",
                  "### resnet18 (scratch), least likely class", "## Perturbed images",
                  "### Predictions changed by the perturbations",
                  "### resnet18 (scratch), predicted class: robustness of the maps",
                  "### resnet18 (scratch), least likely class, fgsm0.1: change vs the clean "
                  "images"):
    assert f"\n{heading}\n" in text, heading
  assert "| resnet18 (scratch) |" in text and "Δ Insertion AUC" in text
  for name in ("resnet18_scratch_overlays.png", "resnet18_scratch_least_likely_overlays.png",
               "resnet18_scratch_predicted_curves.png", "resnet18_scratch_perturbations.png"):
    with Image.open(out / name) as image:
      assert image.size[0] > 100 and image.size[1] > 100, name


def test_a_resumed_run_recomputes_only_the_missing_units(finished, tmp_path):
  workdir = tmp_path / "resumed"
  shutil.copytree(finished, workdir)
  removed = [bw.batch_path(workdir, "perturb", RUN.name, "rotate45", batch=1),
             bw.batch_path(workdir, "predict", RUN.name, batch=1),
             bw.batch_path(workdir, "explain", RUN.name, "rise", "least_likely", "rotate45",
                           batch=0),
             bw.batch_path(workdir, "evaluate", RUN.name, "random", "predicted", "fgsm0.1",
                           batch=1)]
  for path in removed:
    path.unlink()
  for stage in ("perturb", "predict", "explain", "evaluate", "sanity", "report"):
    bw.done_path(workdir, stage).unlink()
  shutil.rmtree(workdir / "report")
  kept = {p: p.stat().st_mtime_ns for stage in ("perturb", "predict", "explain", "evaluate")
          for p in (workdir / stage).rglob("batch_*.npz")}
  benchmark.run_benchmark(tiny_protocol.get_config(), workdir, progress=False)
  assert all(path.exists() for path in removed)
  assert {p: p.stat().st_mtime_ns for p in kept} == kept
  reference = report.read_results(finished / "report")
  result = report.read_results(workdir / "report")
  assert len(result) == len(reference)
  for got, want in zip(result, reference, strict=True):
    assert {k: v for k, v in got.items() if k != "value"} == {
        k: v for k, v in want.items() if k != "value"}
    # The same programs on the same inputs, in this process: the same numbers.
    assert np.array_equal(got["value"], want["value"], equal_nan=True), got


def test_unreadable_units_are_named_and_computed_again(finished, tmp_path, caplog):
  """A truncated explain file and a garbage perturb (FGSM) file: the evaluate units that read
  them, redone, name them in a warning and write them again with the same arrays, and the
  report is the finished one."""
  workdir = tmp_path / "damaged"
  shutil.copytree(finished, workdir)
  explain = bw.batch_path(workdir, "explain", RUN.name, "rise", "predicted", "fgsm0.1", batch=0)
  perturb = bw.batch_path(workdir, "perturb", RUN.name, "fgsm0.1", batch=1)
  want = {path: bw.load_arrays(path) for path in (explain, perturb)}
  explain.write_bytes(explain.read_bytes()[:200])
  perturb.write_bytes(b"\0" * 1000)
  for path in (bw.batch_path(workdir, "evaluate", RUN.name, "rise", "predicted", "fgsm0.1",
                             batch=0),
               bw.batch_path(workdir, "evaluate", RUN.name, "random", "ground_truth", "fgsm0.1",
                             batch=1)):
    path.unlink()
  for stage in ("evaluate", "report"):
    bw.done_path(workdir, stage).unlink()
  shutil.rmtree(workdir / "report")
  with caplog.at_level(logging.WARNING):
    benchmark.run_benchmark(tiny_protocol.get_config(), workdir, progress=False)
  warnings = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
  assert sorted(w.split(":")[0] for w in warnings) == sorted(map(str, want)), warnings
  for path, arrays in want.items():
    got = bw.load_arrays(path)
    assert got.keys() == arrays.keys()
    for name in set(arrays) - {"seconds"}:  # the method's wall time differs
      np.testing.assert_array_equal(got[name], arrays[name], err_msg=f"{path}: {name}")
  reference = report.read_results(finished / "report")
  result = report.read_results(workdir / "report")
  assert len(result) == len(reference)
  for got, want_row in zip(result, reference, strict=True):
    assert np.array_equal(got["value"], want_row["value"], equal_nan=True), got


def test_the_report_draws_the_convergence_beside_the_costs(finished):
  path = finished / "report" / "resnet18_scratch_mask_search.png"
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 800
    assert np.asarray(image.convert("L")).std() > 10
  assert "resnet18_scratch_mask_search.png" in (finished / "report" / "index.html").read_text()
  config = tiny_protocol.get_config()
  ctx = stage_context.Context(config, str(finished), (RUN,), unit_stages={})
  costs = report_stage.method_costs(ctx, RUN)
  assert list(costs) == ["rise", "mask_search", "random"]
  assert (costs["mask_search"].kind, costs["mask_search"].passes) == (
      "forward", tiny_protocol.MASK_SEARCH_STEPS)
  assert (costs["rise"].kind, costs["rise"].passes, costs["random"].kind) == (
      "forward", 8, None)  # a forward per mask
  # Seconds per image: the median over the method's units (2 batches x 3 label modes x 4
  # image versions) of their seconds over their images.
  per_image = [float(a["seconds"]) / len(a["position"]) for a in (
      bw.load_arrays(batch_units.unit_path(str(finished), "explain", batch_units.Unit(
          RUN, "mask_search", mode, perturbation, b)))
      for mode in ("ground_truth", "predicted", "least_likely")
      for perturbation in ("none", "rotate45", "resize0.75", "fgsm0.1") for b in (0, 1))]
  assert costs["mask_search"].seconds == pytest.approx(np.median(per_image))


@pytest.mark.parametrize("perturbation", ["none", "rotate45"])
def test_explain_files_hold_the_maps_and_objective_of_the_library_function(finished,
                                                                           perturbation):
  """Batch 0 (images 0 and 1) of the predicted class: the stored maps and objective are
  mask_search_with_objective's on the unit's images with the unit's key."""
  config = tiny_protocol.get_config()
  ctx = stage_context.Context(config, str(finished), (RUN,), unit_stages={})
  clf = models.classifier(*trained_models.load_run(
      str(finished), RUN, trained_models.load_run_record(str(finished), RUN)))
  stored = unit_file(finished, "explain", "mask_search", "predicted", perturbation, 0)
  batch = ctx.batch(ctx.eval_set().batch_indices(config.batch_size)[0], config.batch_size, RUN)
  images = batch["image"] if perturbation == "none" else bw.load_arrays(
      bw.batch_path(finished, "perturb", RUN.name, perturbation, batch=0))["images"]
  want = methods.mask_search_with_objective(
      clf, images, stored["label"], key=method_key(config.seed, "mask_search", 0),
      **benchmark_config.method_options(config, "mask_search"))
  assert stored["objective"].shape == (2, tiny_protocol.MASK_SEARCH_STEPS)
  np.testing.assert_allclose(stored["objective"], want.objective, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stored["maps"], want.maps, rtol=1e-5, atol=1e-6)
  rows = [r for r in report.read_results(finished / "report")
          if (r["method"], r["perturbation"]) == ("mask_search", perturbation)]
  assert {"insertion_auc", "deletion_auc"} <= {r["metric"] for r in rows}
  assert len({r["image_id"] for r in rows}) == config.num_images
