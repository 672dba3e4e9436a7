"""Tests of salijax.gaussian_blur.gaussian_smooth against scipy.ndimage.gaussian_filter."""

import float_tolerance
import jax
import numpy as np
import pytest
import scipy.ndimage as ndi

from salijax.gaussian_blur import gaussian_smooth


@pytest.mark.parametrize("shape,sigma,truncate", [
    ((2, 9, 11, 3), 1.0, 4.0), ((1, 16, 12, 3), 5.0, 1.0), ((3, 5, 4, 2), 0.7, 4.0),
    ((1, 3, 3, 3), 1.0, 4.0)])  # the last one: the kernel is wider than the image
def test_equals_scipy_reflect(shape, sigma, truncate):
  images = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
  want = ndi.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="reflect",
                             truncate=truncate)
  got = jax.jit(gaussian_smooth, static_argnums=(1, 2))(images, sigma, truncate)
  # Two passes of 2 r + 1 taps (weights >= 0 summing to 1, rounded to float32).
  taps = 2 * int(truncate * sigma + 0.5) + 1
  atol = float_tolerance.sum_atol(np.abs(images).max(), 2 * taps + 2)
  np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def test_sigma_zero_is_identity():
  images = np.random.default_rng(1).uniform(size=(2, 6, 6, 3)).astype(np.float32)
  np.testing.assert_array_equal(gaussian_smooth(images, 0.0), images)
