"""LayerCAM (Jiang et al., IEEE TIP 2021).

With A = clf.features(images) f32[B,h,w,k] at the explained layer and
g = d y_c / d A (y_c the target logit), every activation is weighted by its
own positive gradient:

  L_ij = ReLU(sum_k ReLU(g_ij^k) A_ij^k),   upsampled bilinearly to H x W

Unlike Grad-CAM's one weight per channel, the weights vary over positions, so
LayerCAM also gives fine maps at shallow layers (the paper fuses several
layers; salijax explains the Classifier's one explained layer).

Cost: as Grad-CAM, one forward to the layer and one forward and one backward
through the head.

    maps = layercam(clf, images, labels)   # f32[B,H,W]
"""

from typing import Any

import jax

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.layer_gradients import layer_gradients, run_checked
from salijax.methods.registry import register
from salijax.methods.upsampling import upsample_bilinear


@jax.jit
def _layercam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """The jitted LayerCAM: f32[B,H,W,3], i32[B] -> f32[B,H,W]."""
  feats, grads, _ = layer_gradients(clf, images, labels)
  cams = jax.nn.relu((jax.nn.relu(grads) * feats).sum(axis=-1))  # f32[B,h,w]
  return upsample_bilinear(cams, images.shape[1], images.shape[2])


@register("layercam")
def layercam(clf: Classifier, images: Any, labels: Any = None, *,
             key: jax.Array | None = None) -> jax.Array:
  """LayerCAM maps f32[B,H,W] (>= 0) at the Classifier's explained layer (see the
  module doc); arguments and errors as `salijax.methods.gradcam.gradcam`."""
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  return run_checked(_layercam, clf, images, labels, "LayerCAM")
