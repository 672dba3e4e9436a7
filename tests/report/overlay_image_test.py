"""Tests of salijax.report.overlay_image.overlay_png."""

import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from salijax.report.overlay_image import overlay_png


def pixels(png: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(png)) as picture:
    return np.asarray(picture.convert("RGB"), np.float64) / 255


@pytest.fixture(name="inputs")
def fixture_inputs():
  rng = np.random.default_rng(0)
  return (rng.uniform(size=(20, 30, 3)).astype(np.float32),
          rng.normal(size=(20, 30)).astype(np.float32))


def test_alpha_blends_the_image_and_the_coloured_normalised_map(inputs):
  image, saliency = inputs
  span = saliency.max() - saliency.min()
  colours = matplotlib.colormaps["viridis"]((saliency - saliency.min()) / span)[..., :3]
  half = 0.5 * image + 0.5 * colours
  for alpha, expected in ((0.0, image), (1.0, colours), (0.5, half)):
    result = pixels(overlay_png(image, saliency, cmap="viridis", alpha=alpha))
    assert result.shape == image.shape
    np.testing.assert_allclose(result, expected, atol=0.5 / 255 + 1e-6)  # 8-bit rounding


def test_large_images_shrink_to_max_size(inputs):
  image, saliency = inputs
  assert pixels(overlay_png(image, saliency, max_size=15)).shape == (10, 15, 3)
  assert pixels(overlay_png(image, saliency, max_size=30)).shape == (20, 30, 3)


def test_bad_arguments(inputs):
  image, saliency = inputs
  with pytest.raises(ValueError, match="saliency must have shape"):
    overlay_png(image, saliency[:5])
  with pytest.raises(ValueError, match="cmap"):
    overlay_png(image, saliency, cmap="no_such_map")
  with pytest.raises(ValueError, match="alpha"):
    overlay_png(image, saliency, alpha=1.5)
  with pytest.raises(ValueError, match="max_size"):
    overlay_png(image, saliency, max_size=0)
  with pytest.raises(ValueError, match="image"):
    overlay_png(image * 2, saliency)
  with pytest.raises(ValueError, match="saliency"):
    overlay_png(image, np.full((20, 30), np.nan, np.float32))
