"""salijax's LIME against the `lime` package (0.2.0.1), its anchor: the same segments, samples
and scores give the same segment weights (docs/methods.md#lime)."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import tiny_classifiers
import weighted_ridge_test

from salijax.methods.lime import kept_segments, lime, lime_segment_weights, segment_means
from salijax.methods.slic import slic, slic_grid

SIZE = 32
NUM_SEGMENTS = 12
KERNEL_WIDTH = 0.25  # lime_image's default, and salijax's


@functools.cache
def _cnn():
  return tiny_classifiers.random_cnn(jax.random.key(3))


def _image(seed):
  """A smooth random colour image f32[SIZE,SIZE,3] (its segments have some structure)."""
  noise = np.random.default_rng(seed).uniform(size=(SIZE, SIZE, 3))
  return ndi.gaussian_filter(noise, (2, 2, 0)).clip(0, 1).astype(np.float32)


def _jax_segments(image):
  """salijax's SLIC labels i32[H,W] of one image (some of its labels may be empty)."""
  return np.asarray(jax.jit(functools.partial(
      slic, num_segments=NUM_SEGMENTS, compactness=10.0, sigma=1.0))(image))


def _probabilities(images):
  clf = _cnn()
  return np.asarray(jax.nn.softmax(jax.jit(clf.apply)(clf.variables, images), axis=-1))


def _kernel_weights(data, kernel_width=KERNEL_WIDTH):
  """lime_image's kernel of the cosine distances to sample 0 (the unperturbed image, all
  ones): 1 - cos(z, 1), and 1 for z = 0."""
  norms = np.sqrt(data.sum(axis=1) * data.shape[1])
  distances = 1.0 - np.where(norms > 0, data.sum(axis=1) / np.maximum(norms, 1.0), 0.0)
  return np.sqrt(np.exp(-distances ** 2 / kernel_width ** 2))


