"""Input invariance (Kindermans, Hooker, Adebayo, Alber, Schutt, Dahne, Erhan, Kim, "The
(Un)reliability of Saliency Methods", 2017/2019, arXiv:1711.00867).

A constant shift m of every input value, compensated inside the model, leaves
the model's function unchanged: f2(I + m) = f(I). A method is input invariant
when its explanation does not change either:

  difference = max_{h,w} |L_f(I)[h,w] - L_f2(I + m)[h,w]|
  invariant  = every pixel within atol + rtol |L_f2(I + m)|   (numpy's isclose)

The shifted model f2 (`shifted_clf`): by default `shifted_classifier(clf, m)`,
clf applied to (x - m), which is the paper's model (its first layer's bias
b - W m absorbs the shift) wherever that layer's window lies inside the image,
and exact at the border too. Any Classifier can be given instead (e.g. one
with a compensating bias); `logit_difference` = max_k |f2_k(I + m) - f_k(I)|
shows how well it compensates. The shifted images I + m leave [0, 1] (m = -1:
[-1, 0], the paper's MNIST shift): the method runs traced, where the [0, 1]
check is skipped, so it must be traceable.

Defaults: m = -1, atol = 1e-4, rtol = 1e-5 (Quantus's). The gradient is
invariant; gradient x input and integrated gradients with a black baseline
are not (the paper's result).

Quantus 0.6.0's InputInvariance shifts the torch model's first module: with
fw = its output for an input filled with m (zero padding at the border), each
output channel's bias becomes 2 b - min(fw), the smallest value of the
channel, which is b - W m in the interior; at the border, where the padding
is not shifted, the compensation is inexact. Given that model as
`shifted_clf` (and `normalise=False`), `invariant` equals its score.

    result = input_invariance(methods.gradient, clf, images, labels, key=key)
    result.invariant, result.difference    # bool[B], f32[B]
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics.completeness import check_non_negative
from salijax.metrics.random_logit import resolve_method


class InputInvariance(NamedTuple):
  """Per-image result of `input_invariance` (see the module doc)."""

  difference: jax.Array  # f32[B], max |L_f(I) - L_f2(I + m)| over the pixels
  invariant: jax.Array  # bool[B], every pixel within atol + rtol |L_f2(I + m)|
  logit_difference: jax.Array  # f32[B], max_k |f2_k(I + m) - f_k(I)|


def shifted_classifier(clf: Classifier, shift: float) -> Classifier:
  """The model f2 that sees x - shift: f2(I + shift) = f(I) (every function of clf shifted)."""
  shift = float(shift)

  def moved(function: Callable[..., Any] | None) -> Callable[..., Any] | None:
    if function is None:
      return None
    return lambda v, x: function(v, x - shift)

  head = None if clf.head is None else (lambda v, f, x: clf.head(v, f, x - shift))
  return Classifier(variables=clf.variables, apply=moved(clf.apply),
                    features=moved(clf.features), head=head,
                    guided_apply=moved(clf.guided_apply))


@takes_compute_dtype
def input_invariance(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                     key: jax.Array, shift: float = -1.0, shifted_clf: Classifier | None = None,
                     atol: float = 1e-4, rtol: float = 1e-5,
                     method_options: Mapping[str, Any] | None = None) -> InputInvariance:
  """Whether the method's maps survive a compensated input shift (see the module doc).

  Args:
    method: a saliency method `(clf, images, labels, *, key, **options) ->
      f32[B,H,W]` or its registered name; traced on the shifted images.
    clf: the Classifier f.
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained (for both models); None = f's prediction.
    key: a PRNG key, the method's for both maps.
    shift: m, added to every input value (finite).
    shifted_clf: f2, taking I + m; None = `shifted_classifier(clf, shift)`.
    atol, rtol: the tolerance of `invariant` (>= 0).
    method_options: keyword options of the method.

  Returns:
    InputInvariance of per-image arrays.

  Raises:
    ValueError: bad images, labels, shift or tolerances; maps of the wrong shape.
    TypeError: a bad method, clf, shifted_clf or key.
  """
  method = resolve_method(method)
  validation.check_key(key)
  labels = jnp.asarray(validation.checked_labels(clf, images, labels), jnp.int32)
  number = isinstance(shift, (int, float, np.integer, np.floating)) and not isinstance(shift,
                                                                                      bool)
  if not number or not np.isfinite(shift):
    raise ValueError(f"shift must be a finite number, got {shift!r}")
  if shifted_clf is None:
    shifted_clf = shifted_classifier(clf, shift)
  elif not isinstance(shifted_clf, Classifier):
    raise TypeError(f"shifted_clf must be a salijax.Classifier, got"
                    f" {type(shifted_clf).__name__}")
  atol, rtol = check_non_negative(atol, "atol"), check_non_negative(rtol, "rtol")
  options = dict(method_options or {})
  images = jnp.asarray(images, jnp.float32)
  moved = images + jnp.float32(shift)
  validation.num_classes(shifted_clf, moved)  # f2 takes the images' shape and gives logits

  @jax.jit
  def compare(model: Classifier, shifted_model: Classifier, x: jax.Array, x_moved: jax.Array,
              labels: jax.Array, key: jax.Array) -> tuple[jax.Array, ...]:
    original = method(model, x, labels, key=key, **options)
    shifted = method(shifted_model, x_moved, labels, key=key, **options)
    logits = jnp.abs(shifted_model.logits(x_moved) - model.logits(x)).max(axis=1)
    return original, shifted, logits

  original, shifted, logits = compare(clf, shifted_clf, images, moved, labels, key)
  validation.check_maps(original, images, name="maps returned by method")
  validation.check_maps(shifted, images, name="maps returned by method for the shifted model")
  original = jnp.asarray(original, jnp.float32).reshape(images.shape[0], -1)
  shifted = jnp.asarray(shifted, jnp.float32).reshape(images.shape[0], -1)
  gap = jnp.abs(original - shifted)
  return InputInvariance(difference=gap.max(axis=1),
                         invariant=(gap <= atol + rtol * jnp.abs(shifted)).all(axis=1),
                         logit_difference=logits.astype(jnp.float32))
