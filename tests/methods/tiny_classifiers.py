"""Tiny hand-written Classifiers whose right answers are known, for method tests.

`region_classifier`: the class scores depend only on the pixels inside one
rectangle (optionally only on one colour channel there); its activations are
zero outside the rectangle, so every sound saliency method puts its mass there.
`random_cnn`: a small random convolutional network, for definition tests
against slow references; its `guided_apply` has guided ReLUs.
`tinted_images`: images for which `random_cnn(jax.random.key(6))` predicts
more than one class (it predicts one class for uniform noise).
"""

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.guided_relu import guided_relu

STRIDE = 4  # feature-map stride of both classifiers
HIGHEST = jax.lax.Precision.HIGHEST  # float32 matmuls on GPU too (tests compare with float64)


def _pool(x: jax.Array) -> jax.Array:
  """f32[B,H,W,C] -> f32[B,H/STRIDE,W/STRIDE,C], average pooling."""
  b, h, w, c = x.shape
  return x.reshape(b, h // STRIDE, STRIDE, w // STRIDE, STRIDE, c).mean(axis=(2, 4))


def region_classifier(height: int, width: int, region: tuple[int, int, int, int],
                      channel: int | None = None, num_classes: int = 3) -> Classifier:
  """A Classifier looking only at `region` = (y0, y1, x0, x1) (pixel bounds, half-open).

  Features f32[B,H/4,W/4,8]: ReLU of 1x1 colour filters of the 4x4-pooled image,
  multiplied by the region's indicator at feature resolution. Logits: spatial
  mean of the features times a fixed matrix. With `channel` set, the filters
  read only that colour channel. Class 0 rises with brightness in the region,
  class 1 falls with it.
  """
  if height % STRIDE or width % STRIDE:
    raise ValueError(f"height and width must be multiples of {STRIDE}")
  y0, y1, x0, x1 = region
  gate = np.zeros((height // STRIDE, width // STRIDE, 1), np.float32)
  gate[y0 // STRIDE:-(-y1 // STRIDE), x0 // STRIDE:-(-x1 // STRIDE)] = 1.0
  rng = np.random.default_rng(0)
  colour = np.abs(rng.normal(size=(3, 8))).astype(np.float32) + 0.1
  if channel is not None:
    colour[[c for c in range(3) if c != channel]] = 0.0
  readout = rng.normal(size=(8, num_classes)).astype(np.float32)
  readout[:, 0] = 1.0
  readout[:, 1] = -1.0
  variables = {"colour": jnp.asarray(colour), "bias": jnp.full((8,), -0.05),
               "gate": jnp.asarray(gate), "readout": jnp.asarray(readout)}

  def features(v, images):
    colours = jnp.matmul(_pool(images), v["colour"], precision=HIGHEST)
    return jax.nn.relu(colours + v["bias"]) * v["gate"]

  def head(v, feats, images):
    del images  # sequential model
    return jnp.matmul(feats.mean(axis=(1, 2)), v["readout"], precision=HIGHEST)

  def apply(v, images):
    return head(v, features(v, images), images)

  return Classifier(variables=variables, apply=apply, features=features, head=head)


def random_cnn(key: jax.Array, num_classes: int = 4, channels: int = 6) -> Classifier:
  """A random two-conv CNN: features f32[B,H/4,W/4,channels], head = GAP + dense."""
  k1, k2, k3 = jax.random.split(key, 3)
  variables = {
      "conv1": jax.random.normal(k1, (3, 3, 3, channels)) * 0.5,
      "conv2": jax.random.normal(k2, (3, 3, channels, channels)) * 0.3,
      "dense": jax.random.normal(k3, (channels, num_classes)),
  }

  def conv(x, kernel):
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=HIGHEST)

  def features_with(relu):
    def features(v, images):
      x = relu(conv(images - 0.5, v["conv1"]))
      return relu(conv(_pool(x), v["conv2"]))
    return features

  features = features_with(jax.nn.relu)

  def head(v, feats, images):
    del images  # sequential model
    return jnp.matmul(jnp.tanh(feats).mean(axis=(1, 2)), v["dense"], precision=HIGHEST) * 3.0

  def apply(v, images):
    return head(v, features(v, images), images)

  def guided_apply(v, images):
    return head(v, features_with(guided_relu)(v, images), images)

  return Classifier(variables=variables, apply=apply, features=features, head=head,
                    guided_apply=guided_apply)


def random_cnn_terms(height: int, width: int, channels: int = 6) -> int:
  """How many float32 terms are summed from an image to one of random_cnn's logits: conv1
  (3x3x3), the 4x4 pool, conv2 (3x3xchannels), the head's mean over the height x width
  features and its dense layer; the n of float_tolerance bounds across two programs, taken
  relative to the magnitudes at the explained layer."""
  return 27 + 16 + 9 * channels + height * width + channels


def logit_terms(clf: Classifier, images: jax.Array) -> jax.Array:
  """f32[B,K]: sum |terms| of each logit of random_cnn or region_classifier (their heads on
  |activations| and |weights|), what float_tolerance.sum_atol bounds are relative to."""
  magnitudes = jax.tree_util.tree_map(jnp.abs, clf.variables)
  feats = jnp.abs(clf.features(clf.variables, images))
  return clf.head(magnitudes, feats, images)


REGION_FEATURE_TERMS = 16 + 3 + 1  # region_classifier: the 4x4 pool, the colour filter, bias


def region_terms(height: int, width: int) -> int:
  """As random_cnn_terms for region_classifier: REGION_FEATURE_TERMS, the head's mean over
  the height x width features and its readout (8 channels)."""
  return REGION_FEATURE_TERMS + height * width + 8


def tinted_images(seed: int = 0, batch: int = 3, size: int = 32) -> jax.Array:
  """f32[B,size,size,3] in [0, 1]: a random colour per image plus 20 % uniform noise."""
  colour_key, noise_key = jax.random.split(jax.random.key(seed))
  return (0.8 * jax.random.uniform(colour_key, (batch, 1, 1, 3))
          + 0.2 * jax.random.uniform(noise_key, (batch, size, size, 3)))
