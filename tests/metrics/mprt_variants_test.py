"""Tests of salijax.metrics.mprt_variants: numpy/scipy references, known answers, chunks, and
Quantus 0.6.0's SmoothMPRT and EfficientMPRT with the same randomised weights."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn

from salijax import methods
from salijax.metrics import map_similarity, parameter_randomization
from salijax.metrics.mprt_variants import (
    EfficientMPRT,
    SmoothMPRT,
    discrete_entropy,
    efficient_mprt,
    smooth_mprt,
)

pytestmark = pytest.mark.xdist_group("mprt_variants")

B, H, W = 2, 16, 16
# The twin's groups, bottom up; Quantus re-draws (weight, bias) of one torch layer per step.
BOTTOM_UP = ("conv1", "bias1", "conv2", "bias2", "fc", "fc_bias")


@jax.jit
def unchecked_gradient(clf, images, labels, reduce="max_abs"):
  """salijax's gradient traced, so noisy images outside [0, 1] pass (as in the metric)."""
  return methods.gradient(clf, images, labels, reduce=reduce)


def numpy_entropy(maps, n_bins):
  """numpy's histogram and scipy's entropy, one map at a time (Quantus's discrete_entropy)."""
  import scipy.stats  # noqa: PLC0415
  return np.array([scipy.stats.entropy(np.histogram(m.ravel(), bins=n_bins)[0])
                   for m in np.asarray(maps)])


def test_discrete_entropy_matches_numpy_histograms():
  """Same bins (edges by linspace in float32 on both sides), so the same counts: the entropy
  then differs by the float32 rounding of a sum of n_bins terms -p log p (<= 1/e each)."""
  rng = np.random.default_rng(0)
  maps = rng.normal(size=(5, 12, 9)).astype(np.float32)
  maps[1] = np.round(maps[1] * 2) / 2  # few distinct values, some on bin edges
  maps[2] = 0.25  # constant: numpy's [v - 0.5, v + 0.5]
  maps[3] = rng.exponential(size=(12, 9)) ** 3  # skewed
  for n_bins in (1, 7, 100):
    np.testing.assert_allclose(discrete_entropy(jnp.asarray(maps), n_bins),
                               numpy_entropy(maps, n_bins), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def twin():
  params = twin_cnn.weights(2)
  images = np.random.default_rng(3).uniform(size=(B, H, W, 3)).astype(np.float32)
  return params, twin_cnn.classifier(params), images


def test_efficient_mprt_known_answers(twin):
  """A map that ignores the model keeps its complexity (change 0); the entropies are those
  of the maps of the trained and the fully randomised model."""
  _, clf, images = twin
  key = jax.random.key(0)
  control = efficient_mprt("random", clf, images, key=key)
  assert isinstance(control, EfficientMPRT)
  np.testing.assert_array_equal(control.relative_change, np.zeros(B))
  result = efficient_mprt(methods.gradient, clf, images, key=key, n_bins=20)
  labels = jnp.argmax(clf.logits(images), -1)
  *_, (_, randomized) = parameter_randomization.cascading_randomization(
      clf, images, jax.random.fold_in(key, 0))
  original = numpy_entropy(methods.gradient(clf, images, labels), 20)
  random = numpy_entropy(methods.gradient(randomized, images, labels), 20)
  np.testing.assert_allclose(result.original_complexity, original, rtol=0, atol=1e-5)
  np.testing.assert_allclose(result.randomized_complexity, random, rtol=0, atol=1e-5)
  np.testing.assert_allclose(result.relative_change, (random - original) / original,
                             rtol=1e-4)


def test_smooth_mprt_matches_a_loop_and_chunks(twin):
  """similarity = Spearman of |mean of the method's maps over the noisy copies| of the trained
  and each randomised model, the copies built as the module doc says."""
  _, clf, images = twin
  key = jax.random.key(1)
  n, magnitude = 4, 0.2
  labels = jnp.array([0, 3], jnp.int32)
  sigma = magnitude * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))

  def smoothed(model):
    total = 0.0
    for sample in range(n):
      z = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, 2), sample), (H, W, 3))
      noisy = images + (sample < n - 1) * sigma[:, None, None, None] * np.asarray(z)
      total = total + np.asarray(unchecked_gradient(model, jnp.asarray(noisy), labels)) / n
    return np.abs(total)

  steps = list(parameter_randomization.cascading_randomization(
      clf, images, jax.random.fold_in(key, 0), blocks=BOTTOM_UP))
  want = np.stack([map_similarity.spearman(smoothed(clf), smoothed(m)) for _, m in steps])
  for chunk in (1, 3, 10):
    got = smooth_mprt(methods.gradient, clf, images, labels, key=key, num_samples=n,
                      noise_magnitude=magnitude, blocks=BOTTOM_UP, sample_chunk=chunk,
                      measures=("spearman", "ssim"))
    assert isinstance(got, SmoothMPRT) and got.block_names == BOTTOM_UP
    np.testing.assert_allclose(got.similarity["spearman"], want, rtol=0, atol=1e-4)
    np.testing.assert_allclose(got.mean_similarity["ssim"], got.similarity["ssim"].mean(0),
                               rtol=1e-6)
  assert float(want[-1].max()) < 0.9  # randomisation changes the maps


