"""Small Flax linen, Equinox and Haiku CNNs wrapped by salijax.wrap, for the randomisation tests.

Each is stem conv -> (BatchNorm) -> explained conv -> mean -> linear head. The
linen and Equinox ones look at one region only: a parameter `gate`, REGION's
indicator in the "trained" model, multiplies the stem's features and the
convs have no bias, so the explained features are zero outside the region:
Grad-CAM's maps of every image lie in it (trained maps of different images
agree), and leave it when the gate is re-drawn. The group names sort
neither in forward nor in reverse forward order, so an order read off names or
leaves would be wrong. Equinox and Haiku are in the test extra: missing, the
tests skip locally and fail in CI (`wrapped_checks.extra_module`).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import wrapped_checks

import salijax

SIZE = 32  # image side; the gates are SIZE x SIZE
REGION = (slice(4, 14), slice(16, 28))  # rows, columns the trained gate keeps
LINEN_BLOCKS = ("b_head", "d_conv", "e_gate", "a_norm", "c_stem")  # from the logits down
EQUINOX_BLOCKS = ("head", "conv", "gate", "stem")
HAIKU_BLOCKS = ("head", "conv", "norm", "stem")


def region_gate() -> np.ndarray:
  """f32[SIZE,SIZE], 1 in REGION and 0 elsewhere."""
  gate = np.zeros((SIZE, SIZE), np.float32)
  gate[REGION] = 1.0
  return gate


def smooth_images(seed: int, batch: int = 4) -> jax.Array:
  """f32[B,SIZE,SIZE,3] in [0, 1]: random 8 x 8 colour grids upsampled (distinct per image)."""
  grid = jax.random.uniform(jax.random.key(seed), (batch, 8, 8, 3))
  return jax.image.resize(grid, (batch, SIZE, SIZE, 3), "linear").clip(0.0, 1.0)


def _trained_like(path, x):
  """Every leaf unlike a fresh model's, so a re-draw shows: weights and biases moved by
  N(0, 0.05^2) noise, BatchNorm's by 0.1 + U(0, 0.5) (variances stay positive)."""
  names = jax.tree_util.keystr(path)
  if not jnp.issubdtype(x.dtype, jnp.floating):  # Haiku's moving-average counters
    return x + 1
  key = jax.random.key(len(names))
  if "norm" in names:
    return x + 0.1 + 0.5 * jax.random.uniform(key, x.shape, x.dtype)
  return x + 0.05 * jax.random.normal(key, x.shape, x.dtype)


class LinenRegionCNN(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(8, (3, 3), use_bias=False, name="c_stem")(x))
    x = nn.BatchNorm(use_running_average=True, name="a_norm")(x)
    x = x * self.param("e_gate", nn.initializers.ones, (SIZE, SIZE, 1))
    x = nn.relu(nn.Conv(16, (3, 3), use_bias=False, name="d_conv")(x))
    return nn.Dense(4, name="b_head")(x.mean((1, 2)))


@functools.lru_cache(maxsize=1)
def linen_classifier() -> salijax.Classifier:
  """LinenRegionCNN with the region gate and trained-like BatchNorm, explained at d_conv."""
  module = LinenRegionCNN()
  variables = module.init(jax.random.key(1), smooth_images(0, batch=1))
  variables = jax.tree_util.tree_map_with_path(_trained_like, variables)
  variables["params"]["e_gate"] = jnp.asarray(region_gate()[..., None])
  return salijax.wrap(module, variables, layer="d_conv")


@functools.lru_cache(maxsize=1)
def equinox_classifier() -> salijax.Classifier:
  """An Equinox module (one CHW image per call) with the region gate, explained at `conv`."""
  eqx = wrapped_checks.extra_module("equinox")

  class EquinoxRegionCNN(eqx.Module):
    conv: eqx.nn.Conv2d  # fields not in forward order
    head: eqx.nn.Linear
    stem: eqx.nn.Conv2d
    gate: jax.Array

    def __init__(self, key):
      k1, k2, k3 = jax.random.split(key, 3)
      self.stem = eqx.nn.Conv2d(3, 8, 3, padding=1, use_bias=False, key=k1)
      self.conv = eqx.nn.Conv2d(8, 16, 3, padding=1, use_bias=False, key=k2)
      self.head = eqx.nn.Linear(16, 4, key=k3)
      self.gate = jnp.asarray(region_gate())

    def __call__(self, x):
      x = jax.nn.relu(self.stem(x)) * self.gate
      x = jax.nn.relu(self.conv(x))
      return self.head(x.mean((1, 2)))

  return salijax.wrap(EquinoxRegionCNN(jax.random.key(1)), layer=lambda m: m.conv,
                      preprocess=salijax.wrapping.Preprocess(channels_first=True))


def haiku_transformed():
  """A Haiku function with state (BatchNorm; initialised in training mode, the default),
  modules named as HAIKU_BLOCKS."""
  hk = wrapped_checks.extra_module("haiku")

  def forward(x, is_training=True):
    x = jax.nn.relu(hk.Conv2D(8, 3, name="stem")(x))
    x = hk.BatchNorm(True, True, 0.9, name="norm")(x, is_training=is_training)
    x = jax.nn.relu(hk.Conv2D(16, 3, name="conv")(x))
    return hk.Linear(4, name="head")(x.mean((1, 2)))

  return hk.transform_with_state(forward)


@functools.lru_cache(maxsize=1)
def haiku_classifier() -> salijax.Classifier:
  """`haiku_transformed` with trained-like BatchNorm, explained at `conv`."""
  transformed = haiku_transformed()
  params, state = transformed.init(jax.random.key(1), smooth_images(0, batch=1))
  variables = jax.tree_util.tree_map_with_path(_trained_like, (params, state))
  return salijax.wrap(transformed, variables, layer="conv", call_kwargs={"is_training": False})
