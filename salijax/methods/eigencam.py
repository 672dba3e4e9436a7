"""Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the activations' first principal direction.

With A = clf.features(image) reshaped to f32[hw,k] (positions x channels) and
its singular value decomposition A = U S V^T (not mean-centred, as the paper),
the map is the projection of every position onto the first right singular
vector v_1:

  P = A v_1 = s_1 u_1                                   f32[hw] -> f32[h,w]
  L = ReLU(sign * P),   upsampled bilinearly to H x W

Sign rule: a singular vector is defined up to its sign, so salijax picks the
sign that makes P agree with the channel-mean map m_ij = (1/k) sum_k A_ij^k:
sign = -1 if sum_ij P_ij m_ij < 0, else +1 (uncentred inner product). For
non-negative activations (after a ReLU) this is the sign that makes P >= 0.
Implementations that mean-centre A before the SVD compute a different map.

Eigen-CAM is CLASS-AGNOSTIC: every class of an image gets the same map;
`labels` are only validated. Cost: one forward to the explained layer and one
SVD of f32[hw,k] per image.

    maps = eigencam(clf, images, labels)   # f32[B,H,W]
"""

from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.layer_gradients import check_explained_layer
from salijax.methods.registry import register
from salijax.methods.upsampling import upsample_bilinear


@jax.jit
def _eigencam(clf: Classifier, images: jax.Array) -> jax.Array:
  """The jitted Eigen-CAM: f32[B,H,W,3] -> f32[B,H,W]."""
  feats = clf.features(clf.variables, images)
  batch, height, width, channels = feats.shape
  flat = feats.reshape(batch, height * width, channels)
  left, singular, _ = jnp.linalg.svd(flat, full_matrices=False)
  projection = left[..., 0] * singular[..., :1]  # f32[B,hw], A v_1
  agreement = (projection * flat.mean(axis=-1)).sum(axis=-1, keepdims=True)
  projection = jnp.where(agreement < 0.0, -projection, projection)
  cams = jax.nn.relu(projection).reshape(batch, height, width)
  return upsample_bilinear(cams, images.shape[1], images.shape[2])


@register("eigencam")
def eigencam(clf: Classifier, images: Any, labels: Any = None, *,
             key: jax.Array | None = None) -> jax.Array:
  """Eigen-CAM maps at the Classifier's explained layer; CLASS-AGNOSTIC (see the module doc).

  Args:
    clf: a Classifier with `features` (the explained layer).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], validated and otherwise ignored (the map does not depend on
      the class); None = the predicted class.
    key: ignored (Eigen-CAM is deterministic).

  Returns:
    f32[B,H,W], >= 0.

  Raises:
    ValueError: `clf` has no `features`, or bad images/labels.
    TypeError: wrong types of clf, images or labels.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  validation.check_classifier_inputs(clf, images, labels)
  check_explained_layer(clf, images, "Eigen-CAM", needs_head=False)
  return _eigencam(clf, jnp.asarray(images, jnp.float32))
