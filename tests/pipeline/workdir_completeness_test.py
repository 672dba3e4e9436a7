"""Tests of the workdir check: a workdir copied in part gets a message naming what is missing."""

import pathlib

import pytest
import tiny_benchmark

from salijax.pipeline import benchmark, benchmark_config, evaluation_set, trained_models
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.workdir_completeness import IncompleteWorkdirError, check_complete

RUN = benchmark_config.Run("resnet18", "scratch")


def mark(workdir: pathlib.Path, *stages: str) -> None:
  for stage in stages:
    bw.mark_done(workdir, stage, {"seconds": 1.0})


def test_a_complete_workdir_passes(tmp_path):
  check_complete(tmp_path, [RUN], benchmark.STAGES)  # nothing done yet
  mark(tmp_path, "data", "train", "perturb")
  bw.write_json(evaluation_set.path(tmp_path), {})
  for path in trained_models.paths(str(tmp_path), RUN):
    path.parent.mkdir(exist_ok=True)
    path.write_text("{}")
  check_complete(tmp_path, [RUN], benchmark.STAGES)


def test_train_marked_done_without_the_exported_models_is_named(tmp_path):
  """The issue's case: train/ copied with its DONE.json, models/ not."""
  mark(tmp_path, "data", "train", "perturb", "predict")
  bw.write_json(evaluation_set.path(tmp_path), {})
  variables, record = trained_models.paths(str(tmp_path), RUN)
  record.parent.mkdir()
  record.write_text("{}")  # the record copied, the variables not
  with pytest.raises(IncompleteWorkdirError) as error:
    check_complete(tmp_path, [RUN], benchmark.STAGES)
  message = str(error.value)
  assert "the train stage is marked done (train/DONE.json)" in message
  assert "but models/resnet18_scratch.msgpack is missing" in message
  assert "models/resnet18_scratch.json" not in message
  assert "rerun from the train stage: delete the DONE.json of train, perturb, predict" in message
  for stage in ("train", "perturb", "predict"):
    assert str(bw.done_path(tmp_path, stage)) in message
  assert str(bw.done_path(tmp_path, "data")) not in message


def test_data_marked_done_without_the_evaluation_set_is_named(tmp_path):
  mark(tmp_path, "data")
  with pytest.raises(IncompleteWorkdirError, match=r"the data stage is marked done "
                     r"\(data/DONE.json\) but data/eval_set.json is missing"):
    check_complete(tmp_path, [RUN], benchmark.STAGES)


def test_a_stage_done_after_one_that_is_not_is_named(tmp_path):
  mark(tmp_path, "data", "explain", "evaluate")
  bw.write_json(evaluation_set.path(tmp_path), {})
  with pytest.raises(IncompleteWorkdirError, match=r"the explain, evaluate stages are marked "
                     r"done but the train stage before them is not \(no train/DONE.json"):
    check_complete(tmp_path, [RUN], benchmark.STAGES)


def test_a_unit_stage_run_again_on_its_own_passes(tmp_path):
  """evaluate's DONE.json deleted to redo it, sanity after it still done: its batch files
  are made again, the same, when missing, so nothing later is stale."""
  mark(tmp_path, "data", "train", "perturb", "predict", "explain", "sanity")
  bw.write_json(evaluation_set.path(tmp_path), {})
  for path in trained_models.paths(str(tmp_path), RUN):
    path.parent.mkdir(exist_ok=True)
    path.write_text("{}")
  check_complete(tmp_path, [RUN], benchmark.STAGES)


def test_the_benchmark_stops_on_a_half_copied_workdir_before_any_stage(tmp_path):
  config = tiny_benchmark.get_config("resnet18")
  mark(tmp_path, "data", "train")
  bw.write_json(evaluation_set.path(tmp_path), {})
  with pytest.raises(IncompleteWorkdirError, match=r"models/resnet18_scratch.msgpack, "
                     r"models/resnet18_scratch.json are missing"):
    benchmark.run_benchmark(config, tmp_path, progress=False)
  assert not (tmp_path / "perturb").exists()
