"""Tests of salijax.metrics.random_logit: skimage as the reference of flat_ssim, known
answers, the class draw, Quantus 0.6.0's RandomLogit on the twin CNN."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
import twin_cnn
from float_tolerance import sum_rtol

from salijax import methods
from salijax.metrics import map_similarity
from salijax.metrics.random_logit import RandomLogit, flat_ssim, random_logit

B, H, W = 3, 16, 16


def skimage_flat_ssim(a, b):
  """skimage's structural_similarity of the flattened maps in float64 (Quantus's call)."""
  from skimage.metrics import structural_similarity  # noqa: PLC0415
  out = []
  for x, y in zip(np.asarray(a, np.float64), np.asarray(b, np.float64), strict=True):
    x, y = x.ravel(), y.ravel()
    both = np.concatenate([x, y])
    out.append(structural_similarity(x, y, data_range=both.max() - both.min()))
  return np.array(out)


def test_flat_ssim_matches_skimage():
  """float32 against float64: the window sums are of 7 terms of one sign and the SSIM a few
  products and quotients of them; cancellation in the variances is bounded by the maps'
  range (values in [0, 1], variance not small): 1e-5 absolute covers it with margin."""
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(4, 9, 13)).astype(np.float32)
  b = (0.6 * a + 0.4 * rng.uniform(size=(4, 9, 13))).astype(np.float32)
  b[2] = a[2]
  b[3] = rng.normal(size=(9, 13))
  got = flat_ssim(a, b)
  np.testing.assert_allclose(got, skimage_flat_ssim(a, b), rtol=0, atol=1e-5)
  assert abs(float(got[2]) - 1.0) < 1e-6
  constant = np.ones((1, 4, 4), np.float32)
  np.testing.assert_array_equal(flat_ssim(constant, constant), [1.0])


@pytest.fixture(scope="module")
def region():
  clf = tiny_classifiers.region_classifier(H, W, (4, 12, 4, 12))
  images = np.random.default_rng(1).uniform(0.3, 1.0, (B, H, W, 3)).astype(np.float32)
  return clf, images


def test_known_answers(region):
  """Classes 0 and 1 of the region classifier have opposite readouts: their signed gradients
  are negatives of each other (Spearman -1); a class-agnostic method scores 1."""
  clf, images = region
  labels = np.zeros(B, np.int32)
  result = random_logit(methods.gradient, clf, images, labels, key=jax.random.key(0),
                        similarity="spearman", other_labels=np.ones(B, np.int32),
                        method_options={"reduce": "sum"})
  assert isinstance(result, RandomLogit)
  np.testing.assert_allclose(result.similarity, -1.0, rtol=0, atol=sum_rtol(H * W))
  agnostic = random_logit("eigencam", clf, images, labels, key=jax.random.key(1))
  np.testing.assert_allclose(agnostic.similarity, 1.0, rtol=0, atol=1e-6)
  np.testing.assert_array_equal(agnostic.other_labels != 0, True)


def test_matches_the_maps_of_both_classes(region):
  """similarity = the measure of the method's maps of c and c' (each measure by name)."""
  clf, images = region
  labels = np.array([0, 1, 2], np.int32)
  key = jax.random.key(2)
  for name in ("ssim", "spearman", "flat_ssim", "hog"):
    result = random_logit(methods.gradient, clf, images, labels, key=key, similarity=name)
    first = methods.gradient(clf, images, labels)
    second = methods.gradient(clf, images, result.other_labels)
    want = map_similarity.SIMILARITIES.get(name, flat_ssim)(first, second)
    np.testing.assert_array_equal(result.similarity, want)


def test_other_labels_are_uniform_over_the_other_classes():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = jnp.full((2, 16, 16, 3), 0.5)
  labels = np.array([0, 3], np.int32)
  drawn = np.stack([np.asarray(random_logit(
      methods.gradient, clf, images, labels, key=jax.random.key(seed),
      similarity="spearman").other_labels) for seed in range(60)])
  for column, label in zip(drawn.T, labels, strict=True):
    assert label not in column
    counts = np.bincount(column, minlength=4)
    assert set(np.flatnonzero(counts)) == set(range(4)) - {label}
    assert counts.max() < 60 / 3 + 3 * np.sqrt(60 * 2 / 9)  # 3 binomial standard deviations


def test_under_jit(region):
  clf, images = region
  labels = jnp.array([0, 1, 2], jnp.int32)
  key = jax.random.key(3)
  eager = random_logit(methods.gradient, clf, images, labels, key=key)
  jitted = jax.jit(lambda x, k: random_logit(methods.gradient, clf, x, labels, key=k))(
      images, key)
  np.testing.assert_array_equal(eager.other_labels, jitted.other_labels)
  np.testing.assert_allclose(eager.similarity, jitted.similarity, rtol=0, atol=1e-5)


@pytest.mark.parametrize("change, error, pattern", [
    ({"method": 3}, TypeError, "method must be a saliency method"),
    ({"method": "nonsense"}, ValueError, "unknown method"),
    ({"similarity": "pearson"}, ValueError, "similarity must be one of"),
    ({"key": None}, TypeError, "key"),
    ({"other_labels": np.array([0, 0, 2], np.int32)}, ValueError, "differ from labels"),
    ({"other_labels": np.array([1, 0], np.int32)}, ValueError, "other_labels must have shape"),
    ({"labels": np.array([0, 1, 7], np.int32)}, ValueError, "labels"),
    ({"method": lambda clf, x, y, key: jnp.zeros(x.shape[:3] + (1,))}, ValueError,
     "maps returned by method"),
])
def test_bad_inputs_are_rejected(region, change, error, pattern):
  clf, images = region
  arguments = {"method": methods.gradient, "labels": np.array([0, 1, 2], np.int32),
               "key": jax.random.key(0)} | change
  method, labels = arguments.pop("method"), arguments.pop("labels")
  with pytest.raises(error, match=pattern):
    random_logit(method, clf, images, labels, **arguments)


def test_equal_to_quantus(quantus, torch):
  """Quantus's RandomLogit (normalise=False) with an explain_func that runs salijax's gradient
  on the JAX twin of the torch model it is given, on a 2-class twin (the other class is then
  the one class left on both sides) = similarity="flat_ssim"; 1e-5 as in
  test_flat_ssim_matches_skimage (skimage runs in float32 here, as Quantus passes it)."""
  params = twin_cnn.weights(1, num_classes=2)
  clf = twin_cnn.classifier(params)
  images = np.random.default_rng(3).uniform(size=(B, H, W, 3)).astype(np.float32)
  labels = np.array([0, 1, 1], np.int32)

  def explain_func(model, inputs, targets, **kwargs):
    state = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    twin = twin_cnn.classifier(state)
    x = jnp.asarray(np.asarray(inputs).transpose(0, 2, 3, 1))
    return np.asarray(methods.gradient(twin, x, jnp.asarray(targets, jnp.int32),
                                       reduce=kwargs.get("reduce", "max_abs")))

  for reduce in ("max_abs", "sum"):
    metric = quantus.RandomLogit(num_classes=2, normalise=False, abs=False,
                                 disable_warnings=True, display_progressbar=False)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      want = metric(model=twin_cnn.torch_model(torch, params),
                    x_batch=images.transpose(0, 3, 1, 2).copy(), y_batch=labels,
                    explain_func=explain_func, explain_func_kwargs={"reduce": reduce},
                    device="cpu", batch_size=B, channel_first=True)
    got = random_logit(methods.gradient, clf, images, labels, key=jax.random.key(0),
                       similarity="flat_ssim", method_options={"reduce": reduce})
    np.testing.assert_array_equal(got.other_labels, 1 - labels)
    np.testing.assert_allclose(got.similarity, np.asarray(want, np.float64), rtol=0, atol=1e-5)
