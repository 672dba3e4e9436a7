"""Guided backpropagation (Springenberg et al., ICLR 2015 workshop).

The gradient of the target logit y_c with respect to the image, through the
same network with every ReLU guided (`salijax.guided_relu`: a ReLU
passes a gradient back only where its forward input was positive and the
gradient itself is positive), reduced over colour channels like the vanilla
gradient (`reduce="max_abs"` by default; "none" gives the raw f32[B,H,W,3]):

  L = reduce_c( d^guided y_c / d I )

It needs `clf.guided_apply`, which `salijax.wrap` (and so
`salijax.models.classifier`) fills for any model with ReLUs
(`salijax.wrapping.guide_relus`). A hand-built Classifier can provide one:
`guided_apply=guide_relus(apply)`.

Cost: one forward and one backward pass.

    maps = guided_backprop(models.classifier(module, variables), images, labels)
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.channel_reduction import check_reduce, reduce_channels
from salijax.methods.gradient import logit_gradients
from salijax.methods.registry import register


def check_guided_apply(clf: Classifier, method: str) -> None:
  """ValueError naming `clf` when it has no `guided_apply` (and how to get one)."""
  if clf.guided_apply is None:
    raise ValueError(
        f"clf: {method} needs a Classifier with `guided_apply` (its logits with every ReLU"
        " guided): build it with salijax.wrap(model, ...), or give"
        " Classifier(..., guided_apply=salijax.wrapping.guide_relus(apply)); got"
        " guided_apply=None")


def guided_gradients(clf: Classifier, images: jax.Array, labels: jax.Array) -> jax.Array:
  """Guided backpropagation's raw gradients, f32[B,H,W,3], i32[B] -> f32[B,H,W,3].

  Traceable, no input checks (the public `guided_backprop` checks).
  """
  return logit_gradients(clf.guided_apply, clf.variables, images, labels)


@functools.partial(jax.jit, static_argnames=("reduce",))
def _guided_backprop(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                     reduce: str) -> jax.Array:
  """The jitted guided backpropagation map: f32[B,H,W,3], i32[B] -> f32[B,H,W]."""
  return reduce_channels(guided_gradients(clf, images, labels), reduce)


@register("guided_backprop")
def guided_backprop(clf: Classifier, images: Any, labels: Any = None, *,
                    key: jax.Array | None = None, reduce: str = "max_abs") -> jax.Array:
  """Guided backpropagation maps (see the module doc).

  Args:
    clf: a Classifier with `guided_apply` (`salijax.models.classifier` fills it).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for each image; None = the predicted class.
    key: ignored (deterministic).
    reduce: how the three colour channels become one value
      (`salijax.methods.channel_reduction.REDUCTIONS`).

  Returns:
    f32[B,H,W] (f32[B,H,W,3] with reduce="none").

  Raises:
    ValueError: `clf` has no `guided_apply`, or bad images, labels or reduce.
    TypeError: wrong types of clf, images or labels.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  validation.check_classifier_inputs(clf, images, labels)
  check_guided_apply(clf, "guided backpropagation")
  check_reduce(reduce)
  return _guided_backprop(clf, jnp.asarray(images, jnp.float32),
                          jnp.asarray(labels, jnp.int32), reduce=reduce)
