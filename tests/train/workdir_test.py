"""Tests of the workdir files: the run record and the same-run check."""

import ml_collections
import pytest

from salijax.train import workdir as workdir_lib


def make_config(**overrides):
  config = ml_collections.ConfigDict({"model": "resnet18", "num_epochs": 2,
                                      "crop_scale": (0.35, 1.0), "log_every_steps": 10})
  config.update(overrides)
  return config


def test_empty_workdir_holds_no_run(tmp_path):
  assert not workdir_lib.check_same_run(tmp_path, make_config())


def test_same_config_is_the_same_run(tmp_path):
  workdir_lib.write_run_record(tmp_path, make_config(), num_classes=10,
                               class_names=list("abcdefghij"), steps_per_epoch=3)
  assert workdir_lib.check_same_run(tmp_path, make_config())
  # Run-control fields may change between restarts.
  assert workdir_lib.check_same_run(tmp_path, make_config(log_every_steps=1))
  record = workdir_lib.read_run_record(tmp_path)
  assert record["num_classes"] == 10 and record["steps_per_epoch"] == 3


@pytest.mark.parametrize("override", [{"model": "vgg11"}, {"num_epochs": 3},
                                      {"crop_scale": (0.5, 1.0)}])
def test_a_different_config_is_refused(tmp_path, override):
  workdir_lib.write_run_record(tmp_path, make_config(), num_classes=10,
                               class_names=list("abcdefghij"), steps_per_epoch=3)
  field = next(iter(override))
  with pytest.raises(ValueError, match=f"different config.*{field}"):
    workdir_lib.check_same_run(tmp_path, make_config(**override))


def test_checkpoints_without_run_record_are_refused(tmp_path):
  (workdir_lib.checkpoint_dir(tmp_path, "latest") / "4").mkdir(parents=True)
  with pytest.raises(ValueError, match="no run.json"):
    workdir_lib.check_same_run(tmp_path, make_config())
