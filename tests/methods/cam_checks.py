"""What the CAM test files share: the image size, the region classifier's region, inputs,
the reference upsampling and the check against a slow per-image reference."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from skimage.transform import resize

SIZE = 32
REGION = (8, 20, 12, 28)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


def images(seed: int, batch: int, low: float = 0.0, high: float = 1.0) -> jax.Array:
  """f32[batch,SIZE,SIZE,3] uniform in [low, high)."""
  return jax.random.uniform(jax.random.key(seed), (batch, SIZE, SIZE, 3), minval=low,
                            maxval=high)


def upsample(cam: np.ndarray) -> np.ndarray:
  """A low-resolution map f64[h,w] bilinearly to SIZE x SIZE, half-pixel centres (skimage)."""
  return resize(cam, (SIZE, SIZE), order=1, mode="edge", anti_aliasing=False)


def assert_equals_slow_reference(method: Callable[..., jax.Array],
                                 reference: Callable[..., tuple[np.ndarray, float]]) -> None:
  """`method`'s maps of three images of a random CNN equal `reference(clf, image, label)`
  -> (map, its float32 rounding bound), image by image."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  batch, labels = images(1, 3), jnp.array([0, 3, 2])
  got = method(clf, batch, labels)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  for b in range(3):
    want, atol = reference(clf, batch[b], int(labels[b]))
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def region_mask() -> np.ndarray:
  """bool[SIZE,SIZE], True inside REGION."""
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  return inside
