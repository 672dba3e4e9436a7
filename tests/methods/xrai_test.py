"""Tests of salijax.methods.xrai: PAIR's XRAI (segments, selection, end to end), known answers."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from blur_ig_test import call_model_function, pair_core  # noqa: F401 (a fixture)

from salijax import methods
from salijax.methods.xrai import candidate_regions, select_regions, xrai, xrai_attribution

REGION = (8, 24, 8, 24)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


@pytest.fixture(scope="module")
def pair_xrai(pair_core):  # noqa: F811
  import saliency.core.xrai as module  # noqa: PLC0415

  return pair_core, module


def test_candidate_regions_are_pairs_felzenszwalb_segments(pair_xrai):
  _, module = pair_xrai
  images = np.asarray(tiny_classifiers.tinted_images(batch=2, size=32), np.float32)
  for image in images:
    expected = module._get_segments_felzenszwalb(image)
    ours = candidate_regions(image)
    assert ours.shape == (len(expected), 32, 32)
    np.testing.assert_array_equal(ours, np.stack(expected))
    undilated = candidate_regions(image, 0)
    assert undilated.shape == ours.shape and (ours >= undilated).all()
    assert (undilated.sum(axis=0) == len(module._FELZENSZWALB_SCALE_VALUES)).all()


@pytest.mark.parametrize("options", [dict(), dict(algorithm="fast"), dict(area_threshold=0.4),
                                     dict(min_pixel_diff=200)])
def test_the_selection_is_pairs_on_identical_inputs(pair_xrai, options):
  """The same attribution and segments to both: equal up to PAIR's float32 means (n terms)."""
  pair, module = pair_xrai
  image = np.asarray(tiny_classifiers.tinted_images(batch=1, size=32)[0], np.float32)
  segments = module._get_segments_felzenszwalb(image)
  rng = np.random.default_rng(0)
  for _ in range(3):
    attribution = rng.normal(size=image.shape).astype(np.float32)
    parameters = pair.XRAIParameters(algorithm=options.get("algorithm", "full"),
                                     area_threshold=options.get("area_threshold", 1.0))
    parameters.experimental_params["min_pixel_diff"] = options.get("min_pixel_diff", 50)
    expected = pair.XRAI().GetMask(image, None, segments=segments,
                                   base_attribution=attribution, extra_parameters=parameters)
    ours = select_regions(attribution.max(axis=-1), np.stack(segments), **options)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=float_tolerance.sum_atol(
        np.abs(attribution).max(), 32 * 32))
    assert len(np.unique(ours)) > 3  # several regions


@pytest.mark.parametrize("baselines", ["black_white", "min_max"])
def test_end_to_end_equals_pairs_xrai_on_the_same_model(pair_xrai, baselines):
  """PAIR computes integrated gradients through call_model_function (its own sums),
  salijax with its compiled integrated gradients; then the same segments and selection."""
  pair, _ = pair_xrai
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=32)
  labels = jnp.array([1, 3])
  steps = 12
  ours = np.asarray(xrai(clf, images, labels, steps=steps, baselines=baselines, chunk=5))
  for b in range(2):
    image = np.asarray(images[b], np.float32)
    given = ([np.zeros_like(image), np.ones_like(image)] if baselines == "black_white"
             else None)
    expected = pair.XRAI().GetMask(image, call_model_function(clf, int(labels[b])),
                                   baselines=given, batch_size=steps,
                                   extra_parameters=pair.XRAIParameters(steps=steps))
    grads = jax.grad(lambda x, b=b: clf.logits(x)[0, labels[b]])(images[b:b + 1])
    n = tiny_classifiers.random_cnn_terms(8, 8) + steps + 32 * 32
    atol = float_tolerance.sum_atol(float(jnp.abs(grads).max()), n)
    np.testing.assert_allclose(ours[b], expected, rtol=0, atol=atol)
    assert np.abs(expected).max() > 100 * atol


def test_region_classifier_the_region_ranks_first():
  """Attribution only inside the region: the first region taken (its gain the mean
  attribution over its pixels) lies there but for its dilated rim, and the map is higher
  inside than outside."""
  clf = tiny_classifiers.region_classifier(32, 32, REGION)
  images = tiny_classifiers.tinted_images(batch=2, size=32)
  labels = jnp.array([0, 0])
  attribution = np.asarray(xrai_attribution(clf, images, labels, steps=20,
                                            baselines="black_white", chunk=10))
  inside = np.zeros((32, 32), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  assert (attribution[:, ~inside] == 0).all() and (attribution[:, inside] != 0).all()
  maps = np.asarray(xrai(clf, images, labels, steps=20))
  for m, a in zip(maps, attribution, strict=True):
    first = m == m.max()
    assert inside[first].mean() > 0.95
    np.testing.assert_allclose(m.max(), a[first].mean(), rtol=float_tolerance.sum_rtol(32 * 32))
    assert m[inside].mean() > 5 * m[~inside].mean()


def test_chunk_does_not_change_the_map_and_options_and_cost():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  maps = np.asarray(xrai(clf, images, labels, steps=7, chunk=3))
  np.testing.assert_allclose(xrai(clf, images, labels, steps=7, chunk=1), maps, rtol=0,
                             atol=1e3 * float_tolerance.EPS * np.abs(maps).max())
  info = methods.info("xrai")
  assert info.defaults() == {"steps": 100, "baselines": "black_white", "area_threshold": 1.0,
                             "min_pixel_diff": 50, "algorithm": "full", "dilation_radius": 5,
                             "chunk": 10}
  cost = info.cost(info.resolve({"steps": 7, "chunk": 3}), None)
  assert (cost.kind, cost.passes, cost.per_pass) == ("gradient", 14, 3)
  with pytest.raises(ValueError, match="dilation_radius"):
    xrai(clf, images, labels, dilation_radius=-1)
