"""Saliency methods run on EfficientNet-B0 and the MobileNets at their default layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from initialised_models import NUM_CLASSES, variables

from salijax import methods, models

pytestmark = pytest.mark.slow

SIZE = 64  # the default layers' maps are 2 x 2


def _classifier(arch):
  module = models.create(arch, num_classes=NUM_CLASSES)
  return models.classifier(module, variables(arch, random_statistics=True))


@pytest.mark.parametrize("arch", ["efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large"])
def test_gradcam_runs_at_the_default_layer(arch):
  clf = _classifier(arch)
  images = jax.random.uniform(jax.random.key(0), (2, SIZE, SIZE, 3))
  maps = [methods.gradcam(clf, images, jnp.full((2,), label)) for label in range(NUM_CLASSES)]
  assert all(m.shape == (2, SIZE, SIZE) and m.dtype == jnp.float32 for m in maps)
  assert all(bool(jnp.all(jnp.isfinite(m))) and float(m.min()) >= 0 for m in maps)
  # The explained class matters: not every class gets the same map.
  assert any(not np.allclose(maps[0], m) for m in maps[1:])


def test_guided_backprop_through_hardswish_and_squeeze_excitation():
  clf = _classifier("mobilenet_v3_large")
  images = jax.random.uniform(jax.random.key(1), (2, SIZE, SIZE, 3))
  maps = methods.guided_backprop(clf, images, jnp.array([0, 1]))
  assert maps.shape == (2, SIZE, SIZE) and bool(jnp.all(jnp.isfinite(maps)))
  assert float(jnp.abs(maps).max()) > 0
