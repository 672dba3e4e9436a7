"""guide_relus: the jaxpr rewrite equals salijax's module-level guided ReLUs, finds every
form of ReLU, keeps the forward values, and refuses what it cannot rewrite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.guided_relu import guided_relu
from salijax.wrapping import guide_relus

HIGHEST = jax.lax.Precision.HIGHEST


def _input_gradient(fn, x):
  return jax.grad(lambda x: fn(x).sum())(x)


@pytest.mark.parametrize("relu", [
    jax.nn.relu, lambda x: jnp.maximum(x, 0), lambda x: jnp.maximum(0.0, x),
    jax.jit(jax.nn.relu), jax.checkpoint(jax.nn.relu)])
def test_every_form_of_relu_is_guided(relu):
  w = jax.random.normal(jax.random.key(0), (6, 5))
  v = jax.random.normal(jax.random.key(1), (5, 3))
  x = jax.random.normal(jax.random.key(2), (4, 6))

  def net(relu_fn):
    return lambda x: jnp.dot(relu_fn(jnp.dot(x, w, precision=HIGHEST)), v, precision=HIGHEST)

  guided = guide_relus(net(relu))
  np.testing.assert_array_equal(guided(x), net(relu)(x))  # the same forward operations
  expected = _input_gradient(net(guided_relu), x)
  np.testing.assert_array_equal(_input_gradient(guided, x), expected)
  assert not np.allclose(expected, _input_gradient(net(jax.nn.relu), x))  # guiding changes it


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["resnet18", "vgg11"])
def test_equals_the_module_level_guided_model(architecture):
  module = models.create(architecture, num_classes=4)
  variables = models.init(module, jax.random.key(0), image_size=32)
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  plain = models.classifier(module, variables)
  rewritten = plain.guided_apply  # models.classifier guides by the rewrite
  assert rewritten == guide_relus(plain.apply)

  def grads(apply):
    return jax.grad(lambda x: apply(variables, x)[:, 1].sum())(images)

  expected = grads(module.clone(relu=guided_relu).apply)
  # The same operations in the same order: equal up to XLA's fusion choices.
  np.testing.assert_allclose(grads(rewritten), expected, rtol=1e-5,
                             atol=1e-5 * float(np.abs(expected).max()))
  assert not np.allclose(expected, grads(plain.apply), atol=1e-3 * float(np.abs(expected).max()))


def test_a_function_without_relu_is_refused():
  with pytest.raises(ValueError, match="no.*ReLU|has none"):
    guide_relus(jnp.tanh)(jnp.ones(3))


def test_a_relu_inside_a_loop_is_refused():
  def scanned(x):
    return jax.lax.scan(lambda c, _: (jax.nn.relu(c) - 0.5, None), x, None, length=3)[0]

  with pytest.raises(NotImplementedError, match="scan"):
    guide_relus(scanned)(jnp.ones(3))


def test_works_under_jit_and_vmap():
  def net(x):
    return jax.nn.relu(x - 0.3).sum()

  guided = guide_relus(net)
  x = jax.random.normal(jax.random.key(0), (3, 4))
  expected = jax.vmap(jax.grad(lambda x: jax.jit(guided)(x)))(x)
  np.testing.assert_array_equal(
      expected, jax.vmap(jax.grad(lambda x: guided_relu(x - 0.3).sum()))(x))
