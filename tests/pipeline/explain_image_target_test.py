"""Tests of explain_images' target: the maps, records, panel and commentary facts of the
explained classes (a class index or name, or each of the top-k), on tiny classifiers."""

import json
import pathlib
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from salijax import methods, visualisation
from salijax.pipeline import commentary, explain_image
from salijax.pipeline.model_loading import LoadedModel

pytestmark = pytest.mark.xdist_group("pipeline_explain_image")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above

METHODS = ("gradcam", "rise")
OPTIONS = {"rise": {"num_masks": 16, "chunk": 8}}
SEED = 2


def cnn_model(name="cnn", classes=("ant", "bee", "cat", "dog")):
  """A random CNN with len(classes) logits, shown 32 x 32 images."""
  return LoadedModel(name, tiny_classifiers.random_cnn(jax.random.key(0), len(classes)),
                     tuple(classes), 32, 1.0)


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
  path = tmp_path_factory.mktemp("images") / "photo.png"
  Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)).save(path)
  return str(path)


def explain(image_path, out_dir, models, **kwargs):
  """(record, summary, panel columns, panel title) of explain_images on one image."""
  drawn = {}
  panel = explain_image.explanation_panel

  def recording(path, columns, *, title, cmap):
    drawn.update(columns=columns, title=title)
    panel(path, columns, title=title, cmap=cmap)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(explain_image, "explanation_panel", recording)
    chosen = kwargs.pop("methods", METHODS)
    (record,) = explain_image.explain_images(
        [image_path], models, chosen, out_dir, seed=SEED,
        method_options={name: OPTIONS[name] for name in chosen if name in OPTIONS}, **kwargs)
  summary = json.loads((out_dir / "predictions.json").read_text())
  return record, summary, drawn["columns"], drawn["title"]


def direct_maps(model, image, label):
  """{method: f32[S,S]} of the methods called directly for class `label`."""
  return {method: np.asarray(methods.get(method)(
      model.classifier, image[None], np.array([label], np.int32),
      key=jax.random.fold_in(jax.random.key(SEED), index), **OPTIONS.get(method, {})))[0]
          for index, method in enumerate(METHODS)}


def softmax(logits):
  exp = np.exp(logits - logits.max())
  return exp / exp.sum()


@pytest.mark.parametrize("target", ["not top-1 index", "BEE"])
def test_a_fixed_class_is_explained(image_path, tmp_path, target):
  """Definition: the maps of the named class (an index, or a name in any case), which is not
  the top-1 here, recorded with its probability and written under each map and in the title."""
  model = cnn_model()
  clf = model.classifier
  with Image.open(image_path) as file:
    image = np.asarray(file, np.float32) / 255
  probabilities = softmax(np.asarray(clf.logits(image[None]), np.float64)[0])
  if target == "BEE":
    label = 1
  else:
    label = target = int(np.argsort(probabilities)[1])  # the second least probable
  assert label != int(np.argmax(probabilities))
  record, summary, columns, title = explain(image_path, tmp_path, [model], target=target)
  (entry,) = record["explained"]["cnn"]
  assert entry["class"] == label and entry["name"] == model.class_names[label]
  assert entry["probability"] == pytest.approx(probabilities[label], rel=1e-5)
  assert summary["target"] == target and summary["images"] == [record]
  expected = direct_maps(model, image, label)
  with np.load(record["arrays"]) as arrays:
    np.testing.assert_array_equal(arrays["cnn/image"], image)
    for method in METHODS:
      np.testing.assert_array_equal(arrays[f"cnn/{method}"], expected[method])
  (column,) = columns
  assert list(column.maps) == list(METHODS)
  assert column.explained == {method: f"{model.class_names[label]} "
                              f"({100 * entry['probability']:.1f} %)" for method in METHODS}
  assert title == f"photo.png: maps of class {target!r}"
  page = (tmp_path / "index.html").read_text()  # the class, beside how the target chose it
  kind = "a class name" if target == "BEE" else "a class index"
  assert (f"<td>cnn</td><td>{model.class_names[label]} ({label})</td>" in page
          and f"<td>--target={target}: {kind}</td>" in page)


