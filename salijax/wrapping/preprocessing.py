"""`Preprocess`: salijax's images f32[B,H,W,3] in [0, 1] -> what a wrapped model takes.

salijax perturbs and differentiates images in pixel space; a wrapped model's
own preprocessing runs inside the Classifier, so every method and metric goes
through it. Any function `images -> model input` serves; `Preprocess` covers
the usual ones:

    Preprocess(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))    # ImageNet
    Preprocess(channels_first=True)                                       # NCHW models
    Preprocess(size=(224, 224))                                           # bilinear resize

in the order resize, normalise, transpose.
"""

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """Resize, normalise and transpose images f32[B,H,W,3] (see the module doc)."""

  mean: tuple[float, ...] | None = None
  std: tuple[float, ...] | None = None
  channels_first: bool = False
  size: tuple[int, int] | None = None

  def __post_init__(self):
    for name in ("mean", "std"):
      value = getattr(self, name)
      if value is not None:
        if len(value) != 3:
          raise ValueError(f"{name}: expected 3 values (R, G, B), got {value!r}")
        object.__setattr__(self, name, tuple(float(v) for v in value))
    if self.std is not None and min(self.std) <= 0:
      raise ValueError(f"std: expected positive values, got {self.std!r}")
    if self.size is not None:
      if len(self.size) != 2 or min(self.size) < 1:
        raise ValueError(f"size: expected (height, width) >= 1, got {self.size!r}")
      object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))

  def __call__(self, images: jax.Array) -> jax.Array:
    """f32[B,H,W,3] -> f32[B,h,w,3] (f32[B,3,h,w] with channels_first)."""
    if self.size is not None:
      images = jax.image.resize(images, (images.shape[0], *self.size, images.shape[-1]),
                                "bilinear")
    if self.mean is not None:
      images = images - jnp.asarray(self.mean, images.dtype)
    if self.std is not None:
      images = images / jnp.asarray(self.std, images.dtype)
    if self.channels_first:
      images = jnp.moveaxis(images, -1, 1)
    return images
