"""Ablation-CAM (Desai & Ramaswamy, WACV 2020).

With A = clf.features(images) f32[B,h,w,k] at the explained layer, y_c the
target class's logit and y_c^k the logit when channel k of A is set to zero
(the rest of the network is clf.head):

  w_k = (y_c - y_c^k) / y_c       (the fractional drop; all 0 when y_c = 0)
  L = ReLU(sum_k w_k A^k),   upsampled bilinearly to H x W

As in the paper the drop is divided by y_c itself, so when the target logit is
negative every weight changes sign (a channel that lowers a negative logit
further counts as evidence for the class).

Cost: one forward to the layer and k + 1 head passes. A compiled loop runs
over chunks of `chunk` channels; each step calls the head once on the
B * chunk ablated activations (vmapped over the chunk, so a head that reads
the images, e.g. inside a residual block, gets them unbatched). Memory grows
with B * chunk, not with k.

    maps = ablation_cam(clf, images, labels)   # f32[B,H,W]
"""

import functools
import math

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.gradient_cams import class_activation_map
from salijax.methods.registry import Option, channels_plus_one, positive_int, register


@register("ablation_cam", title="Ablation-CAM",
          summary="channels weighted by the logit's drop when each is zeroed",
          cost=channels_plus_one, options={"chunk": Option(64, positive_int)},
          needs_layer="features_and_head")
@functools.partial(jax.jit, static_argnames=("chunk",))
def ablation_cam(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                 chunk: int) -> jax.Array:
  """Ablation-CAM maps f32[B,H,W] >= 0 at the explained layer (module doc); `chunk`
  channels ablated per head call (memory and speed, not the result)."""
  feats = clf.features(clf.variables, images)  # f32[B,h,w,k]
  channels = feats.shape[-1]
  chunk = min(chunk, channels)
  steps = math.ceil(channels / chunk)
  target = jnp.take_along_axis(clf.head(clf.variables, feats, images), labels[:, None],
                               axis=1)  # f32[B,1]
  head = jax.vmap(lambda a: clf.head(clf.variables, a, images))

  def ablated_logits(_, step: jax.Array) -> tuple[None, jax.Array]:
    # Row n zeroes channel step * chunk + n; rows past the last channel zero nothing.
    keep = 1.0 - jax.nn.one_hot(step * chunk + jnp.arange(chunk), channels, dtype=feats.dtype)
    logits = head(feats[None] * keep[:, None, None, None, :])  # f32[n,B,K]
    return None, jnp.take_along_axis(logits, labels[None, :, None], axis=-1)[..., 0]  # f32[n,B]

  _, ablated = jax.lax.scan(ablated_logits, None, jnp.arange(steps))  # f32[steps,n,B]
  ablated = ablated.reshape(steps * chunk, -1).T[:, :channels]  # f32[B,k]
  nonzero = target != 0.0
  weights = jnp.where(nonzero, (target - ablated) / jnp.where(nonzero, target, 1.0), 0.0)
  return class_activation_map(feats, weights, images.shape[1], images.shape[2])
