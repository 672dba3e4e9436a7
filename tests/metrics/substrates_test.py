"""Tests of salijax.metrics.substrates against numpy references written from the definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import numpy_substrates
import pytest

from salijax import gaussian_blur
from salijax.metrics import substrates


def random_images(seed: int, shape: tuple[int, ...]) -> np.ndarray:
  return np.random.default_rng(seed).uniform(size=shape)


@pytest.mark.parametrize("size,sigma", [(11, 5.0), (5, 5.0), (3, 0.7), (1, 2.0)])
def test_gaussian_taps_are_the_normalised_sampled_gaussian(size, sigma):
  taps = gaussian_blur.gaussian_taps(size, sigma)
  expected = np.array([np.exp(-t * t / (2 * sigma * sigma)) for t in range(-(size // 2),
                                                                         size // 2 + 1)])
  np.testing.assert_allclose(taps, expected / expected.sum(), rtol=1e-12)


@pytest.mark.parametrize("padding", ["reflect", "zero"])
@pytest.mark.parametrize("space", ["normalised", "pixel"])
@pytest.mark.parametrize("shape,size,sigma", [
    ((2, 12, 16, 3), 11, 5.0),   # kernel close to the image size
    ((1, 20, 8, 3), 5, 1.5),     # non-square, small kernel
    ((1, 8, 12, 3), 27, 17.0),   # kernel larger than the image: repeated reflection
])
def test_blur_matches_direct_2d_correlation_in_its_space(shape, size, sigma, space, padding):
  images = random_images(0, shape)
  got = substrates.substrate(jnp.asarray(images, jnp.float32), "blur", space=space,
                             mean=tuple(numpy_substrates.MEAN), blur_size=size,
                             blur_sigma=sigma, blur_padding=padding)
  expected = numpy_substrates.blur(images, size, sigma, padding, space)
  np.testing.assert_allclose(got, expected, atol=2e-6)


def test_reflect_blur_keeps_a_constant_image_and_zero_padding_darkens_its_borders():
  images = jnp.full((1, 10, 10, 3), 0.8)
  np.testing.assert_allclose(gaussian_blur.gaussian_blur(images, 7, 3.0), 0.8, rtol=1e-6)
  darkened = np.asarray(gaussian_blur.gaussian_blur(images, 7, 3.0, padding="zero"))
  assert darkened[0, 0, 0, 0] < darkened[0, 0, 5, 0] < 0.8
  np.testing.assert_allclose(darkened[0, 5, 5], darkened[0, 4, 4], rtol=1e-6)  # symmetric


@pytest.mark.parametrize("name", ["mean", "zero"])
@pytest.mark.parametrize("space", ["normalised", "pixel"])
def test_constant_substrates(name, space):
  images = random_images(1, (2, 6, 4, 3))
  got = substrates.substrate(jnp.asarray(images, jnp.float32), name, space=space,
                             mean=tuple(numpy_substrates.MEAN), blur_size=3, blur_sigma=1.0,
                             blur_padding="reflect")
  np.testing.assert_allclose(got, numpy_substrates.substrate(images, name, space), rtol=1e-6)
  black = name == "zero" and space == "pixel"
  assert np.allclose(got, 0.0) == black


def test_blur_is_jittable_and_batched_per_image():
  images = jnp.asarray(random_images(2, (3, 8, 8, 3)), jnp.float32)
  blur = jax.jit(lambda x: gaussian_blur.gaussian_blur(x, 5, 2.0))
  batched = blur(images)
  for i in range(3):
    np.testing.assert_allclose(batched[i], blur(images[i:i + 1])[0], atol=1e-6)
