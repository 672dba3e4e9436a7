"""Tests of salijax.methods.lrp: zennit 0.5.1 on the same weights, hand-computed relevances,
conservation, refusals.

zennit is the reference: torchvision's ResNet18, VGG11 and VGG11_BN with
random weights (experiments/torch_models.randomize) are ported to salijax
(salijax.porting); zennit explains the torch model, fed normalised images,
with the composite and torchvision canonizer (BatchNorms merged, residual sums
as `Sum` modules), through `zennit.attribution.Gradient` with the output
relevance one_hot(label) * logits; salijax explains the port, which normalises
inside, at precision "highest". zennit leaves each merged BatchNorm computing
x / sqrt(1 + eps) (its statistics reset to 0 and 1, its eps kept), a factor
1 - 5e-6 per BatchNorm that is no part of LRP; the torch BatchNorms get eps = 0
and running_var + eps instead, the same function, so that the merged ones are
the identity.
"""

import functools

import flax.linen as nn
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

import salijax
from salijax import models
from salijax.classifier import Classifier
from salijax.methods import lrp
from salijax.models.parameter_free_layers import adaptive_avg_pool
from salijax.porting import torchvision_to_flax

pytestmark = pytest.mark.xdist_group("torch_ported_models")

MEAN = np.asarray([0.485, 0.456, 0.406], np.float32)
STD = np.asarray([0.229, 0.224, 0.225], np.float32)
NUM_CLASSES = 10
SIZE = 64
LABELS = np.asarray([6, 3], np.int32)


def ported(torch, torch_models, arch):
  """(torch model with eps-free BatchNorms, salijax Classifier with the same weights)."""
  import torchvision  # noqa: PLC0415 - with torch (zennit's canonizers need its classes)

  model = getattr(torchvision.models, arch)(weights=None, num_classes=NUM_CLASSES)
  torch_models.randomize(model, 4)
  model.eval()
  variables = torchvision_to_flax(arch, {k: v.numpy() for k, v in model.state_dict().items()})
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.running_var.add_(module.eps)
        module.eps = 0.0
  return model, models.classifier(models.create(arch, num_classes=NUM_CLASSES), variables)


def zennit_relevance(torch, zennit, model, arch, composite, images):
  """zennit's relevance of the normalised images, f32[B,H,W,3]."""
  x = torch.from_numpy(((images - MEAN) / STD).transpose(0, 3, 1, 2).copy())
  canonizers = [zennit.torchvision.ResNetCanonizer() if arch.startswith("resnet")
                else zennit.torchvision.VGGCanonizer()]
  if composite == "epsilon_plus_flat":
    rules = zennit.composites.EpsilonPlusFlat(canonizers=canonizers)
  elif composite == "epsilon_alpha2_beta1":
    rules = zennit.composites.EpsilonAlpha2Beta1(canonizers=canonizers)
  else:  # the box bounds in the first layer's input space: normalised 0 and 1
    bound = [torch.from_numpy(((v - MEAN) / STD).reshape(1, 3, 1, 1)).expand_as(x)
             for v in (0.0, 1.0)]
    rules = zennit.composites.EpsilonGammaBox(low=bound[0], high=bound[1],
                                              canonizers=canonizers)
  one_hot = torch.eye(NUM_CLASSES)[torch.from_numpy(LABELS).long()]
  with zennit.attribution.Gradient(model=model, composite=rules) as attributor:
    _, relevance = attributor(x, lambda logits: one_hot * logits)
  return relevance.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("arch,composite", [
    ("resnet18", "epsilon_plus_flat"),
    pytest.param("vgg11", "epsilon_plus_flat", marks=pytest.mark.slow),
    pytest.param("vgg11_bn", "epsilon_gamma_box", marks=pytest.mark.slow),
    pytest.param("vgg16", "epsilon_alpha2_beta1", marks=pytest.mark.slow),
    pytest.param("resnet18", "epsilon_gamma_box", marks=pytest.mark.slow),
    pytest.param("resnet18", "epsilon_alpha2_beta1", marks=pytest.mark.slow)])
