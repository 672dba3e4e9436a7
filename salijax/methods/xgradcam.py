"""XGrad-CAM (Fu et al., BMVC 2020).

With A = clf.features(images) f32[B,h,w,k] at the explained layer and
g = d y_c / d A (y_c the target logit), each channel's gradient is averaged
with the channel's own activations as weights:

  w_k = sum_ij (A_ij^k / sum_ab A_ab^k) g_ij^k     (0 for a channel that sums to 0)
  L = ReLU(sum_k w_k A^k),   upsampled bilinearly to H x W

Cost: as Grad-CAM, one forward to the layer and one forward and one backward
through the head.

    maps = xgradcam(clf, images, labels)   # f32[B,H,W]
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
def _xgradcam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """The jitted XGrad-CAM: f32[B,H,W,3], i32[B] -> f32[B,H,W]."""
  feats, grads, _ = layer_gradients(clf, images, labels)
  channel_sums = feats.sum(axis=(1, 2))  # f32[B,k]
  weighted = (feats * grads).sum(axis=(1, 2))  # f32[B,k]
  nonzero = channel_sums != 0.0
  weights = jnp.where(nonzero, weighted / jnp.where(nonzero, channel_sums, 1.0), 0.0)
  return class_activation_map(feats, weights, images.shape[1], images.shape[2])


@register("xgradcam")
def xgradcam(clf: Classifier, images: Any, labels: Any = None, *,
             key: jax.Array | None = None) -> jax.Array:
  """XGrad-CAM maps f32[B,H,W] (>= 0) at the Classifier's explained layer (see the
  module doc); arguments and errors as `salijax.methods.gradcam.gradcam`."""
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  return run_checked(_xgradcam, clf, images, labels, "XGrad-CAM")
