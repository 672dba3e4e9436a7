"""Tests of salijax.guided_relu and the models' switchable ReLU (`relu` attribute)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.guided_relu import guided_relu
from salijax.models import vgg


def test_forward_is_relu_and_backward_passes_positive_gradients_at_positive_inputs():
  x = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0, 3.0, -1.0, 1.0])
  upstream = jnp.array([1.0, -1.0, 1.0, 1.0, -3.0, 2.0, 0.5, 0.0])
  np.testing.assert_array_equal(guided_relu(x), np.maximum(np.asarray(x), 0.0))
  _, vjp = jax.vjp(guided_relu, x)
  (got,) = vjp(upstream)
  expected = [g if (xi > 0 and g > 0) else 0.0
              for xi, g in zip(np.asarray(x).tolist(), np.asarray(upstream).tolist(), strict=True)]
  np.testing.assert_array_equal(got, expected)
  # The plain ReLU would pass the negative gradient at x = 2.
  (plain,) = jax.vjp(jax.nn.relu, x)[1](upstream)
  assert float(plain[4]) == -3.0 and float(got[4]) == 0.0


def test_jit_vmap_and_grad_compose():
  x = jax.random.normal(jax.random.key(0), (4, 5))
  w = jax.random.normal(jax.random.key(1), (5,))

  def loss(row):
    return jnp.dot(guided_relu(row), w)

  per_row = jax.jit(jax.vmap(jax.grad(loss)))(x)
  expected = np.where((np.asarray(x) > 0) & (np.asarray(w) > 0), np.asarray(w), 0.0)
  np.testing.assert_array_equal(per_row, expected)


class CountingRelu:
  """A ReLU that counts its calls (the model is applied without jit)."""

  def __init__(self):
    self.calls = 0

  def __call__(self, x):
    self.calls += 1
    return jax.nn.relu(x)


@pytest.mark.parametrize("arch,kwargs,relus,image_size", [
    ("resnet18", {}, 1 + 8 * 2, 32),  # the stem's, and two per basic block
    ("vgg11", {"classifier_width": 8}, 8 + 2, 32),  # one per conv, two in the classifier
])
def test_every_relu_of_the_model_is_the_attribute(arch, kwargs, relus, image_size):
  module = models.create(arch, num_classes=3, **kwargs)
  shapes = jax.eval_shape(lambda key: models.init(module, key, image_size), jax.random.key(0))
  counting = CountingRelu()
  clone = module.clone(relu=counting)
  # The same variables fit the clone.
  assert jax.tree.structure(jax.eval_shape(lambda key: models.init(clone, key, image_size),
                                           jax.random.key(0))) == jax.tree.structure(shapes)
  counting.calls = 0
  jax.eval_shape(clone.apply, shapes,
                 jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32))
  assert counting.calls == relus
  assert module.relu is jax.nn.relu


def tiny_vgg():
  """A two-conv VGG with BatchNorm and random variables, drawn with numpy into the shapes
  of `models.init` (running the initialiser op by op takes longer than these tests)."""
  module = vgg.VGG(layers=(4, vgg.POOL, 6, vgg.POOL), batch_norm=True, num_classes=3,
                   classifier_width=8)
  shapes = jax.eval_shape(lambda key: models.init(module, key, 32), jax.random.key(0))
  rng = np.random.default_rng(0)

  def draw(path, leaf):
    if path[-1].key == "kernel":
      values = rng.normal(size=leaf.shape) * np.sqrt(2.0 / np.prod(leaf.shape[:-1]))
    elif path[-1].key in ("scale", "var"):
      values = rng.uniform(0.5, 1.5, size=leaf.shape)
    else:  # bias, mean
      values = 0.1 * rng.normal(size=leaf.shape)
    return jnp.asarray(values, leaf.dtype)

  return module, jax.tree_util.tree_map_with_path(draw, shapes)


def test_guided_clone_has_the_same_logits_and_guided_gradients():
  module, variables = tiny_vgg()
  guided = module.clone(relu=guided_relu)
  images = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3))

  @jax.jit
  def logits_and_gradients(x):
    def class_1(m):
      return jax.grad(lambda x: m.apply(variables, x)[:, 1].sum())(x)
    return module.apply(variables, x), guided.apply(variables, x), class_1(module), class_1(guided)

  logits, guided_logits, plain, guided_grads = logits_and_gradients(images)
  np.testing.assert_allclose(guided_logits, logits, rtol=1e-6, atol=1e-7)
  assert np.abs(np.asarray(guided_grads)).max() > 0.0
  assert not np.allclose(plain, guided_grads)
