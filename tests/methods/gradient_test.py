"""Tests of salijax.methods.input_gradients.gradient and the channel reductions (map_ops)."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images

from salijax.methods.input_gradients import gradient
from salijax.methods.map_ops import REDUCTIONS, reduce_channels

REGION = (8, 24, 24, 40)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


def numpy_reduction(raw: np.ndarray, reduce: str) -> np.ndarray:
  """The reductions of salijax.methods.map_ops, one pixel at a time."""
  out = np.zeros(raw.shape[:-1]) if reduce != "none" else raw.copy()
  for index in np.ndindex(raw.shape[:-1]):
    values = [float(v) for v in raw[index]]
    if reduce == "max_abs":
      out[index] = max(abs(v) for v in values)
    elif reduce == "abs_sum":
      out[index] = sum(abs(v) for v in values)
    elif reduce == "sum":
      out[index] = sum(values)
  return out


def two_programs_atol(grads: np.ndarray) -> float:
  """How far two programs' float32 gradients of a random_cnn may differ: each within the
  bound of the backward pass, which sums random_cnn's terms transposed, taken relative to
  the gradients' largest entry (the terms' magnitudes are not at hand)."""
  _, height, width, _ = grads.shape
  n = tiny_classifiers.random_cnn_terms(height // tiny_classifiers.STRIDE,
                                        width // tiny_classifiers.STRIDE)
  return 2 * float_tolerance.sum_atol(np.abs(grads).max(), n)


def per_image_gradients(clf, images, labels) -> np.ndarray:
  """The slow reference: jax.grad of one image's target logit, one image at a time."""
  grad = jax.jit(jax.grad(lambda image, c: clf.apply(clf.variables, image[None])[0, c]))
  return np.stack([grad(images[b], labels[b]) for b in range(images.shape[0])])


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_reductions_match_a_per_pixel_reference(reduce):
  raw = np.asarray(jax.random.normal(jax.random.key(0), (2, 5, 4, 3)))
  got = reduce_channels(jnp.asarray(raw), reduce)
  expected = numpy_reduction(raw, reduce)
  assert got.shape == expected.shape
  if reduce in ("none", "max_abs"):  # a copy, a maximum: exact
    np.testing.assert_array_equal(got, expected)
  else:  # sums of 3 terms
    np.testing.assert_allclose(got, expected, rtol=0,
                               atol=float_tolerance.sum_atol(np.abs(raw).sum(axis=-1), 3))


def test_matches_per_image_jax_grad_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(1, (3, 32, 32, 3))
  labels = jnp.array([0, 3, 2])
  expected = per_image_gradients(clf, images, labels)
  assert np.abs(expected).max() > 0.0
  raw = gradient(clf, images, labels, reduce="none")
  assert raw.shape == (3, 32, 32, 3) and raw.dtype == jnp.float32
  atol = two_programs_atol(expected)
  np.testing.assert_allclose(raw, expected, rtol=0, atol=atol)
  default = gradient(clf, images, labels)  # reduce="max_abs"
  assert default.shape == (3, 32, 32)
  np.testing.assert_allclose(default, numpy_reduction(expected, "max_abs"), rtol=0, atol=atol)


@pytest.mark.parametrize("channel", [None, 1])
def test_known_answer_on_region_classifier(channel):
  """Inside the region every feature is active (checked), so

    d y_0 / d I[y, x, c] = sum_k colour[c, k] readout[k, 0] / (16 h w),  readout[:, 0] = 1

  (16 = the 4x4 average pool, h w = the feature map's mean); outside it is 0.
  With `channel` set, the other colour channels get 0 everywhere.
  """
  height = 48
  clf = tiny_classifiers.region_classifier(height, height, REGION, channel=channel)
  images = random_images(2, (2, height, height, 3), 0.5, 1.0)
  colour = np.asarray(clf.variables["colour"], np.float64)
  pooled = np.asarray(images).reshape(2, 12, 4, 12, 4, 3).mean(axis=(2, 4))
  assert (pooled @ colour + np.asarray(clf.variables["bias"]) > 0).all()
  raw = np.asarray(gradient(clf, images, jnp.array([0, 0]), reduce="none"))
  cells = (height // tiny_classifiers.STRIDE) ** 2
  expected = np.zeros((height, height, 3))
  y0, y1, x0, x1 = REGION
  expected[y0:y1, x0:x1] = colour.sum(axis=1) / (16 * cells)
  for b in range(2):  # 8 terms of one sign, and the roundings of 1 / cells and 1 / 16
    np.testing.assert_allclose(raw[b], expected, rtol=float_tolerance.sum_rtol(8 + 4), atol=0)
  maps = np.asarray(gradient(clf, images, jnp.array([0, 1])))
  inside = np.zeros((height, height), bool)
  inside[y0:y1, x0:x1] = True
  for b in range(2):  # class 1 (readout -1) has the same |gradient|
    assert maps[b][inside].min() > 0.0
    np.testing.assert_array_equal(maps[b][~inside], 0.0)
  if channel is not None:
    others = [c for c in range(3) if c != channel]
    np.testing.assert_array_equal(raw[..., others], 0.0)


def test_batch_composition_jit_and_no_recompilation():
  clf = tiny_classifiers.random_cnn(jax.random.key(5))
  images = random_images(6, (3, 32, 32, 3))
  labels = jnp.array([1, 0, 2])
  batch = gradient(clf, images, labels)
  tol = {"rtol": 0, "atol": two_programs_atol(np.asarray(batch)[..., None])}
  alone = gradient(clf, images[1:2], labels[1:2])
  np.testing.assert_allclose(batch[1], alone[0], **tol)
  reordered = gradient(clf, images[::-1], labels[::-1])
  np.testing.assert_allclose(reordered[::-1], batch, **tol)
  inside_jit = jax.jit(lambda x, y: gradient(clf, x, y))(images, labels)
  np.testing.assert_allclose(inside_jit, batch, **tol)
  vmapped = jax.vmap(lambda x, y: gradient(clf, x[None], y[None])[0])(images, labels)
  np.testing.assert_allclose(vmapped, batch, **tol)
