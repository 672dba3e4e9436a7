"""Tests of salijax.methods.occlusion: a slow reference, known answer, options."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images

from salijax import methods
from salijax.methods.occlusion import occlusion, window_grid

SIZE = 16


def _reference(clf, images, labels, *, window, stride, baseline, channels, score):
  """The definition, one window at a time (numpy, float64 averages), and a bound on the
  float32 rounding of the scores (random_cnn)."""
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  n = tiny_classifiers.random_cnn_terms(SIZE // 4, SIZE // 4) + 1

  def scores(batch):
    logits = np.asarray(apply(clf.variables, jnp.asarray(batch, jnp.float32)), np.float64)
    dz = float_tolerance.sum_atol(terms(jnp.asarray(batch, jnp.float32)), n)
    if score == "logit":
      return logits, dz
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return probs, probs.max() * (2 * dz + (logits.shape[-1] + 3) * float_tolerance.EPS)

  images = np.asarray(images, np.float64)
  out = np.zeros(images.shape)
  atol = 0.0
  for b, image in enumerate(images):
    clean, clean_err = scores(image[None])
    total, count = np.zeros(image.shape), np.zeros(image.shape)
    planes = [[0, 1, 2]] if channels == "all" else [[0], [1], [2]]
    for y0 in range(0, SIZE, stride):
      for x0 in range(0, SIZE, stride):
        if (y0 > 0 and y0 - stride + window >= SIZE) or (x0 > 0 and x0 - stride + window >= SIZE):
          continue  # the previous window already reached the border
        for plane in planes:
          hidden = image.copy()
          hidden[y0:y0 + window, x0:x0 + window, plane] = baseline
          value, err = scores(hidden[None])
          total[y0:y0 + window, x0:x0 + window, plane] += clean[0, labels[b]] - value[0, labels[b]]
          count[y0:y0 + window, x0:x0 + window, plane] += 1
          atol = max(atol, 2 * (clean_err + err))
    out[b] = total / count
  return out, atol


@pytest.mark.parametrize("window,stride,channels,score", [
    (8, 4, "all", "logit"), (6, 4, "all", "softmax"), (5, 5, "each", "logit"),
    (24, 8, "all", "logit")])
def test_equals_slow_reference(window, stride, channels, score):
  """Windows cut off by the border (6 px at stride 4, 5 at stride 5 on 16 px), hiding each
  channel, and a window larger than the image (clipped: one position)."""
  clf = tiny_classifiers.random_cnn(jax.random.key(3))
  images = random_images(1, (2, SIZE, SIZE, 3))
  labels = np.array([1, 3])
  got = np.asarray(occlusion(clf, images, jnp.asarray(labels), window=window, stride=stride,
                             baseline=0.25, channels=channels, score=score, chunk=4,
                             reduce="none"))
  want, atol = _reference(clf, images, labels, window=min(window, SIZE), stride=stride,
                          baseline=0.25, channels=channels, score=score)
  assert np.abs(want).max() > 20 * atol  # the comparison can fail
  # The average of drops, each within `atol`, is within it too.
  np.testing.assert_allclose(got, want, rtol=0, atol=atol)
  mean = np.asarray(occlusion(clf, images, jnp.asarray(labels), window=window, stride=stride,
                              baseline=0.25, channels=channels, score=score))
  np.testing.assert_allclose(mean, want.mean(-1), rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """Windows aligned with the region: those outside it change no logit (map 0 but for the
  rounding of two programs' logits); hiding brightness inside it lowers class 0's logit and
  raises class 1's."""
  region = (16, 32, 8, 24)
  clf = tiny_classifiers.region_classifier(48, 48, region)
  images = random_images(2, (2, 48, 48, 3), 0.5, 1.0)
  maps = np.asarray(occlusion(clf, images, jnp.array([0, 1]), window=8, stride=8, baseline=0.0,
                              score="logit"))
  inside = np.zeros((48, 48), bool)
  y0, y1, x0, x1 = region
  inside[y0:y1, x0:x1] = True
  atol = 2 * float_tolerance.sum_atol(tiny_classifiers.logit_terms(clf, images),
                                      tiny_classifiers.region_terms(12, 12))
  np.testing.assert_allclose(maps[:, ~inside], 0.0, rtol=0, atol=atol)
  assert maps[0][inside].min() > 100 * atol and maps[1][inside].max() < -100 * atol


def test_a_stride_longer_than_the_window_is_refused():
  clf = tiny_classifiers.random_cnn(jax.random.key(3))
  with pytest.raises(ValueError, match="stride"):
    occlusion(clf, random_images(1, (1, SIZE, SIZE, 3)), window=4, stride=5)


def test_cost_counts_every_window_and_the_image():
  info = methods.info("occlusion")
  shapes = methods.registry.Shapes(2, 80, 48, 0)
  options = info.resolve({"window": 16, "stride": 8})
  assert window_grid(80, 16, 8) == (16, 9) and window_grid(48, 16, 8) == (16, 5)
  assert info.cost(options, shapes) == ("forward", 9 * 5 + 1, 46)
  assert info.cost(info.resolve({"channels": "each", "chunk": 16}), shapes).passes == 3 * 45 + 1
