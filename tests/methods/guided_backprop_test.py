"""Tests of guided backpropagation (methods.input_gradients): a hand-derived reference."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
from random_inputs import random_images

from salijax import models
from salijax.classifier import Classifier
from salijax.guided_relu import guided_relu
from salijax.methods.input_gradients import gradient, guided_backprop
from salijax.models import vgg

HIGHEST = jax.lax.Precision.HIGHEST


def mlp_classifier(size: int = 8, classes: int = 3) -> Classifier:
  """A two-hidden-layer ReLU MLP on the flattened image, with `guided_apply`."""
  rng = np.random.default_rng(0)
  widths = (size * size * 3, 16, 12, classes)
  variables = {f"w{i}": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32)
               for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))}
  variables |= {f"b{i}": jnp.asarray(0.3 * rng.normal(size=b), jnp.float32)
                for i, b in enumerate(widths[1:3])}

  def logits_with(relu):
    def apply(v, images):
      h = images.reshape(images.shape[0], -1)
      for i in range(2):
        h = relu(jnp.dot(h, v[f"w{i}"], precision=HIGHEST) + v[f"b{i}"])
      return jnp.dot(h, v["w2"], precision=HIGHEST)
    return apply

  return Classifier(variables=variables, apply=logits_with(jax.nn.relu),
                    guided_apply=logits_with(guided_relu))


def reference_guided_gradient(v, image: np.ndarray, label: int,
                              magnitudes: bool = False) -> np.ndarray:
  """Guided backpropagation through the MLP by hand, float64: each ReLU passes the
  gradient where its input was positive and the gradient is positive.

  With `magnitudes`, the same passes with |weights|: the magnitudes of the terms summed.
  """
  w = [np.asarray(v[f"w{i}"], np.float64) for i in range(3)]
  b = [np.asarray(v[f"b{i}"], np.float64) for i in range(2)]
  x = np.asarray(image, np.float64).reshape(-1)
  z0 = x @ w[0] + b[0]
  z1 = np.maximum(z0, 0) @ w[1] + b[1]
  g = w[2][:, label]
  g, h = g * ((z1 > 0) & (g > 0)), np.abs(g) * ((z1 > 0) & (g > 0))
  g, h = w[1] @ g, np.abs(w[1]) @ h
  g, h = g * ((z0 > 0) & (g > 0)), h * ((z0 > 0) & (g > 0))
  return ((np.abs(w[0]) @ h) if magnitudes else (w[0] @ g)).reshape(image.shape)


def test_matches_hand_derived_guided_backprop_on_an_mlp():
  clf = mlp_classifier()
  images = random_images(1, (4, 8, 8, 3))
  labels = jnp.array([0, 1, 2, 1])
  raw = guided_backprop(clf, images, labels, reduce="none")
  assert raw.shape == (4, 8, 8, 3) and raw.dtype == jnp.float32
  expected = np.stack([reference_guided_gradient(clf.variables, images[b], int(labels[b]))
                       for b in range(4)])
  scale = np.abs(expected).max()
  assert scale > 0.0
  # Each layer's sum (16 + 12 + 192 terms on the way), relative to its terms' magnitudes.
  terms = [reference_guided_gradient(clf.variables, images[b], int(labels[b]), True)
           for b in range(4)]
  atol = float_tolerance.sum_atol(np.max(terms), 16 + 12 + 192 + 4)
  np.testing.assert_allclose(raw, expected, rtol=0, atol=atol)
  np.testing.assert_allclose(guided_backprop(clf, images, labels), np.abs(expected).max(-1),
                             rtol=0, atol=atol)
  # Not the vanilla gradient: the guided ReLUs drop the negative gradients.
  vanilla = np.asarray(gradient(clf, images, labels, reduce="none"))
  assert np.abs(vanilla - expected).max() > 0.1 * scale


def region_vgg(height: int, rows: tuple[int, int], cols: tuple[int, int]):
  """A one-conv VGG whose logits read only the pooled 7x7 cells in rows x cols.

  At 56x56: conv 3x3 (pad 1), ReLU, 2x2 max-pool -> 28x28, adaptive pool -> 7x7
  (each cell 8x8 pixels); `classifier.0` sees the cells in H,W,C order, and its
  rows of the other cells are 0. Cell (i, j) depends on pixels [8i - 1, 8i + 9)
  x [8j - 1, 8j + 9) (the conv's 1-pixel halo), so the logits do too.
  """
  module = vgg.VGG(layers=(4, vgg.POOL), batch_norm=False, num_classes=3, classifier_width=8)
  shapes = jax.eval_shape(lambda key: models.init(module, key, height), jax.random.key(0))
  rng = np.random.default_rng(1)

  def draw(path, leaf):
    if path[-1].key == "kernel":
      return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1])),
                         leaf.dtype)
    return jnp.asarray(0.1 * rng.normal(size=leaf.shape), leaf.dtype)

  variables = jax.tree_util.tree_map_with_path(draw, shapes)
  kernel = np.asarray(variables["params"]["classifier_0"]["kernel"]).reshape(7, 7, 4, 8).copy()
  keep = np.zeros((7, 7), bool)
  keep[rows[0]:rows[1], cols[0]:cols[1]] = True
  kernel[~keep] = 0.0
  variables["params"]["classifier_0"]["kernel"] = jnp.asarray(kernel.reshape(-1, 8))
  return models.classifier(module, variables)


def test_known_answer_on_a_vgg_that_reads_one_region():
  """Guided ReLUs only remove gradient: the map is 0 outside the pixels the kept cells see."""
  clf = region_vgg(56, rows=(2, 5), cols=(3, 6))
  images = random_images(2, (3, 56, 56, 3))
  labels = jnp.array([0, 1, 2])
  maps = np.asarray(guided_backprop(clf, images, labels))
  seen = np.zeros((56, 56), bool)
  seen[2 * 8 - 1:5 * 8 + 1, 3 * 8 - 1:6 * 8 + 1] = True
  for b in range(3):
    np.testing.assert_array_equal(maps[b][~seen], 0.0)
    assert maps[b][seen].max() > 0.0
  # The salijax model's guided logits are its logits: a guided ReLU's forward is jax.nn.relu,
  # so both are the same program.
  np.testing.assert_array_equal(jax.jit(clf.guided_apply)(clf.variables, images),
                                jax.jit(clf.apply)(clf.variables, images))


def test_batch_composition_jit_and_no_recompilation():
  clf = mlp_classifier()
  images = random_images(6, (3, 8, 8, 3))
  labels = jnp.array([1, 0, 2])
  batch = guided_backprop(clf, images, labels)
  # Other programs, each within the bound of the hand-derived test above.
  terms = [reference_guided_gradient(clf.variables, images[b], int(labels[b]), True)
           for b in range(3)]
  atol = 2 * float_tolerance.sum_atol(np.max(terms), 16 + 12 + 192 + 4)
  alone = guided_backprop(clf, images[2:3], labels[2:3])
  np.testing.assert_allclose(batch[2], alone[0], rtol=0, atol=atol)
  inside_jit = jax.jit(lambda x, y: guided_backprop(clf, x, y))(images, labels)
  np.testing.assert_allclose(inside_jit, batch, rtol=0, atol=atol)
