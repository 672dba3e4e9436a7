"""Grad-CAM++ (Chattopadhay et al., WACV 2018).

With A = clf.features(images) f32[B,h,w,k] at the explained layer and
g = d y_c / d A (y_c the target logit), the paper's closed form for the score
S = exp(y_c) (its higher derivatives are S g^2 and S g^3 when the head is
piecewise linear) gives per-position weights

  alpha_ij^k = g_ij^2 / (2 g_ij^2 + sum_ab A_ab^k g_ij^3)    (0 where the denominator is 0)
  w_k = sum_ij alpha_ij^k ReLU(g_ij^k)
  L = ReLU(sum_k w_k A^k),   upsampled bilinearly to H x W

The paper's w_k uses ReLU(dS/dA) = S ReLU(g); the positive factor S = exp(y_c)
only scales the map and is left out (docs/methods.md#gradcam_plus_plus; as the common
implementations do), which also keeps large logits from overflowing.

Cost: as Grad-CAM, one forward to the layer and one forward and one backward
through the head.

    maps = gradcam_plus_plus(clf, images, labels)   # f32[B,H,W]
"""

from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.layer_gradients import (
    class_activation_map,
    layer_gradients,
    run_checked,
)
from salijax.methods.registry import register


@jax.jit
def _gradcam_plus_plus(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """The jitted Grad-CAM++: f32[B,H,W,3], i32[B] -> f32[B,H,W]."""
  feats, grads, _ = layer_gradients(clf, images, labels)
  squared = grads ** 2
  channel_sums = feats.sum(axis=(1, 2), keepdims=True)  # f32[B,1,1,k]
  denominator = 2.0 * squared + channel_sums * squared * grads
  nonzero = denominator != 0.0
  alpha = jnp.where(nonzero, squared / jnp.where(nonzero, denominator, 1.0), 0.0)
  weights = (alpha * jax.nn.relu(grads)).sum(axis=(1, 2))  # f32[B,k]
  return class_activation_map(feats, weights, images.shape[1], images.shape[2])


@register("gradcam_plus_plus")
def gradcam_plus_plus(clf: Classifier, images: Any, labels: Any = None, *,
                      key: jax.Array | None = None) -> jax.Array:
  """Grad-CAM++ maps f32[B,H,W] (>= 0) at the Classifier's explained layer (see the
  module doc); arguments and errors as `salijax.methods.gradcam.gradcam`."""
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  return run_checked(_gradcam_plus_plus, clf, images, labels, "Grad-CAM++")
