"""Tests of salijax.metrics.pic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn

from salijax.classifier import Classifier
from salijax.metrics.pic import (
    DEFAULT_THRESHOLDS,
    Pic,
    blurred_image,
    information_curve,
    pic,
    random_masks,
)

pytestmark = pytest.mark.xdist_group("pic")


def texture_classifier(region=None) -> Classifier:
  """Class 1 rises with the high-frequency energy (|x - mean of the 4 neighbours|) inside
  `region` (y0, y1, x0, x1; everywhere when None); classes 0 and 2 are constant. Blurring
  removes the energy, so the blurred image loses class 1 and revealing the textured pixels
  brings it back."""

  def apply(v, images):
    padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    neighbours = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2]
                  + padded[:, 1:-1, 2:]) / 4
    energy = jnp.abs(images - neighbours).mean(-1)
    if region is not None:
      y0, y1, x0, x1 = region
      energy = energy[:, y0:y1, x0:x1]
    level = energy.mean(axis=(1, 2))
    return jnp.stack([jnp.zeros_like(level), v["scale"] * (level - v["shift"]),
                      jnp.full_like(level, -1.0)], axis=-1)

  return Classifier(variables={"scale": jnp.float32(60.0), "shift": jnp.float32(0.06)},
                    apply=apply)


def textured_images(batch, size, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size]
  smooth = 0.5 + 0.3 * np.sin(xx / 4.0 + yy / 6.0)[None, ..., None] * rng.random((batch, 1, 1, 3))
  noise = 0.4 * (rng.random((batch, size, size, 3)) - 0.5)
  return np.clip(smooth + noise, 0, 1).astype(np.float32)


def salijax_scores(clf):
  """u8[N,H,W,3], label -> (the label's softmax probabilities, 1.0 where it is the argmax)."""

  @jax.jit
  def scores(batch, label):
    logits = clf.logits(batch.astype(jnp.float32) / 255.0)
    return jax.nn.softmax(logits)[:, label], (jnp.argmax(logits, -1) == label).astype(float)

  return scores


def torch_scores(torch, model):
  """The same from a torch model taking NCHW [0, 1] pixels."""

  def scores(batch, label):
    with torch.no_grad():
      pixels = torch.from_numpy(np.asarray(batch, np.float32).transpose(0, 3, 1, 2) / 255.0)
      logits = model(pixels).numpy()
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    return probabilities[:, label], (logits.argmax(1) == label).astype(float)

  return scores


def pair_results(saliency_pair, monkeypatch, scores, images, maps, labels, masks, **options):
  """PAIR's compute_pic_metric per image with `scores` as pred_func (SIC: the label's
  softmax probability, AIC: 1.0 where it is the argmax); None where PAIR raises.
  numpy 2.4 dropped np.trapz, which PAIR 0.2.1 calls: np.trapezoid is the same rule."""
  monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
  pixels = np.round(images.astype(np.float64) * 255).astype(np.uint8)
  results = {"sic": [], "aic": []}
  thresholds = options.pop("thresholds", DEFAULT_THRESHOLDS)

  for b in range(images.shape[0]):
    funcs = {"sic": lambda x, c=labels[b]: list(np.asarray(scores(x, c)[0])),
             "aic": lambda x, c=labels[b]: list(np.asarray(scores(x, c)[1]))}
    for name, func in funcs.items():
      try:
        results[name].append(saliency_pair.compute_pic_metric(
            pixels[b], maps[b], masks[b], func, list(thresholds), **options))
      except saliency_pair.ComputePicMetricError:
        results[name].append(None)
  return results


def assert_equals_pair(ours, theirs):
  for name in ("sic", "aic"):
    for b, expected in enumerate(theirs[name]):
      assert getattr(ours, f"{name}_valid")[b] == (expected is not None), (name, b)
      if expected is None:
        assert np.isnan(getattr(ours, f"{name}_auc")[b])
        continue
      # The same model on the same uint8 images and the same float64 curve arithmetic: the
      # curves differ by the float32 output's rounding and the probabilities' (PAIR scores
      # one image per forward, salijax a batch: other float32 kernels, ~1e-6 apart), divided
      # by the normalisation f(I) - f(B).
      span = expected.predictions[-1] - expected.predictions[0]
      atol = 1e-6 + 2e-6 / span
      np.testing.assert_allclose(getattr(ours, f"{name}_curve")[b], expected.curve_y,
                                 rtol=0, atol=atol)
      np.testing.assert_allclose(getattr(ours, f"{name}_auc")[b], expected.auc, rtol=0,
                                 atol=atol)


def test_blurred_images_equal_pairs(saliency_pair):
  images = textured_images(2, 20, seed=0)
  pixels = np.round(images * 255).astype(np.uint8)
  masks = random_masks(jax.random.key(0), 2, 20, 20, 0.05)
  maps = np.random.default_rng(1).random((2, 20, 20))
  for b in range(2):
    for keep in (masks[b], masks[b] | (maps[b] > 0.7), np.ones((20, 20), bool)):
      np.testing.assert_array_equal(blurred_image(pixels[b], keep),
                                    saliency_pair.create_blurred_image(pixels[b], keep))


def test_blurring_reproduces_a_linear_ramp():
  # Linear interpolation of a linear image is exact wherever the pixels are inside the hull.
  yy, xx = np.mgrid[:16, :16]
  ramp = np.repeat((3 * xx + 5 * yy)[..., None], 3, axis=-1).astype(np.uint8)
  keep = random_masks(jax.random.key(1), 1, 16, 16, 0.1)[0]
  np.testing.assert_array_equal(blurred_image(ramp, keep), ramp)


def test_random_masks_have_the_fraction_of_pixels():
  masks = random_masks(jax.random.key(2), 3, 10, 30, 0.05)
  assert masks.shape == (3, 10, 30) and masks.dtype == bool
  np.testing.assert_array_equal(masks.sum(axis=(1, 2)), [15, 15, 15])
  assert not np.array_equal(masks[0], masks[1])


def test_information_curve_known_answer():
  # Sizes: blurred 100, thresholds 150 and 200, original 300 -> e = 0.25, 0.5.
  # Predictions: blurred 0.2, thresholds 0.6 and 0.4, original 1.0 -> y = 0.5, 0.25 -> max 0.5.
  sizes = np.array([100.0, 150.0, 200.0, 300.0])
  predictions = np.array([0.2, 0.6, 0.4, 1.0])
  curve, valid = information_curve(sizes, predictions, min_pred_value=0.5,
                                   keep_monotonous=True, num_data_points=4)
  assert valid
  # x = 0, 0.25, 0.5, 0.75, 1: y = 0, 0.5, 0.5 (running max), 0.75 (halfway to (1, 1)), 1.
  np.testing.assert_allclose(curve, [0.0, 0.5, 0.5, 0.75, 1.0])
  curve, _ = information_curve(sizes, predictions, min_pred_value=0.5, keep_monotonous=False,
                               num_data_points=4)
  np.testing.assert_allclose(curve, [0.0, 0.5, 0.25, 0.625, 1.0])
  assert not information_curve(sizes, predictions, min_pred_value=1.5, keep_monotonous=True,
                               num_data_points=4)[1]
  assert not information_curve(sizes[::-1], predictions, min_pred_value=0.5,
                               keep_monotonous=True, num_data_points=4)[1]


def test_equals_pair_on_a_texture_classifier(saliency_pair, monkeypatch):
  clf = texture_classifier()
  images = textured_images(2, 24, seed=3)
  maps = np.random.default_rng(4).random((2, 24, 24)).astype(np.float32)
  labels = np.ones(2, np.int32)
  masks = random_masks(jax.random.key(5), 2, 24, 24)
  ours = pic(clf, images, maps, labels, random_mask=masks)
  assert ours.sic_valid.all() and ours.aic_valid.all()  # the anchor covers both curves
  assert_equals_pair(ours, pair_results(saliency_pair, monkeypatch, salijax_scores(clf),
                                        images, maps, labels, masks))


def test_equals_pair_on_the_twin_cnn(saliency_pair, monkeypatch, torch):
  clf = twin_cnn.classifier(twin_cnn.weights(1))
  images = textured_images(3, 24, seed=6)
  maps = np.random.default_rng(7).random((3, 24, 24)).astype(np.float32)
  labels = np.asarray(jnp.argmax(clf.logits(jnp.asarray(np.round(images * 255) / 255)), -1),
                      np.int32)
  masks = random_masks(jax.random.key(8), 3, 24, 24)
  options = dict(keep_monotonous=False, num_data_points=50, thresholds=(0.02, 0.1, 0.3, 0.6))
  first = pic(clf, images, maps, labels, random_mask=masks, min_pred_value=0.0, **options)
  # Between the two lowest original probabilities: one image invalid, two compared.
  options["min_pred_value"] = float(np.sort(first.probabilities[:, -1])[:2].mean())
  ours = pic(clf, images, maps, labels, random_mask=masks, **options)
  assert ours.sic_valid.any() and not ours.sic_valid.all()  # both branches are compared
  # PAIR given the salijax classifier, and the torch twin (logits ~5e-7 from salijax's).
  for scores in (salijax_scores(clf), torch_scores(torch, twin_cnn.torch_model(
      torch, twin_cnn.weights(1)))):
    assert_equals_pair(ours, pair_results(saliency_pair, monkeypatch, scores, images, maps,
                                          labels, masks, **options))


def test_map_on_the_classifiers_region_beats_the_inverted_map():
  # The texture is everywhere (the information rises alike whichever pixels are revealed);
  # the classifier reads only the region's, so revealing the region first raises the SIC.
  region = (4, 12, 6, 14)
  clf = texture_classifier(region)
  images = textured_images(2, 24, seed=9)
  on = np.zeros((2, 24, 24), np.float32)
  on[:, 4:12, 6:14] = 1.0
  on += np.random.default_rng(10).random(on.shape).astype(np.float32) * 0.01
  labels = np.ones(2, np.int32)
  masks = random_masks(jax.random.key(11), 2, 24, 24)
  good = pic(clf, images, on, labels, random_mask=masks, min_pred_value=0.5)
  bad = pic(clf, images, -on, labels, random_mask=masks, min_pred_value=0.5)
  assert good.sic_valid.all() and bad.sic_valid.all()
  assert np.all(good.sic_auc > bad.sic_auc + 0.1)


def test_invariant_to_chunk_and_key_draws_the_masks():
  clf = texture_classifier()
  images = textured_images(2, 16, seed=12)
  maps = np.random.default_rng(13).random((2, 16, 16)).astype(np.float32)
  reference = pic(clf, images, maps, key=jax.random.key(0), chunk=1, min_pred_value=0.0)
  other = pic(clf, images, maps, key=jax.random.key(0), chunk=1000, min_pred_value=0.0)
  given = pic(clf, images, maps, random_mask=random_masks(jax.random.key(0), 2, 16, 16),
              min_pred_value=0.0)
  for name in Pic._fields:
    # Forwards of other batch sizes round the probabilities differently (~1e-7, divided by
    # f(I) - f(B) > 0.1 here); the masks, images, sizes and classes are identical.
    np.testing.assert_allclose(getattr(other, name), getattr(reference, name), rtol=0,
                               atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(getattr(given, name), getattr(other, name), name)


@pytest.mark.parametrize("change, error, pattern", [
    (dict(thresholds=(0.5, 0.1)), ValueError, r"thresholds.*increasing"),
    (dict(thresholds=(0.5, 1.5)), ValueError, r"thresholds"),
    (dict(key=None), TypeError, r"key"),
    (dict(random_mask=np.ones((2, 16, 15), bool)), ValueError, r"random_mask"),
    (dict(random_mask=np.ones((2, 16, 16), np.float32)), ValueError, r"random_mask"),
    (dict(mask_fraction=1.5), ValueError, r"mask_fraction"),
    (dict(num_data_points=0), ValueError, r"num_data_points"),
    (dict(chunk=0), ValueError, r"chunk"),
    (dict(maps=np.full((2, 16, 16), np.nan, np.float32)), ValueError, r"maps.*finite"),
    (dict(images=np.full((2, 16, 16, 3), -1.0, np.float32)), ValueError, r"images"),
])
def test_bad_inputs(change, error, pattern):
  args = dict(images=textured_images(2, 16, seed=0), key=jax.random.key(0),
              maps=np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)) | change
  with pytest.raises(error, match=pattern):
    pic(texture_classifier(), args.pop("images"), args.pop("maps"), **args)
