"""Guided Grad-CAM (Selvaraju et al., ICCV 2017).

The elementwise product of guided backpropagation's raw gradient G f32[B,H,W,3]
(`salijax.methods.guided_backprop`) and the Grad-CAM map C f32[B,H,W]
(`salijax.methods.gradcam`, already upsampled bilinearly to H x W), per pixel
and channel, THEN reduced over the colour channels:

  L = reduce_c( G_c * C )          (reduce="max_abs" by default)

The product comes first, as in the paper (which multiplies the pixel-space
guided backpropagation by the upsampled Grad-CAM map and visualises the
result). Because C >= 0 is one value per pixel, every reduction of
`salijax.methods.channel_reduction` gives the same map either way round;
reduce="none" returns the raw product f32[B,H,W,3].

It needs a Classifier with `guided_apply` and an explained layer (`features`,
`head`): `salijax.models.classifier(module, variables, layer=...)`.
Cost: one forward and one backward for guided backpropagation, one forward
to the layer and one forward and backward through the head for Grad-CAM.

    maps = guided_gradcam(models.classifier(module, variables), images, labels)
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.channel_reduction import check_reduce, reduce_channels
from salijax.methods.gradcam import gradcam
from salijax.methods.guided_backprop import check_guided_apply, guided_gradients
from salijax.methods.layer_gradients import check_explained_layer
from salijax.methods.registry import register


@functools.partial(jax.jit, static_argnames=("reduce",))
def _guided_gradcam(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                    reduce: str) -> jax.Array:
  """The jitted Guided Grad-CAM: f32[B,H,W,3], i32[B] -> f32[B,H,W] (see the module doc)."""
  cams = gradcam(clf, images, labels)  # f32[B,H,W], >= 0
  return reduce_channels(guided_gradients(clf, images, labels) * cams[..., None], reduce)


@register("guided_gradcam")
def guided_gradcam(clf: Classifier, images: Any, labels: Any = None, *,
                   key: jax.Array | None = None, reduce: str = "max_abs") -> jax.Array:
  """Guided Grad-CAM maps (see the module doc).

  Args:
    clf: a Classifier with `guided_apply`, `features` and `head`
      (`salijax.models.classifier` fills them).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for each image; None = the predicted class.
    key: ignored (deterministic).
    reduce: how the three colour channels of the product become one value
      (`salijax.methods.channel_reduction.REDUCTIONS`).

  Returns:
    f32[B,H,W] (f32[B,H,W,3] with reduce="none").

  Raises:
    ValueError: `clf` has no `guided_apply`, `features` or `head`; bad images,
      labels or reduce.
    TypeError: wrong types of clf, images or labels.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  validation.check_classifier_inputs(clf, images, labels)
  check_guided_apply(clf, "Guided Grad-CAM")
  check_explained_layer(clf, images, "Guided Grad-CAM")
  check_reduce(reduce)
  return _guided_gradcam(clf, jnp.asarray(images, jnp.float32),
                         jnp.asarray(labels, jnp.int32), reduce=reduce)
