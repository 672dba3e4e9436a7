"""Tests of salijax.pipeline.batch_units: unit files, the unit loop and reading units back."""

import contextlib
import io
import logging
import pathlib

import numpy as np
import pytest

from salijax.pipeline import batch_units
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.benchmark_config import Run
from salijax.progress import Progress

RUN = Run("resnet18", "scratch")
OTHER = Run("vgg11", "scratch")


class StubContext:
  """What the unit loop uses of a `stage_context.Context`, with no dataset or model; loading a
  model takes 2 s of its clock, and its progress lines go to `progress_text`."""

  def __init__(self, workdir: pathlib.Path):
    self.workdir = str(workdir)
    self.unit_stages = {}
    self.loaded = []  # the runs whose model was asked for
    self.now = 0.0
    self.progress_text = io.StringIO()

  def model(self, run):
    self.loaded.append(run.name)
    self.now += 2.0
    return run.name

  def batch(self, positions, size, run):
    return {"position": np.asarray(positions, np.int32), "size": size, "run": run.name}

  @contextlib.contextmanager
  def progress_bar(self, stage, unit="img"):
    with Progress(stage, unit=unit, stream=self.progress_text, clock=lambda: self.now) as bar:
      yield bar


def _stage(ctx, units, computed):
  """A stage whose unit (run, batch) holds its batch's positions times 10, the run of its
  model and the run its batch was made for (the run's interpolation)."""
  def work(ctx, model, batch, unit):
    del ctx
    computed.append(unit)
    return {"values": batch["position"] * 10, "model": np.array(model),
            "batch_run": np.array(batch["run"])}

  stage = batch_units.UnitStage(
      "predict", lambda ctx: units, work,
      images=lambda ctx, unit: (np.arange(2 * unit.batch, 2 * unit.batch + 2), 2))
  ctx.unit_stages["predict"] = stage
  return stage


def test_unit_files_follow_the_workdir_layout():
  paths = {batch_units.unit_path("W", stage, unit) for stage, unit in [
      ("perturb", batch_units.PerturbationUnit(RUN, "rotate45", 3)),
      ("predict", batch_units.BatchUnit(RUN, 3)),
      ("explain", batch_units.Unit(RUN, "rise", "predicted", "none", 3)),
      ("sanity", batch_units.SanityUnit(RUN, "gradcam"))]}
  assert paths == {pathlib.Path(p) for p in (
      "W/perturb/resnet18_scratch/rotate45/batch_00003.npz",
      "W/predict/resnet18_scratch/batch_00003.npz",
      "W/explain/resnet18_scratch/rise/predicted/none/batch_00003.npz",
      "W/sanity/resnet18_scratch/gradcam.npz")}


def test_the_loop_computes_the_missing_units_in_order(tmp_path):
  ctx = StubContext(tmp_path)
  units = [batch_units.BatchUnit(run, b) for run in (RUN, OTHER) for b in range(2)]
  computed = []
  stage = _stage(ctx, units, computed)
  bw.save_arrays(batch_units.unit_path(ctx.workdir, "predict", units[1]), {"values": [0]})
  assert stage(ctx) == {}
  assert computed == [units[0], units[2], units[3]]
  assert ctx.loaded == ["resnet18_scratch", "vgg11_scratch", "vgg11_scratch"]
  # 8 images, 2 of them done before: the rate counts the 6 computed in 3 x 2 s.
  assert ctx.progress_text.getvalue() == "predict: 8/8 img (100%), 1 img/s, 0:06 elapsed\n"
  arrays = bw.load_arrays(batch_units.unit_path(ctx.workdir, "predict", units[3]))
  np.testing.assert_array_equal(arrays["values"], [20, 30])
  assert arrays["model"] == arrays["batch_run"] == "vgg11_scratch"
  stage(ctx)  # resumed: every file exists
  assert len(computed) == 3


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_an_unreadable_unit_is_named_and_computed_again(tmp_path, caplog, damage):
  ctx = StubContext(tmp_path)
  unit = batch_units.BatchUnit(OTHER, 1)
  computed = []
  _stage(ctx, [unit], computed)(ctx)
  path = batch_units.unit_path(ctx.workdir, "predict", unit)
  stored = path.read_bytes()
  if damage == "truncated":
    path.write_bytes(stored[:len(stored) // 2])
  elif damage == "garbage":
    path.write_bytes(b"not an npz file" * 20)
  else:
    path.unlink()
  with caplog.at_level(logging.WARNING):
    arrays = batch_units.read(ctx, "predict", unit)
  assert computed == [unit, unit]
  np.testing.assert_array_equal(arrays["values"], [20, 30])
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1 and str(path) in warnings[0] and "cannot be read" in warnings[0]
  caplog.clear()  # rewritten: read again without a warning or another computation
  np.testing.assert_array_equal(batch_units.read(ctx, "predict", unit)["values"], [20, 30])
  assert computed == [unit, unit] and not caplog.records
