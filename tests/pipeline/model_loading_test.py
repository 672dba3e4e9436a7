"""Tests of salijax.pipeline.model_loading: ImageNet models from .pth files, trained workdirs."""

import jax
import numpy as np
import pytest
from tiny_workdir import CLASS_NAMES, make_tiny_workdir

from salijax import models, porting
from salijax.pipeline import model_loading
from salijax.train import load_trained

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("pipeline_model_loading")

IMAGES = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def resnet18_pth(torch, torch_models, tmp_path_factory):
  """A random-weight torchvision ResNet18 (1000 classes) saved with torch.save."""
  path = tmp_path_factory.mktemp("pth") / "random_resnet18.pth"
  torch.save(torch_models.build("resnet18", seed=3).state_dict(), path)
  return path


def feature_channels(model):
  clf = model.classifier
  return jax.eval_shape(clf.features, clf.variables, IMAGES).shape[-1]


def logits(model):
  clf = model.classifier
  return np.asarray(jax.jit(clf.apply)(clf.variables, IMAGES))


def test_pretrained_model_from_a_pth_equals_a_fresh_port(resnet18_pth):
  model = model_loading.pretrained_model("resnet18", resnet18_pth)
  expected = np.asarray(jax.jit(models.create("resnet18").apply)(
      porting.load_weights("resnet18", resnet18_pth, num_classes=1000), IMAGES))
  assert expected.shape == (2, 1000) and expected.std() > 0.1
  np.testing.assert_array_equal(logits(model), expected)  # one program, the same weights
  assert model.name == "resnet18 (random_resnet18.pth)"
  assert len(model.class_names) == 1000 and model.class_names[0] == "tench"
  assert (model.image_size, model.crop_fraction) == (224, 0.875)


def test_pretrained_model_explains_the_requested_layer(resnet18_pth):
  default = model_loading.pretrained_model("resnet18", resnet18_pth)
  layer3 = model_loading.pretrained_model("resnet18", resnet18_pth, layer="layer3")
  assert (feature_channels(default), feature_channels(layer3)) == (512, 256)


def test_torchvision_weights_come_from_the_verified_cache(resnet18_pth, monkeypatch, tmp_path):
  calls = []

  def pretrained(arch, *, cache_dir=None):
    calls.append((arch, cache_dir))
    return resnet18_pth

  monkeypatch.setattr(porting, "pretrained", pretrained)
  model = model_loading.pretrained_model("resnet18", cache_dir=tmp_path)
  assert calls == [("resnet18", tmp_path)]
  assert model.name == "resnet18 (ImageNet)"


def test_pretrained_model_refuses_a_head_of_other_classes(torch, torch_models, tmp_path):
  path = tmp_path / "ten_classes.pth"
  torch.save(torch_models.build("resnet18", num_classes=10).state_dict(), path)
  with pytest.raises(ValueError, match=r"ten_classes.pth has no torchvision ImageNet head"
                                       r" \(fc.weight with 1000 rows; shape \(10, 512\)\)"):
    model_loading.pretrained_model("resnet18", path)


def test_pretrained_model_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="arch: expected one of"):
    model_loading.pretrained_model("resnet19", tmp_path / "x.pth")
  with pytest.raises(ValueError, match="weights: expected 'torchvision' or the path"):
    model_loading.pretrained_model("resnet18", "none")
  with pytest.raises(ValueError, match="x.pth'?, which is not a file"):
    model_loading.pretrained_model("resnet18", tmp_path / "x.pth")


def test_trained_model_has_the_runs_classes_geometry_and_logits(tmp_path):
  workdir = tmp_path / "tiny_run"
  make_tiny_workdir(workdir)
  model = model_loading.trained_model(workdir)
  module, variables, _ = load_trained(workdir)
  expected = np.asarray(jax.jit(module.apply)(variables, IMAGES))
  assert expected.std() > 0.01
  np.testing.assert_array_equal(logits(model), expected)
  assert model.class_names == CLASS_NAMES
  assert (model.image_size, model.crop_fraction) == (32, 0.75)
  assert model.name == "resnet18 (scratch, tiny_run)"
  layer2 = model_loading.trained_model(workdir, layer="layer2")
  assert feature_channels(layer2) == 128
  with pytest.raises(ValueError, match="holds no 'latest' checkpoint"):
    model_loading.trained_model(workdir, which="latest")
  with pytest.raises(ValueError, match="no training run"):
    model_loading.trained_model(tmp_path / "empty")
