"""Tests of salijax.pipeline.explain_image.explain_images on tiny images and tiny classifiers."""

import json
import pathlib
import re
import shutil
import sys

import headless_chromium
import jax
import numpy as np
import pytest
from PIL import Image

from salijax import methods, visualisation
from salijax.data.image_file import read_image
from salijax.pipeline import explain_image, explain_image_page
from salijax.pipeline.model_loading import LoadedModel

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("pipeline_explain_image")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above

REGION = (8, 20, 4, 16)  # (y0, y1, x0, x1) the region classifier looks at, in 32 x 32 pixels
METHODS = ("gradcam", "rise")
OPTIONS = {"rise": {"num_masks": 16, "chunk": 8}}
SEED = 3
CLASS_MODEL_OPTIONS = {"steps": 12, "learning_rate": 0.05, "l2": 0.01}


def cnn_model(name="cnn"):
  """A random CNN shown 40 x 40 centre crops (crop_fraction 0.8) of the images."""
  return LoadedModel(name=name, classifier=tiny_classifiers.random_cnn(jax.random.key(0)),
                     class_names=("ant", "bee", "cat", "dog"), image_size=40,
                     crop_fraction=0.8)


def region_model():
  """A classifier of the pixels in REGION, shown the whole image resized to 32 x 32."""
  return LoadedModel(name="region", classifier=tiny_classifiers.region_classifier(32, 32, REGION),
                     class_names=("bright", "dark", "other"), image_size=32, crop_fraction=1.0)


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
  """Three images: 32 x 32 RGB PNG, 48 x 64 grey JPEG, and a PNG whose stem repeats the first."""
  folder = tmp_path_factory.mktemp("images")
  rng = np.random.default_rng(0)
  (folder / "more").mkdir()
  paths = [folder / "shape.png", folder / "wide.jpg", folder / "more" / "shape.png"]
  Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(paths[0])
  Image.fromarray(rng.integers(0, 256, (48, 64), np.uint8)).save(paths[1], quality=95)
  Image.fromarray(rng.integers(0, 256, (36, 30, 3), np.uint8)).save(paths[2])
  return [str(path) for path in paths]


@pytest.fixture(scope="module")
def explained(image_paths, tmp_path_factory):
  """(records, out_dir) of the three images explained by both models."""
  out_dir = tmp_path_factory.mktemp("explanations")
  records = explain_image.explain_images(image_paths, [cnn_model(), region_model()], METHODS,
                                         out_dir, seed=SEED, top_k=3, method_options=OPTIONS)
  return records, out_dir


def softmax(logits):
  exp = np.exp(logits - logits.max())
  return exp / exp.sum()


def test_files_per_image_with_repeated_stems_renamed(explained, image_paths):
  records, out_dir = explained
  assert [r["stem"] for r in records] == ["shape", "wide", "shape_2"]
  assert [r["image"] for r in records] == image_paths
  for record in records:
    assert pathlib.Path(record["panel"]) == out_dir / f"{record['stem']}.png"
    with Image.open(record["panel"]) as panel:
      panel.load()
      assert panel.width > 200 and panel.height > panel.width  # 2 models x 3 rows
  summary = json.loads((out_dir / "predictions.json").read_text())
  assert summary["images"] == records and summary["class_model_options"] is None
  assert not list(out_dir.glob(".*"))  # no temporary files left


def test_arrays_hold_the_model_inputs_and_maps(explained, image_paths):
  records, _ = explained
  for record, path in zip(records, image_paths, strict=True):
    with np.load(record["arrays"]) as arrays:
      assert sorted(arrays) == sorted(f"{model}/{kind}" for model in ("cnn", "region")
                                      for kind in ("image", *METHODS))
      for model, size in (cnn_model(), 40), (region_model(), 32):
        image = arrays[f"{model.name}/image"]
        assert image.shape == (size, size, 3) and image.dtype == np.float32
        np.testing.assert_array_equal(image, explain_image.model_input(read_image(path), model))
        for method in METHODS:
          assert arrays[f"{model.name}/{method}"].shape == (size, size)
  with np.load(records[0]["arrays"]) as arrays:  # 32 x 32 at crop 1.0: the pixels unchanged
    np.testing.assert_array_equal(arrays["region/image"], read_image(image_paths[0]))


