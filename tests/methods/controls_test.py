"""Tests of salijax.methods.controls (Fake-CAM and the random map)."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax import methods
from salijax.methods.controls import fake_cam, random_map
from salijax.metrics.pointing_game import energy_pointing_game, pointing_game


@pytest.fixture(name="inputs", scope="module")
def _inputs():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = jax.random.uniform(jax.random.key(1), (3, 16, 24, 3))
  return clf, images, jnp.array([3, 0, 1])


def test_registered_under_their_names():
  assert methods.get("fake_cam") is fake_cam
  assert methods.get("random") is random_map


def test_fake_cam_is_all_ones_and_ignores_the_key(inputs):
  clf, images, labels = inputs
  maps = fake_cam(clf, images, labels)
  assert maps.shape == (3, 16, 24) and maps.dtype == jnp.float32
  np.testing.assert_array_equal(maps, 1.0)
  np.testing.assert_array_equal(fake_cam(clf, images, labels, key=jax.random.key(5)), maps)


def test_random_map_is_uniform_and_drawn_per_batch_position(inputs):
  clf, images, labels = inputs
  key = jax.random.key(7)
  maps = np.asarray(random_map(clf, images, labels, key=key))
  assert maps.shape == (3, 16, 24) and maps.dtype == np.float32
  assert (maps >= 0).all() and (maps < 1).all()
  for i in range(3):
    np.testing.assert_array_equal(
        maps[i], jax.random.uniform(jax.random.fold_in(key, i), (16, 24)))
  assert not np.array_equal(maps[0], maps[1])
  # Position i gets the same map whatever the other images are, and whatever the batch size.
  other = images.at[1:].set(0.5)
  np.testing.assert_array_equal(random_map(clf, other, labels, key=key), maps)
  np.testing.assert_array_equal(random_map(clf, images[:1], labels[:1], key=key), maps[:1])
  assert not np.array_equal(random_map(clf, images, labels, key=jax.random.key(8)), maps)
  big = np.asarray(random_map(clf, jnp.zeros((2, 64, 64, 3)), labels[:2], key=key))
  assert abs(big.mean() - 0.5) < 0.02  # 8192 uniform pixels: std of the mean 0.003


def test_controls_in_the_pointing_games(inputs):
  """Fake-CAM hits every region (all pixels are maximal); its energy is the area fraction."""
  clf, images, labels = inputs
  region = np.zeros((3, 16, 24), bool)
  region[:, 2:4, 20:23] = True
  maps = fake_cam(clf, images, labels)
  assert pointing_game(maps, jnp.asarray(region), tolerance=0.0).hit.all()
  # Sums of ones (exact) and their ratio: one or two roundings.
  np.testing.assert_allclose(energy_pointing_game(maps, jnp.asarray(region)).proportion,
                             6 / (16 * 24), rtol=float_tolerance.sum_rtol(2), atol=0)
