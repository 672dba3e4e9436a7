"""Shared inputs of the robustness metric tests (sensitivity, local Lipschitz, relative
stability): the twin CNN, images, simple methods, and Quantus fed salijax's perturbations."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import twin_cnn

from salijax import methods

B, H, W = 3, 16, 16
KEY = jax.random.key(7)


@functools.lru_cache(maxsize=1)
def params() -> dict[str, np.ndarray]:
  return twin_cnn.weights(seed=3)


def clf():
  return twin_cnn.classifier(params())


@functools.lru_cache(maxsize=2)
def images(seed: int = 1) -> jax.Array:
  """f32[B,H,W,3] in [0.1, 0.9): the noisy copies stay near [0, 1]."""
  return jax.random.uniform(jax.random.key(seed), (B, H, W, 3), minval=0.1, maxval=0.9)


def labels() -> jax.Array:
  return jnp.array([0, 2, 4], jnp.int32)


def constant_method(clf, images, labels=None):
  """A map that does not depend on the input (nor on the model): every pixel 1."""
  del clf, labels
  return jnp.ones(images.shape[:3], jnp.float32)


def channel_method(clf, images, labels=None):
  """The map a(x) = x's red channel (a method linear in the input, ignoring the model)."""
  del clf, labels
  return images[..., 0]


def gradient_maps(images_nhwc, labels_) -> np.ndarray:
  """salijax's vanilla gradient on the twin (the explanation both sides use), by its core:
  the noisy copies leave [0, 1], which the public method refuses on the host."""
  info = methods.info("gradient")
  return np.asarray(info.core(clf(), jnp.asarray(images_nhwc, jnp.float32),
                              jnp.asarray(labels_, jnp.int32), **info.defaults()))


def quantus_explain(model, inputs, targets, **kwargs):
  """Quantus's explain_func: salijax's gradient of the JAX twin, NCHW in, [B,1,H,W] out."""
  del model, kwargs
  maps = gradient_maps(np.transpose(np.asarray(inputs), (0, 2, 3, 1)), targets)
  return maps[:, None]


class PreDrawn:
  """Quantus's perturb_func returning salijax's copies x'_j (f32[J,B,H,W,3]) in order."""

  def __init__(self, copies: jax.Array):
    self.copies = np.transpose(np.asarray(copies), (0, 1, 4, 2, 3))  # NCHW
    self.calls = 0

  def __call__(self, arr, **kwargs):
    del kwargs
    copy = self.copies[self.calls].reshape(arr.shape).astype(arr.dtype)
    self.calls += 1
    return copy


def run_quantus(torch, metric, copies: jax.Array) -> np.ndarray:
  """Runs a Quantus robustness metric (built with perturb_func=PreDrawn) on the twin."""
  x = np.transpose(np.asarray(images()), (0, 3, 1, 2)).copy()
  scores = metric(model=twin_cnn.torch_model(torch, params()), x_batch=x,
                  y_batch=np.asarray(labels()), a_batch=None, explain_func=quantus_explain,
                  device="cpu", channel_first=True)
  assert metric.perturb_func.func.calls == len(copies)  # every pre-drawn copy, once
  return np.asarray(scores, np.float64)
