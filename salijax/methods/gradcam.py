"""Grad-CAM (Selvaraju et al., ICCV 2017).

With A = clf.features(images) f32[B,h,w,k] at the explained layer and y_c the
target class's logit (not its softmax probability) from clf.head:

  alpha_k = (1 / (h w)) sum_ij  d y_c / d A_ij^k
  L = ReLU(sum_k alpha_k A^k),   upsampled bilinearly to H x W

Cost: one forward to the layer, one forward and one backward (vjp) through
the head. The explained layer is whichever one the Classifier was built for
(`salijax.models.classifier(module, variables, layer=...)`).

    maps = gradcam(clf, images, labels)   # f32[B,H,W]
"""

from typing import Any

import jax

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.layer_gradients import (
    class_activation_map,
    layer_gradients,
    run_checked,
)
from salijax.methods.registry import register


@jax.jit
def _gradcam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """The jitted Grad-CAM: f32[B,H,W,3], i32[B] -> f32[B,H,W]."""
  feats, grads, _ = layer_gradients(clf, images, labels)
  alpha = grads.mean(axis=(1, 2))  # f32[B,k]
  return class_activation_map(feats, alpha, images.shape[1], images.shape[2])


@register("gradcam")
def gradcam(clf: Classifier, images: Any, labels: Any = None, *,
            key: jax.Array | None = None) -> jax.Array:
  """Grad-CAM maps at the Classifier's explained layer (see the module doc).

  Args:
    clf: a Classifier with `features` and `head` (the explained layer).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for each image; None = the predicted class.
    key: ignored (Grad-CAM is deterministic).

  Returns:
    f32[B,H,W], >= 0.

  Raises:
    ValueError: `clf` has no `features`/`head`, or bad images/labels.
    TypeError: wrong types of clf, images or labels.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  return run_checked(_gradcam, clf, images, labels, "Grad-CAM")
