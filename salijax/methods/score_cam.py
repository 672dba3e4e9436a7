"""Score-CAM (Wang et al., CVPR Workshops 2020).

With A = clf.features(I) f32[h,w,k] at the explained layer, each channel,
upsampled bilinearly to H x W and min-max normalised per image and channel,
masks the image (pixel space); its weight is the rise of the target class's
softmax probability f_c over the baseline, the all-black image:

  M_k = (up(A^k) - min up(A^k)) / (max up(A^k) - min up(A^k))   (0 if up(A^k) is constant)
  w_k = f_c(I * M_k) - f_c(0)                            (the paper's baseline subtraction)
  L = ReLU(sum_k w_k A^k),   upsampled bilinearly to H x W

No softmax across channels (some implementations add one; the paper's
definition has none). Cost: k + 1 forwards per image, the +1 being the black
image, forwarded once for the whole batch. A compiled loop runs over chunks of
`chunk` channels: each step forwards B * chunk masked images and adds their
channels' share to a running f32[B,h,w] sum, so memory grows with B * chunk, not
with k; the result does not depend on `chunk` or on the other images of the
batch (up to float summation order).

    maps = score_cam(clf, images, labels)   # f32[B,H,W]
"""

import functools
import math

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import Option, channels_plus_one, positive_int, register


def _normalised_masks(acts: jax.Array, height: int, width: int) -> jax.Array:
  """f32[B,h,w,n] -> f32[B,n,H,W]: each channel upsampled and min-max normalised to [0, 1]."""
  masks = upsample_bilinear(jnp.moveaxis(acts, 3, 1), height, width)
  low = masks.min(axis=(2, 3), keepdims=True)
  spread = masks.max(axis=(2, 3), keepdims=True) - low
  varies = spread > 0.0
  return jnp.where(varies, (masks - low) / jnp.where(varies, spread, 1.0), 0.0)


@register("score_cam", title="Score-CAM",
          summary="channels weighted by the class score of the image they mask",
          cost=channels_plus_one, options={"chunk": Option(64, positive_int)},
          needs_layer="features")
@functools.partial(jax.jit, static_argnames=("chunk",))
def score_cam(clf: Classifier, images: jax.Array, labels: jax.Array, *,
              chunk: int) -> jax.Array:
  """Score-CAM maps f32[B,H,W] >= 0 at the explained layer (module doc); `chunk`
  channels per loop step (memory and speed, not the result)."""
  batch, height, width, _ = images.shape
  feats = clf.features(clf.variables, images)  # f32[B,h,w,k]
  channels = feats.shape[-1]
  chunk = min(chunk, channels)
  steps = math.ceil(channels / chunk)
  # Zero channels pad k to steps * chunk; their activations are 0, so they add nothing.
  padded = jnp.pad(feats, ((0, 0), (0, 0), (0, 0), (0, steps * chunk - channels)))
  black = jnp.zeros((1, height, width, 3), images.dtype)
  baseline = jax.nn.softmax(clf.logits(black), axis=-1)[0, labels]  # f32[B]

  def add_chunk(step: jax.Array, cams: jax.Array) -> jax.Array:
    acts = jax.lax.dynamic_slice_in_dim(padded, step * chunk, chunk, axis=3)  # f32[B,h,w,n]
    masks = _normalised_masks(acts, height, width)  # f32[B,n,H,W]
    masked = (images[:, None] * masks[..., None]).reshape(batch * chunk, height, width, 3)
    probs = jax.nn.softmax(clf.logits(masked).reshape(batch, chunk, -1), axis=-1)
    scores = jnp.take_along_axis(probs, labels[:, None, None], axis=-1)[..., 0]  # f32[B,n]
    return cams + jnp.einsum("bhwn,bn->bhw", acts, scores - baseline[:, None],
                             precision=jax.lax.Precision.HIGHEST)

  cams = jax.lax.fori_loop(0, steps, add_chunk, jnp.zeros(feats.shape[:3], jnp.float32))
  return upsample_bilinear(jax.nn.relu(cams), height, width)
