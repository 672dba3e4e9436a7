"""config.compute_dtype in the benchmark and compute_dtype in explain_images."""

import json
import pathlib
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from experiments.configs import benchmark as benchmark_configs
from salijax import metrics, models
from salijax.compute_dtype import compute_dtype_of
from salijax.pipeline import benchmark_config, explain_image, stage_context, trained_models
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.model_loading import LoadedModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above


def test_a_workdir_from_before_compute_dtype_resumes_in_float32(tmp_path):
  config = benchmark_configs.get_config()
  stored = json.loads(json.dumps(config.to_dict()))
  del stored["compute_dtype"]
  (tmp_path / "config.json").write_text(json.dumps(stored))
  bw.check_same_config(tmp_path, config, (), benchmark_config.FIELDS_BEFORE)  # float32: same
  config.compute_dtype = "bfloat16"
  with pytest.raises(ValueError, match="different config.*compute_dtype"):
    bw.check_same_config(tmp_path, config, (), benchmark_config.FIELDS_BEFORE)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_stages_get_the_classifier_in_the_configs_dtype(tmp_path, monkeypatch, dtype):
  module = models.create("resnet18", num_classes=3)
  monkeypatch.setattr(trained_models, "load_run", lambda *args: (module, {"params": {}}))
  config = benchmark_configs.get_config()
  config.compute_dtype = dtype
  run = benchmark_config.Run("resnet18", "scratch")
  ctx = stage_context.Context(config, str(tmp_path), (run,), {}, records={run.name: {}})
  assert compute_dtype_of(ctx.model(run).classifier) == dtype


def test_explain_images_runs_the_forwards_in_the_dtype_given(tmp_path):
  path = tmp_path / "image.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(path)
  model = LoadedModel(name="cnn", classifier=tiny_classifiers.random_cnn(jax.random.key(0)),
                      class_names=("ant", "bee", "cat", "dog"), image_size=32,
                      crop_fraction=1.0)
  maps = {}
  for dtype in ("float32", "bfloat16"):
    out = tmp_path / dtype
    explain_image.explain_images([path], [model], ["gradcam"], out, compute_dtype=dtype)
    assert json.loads((out / "predictions.json").read_text())["compute_dtype"] == dtype
    with np.load(out / "image.npz") as arrays:
      maps[dtype] = arrays["cnn/gradcam"]
  assert maps["bfloat16"].dtype == np.float32
  assert not np.array_equal(maps["float32"], maps["bfloat16"])
  assert metrics.spearman(maps["float32"][None], maps["bfloat16"][None])[0] >= 0.99
  with pytest.raises(ValueError, match="compute_dtype"):
    explain_image.explain_images([path], [model], ["gradcam"], tmp_path / "x",
                                 compute_dtype="float64")