def test_top_k_is_the_sorted_softmax(explained):
  records, _ = explained
  for record in records:
    with np.load(record["arrays"]) as arrays:
      for model in (cnn_model(), region_model()):
        clf = model.classifier
        logits = np.asarray(clf.apply(clf.variables, arrays[f"{model.name}/image"][None]))[0]
        expected = softmax(logits.astype(np.float64))
        ranked = record["predictions"][model.name]
        assert len(ranked) == 3
        probabilities = [entry["probability"] for entry in ranked]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1 + 1e-6  # float32 rounding
        assert ranked[0]["class"] == int(np.argmax(expected))
        for entry in ranked:
          assert entry["name"] == model.class_names[entry["class"]]
          assert entry["probability"] == pytest.approx(expected[entry["class"]], rel=1e-5)


def test_maps_equal_the_methods_called_on_the_model_input(explained):
  """Definition: each map is the method's map of the top-1 class, key fold_in(key(seed), index)."""
  records, _ = explained
  for record in records:
    with np.load(record["arrays"]) as arrays:
      for model in (cnn_model(), region_model()):
        image = arrays[f"{model.name}/image"][None]
        label = np.array([record["predictions"][model.name][0]["class"]], np.int32)
        for index, method in enumerate(METHODS):
          key = jax.random.fold_in(jax.random.key(SEED), index)
          expected = methods.get(method)(model.classifier, image, label, key=key,
                                         **OPTIONS.get(method, {}))
          # The same call (program, image, label, key) as explain_images'.
          np.testing.assert_array_equal(arrays[f"{model.name}/{method}"], np.asarray(expected)[0])


def test_gradcam_of_the_region_classifier_stays_in_its_region(explained):
  """Known answer: the region classifier's activations are zero outside REGION, so > 80 % of
  the mass lies there (the rest is the bilinear spill over its border, as in gradcam_test)."""
  records, _ = explained
  y0, y1, x0, x1 = REGION
  for record in records:
    with np.load(record["arrays"]) as arrays:
      saliency = arrays["region/gradcam"]
    inside = saliency[y0:y1, x0:x1].sum()
    assert saliency.sum() > 0 and inside > 0.8 * saliency.sum()


@pytest.fixture(scope="module")
def with_class_models(image_paths, tmp_path_factory):
  """(records, out_dir, calls) of two images explained by the region model with class models;
  calls: the (labels, image_size) of each salijax.visualisation.class_model call."""
  calls = []
  class_model = visualisation.class_model

  def counting(clf, labels, **kwargs):
    calls.append((np.asarray(labels).tolist(), kwargs["image_size"]))
    return class_model(clf, labels, **kwargs)

  out_dir = tmp_path_factory.mktemp("class_models")
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(visualisation, "class_model", counting)
    records = explain_image.explain_images(image_paths[:2], [region_model()], ["gradcam"],
                                           out_dir, top_k=2, class_model=True,
                                           class_model_options=CLASS_MODEL_OPTIONS)
  return records, out_dir, calls


