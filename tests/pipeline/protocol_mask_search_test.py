"""End to end: the mask search protocol (experiments/configs/protocol_mask_search.py) at a tiny
size: its maps and objective in the explain files, its convergence figure in the report."""

import numpy as np
import pytest
import tiny_mask_search
from PIL import Image

from experiments.configs import protocol_mask_search
from salijax import methods, models, report
from salijax.pipeline import (
    batch_units,
    benchmark,
    benchmark_config,
    report_stage,
    stage_context,
    trained_models,
)
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.stage_helpers import method_key

pytestmark = [pytest.mark.xdist_group("pipeline_mask_search"), pytest.mark.slow]

RUN = benchmark_config.Run("resnet18", "scratch")


def test_the_config_runs_the_papers_settings():
  config = protocol_mask_search.get_config()
  benchmark_config.validate_config(config)
  assert "mask_search" in benchmark_config.method_names(config)
  options = benchmark_config.method_options(config, "mask_search")
  assert options == {"grid": 8, "initial_fraction": 0.3, "num_steps": 5000, "rate": 0.02,
                     "threshold": 0.96}
  # The paper's settings are the method's defaults (docs/methods.md#mask_search).
  assert {k: v for k, v in methods.info("mask_search").defaults().items() if k in options} == (
      options)
  assert "--config=experiments/configs/protocol_mask_search.py" in protocol_mask_search.__doc__


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A complete in-process run of the tiny mask search protocol: its workdir."""
  workdir = tmp_path_factory.mktemp("mask_search")
  benchmark.run_benchmark(tiny_mask_search.get_config(), workdir, progress=False)
  return workdir


def test_the_report_draws_the_convergence_beside_the_costs(finished):
  path = finished / "report" / "resnet18_scratch_mask_search.png"
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 800
    assert np.asarray(image.convert("L")).std() > 10
  assert "resnet18_scratch_mask_search.png" in (finished / "report" / "index.html").read_text()
  config = tiny_mask_search.get_config()
  ctx = stage_context.Context(config, str(finished), (RUN,), unit_stages={})
  costs = report_stage.method_costs(ctx, RUN)
  assert list(costs) == ["mask_search", "gradcam", "random"]
  assert (costs["mask_search"].kind, costs["mask_search"].passes) == (
      "forward", tiny_mask_search.NUM_STEPS)
  assert (costs["gradcam"].kind, costs["random"].kind) == ("gradient", None)
  # Seconds per image: the median over the method's units (2 batches x 2 label modes x 2
  # image versions) of their seconds over their images.
  per_image = [float(a["seconds"]) / len(a["position"]) for a in (
      bw.load_arrays(batch_units.unit_path(str(finished), "explain", batch_units.Unit(
          RUN, "mask_search", mode, perturbation, b)))
      for mode in ("ground_truth", "predicted") for perturbation in ("none", "rotate45")
      for b in (0, 1))]
  assert costs["mask_search"].seconds == pytest.approx(np.median(per_image))


@pytest.mark.parametrize("perturbation", ["none", "rotate45"])
def test_explain_files_hold_the_maps_and_objective_of_the_library_function(finished,
                                                                           perturbation):
  """Batch 0 (images 0 and 1) of the predicted class: the stored maps and objective are
  mask_search_with_objective's on the unit's images with the unit's key."""
  config = tiny_mask_search.get_config()
  ctx = stage_context.Context(config, str(finished), (RUN,), unit_stages={})
  module, variables = trained_models.load_run(str(finished), RUN,
                                              trained_models.load_run_record(str(finished), RUN))
  clf = models.classifier(module, variables)
  stored = bw.load_arrays(batch_units.unit_path(str(finished), "explain", batch_units.Unit(
      RUN, "mask_search", "predicted", perturbation, 0)))
  batch = ctx.batch(ctx.eval_set().batch_indices(config.batch_size)[0], config.batch_size, RUN)
  images = batch["image"] if perturbation == "none" else bw.load_arrays(
      batch_units.unit_path(str(finished), "perturb",
                            batch_units.PerturbationUnit(RUN, perturbation, 0)))["images"]
  want = methods.mask_search_with_objective(
      clf, images, stored["label"], key=method_key(config.seed, "mask_search", 0),
      **benchmark_config.method_options(config, "mask_search"))
  assert stored["objective"].shape == (2, tiny_mask_search.NUM_STEPS)
  np.testing.assert_allclose(stored["objective"], want.objective, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stored["maps"], want.maps, rtol=1e-5, atol=1e-6)
  rows = [r for r in report.read_results(finished / "report")
          if (r["method"], r["perturbation"]) == ("mask_search", perturbation)]
  assert {"insertion_auc", "deletion_auc"} <= {r["metric"] for r in rows}
  assert len({r["image_id"] for r in rows}) == config.num_images
