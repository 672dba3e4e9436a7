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

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.registry import no_pass, register


@register("fake_cam", title="Fake-CAM", summary="all ones (a control)", cost=no_pass,
          uses_labels=False)
@jax.jit
def fake_cam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """The Fake-CAM control: f32[B,H,W] of ones."""
  del clf, labels
  return jnp.ones(images.shape[:3], jnp.float32)


@register("random", title="random", summary="uniform noise (a control)", cost=no_pass,
          needs_key=True, uses_labels=False)
@jax.jit
def random_map(clf: Classifier, images: jax.Array, labels: jax.Array,
               key: jax.Array) -> jax.Array:
  """The random control: f32[B,H,W] uniform in [0, 1), the map at batch position i
  from `jax.random.fold_in(key, i)`."""
  del clf, labels
  batch, height, width, _ = images.shape

  def draw(i: jax.Array) -> jax.Array:
    return jax.random.uniform(jax.random.fold_in(key, i), (height, width))

  return jax.vmap(draw)(jnp.arange(batch))
