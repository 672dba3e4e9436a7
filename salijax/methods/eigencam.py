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

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import PassCount, register


@register("eigencam", title="Eigen-CAM",
          summary="the first principal component of the activations (class-agnostic)",
          cost=lambda options, shapes: PassCount("forward", 1, 1), needs_layer="features",
          uses_labels=False)
@jax.jit
def eigencam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """Eigen-CAM maps f32[B,H,W] >= 0 at the explained layer; class-agnostic (module doc)."""
  del labels
  feats = clf.features(clf.variables, images)
  batch, height, width, channels = feats.shape
  flat = feats.reshape(batch, height * width, channels)
  left, singular, _ = jnp.linalg.svd(flat, full_matrices=False)
  projection = left[..., 0] * singular[..., :1]  # f32[B,hw], A v_1
  agreement = (projection * flat.mean(axis=-1)).sum(axis=-1, keepdims=True)
  projection = jnp.where(agreement < 0.0, -projection, projection)
  cams = jax.nn.relu(projection).reshape(batch, height, width)
  return upsample_bilinear(cams, images.shape[1], images.shape[2])
