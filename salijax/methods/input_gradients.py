"""The input-gradient maps: the vanilla gradient, guided backpropagation, Guided Grad-CAM.

With y_c the target class's logit (not its softmax probability) and `reduce`
the colour-channel reduction (`salijax.methods.map_ops`; "none" keeps the
raw f32[B,H,W,3]):

  gradient         L = reduce_c(d y_c / d I)   (Simonyan et al., ICLR 2014 workshop)
  guided_backprop  L = reduce_c(d^guided y_c / d I), through `clf.guided_apply`,
                   the network with every ReLU guided: a gradient passes back
                   only where the ReLU's input and the gradient are both
                   positive (Springenberg et al., ICLR 2015 workshop)
  guided_gradcam   L = reduce_c(G_c * C), guided backpropagation's raw gradient
                   G times the upsampled Grad-CAM map C >= 0, multiplied before
                   the reduction as in the paper (Selvaraju et al., ICCV 2017)

Each costs one forward and one backward pass (Guided Grad-CAM adds Grad-CAM's).

    maps = gradient(clf, images, labels)                  # f32[B,H,W]
    grads = gradient(clf, images, labels, reduce="none")  # f32[B,H,W,3]
"""

import functools
from collections.abc import Callable
from typing import Any

import jax

from salijax.classifier import Classifier
from salijax.methods.gradient_cams import gradient_cam
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import one_gradient, register
from salijax.wrapping.conv_transposes import explicit_kernel_transposes


def logit_gradients(apply: Callable[..., jax.Array], variables: Any, images: jax.Array,
                    labels: jax.Array) -> jax.Array:
  """d y_c / d I of `apply(variables, images)`: f32[B,H,W,3], i32[B] -> f32[B,H,W,3].

  Images are independent (inference mode), so one vjp with a one-hot cotangent
  per image gives each image the gradient of its own target logit. The
  convolutions' input gradients read explicitly transposed kernels
  (`explicit_kernel_transposes`: 2x faster inside XLA:CPU loops).
  """
  apply = explicit_kernel_transposes(apply)
  logits, apply_vjp = jax.vjp(lambda x: apply(variables, x), images)
  (grads,) = apply_vjp(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype))
  return grads


@register("gradient", title="gradient", summary="the gradient of the target logit",
          cost=one_gradient, options={"reduce": REDUCE_OPTION})
@functools.partial(jax.jit, static_argnames=("reduce",))
def gradient(clf: Classifier, images: jax.Array, labels: jax.Array, *,
             reduce: str) -> jax.Array:
  """Vanilla gradient maps f32[B,H,W] (f32[B,H,W,3] with reduce="none")."""
  return reduce_channels(logit_gradients(clf.apply, clf.variables, images, labels), reduce)


@register("guided_backprop", title="guided backpropagation",
          summary="the gradient through guided ReLUs", cost=one_gradient,
          options={"reduce": REDUCE_OPTION}, needs_guided=True)
@functools.partial(jax.jit, static_argnames=("reduce",))
def guided_backprop(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                    reduce: str) -> jax.Array:
  """Guided backpropagation maps f32[B,H,W] (f32[B,H,W,3] with reduce="none")."""
  return reduce_channels(
      logit_gradients(clf.guided_apply, clf.variables, images, labels), reduce)


@register("guided_gradcam", title="Guided Grad-CAM",
          summary="guided backpropagation times the Grad-CAM map", cost=one_gradient,
          options={"reduce": REDUCE_OPTION}, needs_layer="features_and_head",
          needs_guided=True)
@functools.partial(jax.jit, static_argnames=("reduce",))
def guided_gradcam(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                   reduce: str) -> jax.Array:
  """Guided Grad-CAM maps f32[B,H,W] (f32[B,H,W,3] with reduce="none")."""
  cams = gradient_cam(clf, images, labels, weighting="gradcam")  # f32[B,H,W], >= 0
  guided = logit_gradients(clf.guided_apply, clf.variables, images, labels)
  return reduce_channels(guided * cams[..., None], reduce)
