"""Tests of salijax.metrics.road."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
import twin_cnn

from salijax.metrics.road import Road, curve_area, road, road_images

pytestmark = pytest.mark.xdist_group("road")

WEIGHTS = {(dy, dx): (1 / 6 if dy == 0 or dx == 0 else 1 / 12)
           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)}


def imputation_error_bound(height: int, width: int) -> float:
  """float32's attainable accuracy for the system: eps times its condition number, which for
  this graph Laplacian with kept neighbours is at most ~ the number of pixels H W."""
  return float_tolerance.EPS * height * width


def reference_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
  """docs/metrics.md#road literally: one equation per removed pixel, a dense float64 solve."""
  height, width, _ = image.shape
  cells = [tuple(c) for c in np.argwhere(removed)]
  index = {c: n for n, c in enumerate(cells)}
  matrix = np.zeros((len(cells), len(cells)))
  rhs = np.zeros((len(cells), 3))
  for n, (i, j) in enumerate(cells):
    for (dy, dx), weight in WEIGHTS.items():
      y, x = i + dy, j + dx
      if not (0 <= y < height and 0 <= x < width):
        continue
      matrix[n, n] += weight
      if removed[y, x]:
        matrix[n, index[(y, x)]] -= weight
      else:
        rhs[n] += weight * image[y, x]
  out = image.astype(np.float64).copy()
  if cells:
    out[removed] = np.linalg.solve(matrix, rhs)
  return out


def removed_pixels(saliency: np.ndarray, count: int, lerf: bool) -> np.ndarray:
  order = np.argsort(-saliency.ravel(), kind="stable")  # ties: lower raster index first
  chosen = order[len(order) - count:] if lerf else order[:count]
  removed = np.zeros(saliency.size, bool)
  removed[chosen] = True
  return removed.reshape(saliency.shape)


@pytest.fixture(scope="module")
def twin():
  return twin_cnn.classifier(twin_cnn.weights(0))


