"""Tests of salijax.metrics.sanity_check on a small ResNet18 ("trained" = randomly initialised)."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import map_similarity_test
import numpy as np
import pytest
import scipy.stats

from salijax import methods, models
from salijax.metrics import map_similarity, parameter_randomization
from salijax.metrics.sanity_check import sanity_check

KEY = jax.random.key(0)
TOP = ("fc", "layer4.1", "layer4.0")  # the head and layer4
GRADCAM_SPEARMAN_THRESHOLD = 0.5  # mean Spearman after re-drawing TOP must fall below it


@functools.lru_cache(maxsize=1)
def model():
  module = models.create("resnet18", num_classes=5)
  return models.classifier(module, models.init(module, jax.random.key(1), 32))


def smooth_images(seed: int, batch: int = 3, size: int = 64) -> jax.Array:
  """f32[B,size,size,3] in [0, 1]: random 8 x 8 colour grids upsampled (distinct per image)."""
  grid = jax.random.uniform(jax.random.key(seed), (batch, 8, 8, 3))
  return jax.image.resize(grid, (batch, size, size, 3), "linear").clip(0.0, 1.0)


def brightness(clf, images, labels, *, key=None):
  """Ignores the model: the mean of the colour channels."""
  del clf, labels, key
  return images.mean(axis=-1)


def edges(clf, images, labels, *, key=None):
  """Ignores the model: the gradient magnitude of the grey image (central differences)."""
  del clf, labels, key
  grey = jnp.pad(images.mean(axis=-1), ((0, 0), (1, 1), (1, 1)), mode="edge")
  dy = grey[:, 2:, 1:-1] - grey[:, :-2, 1:-1]
  dx = grey[:, 1:-1, 2:] - grey[:, 1:-1, :-2]
  return jnp.hypot(dx, dy)


def reference_spearman(a: np.ndarray, b: np.ndarray) -> float:
  """scipy's Spearman correlation; 0 with a constant map (map_similarity's convention)."""
  if a.min() == a.max() or b.min() == b.max():
    return 0.0
  return scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic


@pytest.mark.parametrize("method", [brightness, edges])
def test_methods_that_ignore_the_model_keep_similarity_one_and_fail(method):
  images, labels = smooth_images(2), jnp.array([0, 1, 2], jnp.int32)
  check = sanity_check(method, model(), images, labels, key=KEY, blocks=TOP[:2])
  assert check.block_names == TOP[:2]
  maps = np.asarray(method(None, images, labels))
  for name in map_similarity.SIMILARITIES:
    assert check.similarity[name].shape == (2, 3)
    # The same maps: exact ranks and features (a correlation's square roots and division
    # round), or SSIM's maximum.
    atol = (map_similarity_test.ssim_atol(maps, maps) if name == "ssim"
            else 4 * float_tolerance.EPS)
    np.testing.assert_allclose(check.similarity[name], np.ones((2, 3)), rtol=0, atol=atol,
                               err_msg=name)
    assert check.baseline[name].shape == (2, 3)
    assert check.baseline[name].mean() < 0.99, name
    assert check.passed[name] is False, name


def test_gradcam_changes_when_the_head_and_layer4_are_redrawn():
  clf = model()
  # 96 px: GradCAM at layer4 sees 3 x 3 features (at 64 px, 2 x 2 often give constant maps).
  images, labels = smooth_images(3, size=96), jnp.array([0, 3, 4], jnp.int32)
  check = sanity_check(methods.gradcam, clf, images, labels, key=KEY, blocks=TOP,
                       measures=("spearman", "ssim"))
  assert check.similarity.keys() == check.baseline.keys() == check.passed.keys() == {
      "spearman", "ssim"}
  assert float(check.similarity["spearman"][-1].mean()) < GRADCAM_SPEARMAN_THRESHOLD

  # The definition, step by step: the same randomised models, maps and pairs.
  trained = np.asarray(methods.gradcam(clf, images, labels))
  assert (trained.max(axis=(1, 2)) > trained.min(axis=(1, 2))).all()
  # The maps are the same computations (bit for bit); Spearman's float32 rounding remains.
  spearman_atol = map_similarity_test.spearman_atol(trained[0].size)
  randomized = parameter_randomization.cascading_randomization(
      clf, images, jax.random.fold_in(KEY, 0), blocks=TOP)
  for k, (block, block_clf) in enumerate(randomized):
    assert check.block_names[k] == block
    maps = np.asarray(methods.gradcam(block_clf, images, labels))
    for i in range(3):
      want = reference_spearman(trained[i], maps[i])
      np.testing.assert_allclose(check.similarity["spearman"][k, i], want, rtol=0,
                                 atol=spearman_atol)
    # Another program, each within the bound.
    np.testing.assert_allclose(check.similarity["ssim"][k], map_similarity.ssim(trained, maps),
                               rtol=0, atol=2 * map_similarity_test.ssim_atol(trained, maps))
  for shift in (1, 2):
    for i in range(3):
      want = reference_spearman(trained[i], trained[(i + shift) % 3])
      np.testing.assert_allclose(check.baseline["spearman"][shift - 1, i], want, rtol=0,
                                 atol=spearman_atol)
  for name in ("spearman", "ssim"):
    rule = check.similarity[name][-1].mean() < check.baseline[name].mean()
    assert check.passed[name] == bool(rule)


def test_a_method_whose_maps_invert_on_a_new_head_passes_the_correlation_measures():
  """Brightness for the trained head, 1 - brightness for any other: ranks reverse (Spearman -1).

  HOG uses unsigned gradient orientations, so inverted maps keep their HOG features: it fails.
  """
  clf = model()
  trained_fc = np.asarray(clf.variables["params"]["fc"]["kernel"])

  def inverting(clf, images, labels, *, key=None):
    same_head = np.array_equal(np.asarray(clf.variables["params"]["fc"]["kernel"]), trained_fc)
    light = brightness(clf, images, labels)
    return light if same_head else 1.0 - light

  images, labels = smooth_images(4), jnp.array([1, 1, 1], jnp.int32)
  cascading = sanity_check(inverting, clf, images, labels, key=KEY, blocks=("layer4.1", "fc"))
  # 1 - x rounds (close values may tie): Spearman's rounding, plus at most every pixel
  # swapping ranks with a neighbour (12 / n^2).
  n = images.shape[1] * images.shape[2]
  atol = map_similarity_test.spearman_atol(n) + 12 / n ** 2
  np.testing.assert_allclose(cascading.similarity["spearman"], [[1.0] * 3, [-1.0] * 3], rtol=0,
                             atol=atol)
  independent = sanity_check(inverting, clf, images, labels, key=KEY, blocks=("fc",),
                             mode="independent")
  np.testing.assert_allclose(independent.similarity["spearman"], -1.0, rtol=0, atol=atol)
  for check in (cascading, independent):
    assert (check.similarity["hog"] > 0.99).all()  # up to orientations rounded across bins
    assert check.passed == {"spearman": True, "spearman_abs": True, "ssim": True,
                            "hog": False}


def test_labels_none_explains_the_classes_the_trained_model_predicts():
  """Every model, trained or randomised, explains the trained model's predicted classes."""
  clf = model()
  images = smooth_images(9)
  predicted = jnp.argmax(clf.apply(clf.variables, images), -1)
  assert len(set(predicted.tolist())) > 1
  seen = []

  def recording_gradcam(clf, images, labels, *, key=None):
    seen.append(np.asarray(labels))
    return methods.gradcam(clf, images, labels, key=key)

  run = functools.partial(sanity_check, recording_gradcam, clf, images, key=KEY,
                          blocks=TOP[:1], measures=("spearman",))
  expected = run(predicted)
  for got in (run(None), run()):
    for field in ("similarity", "baseline"):
      np.testing.assert_array_equal(getattr(got, field)["spearman"],
                                    getattr(expected, field)["spearman"])
  assert len(seen) == 6  # 3 runs of the trained model and one randomised model
  for labels in seen:
    np.testing.assert_array_equal(labels, predicted)

