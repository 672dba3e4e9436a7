"""Tests of explain_images' layers and model_loading.at_layer on a random ResNet18 at 64 px."""

import json
import pathlib
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from salijax import methods, models
from salijax.pipeline import explain_image, model_loading
from salijax.pipeline.model_loading import LoadedModel

pytestmark = pytest.mark.xdist_group("pipeline_explain_image")

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "methods"))
sys.path.insert(0, str(TESTS / "pipeline"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above
from tiny_workdir import random_variables  # noqa: E402 - tests/pipeline, just above

SIZE = 64  # layer3 of a ResNet18 is 4 x 4 there, layer4 2 x 2


@pytest.fixture(scope="module")
def resnet():
  """(LoadedModel "resnet" at its default layer, its module, its variables)."""
  module = models.create("resnet18", num_classes=3)
  variables = random_variables(module, seed=2)
  model = LoadedModel("resnet", models.classifier(module, variables), ("a", "b", "c"), SIZE,
                      1.0, module=module, layer=models.default_tap(module))
  return model, module, variables


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("images") / "photo.png"
  rng = np.random.default_rng(4)
  Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(path)
  return str(path)


def test_at_layer_keeps_the_variables_and_moves_the_features(resnet):
  model, module, variables = resnet
  moved = model_loading.at_layer(model, "layer3")
  assert moved.layer == "layer3" and moved.classifier.variables is model.classifier.variables
  images = np.zeros((1, SIZE, SIZE, 3), np.float32)
  direct = models.classifier(module, variables, "layer3")
  assert (jax.eval_shape(moved.classifier.features, moved.classifier.variables, images).shape
          == jax.eval_shape(direct.features, direct.variables, images).shape == (1, 4, 4, 256))


def test_gradcam_is_read_at_the_chosen_layer(resnet, image_path, tmp_path):
  """Definition: the map is methods.gradcam of the classifier built at that layer directly;
  it is not the default layer's map; predictions.json records each model's layer."""
  model, module, variables = resnet
  cnn = LoadedModel("cnn", tiny_classifiers.random_cnn(jax.random.key(0), 3), ("a", "b", "c"),
                    SIZE, 1.0)
  (record,) = explain_image.explain_images([image_path], [model, cnn], ["gradcam"], tmp_path,
                                           layers={"resnet": "layer3"})
  label = np.array([record["explained"]["resnet"][0]["class"]], np.int32)
  key = jax.random.fold_in(jax.random.key(0), 0)
  with np.load(record["arrays"]) as arrays:
    image, saliency = arrays["resnet/image"][None], arrays["resnet/gradcam"]
  at_layer3 = methods.get("gradcam")(models.classifier(module, variables, "layer3"), image,
                                     label, key=key)
  np.testing.assert_array_equal(saliency, np.asarray(at_layer3)[0])
  at_layer4 = np.asarray(methods.get("gradcam")(model.classifier, image, label, key=key))[0]
  assert not np.allclose(saliency, at_layer4)
  summary = json.loads((tmp_path / "predictions.json").read_text())
  assert [entry["layer"] for entry in summary["models"]] == ["layer3", None]


def test_bad_layers_fail_before_any_image_is_read(resnet, tmp_path):
  model, module, _ = resnet
  cnn = LoadedModel("cnn", tiny_classifiers.random_cnn(jax.random.key(0), 3), ("a", "b", "c"),
                    SIZE, 1.0)
  out_dir = tmp_path / "out"
  absent = [str(tmp_path / "absent.png")]
  with pytest.raises(ValueError, match="layers: resnet: layer: expected a tap name of this"
                     " model") as info:
    explain_image.explain_images(absent, [model, cnn], ["gradcam"], out_dir,
                                 layers={"resnet": "layer5"})
  taps = models.tap_names(module)
  assert "'layer5'" in str(info.value)
  assert sum(f"'{tap}'" in str(info.value) for tap in taps) >= 4  # some valid taps listed
  with pytest.raises(ValueError, match=r"layers: no model is named \['vgg'\]; the models are"
                     r" \['resnet', 'cnn'\]"):
    explain_image.explain_images(absent, [model, cnn], ["gradcam"], out_dir, layers={"vgg": "x"})
  with pytest.raises(ValueError, match="layers: layer: cnn is not a salijax.models model"):
    explain_image.explain_images(absent, [model, cnn], ["gradcam"], out_dir, layers={"cnn": "x"})
  with pytest.raises(TypeError, match="layers must be a mapping"):
    explain_image.explain_images(absent, [model], ["gradcam"], out_dir, layers=["layer3"])
  with pytest.raises(TypeError, match="layer must be a tap name"):
    explain_image.explain_images(absent, [model], ["gradcam"], out_dir, layers={"resnet": 3})
  assert not out_dir.exists()
