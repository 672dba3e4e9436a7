"""Tests of `train_and_evaluate`: results, logs, checkpoints, and exact resume after crashes."""

import json
import math
import re
import shutil

import float_tolerance
import jax
import numpy as np
import pytest

from salijax import data
from salijax.train import checkpointing, loop, metrics_writer, trained, training_setup
from salijax.train import workdir as workdir_lib

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("train_reference_run")

REAL_BATCHES = data.batches


class Crash(Exception):
  """Stands for a kill of the training process."""


def crash_after(monkeypatch, num_steps):
  """Makes the training data raise `Crash` when asked for a batch after `num_steps` batches."""
  served = 0

  def batches(*args, training, **kwargs):
    nonlocal served
    for batch in REAL_BATCHES(*args, training=training, **kwargs):
      if training:
        if served == num_steps:
          raise Crash
        served += 1
      yield batch

  monkeypatch.setattr(data, "batches", batches)


def latest_state(workdir, config):
  """The state of the latest checkpoint, as NumPy arrays, and the setup."""
  record = workdir_lib.read_run_record(workdir)
  setup = training_setup.build_setup(config, num_classes=record["num_classes"],
                                     steps_per_epoch=record["steps_per_epoch"])
  checkpoints = checkpointing.Checkpoints(workdir, read_only=True)
  try:
    state = checkpoints.restore_latest(training_setup.abstract_state(setup, config))
  finally:
    checkpoints.close()
  return setup, jax.tree.map(np.asarray, state)


def latest_step(workdir):
  checkpoints = checkpointing.Checkpoints(workdir, read_only=True)
  try:
    return checkpoints.latest_step()
  finally:
    checkpoints.close()


def bits(tree):
  return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def logged(workdir):
  """The metrics.jsonl records without the timing field."""
  return [{k: v for k, v in r.items() if k != "images_per_sec"}
          for r in metrics_writer.read_metrics(workdir)]


def test_run_writes_results_logs_and_checkpoints(reference_run):
  _, workdir, results = reference_run
  assert json.loads(workdir_lib.results_path(workdir).read_text()) == results
  assert results["steps"] == 6 and results["resumed_from_step"] == 0
  records = metrics_writer.read_metrics(workdir)
  assert [(r["kind"], r["step"]) for r in records] == [
      ("train", 3), ("eval", 3), ("train", 5), ("train", 6), ("eval", 6)]
  evals = [r for r in records if r["kind"] == "eval"]
  assert (evals[-1]["loss"], evals[-1]["accuracy"]) == (results["loss"], results["accuracy"])
  best = max(evals, key=lambda r: (r["accuracy"], r["step"]))
  assert (results["best_step"], results["best_accuracy"]) == (best["step"], best["accuracy"])
  train = [r for r in records if r["kind"] == "train"]
  assert all(r["images_per_sec"] > 0 and np.isfinite(r["loss"]) for r in train)
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert sorted(p.name for p in workdir_lib.checkpoint_dir(workdir, "latest").iterdir()) == [
      "4", "6"]


def test_learning_rate_log_follows_the_schedule(reference_run):
  config, workdir, _ = reference_run
  schedule = training_setup.build_setup(config, num_classes=10, steps_per_epoch=3).schedule
  for record in metrics_writer.read_metrics(workdir):
    if record["kind"] == "train":  # the loop's own call of the schedule, op by op
      assert record["learning_rate"] == float(schedule(record["step"] - 1))


def test_scratch_trains_every_parameter_and_statistic(reference_run):
  config, workdir, _ = reference_run
  setup, final = latest_state(workdir, config)
  initial = training_setup.initial_state(setup, config)
  for old, new in zip(jax.tree.leaves(initial.variables), jax.tree.leaves(final.variables),
                      strict=True):
    assert not np.array_equal(old, new)