def test_equals_zennit(torch, torch_models, zennit, arch, composite):
  """Equal to zennit within rtol 1e-4 of the map's scale, but for near-ties.

  Each relevance is a chain of ~20 layers of float32 sums (up to 3 x 3 x 512 terms)
  and quotients; the two libraries sum in different orders, so each layer's
  relevance differs by a few roundings of its largest terms: ~1e-6 of the scale
  per layer (observed: 4e-6 at most, ResNet18 with the gamma rule). As in
  captum_agreement_test, units whose denominator or ReLU/max-pool decision sits
  within rounding of a tie legitimately differ in their receptive fields: at most
  3 % of the elements may, holding at most 1 % of the norm; a wrong rule, weight
  or bound changes far more.
  """
  model, clf = ported(torch, torch_models, arch)
  images = np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
  expected = zennit_relevance(torch, zennit, model, arch, composite, images)
  got = np.asarray(lrp(clf, jnp.asarray(images), jnp.asarray(LABELS), composite=composite,
                       reduce="none"))
  scale = np.abs(expected).max()
  assert scale > 0.0
  mismatched = ~np.isclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
  assert mismatched.mean() < 0.03, f"{mismatched.sum()} of {mismatched.size} differ"
  assert np.linalg.norm(got - expected) < 1e-2 * np.linalg.norm(expected)
  # The maps are not the gradient times the (normalised) input: the rules acted.
  x = torch.from_numpy(((images - MEAN) / STD).transpose(0, 3, 1, 2).copy()).requires_grad_()
  model(x)[np.arange(2), LABELS].sum().backward()
  plain = (x.grad * x).detach().numpy().transpose(0, 2, 3, 1)
  assert np.abs(plain - got).max() > 0.05 * scale


# ------------------------------------------------------------ a hand-computed network

W1 = np.asarray([[1.0, -2.0, 0.5, 0.0], [-1.0, 1.5, 1.0, -0.5], [0.5, 0.5, -1.0, 2.0]])
B1 = np.asarray([0.1, -0.2, 0.3, 0.05])
W2 = np.asarray([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.5], [1.0, 1.0]])
B2 = np.asarray([0.2, -0.1])


def hand_network() -> Classifier:
  """images f32[B,2,2,3] -> 1x1 conv (W1, B1) -> ReLU -> spatial mean -> dense (W2, B2)."""
  variables = {"w1": jnp.asarray(W1[None, None], jnp.float32), "b1": jnp.asarray(B1, jnp.float32),
               "w2": jnp.asarray(W2, jnp.float32), "b2": jnp.asarray(B2, jnp.float32)}

  def apply(v, images):
    hidden = jax.lax.conv_general_dilated(
        images, v["w1"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST) + v["b1"]
    pooled = jax.nn.relu(hidden).mean(axis=(1, 2))
    return jnp.matmul(pooled, v["w2"], precision=jax.lax.Precision.HIGHEST) + v["b2"]

  return Classifier(variables=variables, apply=apply)


def stab(z, e=1e-6):
  return z + e * np.where(z >= 0, 1.0, -1.0)


def hand_relevance(x, label, first):
  """The relevance of x f32[4,3] (4 pixels) by the rules, in float64 on explicit sums.

  The dense layer: epsilon; the mean: norm; the 1x1 conv (one dense map per pixel):
  `first` ("flat", "box" with bounds [0, 1], or "alpha2_beta1").
  """
  z1 = x @ W1 + B1
  a = np.maximum(z1, 0)
  m = a.mean(axis=0)
  y = m @ W2 + B2
  r_y = np.eye(2)[label] * y
  r_m = m * (W2 @ (r_y / stab(y)))
  r_a = a * (r_m / stab(m))[None] / 4  # the mean's weights 1/4
  pos, neg = np.maximum(W1, 0), np.minimum(W1, 0)
  if first == "flat":
    return np.tile((r_a / stab(np.full(4, 3.0))).sum(axis=1, keepdims=True), (1, 3))
  if first == "box":
    low, high = np.zeros_like(x), np.ones_like(x)
    z = x @ W1 - low @ pos - high @ neg
    g = r_a / stab(z)
    return x * (g @ W1.T) - low * (g @ pos.T) - high * (g @ neg.T)
  xp, xn = np.maximum(x, 0), np.minimum(x, 0)
  z_pos = xp @ pos + np.maximum(B1, 0) + xn @ neg
  z_neg = xp @ neg + np.minimum(B1, 0) + xn @ pos
  g_pos, g_neg = r_a / stab(z_pos), r_a / stab(z_neg)
  return (2 * (xp * (g_pos @ pos.T) + xn * (g_pos @ neg.T))
          - (xp * (g_neg @ neg.T) + xn * (g_neg @ pos.T)))


@pytest.mark.parametrize("composite,first", [("epsilon_plus_flat", "flat"),
                                             ("epsilon_gamma_box", "box"),
                                             ("epsilon_alpha2_beta1", "alpha2_beta1")])
def test_a_hand_computed_network(composite, first):
  clf = hand_network()
  images = jnp.asarray(np.random.default_rng(3).uniform(-0.5, 1.0, size=(2, 2, 2, 3)),
                       jnp.float32)
  images = jnp.clip(images, 0.0, 1.0)
  labels = jnp.array([0, 1])
  got = np.asarray(lrp(clf, images, labels, composite=composite, reduce="none"))
  for b in range(2):
    x = np.asarray(images[b], np.float64).reshape(4, 3)
    expected = hand_relevance(x, int(labels[b]), first).reshape(2, 2, 3)
    # A chain of ~10 float32 roundings and sums of <= 4 terms per element.
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got[b], expected, rtol=float_tolerance.sum_rtol(16),
                               atol=float_tolerance.sum_atol(scale, 16))


