"""Tests of Guided Grad-CAM (methods.input_gradients) against a slow reference."""

import dataclasses

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from random_inputs import random_images
from skimage import transform

from salijax import models
from salijax.methods.input_gradients import guided_gradcam
from salijax.models import vgg

REGION = (8, 24, 24, 40)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


def tiny_vgg_classifier():
  """A two-conv VGG (32x32 images) with random weights; explained layer: its last ReLU."""
  module = vgg.VGG(layers=(4, vgg.POOL, 6, vgg.POOL), batch_norm=False, num_classes=3,
                   classifier_width=8)
  shapes = jax.eval_shape(lambda key: models.init(module, key, 32), jax.random.key(0))
  rng = np.random.default_rng(2)

  def draw(path, leaf):
    scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if path[-1].key == "kernel" else 0.1
    return jnp.asarray(scale * rng.normal(size=leaf.shape), leaf.dtype)

  return models.classifier(module, jax.tree_util.tree_map_with_path(draw, shapes))


# Float32 terms summed from an image to a logit of tiny_vgg_classifier: the convolutions
# (3x3x3, 3x3x4), the adaptive pool (2x2) and the classifier's layers (7x7x6, 8, 8).
VGG_TERMS = 27 + 36 + 4 + 294 + 8 + 8


def reference_guided_gradcam(clf, images, labels) -> tuple[np.ndarray, float]:
  """One image at a time: jax.grad through the guided model, times Grad-CAM from its
  definition (alpha_k = mean of d y_c / d A^k; ReLU(sum_k alpha_k A^k); bilinear
  upsampling); raw f64[B,H,W,3], and a bound on its float32 rounding error."""
  height, width = images.shape[1:3]
  v = clf.variables
  guided_grad = jax.jit(jax.grad(lambda x, c: clf.guided_apply(v, x[None])[0, c]))
  features = jax.jit(lambda x: clf.features(v, x[None]))
  head_grad = jax.jit(jax.grad(lambda a, x, c: clf.head(v, a, x[None])[0, c]))
  out, atol = [], 0.0
  for image, label in zip(images, labels, strict=True):
    feats = features(image)
    alpha = np.asarray(head_grad(feats, image, label)[0], np.float64).mean(axis=(0, 1))
    feats = np.asarray(feats[0], np.float64)
    cam = np.maximum(np.tensordot(feats, alpha, axes=([2], [0])), 0)
    cam = transform.resize(cam, (height, width), order=1, mode="edge", anti_aliasing=False)
    grad = np.asarray(guided_grad(image, label), np.float64)
    out.append(grad * cam[..., None])
    # A deep-ish network in two programs: the gradient within VGG_TERMS roundings of its
    # largest entry; the CAM as Grad-CAM's (alpha averages h w gradients, k channels).
    h, w, k = feats.shape
    cam_atol = float_tolerance.sum_atol(np.abs(feats) @ np.abs(alpha), VGG_TERMS + h * w + k + 8)
    grad_atol = float_tolerance.sum_atol(np.abs(grad).max(), VGG_TERMS)
    atol = max(atol, np.abs(grad).max() * cam_atol + cam.max() * grad_atol)
  return np.stack(out), atol


def test_matches_the_product_of_guided_backprop_and_gradcam():
  clf = tiny_vgg_classifier()
  images = random_images(1, (3, 32, 32, 3))
  labels = jnp.array([0, 2, 1])
  raw = guided_gradcam(clf, images, labels, reduce="none")
  assert raw.shape == (3, 32, 32, 3) and raw.dtype == jnp.float32
  expected, atol = reference_guided_gradcam(clf, images, labels)
  assert np.abs(expected).max() > 0.0
  np.testing.assert_allclose(raw, expected, rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """The region classifier has one ReLU layer; for class 0 (readout +1) the gradient reaching
  it is >= 0, where guided and plain ReLUs agree, so `apply` is also its guided apply.

  The guided gradient is 0 outside the region and > 0 inside; Grad-CAM is > 0 inside:
  the product lies entirely in the region.
  """
  clf = tiny_classifiers.region_classifier(48, 48, REGION)
  clf = dataclasses.replace(clf, guided_apply=clf.apply)
  images = random_images(2, (2, 48, 48, 3), 0.5, 1.0)
  maps = np.asarray(guided_gradcam(clf, images, jnp.array([0, 0])))
  inside = np.zeros((48, 48), bool)
  y0, y1, x0, x1 = REGION
  inside[y0:y1, x0:x1] = True
  for b in range(2):
    assert maps[b][inside].min() > 0.0
    np.testing.assert_array_equal(maps[b][~inside], 0.0)


def test_batch_composition_jit_and_no_recompilation():
  clf = tiny_vgg_classifier()
  images = random_images(6, (3, 32, 32, 3))
  labels = jnp.array([1, 0, 2])
  batch = guided_gradcam(clf, images, labels)
  # Other programs, each within the reference's bound of the exact maps.
  tol = {"rtol": 0, "atol": 2 * reference_guided_gradcam(clf, images, labels)[1]}
  # The default reduction: the product first, then max over channels of |.|.
  raw = guided_gradcam(clf, images, labels, reduce="none")
  np.testing.assert_allclose(batch, np.abs(np.asarray(raw)).max(-1), **tol)
  alone = guided_gradcam(clf, images[1:2], labels[1:2])
  np.testing.assert_allclose(batch[1], alone[0], **tol)
  inside_jit = jax.jit(lambda x, y: guided_gradcam(clf, x, y))(images, labels)
  np.testing.assert_allclose(inside_jit, batch, **tol)
