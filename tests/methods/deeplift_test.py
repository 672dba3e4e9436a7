"""Tests of salijax.methods.deeplift: known answers, summation-to-delta, Captum 0.9.0.

Captum explains torch models, salijax the same weights (a small CNN written in
both here; torchvision-layout ResNet18 and VGG11 ported with salijax.porting,
as tests/methods/captum_agreement_test.py), at precision "highest".
"""


import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from captum_agreement_test import LABELS, NUM_CLASSES, SIZE, assert_close, pixel_model, to_numpy
from captum_agreement_test import to_torch as nchw

from salijax import models
from salijax.classifier import Classifier
from salijax.methods import registry
from salijax.methods.deeplift import blurred, deeplift, deeplift_shap, draw_baselines
from salijax.porting import torchvision_to_flax

pytestmark = pytest.mark.xdist_group("torch_ported_models")
HIGHEST = jax.lax.Precision.HIGHEST


def linear_classifier(height: int, width: int, num_classes: int = 3) -> Classifier:
  """logits = sum_{y,x,c} I w_k + b_k: no nonlinearity, DeepLIFT = (I - I0) * w_c."""
  rng = np.random.default_rng(1)
  variables = {"w": jnp.asarray(rng.normal(size=(height, width, 3, num_classes)), jnp.float32),
               "b": jnp.asarray(rng.normal(size=num_classes), jnp.float32)}

  def apply(v, images):
    return jnp.einsum("bhwc,hwck->bk", images, v["w"], precision=HIGHEST) + v["b"]

  return Classifier(variables=variables, apply=apply)


def test_a_linear_model_gets_its_weights_times_the_difference():
  clf = linear_classifier(8, 8)
  images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3))
  labels = jnp.array([2, 0])
  w = np.moveaxis(np.asarray(clf.variables["w"]), -1, 0)[np.asarray(labels)]  # [B,H,W,3]
  array = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
  for baseline, base in (("zero", 0.0), ("blur", blurred(images)), (0.5, 0.5), (array, array)):
    got = deeplift(clf, images, labels, baseline=baseline, reduce="none")
    # The multipliers are w exactly (a one-hot cotangent adds zeros): one product rounds.
    expected = (np.asarray(images) - np.asarray(base)) * w
    np.testing.assert_allclose(got, expected, rtol=float_tolerance.sum_rtol(2), atol=0)
  shap = deeplift_shap(clf, images, labels, key=jax.random.key(0), baselines=array, chunk=1,
                       reduce="none")
  expected = np.mean([(np.asarray(images) - np.asarray(b)) * w for b in array], axis=0)
  np.testing.assert_allclose(shap, expected, rtol=float_tolerance.sum_rtol(4),
                             atol=float_tolerance.sum_atol(np.abs(expected).max(), 4))


def test_a_relu_unit_gets_the_rescale_multiplier():
  """y = relu(sum w I - 1): A = (I - I0) w (y - y0) / (z - z0), also where z0 < 0 < z."""
  w = jnp.linspace(-1.0, 2.0, 12).reshape(2, 2, 3)
  clf = Classifier(variables={"w": w}, apply=lambda v, x: jax.nn.relu(
      jnp.einsum("bhwc,hwc->b", x, v["w"], precision=HIGHEST) - 1.0)[:, None])
  images = jnp.stack([jnp.full((2, 2, 3), 0.4), jnp.full((2, 2, 3), 0.05)])
  base = jnp.full((2, 2, 3), 0.1)
  got = np.asarray(deeplift(clf, images, jnp.array([0, 0]), baseline=base, reduce="none"))
  z = np.einsum("bhwc,hwc->b", np.asarray(images, np.float64), np.asarray(w)) - 1.0
  z0 = float(np.sum(np.asarray(base, np.float64) * np.asarray(w)) - 1.0)
  assert z[0] > 0 > z0 and z[1] < 0  # one unit crosses zero, one stays off
  multiplier = (np.maximum(z, 0) - max(z0, 0)) / (z - z0)
  expected = (np.asarray(images) - np.asarray(base)) * np.asarray(w) * multiplier[:, None,
                                                                                  None, None]
  # z sums 13 terms whose magnitudes are < 4 |z|: the multiplier and A round within that.
  np.testing.assert_allclose(got, expected, rtol=4 * float_tolerance.sum_rtol(13 + 4))
  assert np.abs(got[0]).max() > 0 and np.abs(got[1]).max() == 0


