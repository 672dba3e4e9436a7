"""Baselines: what removed or replaced pixels become in the perturbation metrics.

A baseline is given as one of

  a name  "black" (0), "white" (1); "min", "max", "mean": the image's own minimum,
          maximum or mean over all its values (Quantus's "black", "white" and
          "mean"); "blur": the image blurred (11 x 11 Gaussian taps, sigma 5 px,
          mirrored borders: `salijax.metrics.substrates`); "uniform": uniform
          noise in [0, 1), one value per pixel and channel, drawn from a key
          (image b from fold_in(key, b): `per_image_draws`);
  a value in [0, 1] (every channel) or 3 channel values in [0, 1];
  an image batch f32[B,H,W,3] in [0, 1] (where a metric takes arrays).

`check_baseline` turns it into a spec: a name or a 3-tuple (hashable: a static
argument of a jitted metric) or an f32 array (traced); `baseline_images` makes
the images of a spec.

    spec = check_baseline("min", images)                       # "min"
    spec = check_baseline(0.5, images)                         # (0.5, 0.5, 0.5)
    base = baseline_images(images, spec)                       # f32[B,H,W,3]
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.metrics import substrates
from salijax.metrics.per_image_draws import per_image

NAMES = ("black", "white", "min", "max", "mean", "blur", "uniform")
DETERMINISTIC = NAMES[:-1]  # the names of metrics without a key
BLUR_SIZE, BLUR_SIGMA = 11, 5.0


def split(spec: Any) -> tuple[Any, jax.Array | None]:
  """(static, array): a spec of `check_baseline` as a jitted metric's static argument (a name
  or 3-tuple; None for an image batch) and traced argument (the image batch, or None)."""
  return (spec, None) if isinstance(spec, (str, tuple)) else (None, spec)


def check_baseline(baseline: Any, images: Any, *, key: Any = None, names: tuple[str, ...] = NAMES,
                   arrays: bool = True, name: str = "baseline") -> Any:
  """The spec of `baseline` (module doc): ValueError/TypeError naming `name` otherwise.

  Args:
    baseline: a name of `names`, a value or 3 channel values in [0, 1], or (with `arrays`) an
      image batch like `images`.
    images: the images f32[B,H,W,3] the baseline replaces.
    key: the PRNG key "uniform" draws from (it is required then).
    names: the names the metric takes (a subset of NAMES, or more that the metric handles).
    arrays: whether an image batch is accepted.
    name: the argument's name in errors.
  """
  kinds = f"one of {list(names)}, a value in [0, 1], 3 channel values in [0, 1]" + (
      " or an image batch f32[B,H,W,3] in [0, 1]" if arrays else "")
  if isinstance(baseline, str):
    if baseline not in names:
      raise ValueError(f"{name} must be {kinds}, got {baseline!r}")
    if baseline == "uniform":  # its noise is drawn from the key
      validation.check_key(key, "key")
    return baseline
  if isinstance(baseline, bool):
    raise ValueError(f"{name} must be {kinds}, got {baseline!r}")
  if np.ndim(baseline) <= 1:
    values = np.asarray(baseline)
    if values.dtype.kind not in "fiu":
      raise TypeError(f"{name} must be a name, a value, 3 channel values"
                      f"{' or an image batch' if arrays else ''}, got {type(baseline).__name__}")
    values = np.repeat(values, 3) if values.ndim == 0 else values.astype(np.float64)
    if values.shape != (3,) or not ((values >= 0) & (values <= 1)).all():
      raise ValueError(f"{name} must be {kinds}, got {baseline!r}")
    return tuple(float(v) for v in values)
  if not arrays:
    raise ValueError(f"{name} must be {kinds}, got an array of shape {np.shape(baseline)}")
  if tuple(np.shape(baseline)) != tuple(np.shape(images)):
    raise ValueError(f"{name} must have the images' shape {tuple(np.shape(images))}, got"
                     f" {tuple(np.shape(baseline))}")
  validation.check_images(baseline, name)
  return jnp.asarray(baseline, jnp.float32)


def baseline_images(images: jax.Array, spec: Any, key: jax.Array | None = None) -> jax.Array:
  """f32[B,H,W,3] images -> f32[B,H,W,3], the baseline of each (a spec of `check_baseline`)."""
  if not isinstance(spec, str):  # 3 channel values or an image batch
    return jnp.broadcast_to(jnp.asarray(spec, jnp.float32), images.shape)
  if spec == "blur":
    return substrates.substrate(images, "blur", space="pixel", mean=(0.0, 0.0, 0.0),
                                blur_size=BLUR_SIZE, blur_sigma=BLUR_SIGMA,
                                blur_padding="reflect")
  if spec == "uniform":
    return per_image(key, images.shape[0],
                     lambda k: jax.random.uniform(k, images.shape[1:], jnp.float32))
  value_of = {"black": lambda x: jnp.zeros(x.shape[:1]), "white": lambda x: jnp.ones(x.shape[:1]),
              "min": lambda x: x.min(axis=(1, 2, 3)), "max": lambda x: x.max(axis=(1, 2, 3)),
              "mean": lambda x: x.mean(axis=(1, 2, 3))}[spec]
  values = value_of(images).astype(jnp.float32)
  return jnp.broadcast_to(values[:, None, None, None], images.shape)
