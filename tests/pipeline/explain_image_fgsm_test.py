"""Tests of explain_images' fgsm: each image's FGSM version, predicted and explained in a
column beside each model's, on tiny classifiers."""

import json
import pathlib
import sys

import float_tolerance
import jax
import numpy as np
import pytest
from PIL import Image

from salijax import methods, perturbations
from salijax.pipeline import explain_image
from salijax.pipeline.model_loading import LoadedModel

pytestmark = pytest.mark.xdist_group("pipeline_explain_image")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above

EPSILON = 2 / 255
REGION = (8, 20, 4, 16)


def models():
  return [LoadedModel("cnn", tiny_classifiers.random_cnn(jax.random.key(0)),
                      ("ant", "bee", "cat", "dog"), 32, 1.0),
          LoadedModel("region", tiny_classifiers.region_classifier(32, 32, REGION),
                      ("bright", "dark", "other"), 32, 1.0)]


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("images") / "photo.png"
  Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 32, 3), np.uint8)).save(path)
  return str(path)


def probabilities(model, images):
  return np.asarray(jax.nn.softmax(model.classifier.logits(images), axis=-1))


@pytest.mark.parametrize("target", ["top1", 2])
def test_the_fgsm_image_is_explained_beside_each_model(image_path, tmp_path, target):
  """Definition: the FGSM step against the image's explained class, then that image's own
  top-k and maps (target resolved on it); it lowers that class's probability (FGSM's aim)."""
  drawn = []
  panel = explain_image.explanation_panel

  def recording(path, columns, *, title, cmap):
    drawn.extend(column.model for column in columns)
    panel(path, columns, title=title, cmap=cmap)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(explain_image, "explanation_panel", recording)
    (record,) = explain_image.explain_images([image_path], models(), ["gradcam"], tmp_path,
                                             top_k=2, fgsm=EPSILON, target=target)
  names = ["cnn", f"FGSM {EPSILON:.3g}: cnn", "region", f"FGSM {EPSILON:.3g}: region"]
  assert drawn == names and list(record["predictions"]) == names
  assert explain_image.fgsm_name("cnn", EPSILON) == names[1]
  summary = json.loads((tmp_path / "predictions.json").read_text())
  assert summary["fgsm"] == EPSILON and [m["name"] for m in summary["models"]] == names[::2]
  key = jax.random.fold_in(jax.random.key(0), 0)
  with np.load(record["arrays"]) as arrays:
    for model in models():
      attacked_name = explain_image.fgsm_name(model.name, EPSILON)
      image, attacked = arrays[f"{model.name}/image"][None], arrays[f"{attacked_name}/image"]
      label = record["explained"][model.name][0]["class"]
      assert label == (target if target == 2 else record["predictions"][model.name][0]["class"])
      expected = perturbations.fgsm(model.classifier, image, np.array([label], np.int32),
                                    epsilon=EPSILON)
      np.testing.assert_array_equal(attacked, np.asarray(expected)[0])
      # x + epsilon rounds once to float32 in [0, 1]: within half an ulp of 1 (EPS / 2).
      assert np.abs(attacked - image[0]).max() <= EPSILON + float_tolerance.EPS / 2
      assert probabilities(model, attacked[None])[0, label] < probabilities(model, image)[0, label]
      (ranked,) = explain_image.top_k_classes(model, attacked[None], 2)
      assert record["predictions"][attacked_name] == ranked
      (explained,) = record["explained"][attacked_name]
      assert explained["class"] == (target if target == 2 else ranked[0]["class"])
      saliency = methods.get("gradcam")(model.classifier, attacked[None],
                                        np.array([explained["class"]], np.int32), key=key)
      np.testing.assert_array_equal(arrays[f"{attacked_name}/gradcam"], np.asarray(saliency)[0])


@pytest.mark.parametrize("fgsm,error,message", [
    (0.0, ValueError, r"fgsm must be an epsilon in \(0, 1\]"),
    (1.5, ValueError, r"fgsm must be an epsilon in \(0, 1\]"),
    (float("nan"), ValueError, "fgsm must be an epsilon"),
    ("2/255", TypeError, "fgsm must be None or an epsilon"),
    (True, TypeError, "fgsm must be None or an epsilon"),
])
def test_bad_epsilons_fail_before_any_image_is_read(tmp_path, fgsm, error, message):
  out_dir = tmp_path / "out"
  with pytest.raises(error, match=message):
    explain_image.explain_images([str(tmp_path / "absent.png")], models(), ["gradcam"], out_dir,
                                 fgsm=fgsm)
  assert not out_dir.exists()