def test_topk_explains_each_top_class_up_to_the_fewest_classes(image_path, tmp_path):
  """Definition: with top_k=5 beside models of 4 and 3 classes, the top 3 classes of each, in
  rank order: rows class-major, arrays [3,S,S]."""
  models = [cnn_model(), cnn_model("three", ("x", "y", "z"))]
  record, summary, columns, title = explain(image_path, tmp_path, models, target="topk", top_k=5)
  assert summary["target"] == "topk" and title == "photo.png: maps of each model's top-3 classes"
  for model, column in zip(models, columns, strict=True):
    ranked = record["predictions"][model.name]
    assert len(ranked) == len(model.class_names)
    assert record["explained"][model.name] == ranked[:3]
    assert list(column.maps) == [f"top-{rank}: {method}" for rank in (1, 2, 3)
                                 for method in METHODS]
    assert list(column.explained.values())[::2] == [
        f"{entry['name']} ({100 * entry['probability']:.1f} %)" for entry in ranked[:3]]
    with np.load(record["arrays"]) as arrays:
      image = arrays[f"{model.name}/image"]
      for rank, entry in enumerate(ranked[:3]):
        expected = direct_maps(model, image, entry["class"])
        for method in METHODS:
          assert arrays[f"{model.name}/{method}"].shape == (3, 32, 32)
          np.testing.assert_array_equal(arrays[f"{model.name}/{method}"][rank], expected[method])
          np.testing.assert_array_equal(column.maps[f"top-{rank + 1}: {method}"],
                                        expected[method])


def test_the_class_model_is_of_the_explained_class(image_path, tmp_path):
  calls = []
  class_model = visualisation.class_model

  def counting(clf, labels, **kwargs):
    calls.append(np.asarray(labels).tolist())
    return class_model(clf, labels, **kwargs)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(visualisation, "class_model", counting)
    record, _, (column,), _ = explain(image_path, tmp_path, [cnn_model()], methods=["gradcam"],
                                      target="dog", class_model=True,
                                      class_model_options={"steps": 2})
  assert calls == [[3]] and record["explained"]["cnn"][0]["class"] == 3
  assert column.class_model is not None


def test_the_default_target_is_the_top1_unlabelled(image_path, tmp_path):
  record, summary, (column,), title = explain(image_path, tmp_path, [cnn_model()],
                                              methods=["gradcam"])
  assert record["explained"]["cnn"] == record["predictions"]["cnn"][:1]
  assert summary["target"] == "top1" and column.explained is None and title == "photo.png"
  top = record["predictions"]["cnn"][0]
  assert (f"<td>cnn</td><td>{top['name']} ({top['class']})</td>"
          in (tmp_path / "index.html").read_text())


def test_commentary_facts_name_the_explained_classes():
  predictions = {"cnn": [{"name": "ant", "probability": 0.5}, {"name": "bee", "probability": 0.3}]}
  facts = commentary.panel_facts("photo.png", predictions, ["gradcam"], class_model=True,
                                 explained={"cnn": [{"name": "bee", "probability": 0.3}]})
  assert "- cnn: bee (30.0 %)" in facts and "top-1" not in facts
  assert "class model of its first explained class" in facts
  assert "top-1" in commentary.panel_facts("photo.png", predictions, ["gradcam"])


@pytest.mark.parametrize("target,error,message", [
    (4, ValueError, "target: class 4 is beyond the 4 classes of cnn"),
    ("be", ValueError, "no class of cnn is named 'be'.*'bee' \\(1\\)"),
    ("Ant", ValueError, "'Ant' is ambiguous among the classes of twins: 'ant' \\(0\\), 'ANT'"),
    (2.0, TypeError, "target must be"),
])
def test_bad_targets_fail_before_any_image_is_read(tmp_path, target, error, message):
  models = [cnn_model(), cnn_model("twins", ("ant", "ANT", "cat", "dog"))]
  out_dir = tmp_path / "out"
  with pytest.raises(error, match=message):
    explain_image.explain_images([str(tmp_path / "absent.png")], models, ["gradcam"], out_dir,
                                 target=target)
  assert not out_dir.exists()
