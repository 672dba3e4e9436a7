"""Input x gradient (Shrikumar et al., 2016; Captum's `InputXGradient`).

With y_c the target class's logit and I the image (pixel space, [0, 1]):

  A = I * d y_c / d I                 f32[B,H,W,3]
  L = reduce_c(A)                     (`salijax.methods.map_ops`)

`reduce="max_abs"` by default like the other gradient maps; "sum" keeps the
signed total (on a piecewise-linear network without biases it is y_c
itself), "none" returns A. One forward and one backward pass.

    maps = input_x_gradient(clf, images, labels)                  # f32[B,H,W]
    attributions = input_x_gradient(clf, images, labels, reduce="none")
"""

import functools

import jax

from salijax.classifier import Classifier
from salijax.methods.input_gradients import logit_gradients
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import one_gradient, register


@register("input_x_gradient", title="input x gradient",
          summary="the image times the gradient of the target logit", cost=one_gradient,
          options={"reduce": REDUCE_OPTION})
@functools.partial(jax.jit, static_argnames=("reduce",))
def input_x_gradient(clf: Classifier, images: jax.Array, labels: jax.Array, *,
                     reduce: str) -> jax.Array:
  """Input x gradient maps f32[B,H,W] (attributions f32[B,H,W,3] with reduce="none")."""
  grads = logit_gradients(clf.apply, clf.variables, images, labels)
  return reduce_channels(images * grads, reduce)
