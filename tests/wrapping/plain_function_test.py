"""salijax.wrap on plain functions f(images) and f(params, images): black-box Classifiers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import wrapped_checks

import salijax
from salijax import methods, metrics

HIGHEST = jax.lax.Precision.HIGHEST


def _params():
  k1, k2 = jax.random.split(jax.random.key(0))
  return {"w": jax.random.normal(k1, (3, 16)), "v": jax.random.normal(k2, (16, 4))}


def _logits(params, images):
  hidden = jax.nn.relu(jnp.einsum("bhwc,ck->bhwk", images, params["w"], precision=HIGHEST))
  return jnp.dot(hidden.mean((1, 2)), params["v"], precision=HIGHEST)


def _images():
  return jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))


@pytest.mark.parametrize("with_params", [True, False])
def test_black_box_and_gradient_methods_run(with_params):
  params = _params()
  clf = (salijax.wrap(_logits, params) if with_params
         else salijax.wrap(lambda x: _logits(params, x)))
  images = _images()
  labels = jnp.argmax(_logits(params, images), -1)
  np.testing.assert_array_equal(clf.logits(images), _logits(params, images))
  wrapped_checks.assert_every_method_runs(clf, images, labels,
                                          skip=wrapped_checks.LAYER_METHODS)
  grads = jax.grad(lambda x: _logits(params, x)[jnp.arange(2), labels].sum())(images)
  np.testing.assert_allclose(methods.gradient(clf, images, labels, reduce="none"), grads,
                             rtol=1e-6, atol=1e-7)
  scores = metrics.insertion_deletion(clf, images, methods.gradient(clf, images), labels,
                                      step_pixels=64)
  assert np.isfinite(np.asarray(scores.insertion_auc)).all()


@pytest.mark.parametrize("name", wrapped_checks.LAYER_METHODS)
def test_layer_methods_refuse_a_model_without_layers(name):
  clf = salijax.wrap(_logits, _params())
  with pytest.raises(ValueError, match="features"):
    methods.get(name)(clf, _images(), jnp.array([0, 1]), key=jax.random.key(0))


def test_a_function_has_no_layer():
  with pytest.raises(ValueError, match="plain function has no layers"):
    salijax.wrap(_logits, _params(), layer="dense")


def test_guided_backprop_needs_relus():
  clf = salijax.wrap(lambda x: jnp.tanh(x.mean((1, 2))) @ jnp.ones((3, 2)))
  with pytest.raises(ValueError, match="ReLU"):
    methods.guided_backprop(clf, _images(), jnp.array([0, 1]))
