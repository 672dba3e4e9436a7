"""Host-side checks of user input, run before anything is traced or compiled.

Values are checked only when they are concrete: inside a caller's `jax.jit`
the inputs are tracers, and only shapes and dtypes can be checked.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier


def is_concrete(x: Any) -> bool:
  """Whether `x` has values on the host side (not a tracer)."""
  return not isinstance(x, jax.core.Tracer)


def check_images(images: Any, name: str = "images") -> None:
  """f32[B,H,W,3] with finite values in [0, 1], else ValueError/TypeError."""
  shape = getattr(images, "shape", None)
  dtype = getattr(images, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"{name} must be an array f32[B,H,W,3], got {type(images).__name__}")
  if len(shape) != 4 or shape[-1] != 3:
    raise ValueError(f"{name} must have shape [B, H, W, 3], got {tuple(shape)}")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name} must be floating point in [0, 1] (pixel space), got dtype {dtype}")
  if shape[0] == 0:
    raise ValueError(f"{name} must hold at least one image, got batch size 0")
  if is_concrete(images):
    values = np.asarray(images)
    if not np.isfinite(values).all():
      raise ValueError(f"{name} has {int((~np.isfinite(values)).sum())} non-finite values")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
      raise ValueError(
          f"{name} must be in pixel space [0, 1], got values in [{low:.4g}, {high:.4g}]"
          " (normalisation belongs inside the classifier)")


def num_classes(clf: Classifier, images: Any) -> int:
  """K of the classifier's logits f32[B,K] for these images (no computation)."""
  out = jax.eval_shape(clf.apply, clf.variables,
                       jax.ShapeDtypeStruct(images.shape, images.dtype))
  if len(out.shape) != 2:
    raise ValueError(f"clf.apply must return logits [B, K], got shape {out.shape}")
  return int(out.shape[1])


def check_labels(labels: Any, batch_size: int, classes: int, name: str = "labels") -> None:
  """i32[B] with every value in [0, classes), else ValueError/TypeError."""
  shape = getattr(labels, "shape", None)
  dtype = getattr(labels, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"{name} must be an integer array [B], got {type(labels).__name__}")
  if tuple(shape) != (batch_size,):
    raise ValueError(f"{name} must have shape [{batch_size}] (one per image), got {tuple(shape)}")
  if not jnp.issubdtype(dtype, jnp.integer):
    raise TypeError(f"{name} must be integer class indices, got dtype {dtype}")
  if is_concrete(labels):
    values = np.asarray(labels)
    bad = values[(values < 0) | (values >= classes)]
    if bad.size:
      raise ValueError(
          f"{name} must be class indices in [0, {classes}), got {bad[:5].tolist()}")


def check_classifier(clf: Classifier, images: Any) -> int:
  """Checks a Classifier and the f32[B,H,W,3] images it is given; returns K."""
  if not isinstance(clf, Classifier):
    raise TypeError(f"clf must be a salijax.Classifier, got {type(clf).__name__}")
  check_images(images)
  return num_classes(clf, images)


def check_classifier_inputs(clf: Classifier, images: Any, labels: Any) -> int:
  """Checks (clf, images, labels) as every method and metric takes them; returns K."""
  classes = check_classifier(clf, images)
  check_labels(labels, images.shape[0], classes)
  return classes


@jax.jit
def predicted_labels(clf: Classifier, images: jax.Array) -> jax.Array:
  """f32[B,H,W,3] -> i32[B], the argmax of the logits."""
  return jnp.argmax(clf.logits(images), axis=-1).astype(jnp.int32)


def checked_labels(clf: Classifier, images: Any, labels: Any) -> Any:
  """Checks clf and the images f32[B,H,W,3] once; returns `labels` i32[B], checked, or
  when None the predicted classes (argmax logit). Every method and metric starts here."""
  classes = check_classifier(clf, images)
  if labels is None:
    return predicted_labels(clf, jnp.asarray(images, jnp.float32))
  check_labels(labels, images.shape[0], classes)
  return labels