def test_class_model_of_the_top_class_in_the_arrays_and_the_panel(with_class_models):
  """Definition: the class model of the top-1 class from grey, with the options given; it
  scores that class higher than the image it explains; one computation per (model, class)."""
  records, out_dir, calls = with_class_models
  model = region_model()
  clf = model.classifier
  for record in records:
    label = record["predictions"]["region"][0]["class"]
    with np.load(record["arrays"]) as arrays:
      assert sorted(arrays) == ["region/class_model", "region/class_model_logit",
                                "region/gradcam", "region/image"]
      image, trace = arrays["region/class_model"], arrays["region/class_model_logit"]
      assert image.shape == (32, 32, 3) and image.dtype == np.float32
      assert trace.shape == (CLASS_MODEL_OPTIONS["steps"] + 1,)
      expected = visualisation.class_model(clf, np.array([label], np.int32), image_size=32,
                                           **CLASS_MODEL_OPTIONS)
      np.testing.assert_array_equal(image, expected.images[0])  # the same call
      np.testing.assert_array_equal(trace, expected.target_logit[0])
      logits = np.asarray(clf.apply(clf.variables, np.stack([image, arrays["region/image"]])))
      assert logits[0, label] > logits[1, label]
  classes = [record["predictions"]["region"][0]["class"] for record in records]
  assert len(set(classes)) < len(classes)  # a repeated class: computed once
  assert calls == [([label], 32) for label in dict.fromkeys(classes)]
  summary = json.loads((out_dir / "predictions.json").read_text())
  assert summary["class_model_options"] == CLASS_MODEL_OPTIONS
  with Image.open(records[0]["panel"]) as panel:
    panel.load()
    assert panel.height > 2.5 * panel.width  # 3 rows (image, class model, gradcam), 1 column


def test_repeated_model_names_are_numbered(image_paths, tmp_path):
  records = explain_image.explain_images(image_paths[:1], [cnn_model("m"), cnn_model("m")],
                                         ["gradcam"], tmp_path, top_k=10)
  assert list(records[0]["predictions"]) == ["m", "m #2"]
  assert len(records[0]["predictions"]["m"]) == 4  # top_k beyond K gives all K classes
  with np.load(records[0]["arrays"]) as arrays:
    np.testing.assert_array_equal(arrays["m/gradcam"], arrays["m #2/gradcam"])


def failing_model():
  """A model whose classifier raises when it is run: proves that no model work happened."""
  def apply(variables, images):
    raise AssertionError("the model ran")
  clf = tiny_classifiers.random_cnn(jax.random.key(0)).replace(apply=apply)
  return LoadedModel("failing", clf, ("a", "b", "c", "d"), 32, 1.0)


def test_unreadable_images_are_all_listed_before_any_model_runs(image_paths, tmp_path):
  text = tmp_path / "notes.png"
  text.write_text("not an image")
  paths = [image_paths[0], str(tmp_path / "missing.jpg"), str(text)]
  out_dir = tmp_path / "out"
  with pytest.raises(ValueError, match="2 of the 3 images cannot be read") as info:
    explain_image.explain_images(paths, [failing_model()], ["gradcam"], out_dir)
  assert "missing.jpg: no such file" in str(info.value)
  assert "notes.png is not an image salijax can read" in str(info.value)
  assert not out_dir.exists()
  with pytest.raises(ValueError, match="1 of the 1 images"):
    explain_image.check_images([str(text)])


