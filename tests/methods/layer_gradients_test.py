"""Tests of the gradient CAMs' shared parts: layer gradients and the CAM reduction."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from skimage.transform import resize

from salijax.methods.gradient_cams import class_activation_map, layer_gradients


def _images(seed, batch=3, size=32):
  return jax.random.uniform(jax.random.key(seed), (batch, size, size, 3))


def test_gradients_are_each_images_own_target_logit_gradient():
  clf = tiny_classifiers.random_cnn(jax.random.key(1), num_classes=4)
  images, labels = _images(0), jnp.array([3, 0, 3])
  feats, grads, logits = jax.jit(layer_gradients)(clf, images, labels)
  _, h, w, k = feats.shape
  # Two programs, each within the float32 bound of the exact values. The activations sum
  # 27 + 16 + 9 k terms (conv1, the pool, conv2) whose magnitudes are the same network on
  # |weights| and |images - 0.5| (its ReLUs then pass everything).
  terms = clf.features(jax.tree_util.tree_map(jnp.abs, clf.variables), 0.5 + jnp.abs(images - 0.5))
  feats_atol = 2 * float_tolerance.sum_atol(terms, 27 + 16 + 9 * k)
  # d y_c / d A = 3 dense[k, c] (1 - tanh^2 A) / (h w): |d/dA| <= 1 times that scale.
  scale = 3 * np.abs(np.asarray(clf.variables["dense"])).max() / (h * w)
  grads_atol = scale * (feats_atol + float_tolerance.sum_rtol(8))
  logits_atol = 2 * float_tolerance.sum_atol(tiny_classifiers.logit_terms(clf, images),
                                             tiny_classifiers.random_cnn_terms(h, w, k))
  np.testing.assert_allclose(logits, clf.logits(images), rtol=0, atol=logits_atol)
  for b in range(3):
    image = images[b:b + 1]
    want_feats = clf.features(clf.variables, image)
    want = jax.grad(lambda a, b=b, image=image: clf.head(clf.variables, a, image)[0, labels[b]])(
        want_feats)
    np.testing.assert_allclose(feats[b], want_feats[0], rtol=0, atol=feats_atol)
    np.testing.assert_allclose(grads[b], want[0], rtol=0, atol=grads_atol)
    assert np.abs(want).max() > 0


def test_class_activation_map_is_the_upsampled_relu_of_the_weighted_sum():
  feats = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype(np.float32)
  weights = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0]], np.float32)
  got = np.asarray(class_activation_map(jnp.asarray(feats), jnp.asarray(weights), 16, 20))
  assert got.shape == (2, 16, 20)
  for b in range(2):
    low = np.maximum(sum(weights[b, k] * feats[b, ..., k].astype(np.float64) for k in range(3)),
                     0.0)
    want = resize(low, (16, 20), order=1, mode="edge", anti_aliasing=False)
    assert want.max() > 0 and (want == 0).any()
    # k = 3 products summed, then 2 x 2 bilinear taps.
    magnitude = np.abs(feats[b]).astype(np.float64) @ np.abs(weights[b])
    np.testing.assert_allclose(got[b], want, rtol=0, atol=float_tolerance.sum_atol(magnitude, 8))
