"""Control maps that every metric table shows (Poppi et al., 2021): Fake-CAM and a random map.

Neither looks at the classifier or the image; several metrics reward them
anyway, which is why they sit next to the real methods.

  fake_cam     an all-ones map ("fake_cam"): every pixel is maximal, so it hits
               every region in the pointing game, and E = I in the confidence
               metrics.
  random_map   ("random") pixels uniform in [0, 1), the map of the image at
               batch position i drawn from `jax.random.fold_in(key, i)`.

The random map depends only on the key and the batch position, so the same
(key, position) gives the same map whatever the other images of the batch
are; an image moved to another position (another batch size, a resumed run)
gets another map unless the caller derives the key per image (e.g. fold_in of
seed, image index and method) and passes batches of one, or keeps the
positions fixed (the benchmark's batches are fixed; docs/methods.md#controls).

    maps = fake_cam(clf, images, labels)                       # ones f32[B,H,W]
    maps = random_map(clf, images, labels, key=jax.random.key(0))
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.registry import register


@register("fake_cam")
def fake_cam(clf: Classifier, images: Any, labels: Any = None, *,
             key: jax.Array | None = None) -> jax.Array:
  """The Fake-CAM control: an all-ones map per image.

  Args:
    clf: the Classifier (checked, not used).
    images: f32[B,H,W,3] in [0, 1] (only the shape is used).
    labels: i32[B] (checked, not used); None = the predicted class.
    key: ignored (deterministic).

  Returns:
    f32[B,H,W] of ones.

  Raises:
    ValueError, TypeError: bad clf, images or labels, as for every method.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  validation.check_classifier_inputs(clf, images, labels)
  return jnp.ones(images.shape[:3], jnp.float32)


@functools.partial(jax.jit, static_argnames=("shape",))
def _random_map(key: jax.Array, shape: tuple[int, int, int]) -> jax.Array:
  """f32[B,H,W] uniform in [0, 1), map i from fold_in(key, i)."""
  batch, height, width = shape

  def draw(i: jax.Array) -> jax.Array:
    return jax.random.uniform(jax.random.fold_in(key, i), (height, width))

  return jax.vmap(draw)(jnp.arange(batch))


@register("random")
def random_map(clf: Classifier, images: Any, labels: Any = None, *,
               key: jax.Array | None = None) -> jax.Array:
  """The random control: pixels uniform in [0, 1) (see the module doc for the keys).

  Args:
    clf: the Classifier (checked, not used).
    images: f32[B,H,W,3] in [0, 1] (only the shape is used).
    labels: i32[B] (checked, not used); None = the predicted class.
    key: a `jax.random.key`; required. The map at batch position i comes from
      `jax.random.fold_in(key, i)`.

  Returns:
    f32[B,H,W] in [0, 1).

  Raises:
    ValueError, TypeError: bad clf, images or labels, as for every method;
      TypeError for a missing or malformed key.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  validation.check_classifier_inputs(clf, images, labels)
  validation.check_key(key)
  return _random_map(key, tuple(int(n) for n in images.shape[:3]))