def test_max_pooling_passes_the_gradient_to_each_windows_maximum():
  w = jnp.asarray(np.random.default_rng(2).normal(size=(4, 4, 3)), jnp.float32)

  def apply(v, x):
    pooled = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                   "VALID")
    return jnp.einsum("bhwc,hwc->b", pooled, v["w"], precision=HIGHEST)[:, None]

  clf = Classifier(variables={"w": w}, apply=apply)
  images = jax.random.uniform(jax.random.key(3), (2, 8, 8, 3))
  grads = jax.grad(lambda x: apply({"w": w}, x).sum())(images)
  got = deeplift(clf, images, jnp.array([0, 0]), baseline=0.25, reduce="none")
  # The multipliers are the gradient (the same VJPs): only I - I0 and the product round.
  np.testing.assert_allclose(got, (np.asarray(images) - 0.25) * np.asarray(grads),
                             rtol=float_tolerance.sum_rtol(2))


@pytest.mark.parametrize("baseline", ["zero", "blur", 0.3])
def test_the_attributions_sum_to_the_logit_difference(baseline):
  """Summation-to-delta on random_cnn (ReLUs, average pooling, tanh: no max-pool)."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=3, size=16)
  labels = jnp.array([1, 0, 3])
  got = deeplift(clf, images, labels, baseline=baseline, reduce="none")
  base = {"zero": jnp.zeros_like(images), "blur": blurred(images)}.get(
      baseline, jnp.full_like(images, 0.3))
  rows = np.arange(3)
  delta = (np.asarray(clf.apply(clf.variables, images))[rows, labels]
           - np.asarray(clf.apply(clf.variables, base))[rows, labels])
  assert np.abs(delta).min() > 1e-3
  # Both sides are sums over the network's terms (relative to their magnitudes), the
  # attributions one more sum over the 16 x 16 x 3 inputs.
  terms = (tiny_classifiers.logit_terms(clf, images) + tiny_classifiers.logit_terms(clf, base))
  n = tiny_classifiers.random_cnn_terms(4, 4) + 16 * 16 * 3
  np.testing.assert_allclose(np.asarray(got).sum(axis=(1, 2, 3)), delta, rtol=0,
                             atol=float_tolerance.sum_atol(terms, n))
  # Not the gradient times the difference: the rescale rule acted.
  plain = jax.grad(lambda x: clf.apply(clf.variables, x)[rows, labels].sum())(images)
  assert np.abs(np.asarray((images - base) * plain) - got).max() > 0.05 * np.abs(got).max()


def test_deeplift_shap_is_the_mean_of_deeplift_over_its_baselines():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  bases = jax.random.uniform(jax.random.key(4), (3, 16, 16, 3))
  one_by_one = np.mean([deeplift(clf, images, labels, baseline=b, reduce="none") for b in bases],
                       axis=0)
  scale = np.abs(one_by_one).max()
  for chunk in (1, 2, 3, 8):
    got = deeplift_shap(clf, images, labels, key=jax.random.key(0), baselines=bases,
                        chunk=chunk, reduce="none")
    np.testing.assert_allclose(got, one_by_one, rtol=0, atol=1e3 * float_tolerance.EPS * scale)


@pytest.mark.parametrize("kind", ["uniform", "blur"])
def test_drawn_baselines_follow_the_key_and_not_the_chunk(kind):
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  drawn = draw_baselines(images, jax.random.key(5), kind, 5, 0.1)
  assert drawn.shape == ((1, 5) if kind == "uniform" else (2, 5)) + images.shape[1:]
  assert 0.0 <= float(drawn.min()) and float(drawn.max()) <= 1.0
  if kind == "blur":  # the blurred image plus noise of std 0.1 (before clipping)
    noise = np.asarray(drawn - blurred(images)[:, None])
    assert 0.08 < noise.std() < 0.12
  # The first 3 of 5 baselines are the 3 drawn for N = 3: a baseline depends on its index.
  np.testing.assert_array_equal(draw_baselines(images, jax.random.key(5), kind, 3, 0.1),
                                drawn[:, :3])
  maps = deeplift_shap(clf, images, labels, key=jax.random.key(5), baselines=kind,
                       num_baselines=5, chunk=2, reduce="none")
  given = deeplift_shap(clf, images[:1], labels[:1], key=jax.random.key(0),
                        baselines=drawn[0], chunk=5, reduce="none")
  scale = np.abs(maps).max()
  np.testing.assert_allclose(given[0], maps[0], rtol=0, atol=1e3 * float_tolerance.EPS * scale)
  other = deeplift_shap(clf, images, labels, key=jax.random.key(6), baselines=kind,
                        num_baselines=5, chunk=2, reduce="none")
  assert np.abs(np.asarray(other) - np.asarray(maps)).max() > 0.01 * scale


def test_bad_baselines_are_refused():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  with pytest.raises(ValueError, match="baseline must be one of"):
    deeplift(clf, images, baseline="black")
  with pytest.raises(ValueError, match=r"baseline.*\[0, 1\]"):
    deeplift(clf, images, baseline=1.5)
  with pytest.raises(ValueError, match="baseline.*broadcastable"):
    deeplift(clf, images, baseline=jnp.zeros((8, 8, 3)))
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="baselines must be one of"):
    deeplift_shap(clf, images, key=key, baselines="zero")
  with pytest.raises(TypeError, match="baselines"):
    deeplift_shap(clf, images, key=key, baselines=0.0)
  with pytest.raises(ValueError, match=r"baselines: expected an array f32\[N,H,W,3\]"):
    deeplift_shap(clf, images, key=key, baselines=jnp.zeros((2, 8, 8, 3)))
  with pytest.raises(ValueError, match=r"baseline.*\[0, 1\]"):
    deeplift_shap(clf, images, key=key, baselines=jnp.full((2, 16, 16, 3), -1.0))


def test_the_costs_count_the_pairs():
  shapes = registry.Shapes(2, 32, 32, 0)
  info = registry.info("deeplift_shap")
  options = info.resolve({"num_baselines": 10, "chunk": 4})
  assert info.cost(options, shapes) == registry.PassCount("gradient", 20, 8)
  options = info.resolve({"baselines": np.zeros((3, 32, 32, 3)), "chunk": 4})
  assert info.cost(options, shapes) == registry.PassCount("gradient", 6, 6)
  assert registry.info("deeplift").cost({}, shapes) == registry.PassCount("gradient", 2, 2)


# ---------------------------------------------------------------- Captum


def small_cnn(torch):
  """A torch CNN with a ReLU before a max-pool, a sigmoid and a tanh, and its salijax twin."""
  nn = torch.nn
  torch.manual_seed(0)
  model = nn.Sequential(
      nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
      nn.Sigmoid(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8), nn.Tanh(),
      nn.Linear(8, 4)).eval()
  v = {k: jnp.asarray(p.detach().numpy()) for k, p in model.state_dict().items()}

  def conv(x, w, b):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=(
        "NCHW", "OIHW", "NCHW"), precision=HIGHEST) + b[:, None, None]

  def apply(v, images):
    x = jnp.moveaxis(images, -1, 1)
    x = jax.nn.relu(conv(x, v["0.weight"], v["0.bias"]))
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    x = jax.nn.sigmoid(conv(x, v["3.weight"], v["3.bias"])).mean(axis=(2, 3))
    x = jnp.tanh(jnp.matmul(x, v["7.weight"].T, precision=HIGHEST) + v["7.bias"])
    return jnp.matmul(x, v["9.weight"].T, precision=HIGHEST) + v["9.bias"]

  return model, Classifier(variables=v, apply=apply)


def test_small_cnn_matches_captum(torch, captum):
  model, clf = small_cnn(torch)
  images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
  labels = np.array([1, 3])
  target = torch.from_numpy(labels).long()
  for baseline, base in (("zero", np.zeros_like(images)),
                         ("blur", np.asarray(blurred(jnp.asarray(images))))):
    expected = to_numpy(captum.attr.DeepLift(model).attribute(
        nchw(torch, images), baselines=nchw(torch, base), target=target))
    got = np.asarray(deeplift(clf, images, labels, baseline=baseline, reduce="none"))
    assert_close(got, expected)
  bases = np.random.default_rng(1).uniform(size=(3, 16, 16, 3)).astype(np.float32)
  expected = to_numpy(captum.attr.DeepLiftShap(model).attribute(
      nchw(torch, images), baselines=nchw(torch, bases), target=target))
  got = np.asarray(deeplift_shap(clf, images, labels, key=jax.random.key(0), baselines=bases,
                                 chunk=2, reduce="none"))
  assert_close(got, expected)


@pytest.mark.parametrize("arch", ["resnet18", "vgg11"])
def test_ported_models_match_captum(torch, torch_models, captum, arch):
  model = torch_models.build(arch, num_classes=NUM_CLASSES, seed=4)
  variables = torchvision_to_flax(arch, {k: v.numpy() for k, v in model.state_dict().items()})
  clf = models.classifier(models.create(arch, num_classes=NUM_CLASSES), variables)
  images = np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
  target = torch.from_numpy(LABELS).long()
  if arch == "resnet18":
    with pytest.raises(RuntimeError, match="used more than once"):
      captum.attr.DeepLift(pixel_model(torch, model)).attribute(
          nchw(torch, images), baselines=0.0, target=target)
    model = torch_models.with_one_relu_module_per_call(model)
    base = np.asarray(blurred(jnp.asarray(images)))
    expected = to_numpy(captum.attr.DeepLift(pixel_model(torch, model)).attribute(
        nchw(torch, images), baselines=nchw(torch, base), target=target))
    got = np.asarray(deeplift(clf, images, LABELS, baseline="blur", reduce="none"))
  else:
    expected = to_numpy(captum.attr.DeepLift(pixel_model(torch, model)).attribute(
        nchw(torch, images), baselines=0.0, target=target))
    got = np.asarray(deeplift(clf, images, LABELS, reduce="none"))
  assert_close(got, expected)
