"""salijax.wrapping.initializer: the framework's own initialisation of a wrapped model."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import salijax
from salijax.wrapping.initializer import initializer

IMAGES = jax.random.uniform(jax.random.key(3), (3, 8, 8, 3))


class Scaled(nn.Module):
  """A Dense classifier whose call takes a keyword: `scales`, one factor per class."""

  @nn.compact
  def __call__(self, x, scales=(1.0, 1.0, 1.0, 1.0)):
    x = nn.Conv(4, (3, 3))(x).mean(axis=(1, 2))
    return nn.Dense(4)(x) * jnp.asarray(scales)


def wrapped(scales):
  module = Scaled()
  variables = module.init(jax.random.key(0), IMAGES[:1], scales=scales)
  return module, salijax.wrap(module, variables, call_kwargs={"scales": scales})


def check_fresh(got, want, rtol):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


def test_a_linen_model_is_drawn_by_its_initialisers_on_one_image():
  """Hashable call_kwargs: the compiled initialiser; equal to module.init run op by op up to
  the float32 rounding of the few operations that turn the same random bits into weights."""
  scales = (1.0, 2.0, 3.0, 4.0)
  module, clf = wrapped(scales)
  hash(clf.apply)  # hashable: the compiled path
  init = initializer(clf)
  fresh = init(jax.random.key(7), IMAGES)
  check_fresh(fresh, module.init(jax.random.key(7), IMAGES[:1], scales=scales),
              rtol=4 * float(np.finfo(np.float32).eps))
  other = init(jax.random.key(8), IMAGES[:2])
  assert not np.array_equal(fresh["params"]["Dense_0"]["kernel"],
                            other["params"]["Dense_0"]["kernel"])


def test_a_model_that_cannot_be_hashed_is_initialised_op_by_op():
  """A list in call_kwargs makes the model unhashable, so it cannot be a static argument of
  jax.jit: the initialiser runs op by op, exactly as module.init does."""
  scales = [1.0, 2.0, 3.0, 4.0]
  module, clf = wrapped(scales)
  with pytest.raises(TypeError):
    hash(clf.apply.model)
  fresh = initializer(clf)(jax.random.key(7), IMAGES)
  check_fresh(fresh, module.init(jax.random.key(7), IMAGES[:1], scales=scales), rtol=0)


def test_models_without_an_initialiser_have_none():
  plain = salijax.wrap(lambda images: images.mean(axis=(1, 2)))
  assert initializer(plain) is None
