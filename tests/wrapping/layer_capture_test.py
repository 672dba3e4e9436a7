"""ActivationMap: layer activations as maps and back (channel-last, channel-first, tokens)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.wrapping.layer_capture import ActivationMap, LayerCapture


def _array(shape):
  return jax.random.normal(jax.random.key(0), shape)


@pytest.mark.parametrize("layout,shape,map_shape", [
    ("NHWC", (2, 4, 5, 3), (2, 4, 5, 3)), ("NCHW", (2, 3, 4, 5), (2, 4, 5, 3))])
def test_image_layers_round_trip(layout, shape, map_shape):
  mapping = ActivationMap("x", layout)
  activation = _array(shape)
  feats = mapping.to_map(activation)
  assert feats.shape == map_shape
  np.testing.assert_array_equal(mapping.splice(activation, feats), activation)
  if layout == "NCHW":
    np.testing.assert_array_equal(feats[1, 2, 3], activation[1, :, 2, 3])


def test_tokens_drop_the_prefix_and_keep_it_when_spliced():
  mapping = ActivationMap("blocks", prefix_tokens=2)
  tokens = _array((2, 2 + 9, 4))
  feats = mapping.to_map(tokens)
  assert feats.shape == (2, 3, 3, 4)
  np.testing.assert_array_equal(feats[:, 1, 2], tokens[:, 2 + 1 * 3 + 2])  # row-major grid
  replaced = mapping.splice(tokens, jnp.zeros_like(feats))
  np.testing.assert_array_equal(replaced[:, :2], tokens[:, :2])
  np.testing.assert_array_equal(replaced[:, 2:], 0)


def test_one_image_inside_vmap():
  mapping = ActivationMap("x", "NCHW")
  activation = _array((3, 4, 5))
  assert mapping.to_map(activation, batch_dims=0).shape == (4, 5, 3)


@pytest.mark.parametrize("prefix,count,message", [
    (None, 197, "prefix_tokens=.*197 = 1 \\+ 14\\^2"), (1, 11, "not prefix_tokens=1 plus a square"),
    (0, 10, "not prefix_tokens=0 plus a square")])
def test_token_errors(prefix, count, message):
  with pytest.raises(ValueError, match=message):
    ActivationMap("blocks", prefix_tokens=prefix).to_map(jnp.zeros((1, count, 8)))


def test_other_shapes_are_refused_with_their_shape():
  with pytest.raises(ValueError, match=r"\(2, 7\)"):
    ActivationMap("dense").to_map(jnp.zeros((2, 7)))
  with pytest.raises(ValueError, match="expected the shape"):
    ActivationMap("x").splice(jnp.zeros((2, 4, 4, 3)), jnp.zeros((2, 4, 4, 2)))


def test_capture_refuses_a_layer_that_runs_twice():
  capture = LayerCapture(ActivationMap("conv"), batch_size=2)
  capture.visit("conv", jnp.zeros((2, 4, 4, 3)))
  with pytest.raises(ValueError, match="more than once"):
    capture.visit("conv", jnp.zeros((2, 4, 4, 3)))