def test_bad_arguments(image_paths, tmp_path):
  model = cnn_model()
  with pytest.raises(ValueError, match=r"methods: unknown \['nope'\]; the methods are .*'gradcam'"):
    explain_image.explain_images(image_paths, [model], ["gradcam", "nope"], tmp_path)
  with pytest.raises(ValueError, match="must not repeat"):
    explain_image.explain_images(image_paths, [model], ["rise", "rise"], tmp_path)
  with pytest.raises(ValueError, match="options for 'lime', which is not among"):
    explain_image.explain_images(image_paths, [model], ["rise"], tmp_path,
                                 method_options={"lime": {"num_samples": 8}})
  with pytest.raises(TypeError, match=r"method_options\['rise'\]: rise: unknown option"):
    explain_image.explain_images(image_paths, [model], ["rise"], tmp_path,
                                 method_options={"rise": {"masks": 8}})
  with pytest.raises(ValueError, match=r"method_options\['rise'\]: num_masks must be"):
    explain_image.explain_images(image_paths, [model], ["rise"], tmp_path,
                                 method_options={"rise": {"num_masks": 0}})
  with pytest.raises(ValueError, match="models must be a non-empty sequence"):
    explain_image.explain_images(image_paths, [], ["gradcam"], tmp_path)
  with pytest.raises(ValueError, match="paths must be a non-empty sequence"):
    explain_image.explain_images(image_paths[0], [model], ["gradcam"], tmp_path)
  with pytest.raises(ValueError, match="top_k must be a positive integer"):
    explain_image.explain_images(image_paths, [model], ["gradcam"], tmp_path, top_k=0)
  with pytest.raises(ValueError, match="cmap must be a matplotlib colormap"):
    explain_image.explain_images(image_paths, [model], ["gradcam"], tmp_path, cmap="nope")
  with pytest.raises(ValueError, match="class_model_options .* given with class_model=False"):
    explain_image.explain_images(image_paths, [model], ["gradcam"], tmp_path,
                                 class_model_options={"steps": 3})
  with pytest.raises(ValueError, match=r"class_model_options: unknown \['lr'\]"):
    explain_image.explain_images(image_paths, [model], ["gradcam"], tmp_path, class_model=True,
                                 class_model_options={"lr": 0.1})
  with pytest.raises(ValueError, match="class_model_options: l2 must be a finite number >= 0"):
    explain_image.explain_images(image_paths, [model], ["gradcam"], tmp_path, class_model=True,
                                 class_model_options={"l2": -1.0})
  with pytest.raises(TypeError, match="class_model must be a bool"):
    explain_image.explain_images(image_paths, [model], ["gradcam"], tmp_path, class_model="yes")
  wrong_names = LoadedModel("short", model.classifier, ("ant", "bee"), 40, 0.8)
  with pytest.raises(ValueError, match="short has 2 class names for 4 logits"):
    explain_image.explain_images(image_paths, [wrong_names], ["gradcam"], tmp_path)


def _cards(page):
  """{image key: the HTML of its card} of an index.html."""
  return dict(re.findall(r'<figure class="card" data-image="([^"]+)">(.*?)</figure>', page,
                         re.S))


def test_the_page_shows_every_panel_top_k_and_commentary(explained, chromium, tmp_path):
  records, out_dir = explained
  cards = _cards((out_dir / "index.html").read_text())
  assert list(cards) == [record["stem"] for record in records]
  for record in records:
    card = cards[record["stem"]]
    assert f'<img src="{record["stem"]}.png"' in card and "commentary" not in card
    assert re.findall(r"<caption>([^<]+)</caption>", card) == [
        "classes explained by the maps", "cnn", "region"]
    for ranked in record["predictions"].values():
      for entry in ranked:
        assert f"{entry['name']} ({entry['class']})</td>" in card
  copy = tmp_path / "explanations"
  shutil.copytree(out_dir, copy)
  (copy / "wide.commentary.md").write_text("The **region** matters.\n\n<b>raw</b>\n")
  page = explain_image_page.write_page(copy)
  cards = _cards(page.read_text())
  assert "<strong>region</strong>" in cards["wide"] and "&lt;b&gt;raw" in cards["wide"]
  assert all("commentary" not in cards[stem] for stem in ("shape", "shape_2"))
  driven = headless_chromium.driven_page(page.read_text(), "", copy / "driven.html")
  dom, messages = headless_chromium.dom(chromium, driven, tmp_path)
  result = headless_chromium.driven_result(dom)
  assert messages == [] and result["errors"] == [] and 'data-script="ready"' in dom
  # Every panel loads from its path relative to the page.
  assert [src for src, _ in result["images"]] == [f"{r['stem']}.png" for r in records]
  assert all(width > 200 for _, width in result["images"])


def test_the_page_needs_an_explain_images_summary(tmp_path):
  with pytest.raises(FileNotFoundError):
    explain_image_page.write_page(tmp_path)
  (tmp_path / "predictions.json").write_text('{"images": []}')
  with pytest.raises(ValueError, match="not an explain_images summary"):
    explain_image_page.write_page(tmp_path)
