"""salijax.wrap's recognition of frameworks, its options and their errors;
ModelOutput and Preprocess."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import salijax
from salijax.wrapping import Preprocess, framework_of
from salijax.wrapping.model_output import ModelOutput


class Dense(nn.Module):
  @nn.compact
  def __call__(self, x):
    return {"logits": nn.Dense(3)(x.mean((1, 2))), "aux": x}


def test_framework_recognition_and_unknown_types():
  assert framework_of(Dense()) == "linen"
  assert framework_of(lambda x: x) == "function"
  with pytest.raises(TypeError, match="Flax linen.*Haiku.*Equinox.*plain function"):
    salijax.wrap(42)
  with pytest.raises(TypeError, match="already a salijax.Classifier"):
    salijax.wrap(salijax.Classifier(variables=None, apply=lambda v, x: x))


def test_option_errors():
  module = Dense()
  variables = module.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
  with pytest.raises(ValueError, match="needs its variables"):
    salijax.wrap(module)
  with pytest.raises(TypeError, match="variables dict"):
    salijax.wrap(module, [1, 2])
  with pytest.raises(TypeError, match="layer's name as a string"):
    salijax.wrap(module, variables, layer=3)
  with pytest.raises(ValueError, match="layer_layout"):
    salijax.wrap(module, variables, layer="Dense_0", layer_layout="CHW")
  with pytest.raises(ValueError, match="prefix_tokens"):
    salijax.wrap(module, variables, layer="Dense_0", prefix_tokens=-1)
  with pytest.raises(ValueError, match="call_kwargs"):
    salijax.wrap(lambda x: x, call_kwargs={"train": False})
  with pytest.raises(TypeError, match="preprocess"):
    salijax.wrap(module, variables, preprocess="imagenet")


def test_output_picks_the_logits():
  module = Dense()
  images = jax.random.uniform(jax.random.key(1), (2, 4, 4, 3))
  variables = module.init(jax.random.key(0), images)
  clf = salijax.wrap(module, variables, output="logits")
  np.testing.assert_array_equal(clf.logits(images), module.apply(variables, images)["logits"])
  with pytest.raises(ValueError, match=r"dict with keys \['aux', 'logits'\].*output="):
    salijax.wrap(module, variables).logits(images)


def test_model_output_forms():
  logits = jnp.ones((2, 3))
  assert ModelOutput(1)((None, logits)) is logits
  assert ModelOutput(lambda out: out[0])((logits,)) is logits
  assert ModelOutput("logits")(type("Out", (), {"logits": logits})()) is logits
  with pytest.raises(ValueError, match="index 2"):
    ModelOutput(2)((logits, logits))
  with pytest.raises(ValueError, match="'scores'"):
    ModelOutput("scores")({"logits": logits})
  with pytest.raises(ValueError, match=r"\[B, K\]"):
    ModelOutput()(jnp.ones((2, 3, 4)))


def test_preprocess():
  images = jax.random.uniform(jax.random.key(0), (2, 4, 6, 3))
  mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
  out = Preprocess(mean=mean, std=std, channels_first=True)(images)
  assert out.shape == (2, 3, 4, 6)
  np.testing.assert_allclose(out[1, 2, 3, 5], (images[1, 3, 5, 2] - 0.3) / 0.5, rtol=1e-6)
  assert Preprocess(size=(8, 12))(images).shape == (2, 8, 12, 3)
  assert hash(Preprocess(mean=mean)) == hash(Preprocess(mean=list(mean)))  # a static field
  with pytest.raises(ValueError, match="std"):
    Preprocess(std=(1.0, 0.0, 1.0))
  with pytest.raises(ValueError, match="mean"):
    Preprocess(mean=(0.5,))