# ------------------------------------------------------------ conservation


def test_relevance_is_conserved_on_a_bias_free_relu_network():
  """random_cnn has no biases: flat, z+ (on ReLU outputs), the norm rule at its average
  pools and epsilon with tiny stabilisers each pass on all relevance, so the input's
  relevance sums to the logit (relevance passes tanh unchanged)."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=3, size=16)
  labels = jnp.array([1, 0, 3])
  got = lrp(clf, images, labels, epsilon=1e-12, stabilizer=1e-12, reduce="none")
  logits = np.asarray(clf.apply(clf.variables, images))[np.arange(3), labels]
  assert np.abs(logits).min() > 1e-3
  # Each layer's relevances are sums over the network's terms, the total one more sum
  # over the 16 x 16 x 3 inputs.
  n = tiny_classifiers.random_cnn_terms(4, 4) + 16 * 16 * 3
  terms = np.abs(np.asarray(got)).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(got).sum(axis=(1, 2, 3)), logits, rtol=0,
                             atol=float_tolerance.sum_atol(terms, n))
  # With epsilon 1 the dense layer keeps part of it.
  damped = lrp(clf, images, labels, epsilon=1.0, stabilizer=1e-12, reduce="none")
  assert np.all(np.abs(np.asarray(damped).sum(axis=(1, 2, 3))) < 0.99 * np.abs(logits))


def test_the_map_is_the_channel_sum_by_default():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 0])
  full = np.asarray(lrp(clf, images, labels, reduce="none"))
  np.testing.assert_allclose(np.asarray(lrp(clf, images, labels)), full.sum(-1),
                             rtol=float_tolerance.sum_rtol(3))


# ------------------------------------------------------------ refusals


def test_unsupported_operations_are_named():
  base = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  squared = Classifier(variables=base.variables,
                       apply=lambda v, x: base.apply(v, x * x))
  with pytest.raises(NotImplementedError, match="`mul`"):
    lrp(squared, jnp.full((1, 16, 16, 3), 0.5), jnp.array([0]))
  exponential = Classifier(variables=base.variables,
                           apply=lambda v, x: base.apply(v, jnp.exp(x)))
  with pytest.raises(NotImplementedError, match="`exp`"):
    lrp(exponential, jnp.full((1, 16, 16, 3), 0.5), jnp.array([0]))


def test_stacked_values_keep_their_relevance():
  """`jnp.stack` moves values as concatenation does: rebuilding the image from its channels
  changes nothing."""
  base = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  restacked = Classifier(variables=base.variables, apply=lambda v, x: base.apply(
      v, jnp.stack([x[..., 0], x[..., 1], x[..., 2]], axis=-1)))
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  labels = jnp.array([0, 3])
  np.testing.assert_array_equal(lrp(restacked, images, labels, reduce="none"),
                                lrp(base, images, labels, reduce="none"))


@pytest.mark.parametrize("options,error,match", [
    (dict(composite="epsilon"), ValueError, "composite"),
    (dict(alpha=3.0, beta=1.0), ValueError, "alpha"),
    (dict(low=0.8, high=0.2), ValueError, "low"),
    (dict(epsilon=-1.0), ValueError, "epsilon"),
    (dict(gamma=float("nan")), ValueError, "gamma"),
    (dict(rule="z+"), TypeError, "rule")])
def test_bad_options_are_refused(options, error, match):
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  with pytest.raises(error, match=match):
    lrp(clf, jnp.full((1, 16, 16, 3), 0.5), jnp.array([0]), **options)



@pytest.mark.parametrize("cells", [8, 4, 3, 11])  # identity, 2 x 2 blocks, overlapping, repeats
def test_the_adaptive_pool_gets_one_norm_rule_as_in_zennit(torch, zennit, cells):
  """conv -> ReLU -> AdaptiveAvgPool2d((cells, cells)) -> dense on 8 x 8 images, with a
  stabilizer of 0.05, which changes the norm rule's relevance by ~5 % per application:
  zennit stabilises each pooled cell once, as must salijax (not once per axis, and not
  zero times where the pool keeps the size). Three layers of float32 sums of <= 36 terms
  on both sides."""
  rng = np.random.default_rng(cells)
  kernel = rng.normal(0.0, 0.5, (4, 3, 3, 3)).astype(np.float32)  # OIHW
  bias = rng.uniform(0.0, 0.3, 4).astype(np.float32)
  dense = rng.normal(0.0, 0.5, (3, 4 * cells * cells)).astype(np.float32)  # torch's Linear
  model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d((cells, cells)), torch.nn.Flatten(),
                              torch.nn.Linear(4 * cells * cells, 3, bias=False)).eval()
  with torch.no_grad():
    model[0].weight.copy_(torch.from_numpy(kernel))
    model[0].bias.copy_(torch.from_numpy(bias))
    model[4].weight.copy_(torch.from_numpy(dense))

  def apply(v, images):
    x = jax.lax.conv_general_dilated(images, v["kernel"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "OIHW", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST) + v["bias"]
    x = adaptive_avg_pool(jax.nn.relu(x), (cells, cells))
    flat = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # torch's C, H, W order
    return jnp.matmul(flat, v["dense"].T, precision=jax.lax.Precision.HIGHEST)

  clf = Classifier(variables={"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias),
                              "dense": jnp.asarray(dense)}, apply=apply)
  images = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
  labels = np.asarray([0, 2])
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  one_hot = torch.eye(3)[torch.from_numpy(labels).long()]
  rules = zennit.composites.EpsilonPlusFlat(stabilizer=0.05)
  with zennit.attribution.Gradient(model=model, composite=rules) as attributor:
    _, relevance = attributor(x, lambda logits: one_hot * logits)
  expected = relevance.numpy().transpose(0, 2, 3, 1)
  got = np.asarray(lrp(clf, jnp.asarray(images), jnp.asarray(labels),
                       composite="epsilon_plus_flat", stabilizer=0.05, reduce="none"))
  scale = np.abs(expected).max()
  np.testing.assert_allclose(got, expected, rtol=0,
                             atol=3 * float_tolerance.sum_atol(scale, 36) + 1e-7 * scale)


# ------------------------------------------------------------ a wrapped Flax model


class _LinenCnn(nn.Module):
  """Conv (bias) -> BatchNorm -> ReLU -> 2x2 average pool -> Conv -> ReLU -> mean -> Dense."""

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(4, (3, 3), name="conv1")(x)
    x = nn.relu(nn.BatchNorm(use_running_average=True, name="bn1")(x))
    x = nn.avg_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Conv(5, (3, 3), use_bias=False, name="conv2")(x))
    return nn.Dense(3, name="fc")(x.mean(axis=(1, 2)))


def test_a_wrapped_flax_model_gets_its_batchnorm_merged():
  """salijax.wrap of a linen CNN equals the same network as a plain function with the
  BatchNorm folded into the first convolution by hand (zennit's merge)."""
  module = _LinenCnn()
  variables = module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
  keys = jax.random.split(jax.random.key(1), 4)
  stats = {"mean": 0.3 * jax.random.normal(keys[0], (4,)),
           "var": jax.random.uniform(keys[1], (4,), minval=0.5, maxval=2.0)}
  params = dict(variables["params"])
  params["bn1"] = {"scale": jax.random.uniform(keys[2], (4,), minval=-1.5, maxval=1.5),
                   "bias": 0.2 * jax.random.normal(keys[3], (4,))}
  params["conv1"] = dict(params["conv1"], bias=0.1 * jax.random.normal(keys[3], (4,)))
  variables = {"params": params, "batch_stats": {"bn1": stats}}
  wrapped = salijax.wrap(module, variables)

  scale = params["bn1"]["scale"] / jnp.sqrt(stats["var"] + 1e-5)
  merged = {"w1": params["conv1"]["kernel"] * scale,
            "b1": (params["conv1"]["bias"] - stats["mean"]) * scale + params["bn1"]["bias"],
            "w2": params["conv2"]["kernel"], "fc": params["fc"]}

  def plain(v, images):
    conv = functools.partial(jax.lax.conv_general_dilated, window_strides=(1, 1),
                             padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = jax.nn.relu(conv(images, v["w1"]) + v["b1"])
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    x = jax.nn.relu(conv(x, v["w2"])).mean(axis=(1, 2))
    return x @ v["fc"]["kernel"] + v["fc"]["bias"]

  images = jax.random.uniform(jax.random.key(2), (2, 8, 8, 3))
  labels = jnp.array([0, 2])
  np.testing.assert_allclose(wrapped.logits(images), plain(merged, images), rtol=1e-5,
                             atol=1e-5)
  for composite in ("epsilon_gamma_box", "epsilon_alpha2_beta1"):
    got = np.asarray(lrp(wrapped, images, labels, composite=composite, reduce="none"))
    expected = np.asarray(lrp(Classifier(variables=merged, apply=plain), images, labels,
                              composite=composite, reduce="none"))
    # The two compute s * (W x) and (s W) x: a few roundings apart per layer, over sums
    # of <= 36 terms, in three layers.
    magnitude = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0,
                               atol=float_tolerance.sum_atol(magnitude, 3 * 36))