def test_bad_inputs():
  clf = model()
  images, labels = smooth_images(5, batch=2), jnp.array([0, 1], jnp.int32)
  run = functools.partial(sanity_check, brightness, clf, key=KEY, blocks=["fc"])
  with pytest.raises(ValueError, match="mode: expected one of"):
    run(images, labels, mode="both")
  with pytest.raises(ValueError, match="B >= 2"):
    run(images[:1], labels[:1])
  with pytest.raises(ValueError, match="similarity: expected one of"):
    run(images, labels, measures=("pearson",))
  with pytest.raises(ValueError, match="measures: expected a non-empty sequence"):
    run(images, labels, measures="spearman")
  with pytest.raises(ValueError, match="at least 16 pixels"):
    run(smooth_images(5, batch=2, size=12), labels)
  with pytest.raises(ValueError, match="labels"):
    run(images, jnp.array([0, 5], jnp.int32))
  with pytest.raises(TypeError, match="method_fn: expected a callable"):
    sanity_check("gradcam", clf, images, labels, key=KEY)
  with pytest.raises(ValueError, match="maps returned by method_fn"):
    sanity_check(lambda clf, x, y, key: x, clf, images, labels, key=KEY, blocks=["fc"])
  with pytest.raises(TypeError, match="clf must be a salijax.Classifier"):
    sanity_check(brightness, clf.variables, images, labels, key=KEY)
