"""The gradient CAMs: Grad-CAM, Grad-CAM++, XGrad-CAM and LayerCAM.

With A = clf.features(images) f32[B,h,w,k] at the explained layer and
g = d y_c / d A, the gradient of the target class's logit y_c (one forward to
the layer, one forward and one backward through the head), each method weights
the activations and keeps the positive part of their sum:

  L = ReLU(sum_k w^k A^k),   upsampled bilinearly to H x W (half-pixel centres)

They differ only in the weights (`WEIGHTS`; docs/methods.md has each paper):
  gradcam            w^k = (1 / hw) sum_ij g_ij^k
  gradcam_plus_plus  w^k = sum_ij alpha_ij^k ReLU(g_ij^k), alpha_ij^k =
                     g_ij^2 / (2 g_ij^2 + sum_ab A_ab^k g_ij^3) (0 where the
                     denominator is 0; the paper's positive factor exp(y_c)
                     is left out: it only scales the map)
  xgradcam           w^k = sum_ij (A_ij^k / sum_ab A_ab^k) g_ij^k (0 for a
                     channel summing to 0)
  layercam           w_ij^k = ReLU(g_ij^k), one weight per position and channel

    maps = gradcam(clf, images, labels)   # f32[B,H,W], >= 0
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import one_gradient, register
from salijax.wrapping.conv_transposes import explicit_kernel_transposes


class LayerGradients(NamedTuple):
  """Activations, gradients and logits of a batch at the explained layer."""

  feats: jax.Array   # f32[B,h,w,k], A = clf.features(images)
  grads: jax.Array   # f32[B,h,w,k], d y_c / d A for each image's target class c
  logits: jax.Array  # f32[B,K], clf.head(A) (equal to clf.apply(images))


def layer_gradients(clf: Classifier, images: jax.Array, labels: jax.Array) -> LayerGradients:
  """A, dy_c/dA and the logits, f32[B,H,W,3], i32[B] (traceable): one vjp whose one-hot
  cotangent gives each image the gradient of its own target logit."""
  feats = clf.features(clf.variables, images)
  head = explicit_kernel_transposes(clf.head)  # faster in XLA:CPU loops
  logits, head_vjp = jax.vjp(lambda a: head(clf.variables, a, images), feats)
  (grads,) = head_vjp(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype))
  return LayerGradients(feats, grads, logits)


def class_activation_map(feats: jax.Array, weights: jax.Array, height: int,
                         width: int) -> jax.Array:
  """ReLU(sum_k w_k A^k) upsampled: f32[B,h,w,k] and weights f32[B,k] (one per channel)
  or f32[B,h,w,k] (one per activation) -> f32[B,height,width]."""
  if weights.ndim == 2:
    sums = jnp.einsum("bhwk,bk->bhw", feats, weights, precision=jax.lax.Precision.HIGHEST)
  else:
    sums = (weights * feats).sum(axis=-1)
  return upsample_bilinear(jax.nn.relu(sums), height, width)


def _gradcam_weights(feats: jax.Array, grads: jax.Array) -> jax.Array:
  del feats
  return grads.mean(axis=(1, 2))


def _gradcam_plus_plus_weights(feats: jax.Array, grads: jax.Array) -> jax.Array:
  squared = grads ** 2
  channel_sums = feats.sum(axis=(1, 2), keepdims=True)  # f32[B,1,1,k]
  denominator = 2.0 * squared + channel_sums * squared * grads
  nonzero = denominator != 0.0
  alpha = jnp.where(nonzero, squared / jnp.where(nonzero, denominator, 1.0), 0.0)
  return (alpha * jax.nn.relu(grads)).sum(axis=(1, 2))


def _xgradcam_weights(feats: jax.Array, grads: jax.Array) -> jax.Array:
  channel_sums = feats.sum(axis=(1, 2))
  weighted = (feats * grads).sum(axis=(1, 2))
  nonzero = channel_sums != 0.0
  return jnp.where(nonzero, weighted / jnp.where(nonzero, channel_sums, 1.0), 0.0)


def _layercam_weights(feats: jax.Array, grads: jax.Array) -> jax.Array:
  del feats
  return jax.nn.relu(grads)


# name -> (A f32[B,h,w,k], g f32[B,h,w,k]) -> weights f32[B,k] or f32[B,h,w,k].
WEIGHTS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "gradcam": _gradcam_weights,
    "gradcam_plus_plus": _gradcam_plus_plus_weights,
    "xgradcam": _xgradcam_weights,
    "layercam": _layercam_weights,
}


@functools.partial(jax.jit, static_argnames="weighting")
def gradient_cam(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                 weighting: str) -> jax.Array:
  """f32[B,H,W,3], i32[B] -> f32[B,H,W], with the weights `WEIGHTS[weighting]`."""
  feats, grads, _ = layer_gradients(clf, images, labels)
  weights = WEIGHTS[weighting](feats, grads)
  return class_activation_map(feats, weights, images.shape[1], images.shape[2])


def _register(name: str, title: str, summary: str) -> Callable:
  return register(name, title=title, summary=summary, cost=one_gradient,
                  needs_layer="features_and_head", jitted=gradient_cam)


@_register("gradcam", "Grad-CAM", "channels weighted by their mean gradient")
def gradcam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """Grad-CAM (Selvaraju et al., ICCV 2017) at the explained layer: f32[B,H,W] >= 0."""
  return gradient_cam(clf, images, labels, weighting="gradcam")


@_register("gradcam_plus_plus", "Grad-CAM++",
           "channels weighted by positive gradients, with Grad-CAM++'s alphas")
def gradcam_plus_plus(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """Grad-CAM++ (Chattopadhay et al., WACV 2018) at the explained layer: f32[B,H,W] >= 0."""
  return gradient_cam(clf, images, labels, weighting="gradcam_plus_plus")


@_register("xgradcam", "XGrad-CAM", "channels weighted by activation-weighted gradients")
def xgradcam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """XGrad-CAM (Fu et al., BMVC 2020) at the explained layer: f32[B,H,W] >= 0."""
  return gradient_cam(clf, images, labels, weighting="xgradcam")


@_register("layercam", "LayerCAM", "each activation weighted by its positive gradient")
def layercam(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """LayerCAM (Jiang et al., IEEE TIP 2021) at the explained layer: f32[B,H,W] >= 0."""
  return gradient_cam(clf, images, labels, weighting="layercam")
