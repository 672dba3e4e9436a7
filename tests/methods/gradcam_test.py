"""Tests of the gradient CAMs: Grad-CAM against slow references and known answers."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images
from random_resnet import random_resnet18
from skimage import transform

from salijax import models
from salijax.methods.gradient_cams import gradcam

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("gradcam")

HIGHEST = jax.lax.Precision.HIGHEST


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
  """Reference bilinear upsampling (half-pixel centres, edge values) by skimage."""
  return transform.resize(np.asarray(cam, np.float64), (height, width), order=1, mode="edge",
                          anti_aliasing=False)


def cam_from_alpha(feats: np.ndarray, alpha: np.ndarray, height: int, width: int) -> np.ndarray:
  """ReLU(sum_k alpha_k A^k) f32[h,w,k], f32[k] -> upsampled f32[H,W]."""
  cam = np.maximum(np.tensordot(np.asarray(feats, np.float64), alpha, axes=([2], [0])), 0.0)
  return upsample(cam, height, width)


def test_matches_finite_difference_reference_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(1, (3, 32, 32, 3))
  labels = jnp.array([0, 3, 2])
  got = gradcam(clf, images, labels)
  assert got.shape == (3, 32, 32) and got.dtype == jnp.float32
  head = jax.jit(clf.head)
  for b in range(3):
    image = images[b:b + 1]
    feats = clf.features(clf.variables, image)  # f32[1,h,w,k]
    _, h, w, k = feats.shape
    delta = 1e-2  # added to every activation of one channel

    def target_logit(f, b=b, image=image):
      return float(head(clf.variables, f, image)[0, labels[b]])

    alpha = np.zeros(k)
    for channel in range(k):
      step = delta * jax.nn.one_hot(channel, k)
      # d y_c / d(shift of channel k) = sum_ij dy_c/dA_ij^k = h w alpha_k.
      alpha[channel] = (target_logit(feats + step) - target_logit(feats - step)) / (
          2 * delta * h * w)
    expected = cam_from_alpha(feats[0], alpha, 32, 32)
    assert expected.max() > 0.0
    # Not rounding but the differences: O(delta^2) truncation, and the logits' float32
    # rounding (~1e-6 of |y_c|) divided by 2 delta h w ~ 1: both well below 2e-3.
    np.testing.assert_allclose(got[b], expected, atol=2e-3 * expected.max())


@pytest.mark.parametrize("channel", [None, 1])
def test_known_answer_on_region_classifier(channel):
  """Linear head (spatial mean @ readout): alpha_k = readout[k, c] / (h w) exactly.

  Class 0's readout is +1 for every channel: its map is the upsampled sum of
  the (non-negative) features, which are zero outside the region, so > 80 % of
  its mass lies in the region (the rest is bilinear spill over its border).
  Class 1's readout is -1: every activation is evidence against it and its map
  is zero everywhere.
  """
  height, region = 48, (8, 24, 24, 40)
  clf = tiny_classifiers.region_classifier(height, height, region, channel=channel)
  images = random_images(2, (2, height, height, 3), 0.2, 1.0)
  maps = np.asarray(gradcam(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images))
  _, h, w, k = feats.shape
  readout = np.asarray(clf.variables["readout"], np.float64)
  alpha = readout[:, 0] / (h * w)
  # alpha sums h w gradients of one sign; the activations' roundings: region_terms.
  atol = float_tolerance.sum_atol(np.abs(feats[0]) @ np.abs(alpha),
                                  tiny_classifiers.region_terms(h, w) + h * w + k + 8)
  np.testing.assert_allclose(maps[0], cam_from_alpha(feats[0], alpha, 48, 48), rtol=0,
                             atol=atol)
  inside = np.zeros((height, height), bool)
  inside[region[0]:region[1], region[2]:region[3]] = True
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0.0
  np.testing.assert_array_equal(maps[1], 0.0)


def every_class(images: jax.Array, classes: int) -> tuple[jax.Array, jax.Array]:
  """Each image once per class: f32[B*classes,H,W,3], i32[B*classes]."""
  labels = jnp.tile(jnp.arange(classes), images.shape[0])
  return jnp.repeat(images, classes, axis=0), labels


RESNET_SIZE = 80


@pytest.fixture(scope="module")
def resnet():
  """A ResNet18 (5 classes, 80x80) with random weights (`random_resnet`)."""
  return random_resnet18(RESNET_SIZE)


def test_resnet_layer4_is_the_class_activation_map(resnet):
  """At `layer4` the head is average pool + fc: alpha_k = fc[k, c] / (h w)."""
  module, variables = resnet
  clf = models.classifier(module, variables, layer="layer4")
  images, labels = every_class(random_images(3, (2, RESNET_SIZE, RESNET_SIZE, 3)), 5)
  got = gradcam(clf, images, labels)
  feats = np.asarray(clf.features(variables, images))
  _, h, w, _ = feats.shape
  kernel = np.asarray(variables["params"]["fc"]["kernel"], np.float64)
  nonzero = 0
  for b in range(len(labels)):
    alpha = kernel[:, labels[b]] / (h * w)
    expected = cam_from_alpha(feats[b], alpha, RESNET_SIZE, RESNET_SIZE)
    nonzero += expected.max() > 0.0
    # A sum over k channels with cancelling terms, in float32: its error is bounded
    # relative to sum_k |alpha_k A^k|, not to the map (upsampling only averages pixels).
    atol = float_tolerance.sum_atol(np.abs(feats[b]) @ np.abs(alpha), feats.shape[-1])
    np.testing.assert_allclose(got[b], expected, rtol=0, atol=atol)
  assert nonzero >= 3


def test_resnet_inside_a_residual_block_matches_a_hand_written_head(resnet):
  """At `layer4.1.conv2` the head is bn2, + skip (layer4.0's output), ReLU, pool, fc."""
  module, variables = resnet
  clf = models.classifier(module, variables, layer="layer4.1.conv2")
  images, labels = every_class(random_images(4, (2, RESNET_SIZE, RESNET_SIZE, 3)), 5)
  got = gradcam(clf, images, labels)
  skips = models.classifier(module, variables, layer="layer4.0").features(variables, images)
  bn_params = variables["params"]["layer4_1"]["bn2"]
  bn_stats = variables["batch_stats"]["layer4_1"]["bn2"]
  fc = variables["params"]["fc"]
  kernel = np.abs(np.asarray(fc["kernel"], np.float64))

  def head(feats, skip, label):  # one image: f32[h,w,k], f32[h,w,k] -> logit
    normed = (feats - bn_stats["mean"]) / jnp.sqrt(bn_stats["var"] + 1e-5)
    out = jax.nn.relu(normed * bn_params["scale"] + bn_params["bias"] + skip)
    return (jnp.dot(out.mean(axis=(0, 1)), fc["kernel"], precision=HIGHEST) + fc["bias"])[label]

  def head_terms(feats, skip, label):  # the magnitudes of the terms `head` sums
    normed = (feats - bn_stats["mean"]) / jnp.sqrt(bn_stats["var"] + 1e-5)
    out = jnp.abs(normed * bn_params["scale"]) + jnp.abs(bn_params["bias"]) + jnp.abs(skip)
    return np.asarray(out.mean(axis=(0, 1)), np.float64) @ kernel[:, label] + abs(
        float(fc["bias"][label]))

  logits = clf.logits(images)
  all_feats = clf.features(variables, images)  # the batch gradcam sees: the same convolutions
  _, h, w, k = all_feats.shape
  nonzero = 0
  for b in range(len(labels)):
    feats = all_feats[b]
    # The hand-written head is the model's head, up to the rounding of a head that sums h w
    # positions and k channels, relative to the magnitudes of its terms (not to the logit).
    atol = float_tolerance.sum_atol(head_terms(feats, skips[b], labels[b]), h * w + k + 8)
    np.testing.assert_allclose(head(feats, skips[b], labels[b]), logits[b, labels[b]], rtol=0,
                               atol=atol)
    alpha = np.asarray(jax.grad(head)(feats, skips[b], labels[b]).mean(axis=(0, 1)), np.float64)
    expected = cam_from_alpha(np.asarray(feats), alpha, RESNET_SIZE, RESNET_SIZE)
    nonzero += expected.max() > 0.0
    # As at layer4, plus the h w gradients (of one sign per channel) that alpha averages.
    atol = float_tolerance.sum_atol(np.abs(np.asarray(feats)) @ np.abs(alpha), h * w + k + 8)
    np.testing.assert_allclose(got[b], expected, rtol=0, atol=atol)
  assert nonzero >= 3


def test_batch_composition_jit_and_no_recompilation():
  clf = tiny_classifiers.random_cnn(jax.random.key(5))
  images = random_images(6, (3, 32, 32, 3))
  labels = jnp.array([1, 0, 2])
  batch = gradcam(clf, images, labels)
  # Other programs, each within the float32 bound of the exact map: |A| |alpha| summed over
  # random_cnn's terms, the h w gradients alpha averages and the k channels.
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  grads = jax.grad(lambda a: clf.head(clf.variables, a, images)[jnp.arange(3), labels].sum())(
      jnp.asarray(feats, jnp.float32))
  alpha = np.abs(np.asarray(grads, np.float64)).mean(axis=(1, 2))  # f64[B,k]
  _, h, w, k = feats.shape
  atol = 2 * float_tolerance.sum_atol(np.einsum("bhwk,bk->bhw", np.abs(feats), alpha),
                                      tiny_classifiers.random_cnn_terms(h, w, k) + h * w + k + 8)
  alone = gradcam(clf, images[1:2], labels[1:2])
  np.testing.assert_allclose(batch[1], alone[0], rtol=0, atol=atol)
  inside_jit = jax.jit(lambda x, y: gradcam(clf, x, y))(images, labels)
  np.testing.assert_allclose(inside_jit, batch, rtol=0, atol=atol)
