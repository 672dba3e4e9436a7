"""The vanilla gradient saliency map (Simonyan, Vedaldi, Zisserman, ICLR 2014 workshop).

With y_c the target class's logit (not its softmax probability):

  L = reduce_c( d y_c / d I )      f32[B,H,W,3] -> f32[B,H,W]

reduce = "max_abs" (default): max over colour channels of the absolute value,
Simonyan et al.'s map; see `salijax.methods.channel_reduction` for the others;
"none" returns the raw gradient f32[B,H,W,3].

Cost: one forward and one backward pass. `logit_gradients` is the computation
the other gradient methods share (guided_backprop, integrated_gradients,
smoothgrad).

    maps = gradient(clf, images, labels)                  # f32[B,H,W]
    grads = gradient(clf, images, labels, reduce="none")  # f32[B,H,W,3]
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.channel_reduction import check_reduce, reduce_channels
from salijax.methods.registry import register


def logit_gradients(apply: Callable[..., jax.Array], variables: Any, images: jax.Array,
                    labels: jax.Array) -> jax.Array:
  """d y_c / d I for each image: f32[B,H,W,3], i32[B] -> f32[B,H,W,3].

  Args:
    apply: (variables, images f32[B,H,W,3]) -> logits f32[B,K], each image's
      logits depending on that image only (inference mode).
    variables: its variables.
    images: f32[B,H,W,3].
    labels: i32[B], the logit differentiated for each image.
  """
  logits, apply_vjp = jax.vjp(lambda x: apply(variables, x), images)
  # Images are independent, so one vjp with a one-hot cotangent per image gives
  # each image's gradient of its own target logit.
  (grads,) = apply_vjp(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype))
  return grads


@functools.partial(jax.jit, static_argnames=("reduce",))
def _gradient(clf: Classifier, images: jax.Array, labels: jax.Array, *,
              reduce: str) -> jax.Array:
  """The jitted gradient map: f32[B,H,W,3], i32[B] -> f32[B,H,W] (f32[B,H,W,3] if "none")."""
  return reduce_channels(logit_gradients(clf.apply, clf.variables, images, labels), reduce)


@register("gradient")
def gradient(clf: Classifier, images: Any, labels: Any = None, *, key: jax.Array | None = None,
             reduce: str = "max_abs") -> jax.Array:
  """Vanilla gradient maps (see the module doc).

  Args:
    clf: the Classifier; only `clf.apply` is used.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for each image; None = the predicted class.
    key: ignored (deterministic).
    reduce: how the three colour channels become one value
      (`salijax.methods.channel_reduction.REDUCTIONS`).

  Returns:
    f32[B,H,W] (f32[B,H,W,3] with reduce="none").

  Raises:
    ValueError: bad images, labels or reduce.
    TypeError: wrong types of clf, images or labels.
  """
  labels = validation.labels_or_predicted(clf, images, labels)
  del key  # deterministic
  validation.check_classifier_inputs(clf, images, labels)
  check_reduce(reduce)
  return _gradient(clf, jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32),
                   reduce=reduce)