def test_eval_metrics_count_valid_rows_only(reference_run):
  # The run evaluated 20 test images in batches of 16 (12 padded rows); here
  # all 20 go in one unpadded batch, and the loss is computed in numpy.
  config, workdir, results = reference_run
  module, variables, _ = trained.load_trained(workdir, "latest")
  source = data.load("synthetic", "test", data_dir=config.data_dir,
                     synthetic=config.synthetic.to_dict())
  (batch,) = list(REAL_BATCHES(source, batch_size=20, image_size=32, training=False,
                               crop_fraction=config.crop_fraction))
  assert batch["valid"].all()
  logits = np.asarray(module.apply(variables, batch["image"], train=False), np.float64)
  log_probs = logits - logits.max(1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
  losses = -log_probs[np.arange(20), batch["label"]]
  # The run's jitted batches of 16 round resnet18's float32 sums otherwise (18 layers, fan-in
  # <= 3*3*512): ~sqrt(layers * fan-in) eps of the logits' scale.
  logit_atol = math.sqrt(18 * 3 * 3 * 512) * float_tolerance.EPS * np.abs(logits).max()
  # A cross-entropy moves by <= 2 max|dlogit|; float32 rounds its 10-term log-sum-exp and
  # the 20-term sum of the losses.
  loss_atol = (2 * logit_atol + float_tolerance.sum_atol(np.abs(logits).max() + np.log(10), 10)
               + float_tolerance.sum_atol(losses.mean(), 20))
  np.testing.assert_allclose(results["loss"], losses.mean(), rtol=0, atol=loss_atol)
  # An image whose top two logits are within the logits' error may be counted either way.
  top2 = np.sort(logits, axis=1)[:, -2:]
  ties = int((top2[:, 1] - top2[:, 0] <= 2 * logit_atol).sum())
  accuracy = (logits.argmax(1) == batch["label"]).mean()
  assert abs(results["accuracy"] - accuracy) <= ties / 20 + float_tolerance.EPS  # in float32


def test_resume_after_crashes_is_exact(reference_run, make_tiny_config, monkeypatch,
                                       tmp_path, capsys):
  _, reference_dir, reference_results = reference_run
  config = make_tiny_config()
  # Killed between epochs: steps 1-3 done, epoch 0 evaluated and saved.
  crash_after(monkeypatch, 3)
  with pytest.raises(Crash):
    loop.train_and_evaluate(config, tmp_path)
  assert latest_step(tmp_path) == 3
  # Killed inside epoch 1: steps 4-5 done, saved at 4, step 5 logged but not saved.
  crash_after(monkeypatch, 2)
  with pytest.raises(Crash):
    loop.train_and_evaluate(config, tmp_path)
  assert latest_step(tmp_path) == 4
  assert [r["step"] for r in metrics_writer.read_metrics(tmp_path)][-1] == 5
  monkeypatch.setattr(data, "batches", REAL_BATCHES)
  config.progress_bar = True  # a run-control field: may change on resume
  capsys.readouterr()
  results = loop.train_and_evaluate(config, tmp_path)

  # The progress line (stderr, not a terminal: its last line per epoch) counts the steps of
  # epoch 2 from the restored step 4 (its batch 1 of 3), the rates only the 2 steps run here.
  (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch")]
  match = re.fullmatch(r"epoch 2/2: 3/3 step \(100%\), ([0-9.]+) step/s, ([0-9.]+) img/s, "
                       r"\d+:\d\d elapsed \| loss=[0-9.]+ acc=[0-9.]+", line)
  assert match, line
  steps_per_sec, images_per_sec = map(float, match.groups())
  assert images_per_sec == pytest.approx(16 * steps_per_sec, rel=0.01)  # 3 digits each
  assert results["resumed_from_step"] == 4
  for key in ("loss", "accuracy", "best_step", "best_accuracy", "steps"):
    assert results[key] == reference_results[key], key
  assert logged(tmp_path) == logged(reference_dir)  # No duplicate or missing lines.
  _, state = latest_state(tmp_path, config)
  _, reference_state = latest_state(reference_dir, config)
  assert bits(state) == bits(reference_state)  # params, batch_stats, opt_state, step.


def test_rerunning_a_finished_run_only_reevaluates(reference_run, tmp_path):
  config, reference_dir, reference_results = reference_run
  workdir = tmp_path / "copy"
  shutil.copytree(reference_dir, workdir)
  results = loop.train_and_evaluate(config, workdir)
  assert results["resumed_from_step"] == 6
  assert (results["loss"], results["accuracy"]) == (reference_results["loss"],
                                                   reference_results["accuracy"])
  assert logged(workdir) == logged(reference_dir)


@pytest.mark.parametrize(("field", "value"), [("model", "resnet34"), ("num_epochs", 3),
                                              ("seed", 1)])
def test_workdir_of_a_different_run_is_refused(reference_run, make_tiny_config, field,
                                               value):
  _, workdir, _ = reference_run
  config = make_tiny_config()
  config[field] = value
  with pytest.raises(ValueError, match=f"different config.*{field}"):
    loop.train_and_evaluate(config, workdir)


def test_load_trained_best_and_latest(reference_run):
  config, workdir, results = reference_run
  _, state = latest_state(workdir, config)
  module, variables, loaded_config = trained.load_trained(workdir, "latest")
  assert bits(variables) == bits(state.variables)
  assert loaded_config.model == config.model
  assert workdir_lib.config_as_json(loaded_config) == (
      workdir_lib.read_run_record(workdir)["config"])
  _, best, _ = trained.load_trained(workdir, "best")
  if results["best_step"] == results["steps"]:
    assert bits(best) == bits(state.variables)
  else:
    assert bits(best) != bits(state.variables)
  logits = module.apply(best, np.zeros((2, 32, 32, 3), np.float32), train=False)
  assert logits.shape == (2, 10)
  with pytest.raises(ValueError, match="which"):
    trained.load_trained(workdir, "first")


def test_load_trained_takes_a_kept_step(reference_run):
  _, workdir, _ = reference_run  # checkpoints at steps 2, 3, 4, 6: 4 and 6 kept
  _, last, _ = trained.load_trained(workdir, "latest")
  _, six, _ = trained.load_trained(workdir, "latest", step=6)
  _, four, _ = trained.load_trained(workdir, "latest", step=4)
  assert bits(six) == bits(last) and bits(four) != bits(last)
  with pytest.raises(ValueError, match=r"keeps steps \[4, 6\], got 3"):
    trained.load_trained(workdir, "latest", step=3)
  with pytest.raises(ValueError, match="step: only with which='latest'"):
    trained.load_trained(workdir, "best", step=6)
