"""Tests of salijax.report.manifest."""

import datetime
import json
import pathlib
import shutil
import subprocess

import jax
import ml_collections
import numpy as np
import pytest

import salijax
from salijax.report.manifest import PACKAGES, build_manifest, git_state


def make_config():
  config = ml_collections.ConfigDict()
  config.model = "resnet18"
  config.image_size = (64, 64)
  config.learning_rate = 0.1
  config.methods = ["gradcam", "rise"]
  config.data = ml_collections.ConfigDict({"name": "synthetic_shapes", "data_dir": None})
  return config


def test_is_json_with_every_key():
  manifest = build_manifest(make_config())
  json.dumps(manifest, allow_nan=False)
  assert set(manifest) == {"salijax_version", "python", "packages", "git", "devices",
                           "process_count", "xla_flags", "matmul_precision", "config", "created"}
  assert manifest["salijax_version"] == salijax.__version__
  assert set(manifest["packages"]) == set(PACKAGES)
  assert manifest["packages"]["jax"] == jax.__version__
  assert manifest["packages"]["numpy"] == np.__version__
  assert manifest["process_count"] == jax.process_count()
  assert manifest["devices"] == [
      {"id": d.id, "platform": d.platform, "kind": d.device_kind, "process_index": d.process_index}
      for d in jax.devices()]
  created = datetime.datetime.fromisoformat(manifest["created"])
  assert created.utcoffset() == datetime.timedelta(0)
  assert abs(datetime.datetime.now(datetime.UTC) - created) < datetime.timedelta(minutes=5)


def test_config_round_trips():
  config = make_config()
  stored = json.loads(json.dumps(build_manifest(config)["config"]))
  assert ml_collections.ConfigDict(stored).to_dict() == json.loads(json.dumps(config.to_dict()))
  assert stored["image_size"] == [64, 64] and stored["data"]["data_dir"] is None


def test_a_plain_mapping_with_numpy_and_other_values():
  config = {"steps": np.int64(3), "scale": np.float32(0.5), "mask": np.array([1, 2]),
            "path": pathlib.Path("/data/x"), 4: "int key"}
  stored = build_manifest(config)["config"]
  assert stored == {"steps": 3, "scale": 0.5, "mask": [1, 2], "path": "/data/x", "4": "int key"}
  json.dumps(stored, allow_nan=False)


def test_stage_seconds_extra_and_environment(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  manifest = build_manifest({}, stage_seconds={"train": 12, "explain": np.float64(3.5)},
                            extra={"note": ("a", 1)})
  assert manifest["stage_seconds"] == {"train": 12.0, "explain": 3.5}
  assert manifest["extra"] == {"note": ["a", 1]}
  assert manifest["xla_flags"] == "--xla_force_host_platform_device_count=1"
  assert manifest["matmul_precision"] == jax.config.jax_default_matmul_precision
  json.dumps(manifest, allow_nan=False)
  monkeypatch.delenv("XLA_FLAGS")
  assert build_manifest({})["xla_flags"] == ""


def test_works_outside_a_git_checkout(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  build_manifest({})  # never raises, whatever the checkout
  assert git_state(tmp_path) is None
  monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
  assert git_state(pathlib.Path(salijax.__file__).parent) is None
  assert build_manifest({})["git"] is None


def test_git_state_of_a_checkout(tmp_path):
  git = shutil.which("git")
  if git is None:
    pytest.skip("no git executable")
  def run(*args):
    return subprocess.run([git, "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=tmp_path, check=True, capture_output=True, text=True).stdout
  run("init", "-q")
  (tmp_path / "a.txt").write_text("one\n")
  run("add", "a.txt")
  run("commit", "-q", "-m", "first")
  head = run("rev-parse", "HEAD").strip()
  (tmp_path / "untracked.txt").write_text("not part of the code\n")
  assert git_state(tmp_path) == {"revision": head, "dirty": False}
  (tmp_path / "sub").mkdir()
  assert git_state(tmp_path / "sub") == {"revision": head, "dirty": False}
  (tmp_path / "a.txt").write_text("two\n")
  assert git_state(tmp_path) == {"revision": head, "dirty": True}


@pytest.mark.parametrize("kwargs, pattern", [
    ({"config": ["not", "a", "mapping"]}, "config"),
    ({"config": {}, "stage_seconds": {"train": "fast"}}, r"stage_seconds\['train'\]"),
    ({"config": {}, "stage_seconds": [1.0]}, "stage_seconds"),
    ({"config": {}, "extra": "text"}, "extra"),
])
def test_bad_inputs_are_rejected(kwargs, pattern):
  with pytest.raises(TypeError, match=pattern):
    build_manifest(**kwargs)
