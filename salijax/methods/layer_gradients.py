"""Activations, target-logit gradients and class activation maps at the explained layer.

The CAM family works on the activations A = clf.features(images) f32[B,h,w,k]
of a Classifier's explained layer:

- `layer_gradients`: A and d y_c / d A, the gradient of each image's target
  logit, with one forward to the layer and one forward and one backward (vjp)
  through the head (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM);
- `class_activation_map`: ReLU(sum_k w_k A^k) for channel weights w f32[B,k],
  upsampled bilinearly to the image size (every CAM with channel weights);
- `check_explained_layer`: the host-side check that a Classifier has the layer
  (`check_has_layer` and `feature_shape`, its two halves);
- `run_checked`: a gradient CAM's public entry: the host-side checks, then its
  jitted map function.

    feats, grads, logits = layer_gradients(clf, images, labels)  # inside a jitted method
    maps = class_activation_map(feats, grads.mean(axis=(1, 2)), height, width)  # Grad-CAM
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.upsampling import upsample_bilinear


class LayerGradients(NamedTuple):
  """Activations, gradients and logits of a batch at the explained layer."""

  feats: jax.Array   # f32[B,h,w,k], A = clf.features(images)
  grads: jax.Array   # f32[B,h,w,k], d y_c / d A for each image's target class c
  logits: jax.Array  # f32[B,K], clf.head(A) (equal to clf.apply(images))


def layer_gradients(clf: Classifier, images: jax.Array, labels: jax.Array) -> LayerGradients:
  """A, dy_c/dA and the logits for f32[B,H,W,3] images and i32[B] labels (traceable).

  Images are independent, so one vjp with a one-hot cotangent per image gives
  each image's gradient of its own target logit.
  """
  feats = clf.features(clf.variables, images)
  logits, head_vjp = jax.vjp(lambda a: clf.head(clf.variables, a, images), feats)
  (grads,) = head_vjp(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype))
  return LayerGradients(feats, grads, logits)


def class_activation_map(feats: jax.Array, weights: jax.Array, height: int,
                         width: int) -> jax.Array:
  """ReLU(sum_k w_k A^k) upsampled: f32[B,h,w,k], f32[B,k] -> f32[B,height,width]."""
  cams = jax.nn.relu(jnp.einsum("bhwk,bk->bhw", feats, weights,
                                precision=jax.lax.Precision.HIGHEST))
  return upsample_bilinear(cams, height, width)


def check_explained_layer(clf: Classifier, images: Any, method: str, *,
                          needs_head: bool = True) -> int:
  """Checks that `clf` has `features` (and `head`) giving f32[B,h,w,k]; returns k.

  Call after `salijax.validation.check_classifier_inputs` (which checks `clf`'s
  type and the images).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3], the images (only their shape is used).
    method: the method's name, for the error message.
    needs_head: whether the method also calls `clf.head`.

  Raises:
    ValueError: `clf` has no explained layer, or its features are not [B,h,w,k].
  """
  check_has_layer(clf, method, needs_head=needs_head)
  return feature_shape(clf, images)[-1]


def check_has_layer(clf: Classifier, method: str, *, needs_head: bool = True) -> None:
  """ValueError naming `clf` unless it has `features` (and, with `needs_head`, `head`)."""
  if clf.features is None or (needs_head and clf.head is None):
    needed = "`features` and `head`" if needs_head else "`features`"
    raise ValueError(
        f"clf: {method} needs a Classifier with {needed} (an explained layer, e.g."
        " salijax.models.classifier(module, variables, layer='layer4')), "
        f"got features={clf.features!r}, head={clf.head!r}")


def feature_shape(clf: Classifier, images: Any) -> tuple[int, int, int]:
  """(h, w, k) of clf.features(images) f32[B,h,w,k] (no computation); ValueError if not 4-d."""
  shape = jax.eval_shape(clf.features, clf.variables,
                         jax.ShapeDtypeStruct(images.shape, jnp.float32)).shape
  if len(shape) != 4 or shape[0] != images.shape[0]:
    raise ValueError(f"clf.features must return f32[B,h,w,k] for images {tuple(images.shape)},"
                     f" got shape {tuple(shape)}")
  return tuple(int(n) for n in shape[1:])


def run_checked(maps_fn: Callable[[Classifier, jax.Array, jax.Array], jax.Array],
                clf: Classifier, images: Any, labels: Any, method: str) -> jax.Array:
  """`maps_fn(clf, images f32[B,H,W,3], labels i32[B])` after the host-side checks.

  Raises:
    ValueError: `clf` has no `features`/`head`, or bad images/labels.
    TypeError: wrong types of clf, images or labels.
  """
  validation.check_classifier_inputs(clf, images, labels)
  check_explained_layer(clf, images, method)
  return maps_fn(clf, jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32))