def inputs(batch=2, height=16, width=16, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.random((batch, height, width, 3)).astype(np.float32)
  maps = rng.random((batch, height, width)).astype(np.float32)
  return images, maps


def test_imputation_matches_dense_reference():
  images, maps = inputs(batch=2, height=16, width=20)
  # A smooth map removes one large blob: the hardest system (largest condition number).
  yy, xx = np.mgrid[:16, :20]
  maps[1] = -((yy - 5.0) ** 2 + (xx - 9.0) ** 2) + 0.01 * maps[1]
  percentages = (0, 10, 50, 90, 99)
  imputed, residuals = road_images(jnp.asarray(images), jnp.asarray(maps), jax.random.key(0),
                                   percentages=percentages)
  imputed = np.asarray(imputed)
  assert np.asarray(residuals).max() < 1e-4
  for b in range(2):
    for job in range(10):
      count = int(16 * 20 * percentages[job % 5] / 100)
      removed = removed_pixels(maps[b], count, lerf=job >= 5)
      expected = reference_imputation(images[b], removed)
      np.testing.assert_allclose(imputed[b, job], expected, rtol=0,
                                 atol=imputation_error_bound(16, 20))
      np.testing.assert_array_equal(imputed[b, job][~removed], images[b][~removed])


def test_scores_match_the_reference_images(twin):
  images, maps = inputs(batch=2, height=16, width=16, seed=1)
  labels = np.array([1, 3], np.int32)
  percentages = (5, 40, 80)
  result = road(twin, images, maps, labels, percentages=percentages, noise=0.0, chunk=4)
  for b in range(2):
    for lerf, name in ((False, "morf"), (True, "lerf")):
      refs = np.stack([reference_imputation(images[b], removed_pixels(
          maps[b], int(256 * p / 100), lerf)) for p in percentages])
      logits = np.asarray(twin.logits(jnp.asarray(refs, jnp.float32)), np.float64)
      probs = np.exp(logits - logits.max(1, keepdims=True))
      probs /= probs.sum(1, keepdims=True)
      # The images agree to imputation_error_bound; the twin CNN's class probabilities
      # move less than 1 per unit change of one pixel (|grad| < 1, checked by its logits' scale).
      np.testing.assert_allclose(getattr(result, f"{name}_probability")[b],
                                 probs[:, labels[b]], rtol=0, atol=1e-3)
      np.testing.assert_array_equal(getattr(result, f"{name}_accuracy")[b],
                                    (logits.argmax(1) == labels[b]).astype(np.float32))
  np.testing.assert_allclose(result.morf_probability_auc,
                             curve_area(result.morf_probability, (0.05, 0.4, 0.8)), rtol=1e-6)


def test_curve_area_is_the_mean_height_of_the_trapezoids():
  curve = jnp.asarray([[1.0, 0.0, 0.0]])
  # x = 0.1, 0.3, 0.9: trapezoids 0.2 * 0.5 + 0.6 * 0 over a span of 0.8.
  np.testing.assert_allclose(curve_area(curve, (0.1, 0.3, 0.9)), [0.1 / 0.8], rtol=1e-6)
  np.testing.assert_allclose(curve_area(curve[:, :1], (0.5,)), [1.0])


def test_map_on_the_classifiers_region_beats_the_inverted_map():
  region = (4, 12, 4, 12)
  clf = tiny_classifiers.region_classifier(16, 16, region)
  images = np.full((1, 16, 16, 3), 0.1, np.float32)
  images[:, 4:12, 4:12] = 0.9  # bright region: class 0 (rises with brightness there)
  on = np.zeros((1, 16, 16), np.float32)
  on[:, 4:12, 4:12] = 1.0
  on += np.random.default_rng(0).random(on.shape).astype(np.float32) * 0.01
  labels = np.zeros(1, np.int32)
  options = dict(percentages=(10, 20, 25), noise=0.0)
  good = road(clf, images, on, labels, **options)
  bad = road(clf, images, -on, labels, **options)
  assert good.morf_probability_auc[0] < bad.morf_probability_auc[0] - 0.05
  assert good.lerf_probability_auc[0] > bad.lerf_probability_auc[0] + 0.05


def test_noise_is_gaussian_on_the_removed_pixels_only():
  images, maps = inputs(batch=2, height=32, width=32, seed=2)
  args = (jnp.asarray(images), jnp.asarray(maps), jax.random.key(3))
  clean, _ = road_images(*args, percentages=(50,))
  noisy, _ = road_images(*args, percentages=(50,), noise=0.05)
  difference = np.asarray(noisy - clean, np.float64)
  removed = np.stack([[removed_pixels(maps[b], 512, lerf) for lerf in (False, True)]
                      for b in range(2)])
  draws = difference[removed].ravel()  # 2 images x 2 orders x 512 pixels x 3 channels
  assert np.all(difference[~removed] == 0)
  standard_error = 0.05 / np.sqrt(draws.size)
  assert abs(draws.mean()) < 5 * standard_error
  assert abs(draws.std() / 0.05 - 1) < 5 / np.sqrt(2 * draws.size)
  assert np.corrcoef(draws[:-1], draws[1:])[0, 1] < 5 / np.sqrt(draws.size)


def test_equals_quantus_on_grey_images(twin, torch, quantus):
  """Quantus 0.6.0's ROAD broadcasts [B,1,H,W] maps over the colour channels and then indexes
  a per-pixel mask with channel indices (IndexError for RGB), so it is compared on grey
  images: Quantus imputes the one channel and its model repeats it to RGB; salijax gets the
  grey image in all three channels (the imputation is per channel, so the same pixels)."""
  images, maps = inputs(batch=4, height=16, width=16, seed=4)
  grey = images[..., :1]
  model = twin_cnn.torch_model(torch, twin_cnn.weights(0))

  class Grey(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.inner = model

    def forward(self, x):
      return self.inner(x.repeat(1, 3, 1, 1))

  rgb = np.repeat(grey, 3, axis=-1)
  labels = np.asarray(jnp.argmax(twin.logits(jnp.asarray(rgb)), -1)).astype(np.int64)
  percentages = [3, 20, 50, 70, 95]
  metric = quantus.ROAD(percentages=percentages, noise=0.0, normalise=False, abs=False,
                        disable_warnings=True, display_progressbar=False,
                        return_aggregate=False)
  expected = metric(model=Grey().eval(), x_batch=grey.transpose(0, 3, 1, 2), y_batch=labels,
                    a_batch=maps[:, None], device="cpu", channel_first=True)
  ours = road(twin, rgb, maps, labels.astype(np.int32), percentages=percentages, noise=0.0)
  # Accuracies are exact 0/1; the imputations differ by ~1e-5, far from flipping a class.
  np.testing.assert_array_equal(np.asarray(ours.morf_accuracy).mean(0),
                                [expected[p] for p in percentages])


def test_imputation_equals_quantus_noisy_linear_imputation_on_rgb(quantus):
  del quantus
  from quantus.functions.perturb_func import noisy_linear_imputation  # noqa: PLC0415
  images, maps = inputs(batch=2, height=16, width=16, seed=5)
  imputed, _ = road_images(jnp.asarray(images), jnp.asarray(maps), jax.random.key(0),
                           percentages=(30, 90))
  for b in range(2):
    order = np.argsort(-maps[b].ravel(), kind="stable")
    for job, count in enumerate((76, 230)):
      expected = noisy_linear_imputation(images[b].transpose(2, 0, 1).astype(np.float64),
                                         order[:count], noise=0.0)
      np.testing.assert_allclose(np.asarray(imputed)[b, job], expected.transpose(1, 2, 0),
                                 rtol=0, atol=imputation_error_bound(16, 16))


def test_invariant_to_chunk(twin):
  images, maps = inputs(batch=3, height=16, width=16, seed=6)
  options = dict(percentages=(10, 30, 60), noise=0.02, key=jax.random.key(1))
  reference = road(twin, images, maps, **options, chunk=6)
  for chunk in (1, 4, 1000):
    other = road(twin, images, maps, **options, chunk=chunk)
    for name in Road._fields:
      # Each system stops at its own residual, whatever else shares its chunk.
      np.testing.assert_allclose(getattr(other, name), getattr(reference, name), rtol=0,
                                 atol=1e-6, err_msg=name)


def test_works_inside_jit(twin):
  images, maps = inputs(batch=2, height=16, width=16, seed=7)
  labels = jnp.asarray([0, 2], jnp.int32)
  options = dict(percentages=(20, 60), noise=0.01)
  direct = road(twin, images, maps, labels, key=jax.random.key(2), **options)
  jitted = jax.jit(lambda i, m, y, k: road(twin, i, m, y, key=k, **options))(
      jnp.asarray(images), jnp.asarray(maps), labels, jax.random.key(2))
  for name in Road._fields:
    np.testing.assert_allclose(getattr(jitted, name), getattr(direct, name), atol=1e-6)


def test_labels_none_scores_the_predicted_classes(twin):
  images, maps = inputs(batch=2, height=16, width=16, seed=8)
  predicted = jnp.argmax(twin.logits(jnp.asarray(images)), -1).astype(jnp.int32)
  np.testing.assert_array_equal(
      road(twin, images, maps, percentages=(0, 50), noise=0.0).morf_probability,
      road(twin, images, maps, predicted, percentages=(0, 50), noise=0.0).morf_probability)
  # 0% removes nothing: the predicted class is right.
  assert np.all(road(twin, images, maps, percentages=(0,), noise=0.0).morf_accuracy == 1)


@pytest.mark.parametrize("change, error, pattern", [
    (dict(percentages=(10, 5)), ValueError, r"percentages.*increasing"),
    (dict(percentages=(50, 100)), ValueError, r"percentages.*\[0, 100\)"),
    (dict(percentages=()), ValueError, r"percentages"),
    (dict(noise=-0.1), ValueError, r"noise"),
    (dict(noise=0.1, key=None), TypeError, r"key"),
    (dict(tol=0.0), ValueError, r"tol"),
    (dict(max_iterations=0), ValueError, r"max_iterations"),
    (dict(chunk=0), ValueError, r"chunk"),
    (dict(maps=np.full((2, 16, 16), np.nan, np.float32)), ValueError, r"maps.*finite"),
    (dict(maps=np.ones((2, 16, 16), np.float32)), ValueError, r"maps.*constant"),
    (dict(images=np.full((2, 16, 16, 3), 2.0, np.float32)), ValueError, r"images.*\[0, 1\]"),
    (dict(labels=np.array([0, 9], np.int32)), ValueError, r"labels"),
])
def test_bad_inputs(twin, change, error, pattern):
  images, maps = inputs()
  args = dict(images=images, maps=maps, labels=None, key=jax.random.key(0)) | change
  with pytest.raises(error, match=pattern):
    road(twin, args.pop("images"), args.pop("maps"), args.pop("labels"), **args)