def labels_or_predicted(clf: Classifier, images: Any, labels: Any) -> Any:
  """`labels` unchanged, or when None the predicted classes i32[B] (argmax logit).

  With None, clf and the images f32[B,H,W,3] are checked (`check_classifier`);
  the images may be tracers (inside a caller's `jax.jit`). Given labels are
  returned unchecked: the caller checks them.
  """
  if labels is not None:
    return labels
  check_classifier(clf, images)
  return predicted_labels(clf, jnp.asarray(images, jnp.float32))


def check_positive_int(value: Any, name: str) -> None:
  """A Python int >= 1, else ValueError naming the argument."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_probability(value: Any, name: str, *, open_low: bool = True) -> None:
  """A float in (0, 1] ([0, 1] with open_low=False), else ValueError."""
  ok = isinstance(value, (int, float, np.floating)) and (
      (0.0 < value <= 1.0) if open_low else (0.0 <= value <= 1.0))
  if not ok:
    interval = "(0, 1]" if open_low else "[0, 1]"
    raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def check_key(key: Any, name: str = "key") -> None:
  """A typed PRNG key (`jax.random.key`) or a legacy uint32[2] key, else TypeError."""
  if key is None:
    raise TypeError(f"{name} is required for this stochastic method (jax.random.key(seed))")
  dtype = getattr(key, "dtype", None)
  typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
  legacy = dtype == jnp.uint32 and getattr(key, "shape", None) == (2,)
  if not (typed and key.shape == ()) and not legacy:
    raise TypeError(f"{name} must be a single PRNG key from jax.random.key(seed), got {key!r}")


def check_map_batch(maps: Any, name: str = "maps") -> tuple[int, int, int]:
  """Maps f32[B,H,W] with no empty axis, finite where concrete; returns (B, H, W)."""
  shape = getattr(maps, "shape", None)
  dtype = getattr(maps, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"{name} must be an array f32[B,H,W], got {type(maps).__name__}")
  if len(shape) != 3 or 0 in shape:
    raise ValueError(f"{name} must have shape [B, H, W] with no empty axis, got {tuple(shape)}")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name} must be floating point, got dtype {dtype}")
  if is_concrete(maps):
    finite = np.isfinite(np.asarray(maps)).reshape(shape[0], -1).all(axis=1)
    if not finite.all():
      raise ValueError(f"{name} must be finite, got non-finite values in maps"
                       f" {np.flatnonzero(~finite)[:5].tolist()}")
  return tuple(int(n) for n in shape)


def check_maps(maps: Any, images: Any, *, allow_constant: bool = True,
               name: str = "maps") -> None:
  """Maps f32[B,H,W] matching images f32[B,H,W,3], finite; else ValueError/TypeError.

  Values are checked only when concrete (not under a caller's `jax.jit`).

  Args:
    maps: the saliency maps.
    images: the images they explain.
    allow_constant: whether a map with a single value everywhere is accepted
      (when False, a metric needs a ranking and a constant map has none).
    name: the argument's name in error messages.
  """
  shape = getattr(maps, "shape", None)
  if shape is not None and tuple(shape) != tuple(images.shape[:3]):
    raise ValueError(f"{name} must have shape [B, H, W] = {tuple(images.shape[:3])} like the"
                     f" images {tuple(images.shape)}, got {tuple(shape)}")
  check_map_batch(maps, name)
  if not is_concrete(maps):
    return
  values = np.asarray(maps).reshape(shape[0], -1)
  constant = values.min(axis=1) == values.max(axis=1)
  if not allow_constant and constant.any():
    raise ValueError(
        f"{name} must rank the pixels, got constant maps (every pixel equal) at batch indices"
        f" {np.flatnonzero(constant)[:5].tolist()}; pass allow_constant_maps=True to rank"
        " them in raster order (the tie rule)")
