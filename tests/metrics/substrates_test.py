"""Tests of salijax.metrics.substrates against numpy references written from the definitions."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import numpy_substrates
import pytest

from salijax import gaussian_blur
from salijax.metrics import substrates


def random_images(seed: int, shape: tuple[int, ...]) -> np.ndarray:
  return np.random.default_rng(seed).uniform(size=shape)


def blur_atol(images: np.ndarray, size: int, space: str) -> float:
  """Bound on the float32 error of a blur: two passes of <= size taps (weights >= 0 summing
  to <= 1, rounded to float32, reflections folded onto <= H or W pixels), plus the way into
  and out of normalised space, relative to the values' magnitude in their space."""
  _, height, width, _ = images.shape
  mean, std = numpy_substrates.MEAN, numpy_substrates.STD
  values = (np.abs(images - mean) / std * std.max() + mean.max() if space == "normalised"
            else np.abs(images))
  return float_tolerance.sum_atol(values.max(), min(size, height) + min(size, width) + 6)


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
  np.testing.assert_allclose(got, expected, rtol=0, atol=blur_atol(images, size, space))


def test_reflect_blur_keeps_a_constant_image_and_zero_padding_darkens_its_borders():
  images = jnp.full((1, 10, 10, 3), 0.8)
  # 0.8 times taps whose float32 weights sum to 1 up to their roundings (7 + 7, 2 passes).
  rtol = float_tolerance.sum_rtol(2 * 7 + 2)
  np.testing.assert_allclose(gaussian_blur.gaussian_blur(images, 7, 3.0), 0.8, rtol=rtol, atol=0)
  darkened = np.asarray(gaussian_blur.gaussian_blur(images, 7, 3.0, padding="zero"))
  assert darkened[0, 0, 0, 0] < darkened[0, 0, 5, 0] < 0.8
  # Symmetric: the same terms summed in mirrored order.
  np.testing.assert_allclose(darkened[0, 5, 5], darkened[0, 4, 4], rtol=2 * rtol, atol=0)


@pytest.mark.parametrize("name", ["mean", "zero"])
@pytest.mark.parametrize("space", ["normalised", "pixel"])
def test_constant_substrates(name, space):
  images = random_images(1, (2, 6, 4, 3))
  got = substrates.substrate(jnp.asarray(images, jnp.float32), name, space=space,
                             mean=tuple(numpy_substrates.MEAN), blur_size=3, blur_sigma=1.0,
                             blur_padding="reflect")
  # Constants: the float32 colour mean (one rounding each) or exact zeros.
  np.testing.assert_allclose(got, numpy_substrates.substrate(images, name, space),
                             rtol=float_tolerance.EPS, atol=0)
  black = name == "zero" and space == "pixel"
  assert np.allclose(got, 0.0) == black


def test_blur_is_jittable_and_batched_per_image():
  images = jnp.asarray(random_images(2, (3, 8, 8, 3)), jnp.float32)
  blur = jax.jit(lambda x: gaussian_blur.gaussian_blur(x, 5, 2.0))
  batched = blur(images)
  atol = 2 * blur_atol(np.asarray(images), 5, "pixel")  # other programs, each within it
  for i in range(3):
    np.testing.assert_allclose(batched[i], blur(images[i:i + 1])[0], rtol=0, atol=atol)