def test_smooth_mprt_known_answer_and_jit(twin):
  """A map that ignores the model (the same key for every model) is unchanged: similarity 1."""
  _, clf, images = twin
  result = smooth_mprt("random", clf, images, key=jax.random.key(2), num_samples=3,
                       mode="independent", measures=("spearman",))
  np.testing.assert_allclose(result.similarity["spearman"], 1.0, rtol=0, atol=1e-6)
  labels = jnp.array([1, 2], jnp.int32)
  eager = efficient_mprt(methods.gradient, clf, images, labels, key=jax.random.key(3))
  jitted = jax.jit(lambda x, k: efficient_mprt(methods.gradient, clf, x, labels, key=k))(
      images, jax.random.key(3))
  np.testing.assert_allclose(eager.relative_change, jitted.relative_change, rtol=1e-4)
  # Under jit only the arrays can leave (block_names are strings).
  smooth = lambda x, k: smooth_mprt(methods.gradient, clf, x, labels, key=k,  # noqa: E731
                                    num_samples=2, blocks=("fc",)).similarity
  eager, jitted = smooth(images, jax.random.key(4)), jax.jit(smooth)(images, jax.random.key(4))
  np.testing.assert_allclose(eager["spearman"], jitted["spearman"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("function, change, error, pattern", [
    (smooth_mprt, {"num_samples": 0}, ValueError, "num_samples"),
    (smooth_mprt, {"noise_magnitude": -0.1}, ValueError, "noise_magnitude"),
    (smooth_mprt, {"mode": "top_down"}, ValueError, "mode"),
    (smooth_mprt, {"measures": "spearman"}, ValueError, "measures"),
    (smooth_mprt, {"measures": ("pearson",)}, ValueError, "measures"),
    (smooth_mprt, {"sample_chunk": 0}, ValueError, "sample_chunk"),
    (smooth_mprt, {"blocks": ("conv9",)}, ValueError, "blocks"),
    (efficient_mprt, {"n_bins": 0}, ValueError, "n_bins"),
    (efficient_mprt, {"batch_stats": "drop"}, ValueError, "batch_stats"),
    (efficient_mprt, {"key": None}, TypeError, "key"),
    (efficient_mprt, {"method": 7}, TypeError, "method"),
    (efficient_mprt, {"method_options": 3}, TypeError, "method_options"),
    (efficient_mprt, {"method": lambda clf, x, y, key: jnp.zeros(x.shape)}, ValueError,
     "maps returned by method"),
])
def test_bad_inputs_are_rejected(twin, function, change, error, pattern):
  _, clf, images = twin
  arguments = {"method": methods.gradient, "key": jax.random.key(0)} | change
  method = arguments.pop("method")
  with pytest.raises(error, match=pattern):
    function(method, clf, images, **arguments)


def torch_reset(torch, params, seed=42):
  """The twin's weights after Quantus's re-initialisation of every torch layer (each layer's
  reset_parameters after torch.manual_seed(seed + 1)), in torch's layouts."""
  model = twin_cnn.torch_model(torch, params)
  for _, module in model.named_modules():
    if hasattr(module, "reset_parameters"):
      torch.manual_seed(seed + 1)
      module.reset_parameters()
  return {name: value.detach().numpy().copy() for name, value in model.state_dict().items()}


def salijax_explanation(torch_module, inputs, targets):
  """salijax's gradient on the JAX twin of a torch twin, NCHW in, f32[B,H,W] numpy out."""
  state = {name: value.detach().numpy() for name, value in torch_module.state_dict().items()}
  x = jnp.asarray(np.asarray(inputs, np.float32).transpose(0, 2, 3, 1))
  return np.asarray(unchecked_gradient(twin_cnn.classifier(state), x,
                                       jnp.asarray(targets, jnp.int32)))


def test_efficient_mprt_equals_quantus(twin, quantus, torch):
  """Quantus's EfficientMPRT (explain_func = salijax's gradient on the JAX twin) = ours with
  init = the weights Quantus's re-initialisation gives; entropies of identical bins, maps
  within float32 of each other: 1e-4 relative on (H' - H) / H."""
  params, clf, images = twin
  labels = np.array([1, 4], np.int32)
  reset = twin_cnn.classifier(torch_reset(torch, params)).variables
  ours = efficient_mprt(methods.gradient, clf, images, labels, key=jax.random.key(0),
                        init=lambda key: reset)
  metric = quantus.EfficientMPRT(disable_warnings=True, display_progressbar=False)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    want = metric(model=twin_cnn.torch_model(torch, params),
                  x_batch=images.transpose(0, 3, 1, 2).copy(), y_batch=labels,
                  explain_func=lambda model, inputs, targets, **_: salijax_explanation(
                      model, inputs, targets), device="cpu", batch_size=B,
                  channel_first=True)
  np.testing.assert_allclose(ours.relative_change, np.asarray(want, np.float64), rtol=1e-4,
                             atol=1e-6)


def test_smooth_mprt_equals_quantus(twin, quantus, torch, monkeypatch):
  """Quantus's SmoothMPRT with our noise (its numpy draws replaced by the module doc's z_n)
  and our explanations (quantus.explain replaced by salijax's gradient on the JAX twin), its
  layers re-drawn as torch does and ours through init: its layer k = our step 2 k + 1 (a
  torch layer's weight and bias are two salijax groups). Spearman of float32 maps that agree
  to rounding: a few swapped near-ties move it by ~1e-6 each; 1e-4."""
  params, clf, images = twin
  labels = np.array([2, 0], np.int32)
  n, key = 3, jax.random.key(5)
  noise = [np.broadcast_to(np.asarray(jax.random.normal(
      jax.random.fold_in(jax.random.fold_in(key, 2), s), (H, W, 3))).transpose(2, 0, 1),
      (B, 3, H, W)).astype(np.float64) for s in range(n - 1)]
  draws = iter(range(10 ** 6))
  monkeypatch.setattr(np.random, "randn", lambda *shape: noise[next(draws) % (n - 1)])
  monkeypatch.setattr(quantus, "explain",
                      lambda model, inputs, targets, **_: salijax_explanation(
                          model, inputs, targets))
  metric = quantus.SmoothMPRT(nr_samples=n, noise_magnitude=0.1, disable_warnings=True,
                              display_progressbar=False)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    want = metric(model=twin_cnn.torch_model(torch, params),
                  x_batch=images.transpose(0, 3, 1, 2).copy(), y_batch=labels,
                  explain_func=salijax_explanation, device="cpu", batch_size=B,
                  channel_first=True)
  reset = twin_cnn.classifier(torch_reset(torch, params)).variables
  ours = smooth_mprt(methods.gradient, clf, images, labels, key=key, num_samples=n,
                     blocks=BOTTOM_UP, init=lambda _: reset)
  assert list(want) == ["original", "conv1", "conv2", "fc"]
  np.testing.assert_allclose(want["original"], 1.0, rtol=0, atol=1e-6)  # the same noise
  for k, layer in enumerate(("conv1", "conv2", "fc")):
    np.testing.assert_allclose(ours.similarity["spearman"][2 * k + 1], want[layer], rtol=0,
                               atol=1e-4, err_msg=layer)