def _score_atol(image, segments, data):
  """Bound f32[S,C] on the difference of two programs' class probabilities of the perturbed
  images (fills: segment means, which may differ by a sum's rounding): logits within dz,
  probabilities within p (2 dz + (classes + 3) eps)."""
  clf = _cnn()
  fill = segment_means(jnp.asarray(image), jnp.asarray(segments), int(segments.max()) + 1)
  perturbed = np.where(data[:, segments][..., None] == 1, image, np.asarray(fill))
  terms = np.asarray(jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))(perturbed))
  n = (tiny_classifiers.random_cnn_terms(SIZE // 4, SIZE // 4) + 8
       + int(np.bincount(segments.ravel()).max()))  # + perturbing, + the fill's sum
  dz = float_tolerance.sum_atol(terms, n)
  probabilities = _probabilities(perturbed)
  return probabilities * (2 * dz + (probabilities.shape[1] + 3) * float_tolerance.EPS)


def _lime_weights(lime_package, data, scores, *, num_features, kernel_width=KERNEL_WIDTH,
                  alpha=1.0):
  """lime's `LimeBase.explain_instance_with_data` (the base of a LimeImageExplainer, so its
  kernel; its own Ridge(alpha=1), else Ridge(alpha) as `model_regressor`) on the samples
  `data` [S,n], the scores f32[S] and cosine distances as `explain_instance` takes them.

  Returns lime's coefficient per column (0 where its feature selection drops the column),
  how many columns it kept, and the rounding bound of salijax's float32 fit.
  """
  import sklearn.linear_model  # noqa: PLC0415 - lime's dependency, there with lime
  import sklearn.metrics  # noqa: PLC0415

  base = lime_package.lime_image.LimeImageExplainer(kernel_width=kernel_width,
                                                    random_state=0).base
  distances = sklearn.metrics.pairwise_distances(data, data[:1], metric="cosine").ravel()
  weights = base.kernel_fn(distances)
  np.testing.assert_allclose(weights, _kernel_weights(data, kernel_width), rtol=1e-14)
  regressor = None if alpha == 1.0 else sklearn.linear_model.Ridge(alpha=alpha)
  _, explanation, _, _ = base.explain_instance_with_data(
      data, np.asarray(scores, np.float64)[:, None], distances, 0, num_features,
      feature_selection="auto", model_regressor=regressor)
  want = np.zeros(data.shape[1])
  for column, weight in explanation:
    want[column] = weight
  used = sorted(column for column, _ in explanation)
  atol, _ = weighted_ridge_test.ridge_atol(data[:, used], scores, weights, alpha)
  return want, len(used), atol


# num_features: lime's default 100000 (`auto` -> highest_weights, every segment), 7
# (highest_weights), 3 (forward_selection); other kernel widths and penalties.
@pytest.mark.parametrize("num_features,kernel_width,alpha", [
    (100000, KERNEL_WIDTH, 1.0), (7, KERNEL_WIDTH, 1.0), (3, KERNEL_WIDTH, 1.0),
    (100000, 0.5, 3.0)])
def test_segment_weights_equal_lime_base_on_the_same_samples(lime_package, num_features,
                                                             kernel_width, alpha):
  """lime's regression on salijax's samples, distances and scores finds salijax's weights."""
  clf, image, label = _cnn(), _image(0), 1
  segments = _jax_segments(image)
  num_columns = slic_grid(SIZE, SIZE, NUM_SEGMENTS).size
  present = np.unique(segments)
  assert len(present) < num_columns  # empty labels are covered
  samples = np.asarray(kept_segments(jax.random.key(7), jnp.arange(100), num_columns))
  data = samples[:, present].astype(np.float64)
  assert (data.sum(axis=1) == 0).any()  # a sample with no segment (cosine distance 1)
  run = functools.partial(lime_segment_weights, clf, image[None], np.array([label], np.int32),
                          segments[None], samples, hide="segment_mean",
                          num_features=num_features, chunk=64)
  coef, scores = run(kernel_width=kernel_width, ridge_alpha=alpha)
  scores = np.asarray(scores[0], np.float64)
  want, used, atol = _lime_weights(lime_package, data, scores, num_features=num_features,
                                   kernel_width=kernel_width, alpha=alpha)
  assert used == min(num_features, len(present))
  np.testing.assert_allclose(np.asarray(coef[0])[present], want, rtol=0, atol=atol)
  absent = np.setdiff1d(np.arange(num_columns), present)
  np.testing.assert_array_equal(np.asarray(coef[0])[absent], 0.0)
  if num_features > len(present):  # the bound tells apart a slightly other kernel or penalty
    for other in (dict(kernel_width=1.2 * kernel_width), dict(ridge_alpha=1.25 * alpha)):
      other_coef = np.asarray(run(**({"kernel_width": kernel_width, "ridge_alpha": alpha}
                                     | other))[0][0])
      assert np.abs(other_coef[present] - want).max() > atol


def test_explain_instance_end_to_end(lime_package):
  """LimeImageExplainer.explain_instance with its defaults (hide_color=None, top_labels=5,
  num_features=100000, feature_selection='auto', kernel_width=0.25, sample 0 the image) on
  salijax's segments: its own draws (RandomState) fed to salijax give its weights for each
  explained label."""
  clf, image = _cnn(), _image(1)
  _, segments = np.unique(_jax_segments(image), return_inverse=True)  # lime wants 0..n-1
  segments = segments.reshape(SIZE, SIZE).astype(np.int32)
  explainer = lime_package.lime_image.LimeImageExplainer(random_state=5)
  recorded = {}
  data_labels = explainer.data_labels

  def recording_data_labels(*args, **kwargs):
    recorded["data"], recorded["labels"] = data_labels(*args, **kwargs)
    return recorded["data"], recorded["labels"]

  explainer.data_labels = recording_data_labels
  explanation = explainer.explain_instance(image, _probabilities, num_samples=200, batch_size=50,
                                           segmentation_fn=lambda _: segments)
  data, lime_scores = recorded["data"], recorded["labels"]
  assert (data[0] == 1).all() and data.shape == (200, segments.max() + 1)
  labels = np.array(explanation.top_labels, np.int32)
  assert len(labels) == 4  # every class of the 4-class network is among the top 5

  batch = len(labels)
  coef, scores = lime_segment_weights(
      clf, np.repeat(image[None], batch, 0), labels, np.repeat(segments[None], batch, 0), data,
      hide="segment_mean", chunk=64)
  score_atol = _score_atol(image, segments, data)
  weights = _kernel_weights(data)
  for row, label in enumerate(labels):
    assert (np.abs(np.asarray(scores[row]) - lime_scores[:, label])
            <= score_atol[:, label]).all()
    want = np.zeros(data.shape[1])
    for column, weight in explanation.local_exp[label]:
      want[column] = weight
    atol, _ = weighted_ridge_test.ridge_atol(data, lime_scores[:, label], weights, 1.0,
                                             score_atol[:, label])
    np.testing.assert_allclose(coef[row], want, rtol=0, atol=atol)


def test_segment_mean_fill_is_each_segments_mean_colour():
  image, segments = _image(2), _jax_segments(_image(2))
  got = np.asarray(segment_means(jnp.asarray(image), jnp.asarray(segments), 64))
  for segment in np.unique(segments):
    inside = segments == segment
    mean = image[inside].astype(np.float64).mean(axis=0)
    atol = float_tolerance.sum_rtol(inside.sum() + 1) * np.abs(image[inside]).max()
    np.testing.assert_allclose(got[inside], np.broadcast_to(mean, got[inside].shape), rtol=0,
                               atol=atol)


@pytest.mark.parametrize("num_features", [100000, 3])
def test_lime_paints_lime_segment_weights(num_features):
  """The registered method is lime_segment_weights on its own samples, painted per pixel."""
  clf, image = _cnn(), _image(0)
  segments = _jax_segments(image)
  num_columns = slic_grid(SIZE, SIZE, NUM_SEGMENTS).size
  key = jax.random.key(4)
  maps = lime(clf, image[None], np.array([1], np.int32), key=key, num_samples=100,
              num_segments=NUM_SEGMENTS, hide="segment_mean", num_features=num_features)
  samples = kept_segments(key, jnp.arange(100), num_columns)
  coef, scores = lime_segment_weights(clf, image[None], np.array([1], np.int32),
                                      segments[None], samples, hide="segment_mean",
                                      num_features=num_features)
  present = np.unique(segments)
  data = np.asarray(samples)[:, present].astype(np.float64)
  relabelled = np.searchsorted(present, segments)
  score_atol = _score_atol(image, relabelled, data)
  atol, _ = weighted_ridge_test.ridge_atol(data, np.asarray(scores[0]), _kernel_weights(data),
                                           1.0, score_atol[:, 1])
  np.testing.assert_allclose(maps[0], np.asarray(coef[0])[segments], rtol=0, atol=2 * atol)
  assert (np.asarray(coef[0]) != 0).sum() <= min(num_features, len(present))


def test_lime_segment_weights_checks_its_inputs():
  clf, image = _cnn(), _image(0)
  segments = np.zeros((1, SIZE, SIZE), np.int32)
  samples = np.ones((4, 3), bool)
  run = functools.partial(lime_segment_weights, clf, image[None], np.array([0], np.int32))
  with pytest.raises(ValueError, match="samples"):
    run(segments, np.full((4, 3), 2))
  with pytest.raises(ValueError, match="segments"):
    run(segments + 3, samples)
  with pytest.raises(ValueError, match="segments"):
    run(segments[0], samples)
  with pytest.raises(ValueError, match="hide"):
    run(segments, samples, hide="grey")
  with pytest.raises(ValueError, match="num_features"):
    run(segments, samples, num_features=0)
