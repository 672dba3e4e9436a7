"""The fast gradient sign method (FGSM; Goodfellow, Shlens and Szegedy, ICLR 2015).

With images I in [0, 1] (pixel space: the classifier normalises inside) and
the cross-entropy loss of the class y = `labels` (the true class) on the
classifier's softmax,

  p(I) = clip(I + epsilon * sign(d loss(f(I), y) / d I), 0, 1)

epsilon is in pixel units ([0, 1] scale: 8/255 is about 0.031). sign(0) = 0:
a pixel channel whose gradient is exactly zero is left unchanged. The loss is
summed over the batch before the gradient; the images are independent (the
classifier runs in inference mode), so each image's step follows its own
loss and does not depend on the rest of the batch.

Cost: one forward and one backward pass per image.

    attacked = fgsm(clf, images, labels, epsilon=0.03)   # f32[B,H,W,3]
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier


@jax.jit
def _fgsm(clf: Classifier, images: jax.Array, labels: jax.Array,
          epsilon: jax.Array) -> jax.Array:
  """The jitted FGSM: f32[B,H,W,3], i32[B], f32[] -> f32[B,H,W,3]."""
  def loss(x: jax.Array) -> jax.Array:
    log_probabilities = jax.nn.log_softmax(clf.logits(x), axis=-1)
    return -jnp.take_along_axis(log_probabilities, labels[:, None], axis=1).sum()

  gradients = jax.grad(loss)(images)
  return jnp.clip(images + epsilon * jnp.sign(gradients), 0.0, 1.0)


def fgsm(clf: Classifier, images: Any, labels: Any = None, *, epsilon: float) -> jax.Array:
  """FGSM adversarial examples of `images` against the classes `labels` (module doc).

  Args:
    clf: the Classifier attacked.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the true classes (the loss that the step raises); None = the
      predicted class.
    epsilon: the step size in pixel units, a real number in [0, 1].

  Returns:
    f32[B,H,W,3] in [0, 1], each pixel channel within epsilon of the image.

  Raises:
    ValueError: bad images or labels; epsilon outside [0, 1] or not finite.
    TypeError: wrong types of clf, images or labels; epsilon not a real number.
  """
  labels = validation.checked_labels(clf, images, labels)
  if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)):
    raise TypeError(f"epsilon must be a real number in [0, 1], got {epsilon!r}"
                    f" ({type(epsilon).__name__})")
  if not (math.isfinite(epsilon) and 0.0 <= epsilon <= 1.0):
    raise ValueError(f"epsilon must be in [0, 1] (pixel units), got {epsilon!r}")
  return _fgsm(clf, jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32),
               jnp.float32(epsilon))
