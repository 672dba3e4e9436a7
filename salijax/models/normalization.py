"""Input normalisation and the BatchNorm layer of every salijax model.

Images enter the models in pixel space (f32[B,H,W,3] in [0, 1]) and are
normalised inside, `(x - mean) / std` per channel, so every perturbation is
defined in one space.

BatchNorm is torch's: epsilon 1e-5 and running statistics updated as
`running = 0.9 * running + 0.1 * batch` (torch's momentum 0.1 is Flax's 0.9),
unless a model sets others (MobileNetV3: epsilon 1e-3, torch momentum 0.01).
One difference in training remains: torch updates `running_var` with the
unbiased batch variance, Flax with the biased one (a factor n / (n - 1), n =
B * H * W values per channel). Inference is identical.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from salijax.models import naming

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(images: jax.Array, min_size: int = 1) -> None:
  """Raises if `images` is not a float [B,H,W,3] batch with H, W >= min_size."""
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise TypeError(f"images: expected a float array in [0, 1], got dtype {images.dtype}")
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"images: expected shape [B, H, W, 3], got {tuple(images.shape)}")
  if min(images.shape[1:3]) < min_size:
    raise ValueError(
        f"images: expected height and width >= {min_size}, got {tuple(images.shape)}")


def normalize_images(images: jax.Array, mean: Sequence[float],
                     std: Sequence[float]) -> jax.Array:
  """f32[B,H,W,3] pixels -> f32[B,H,W,3] `(images - mean) / std` per channel."""
  return (images - jnp.asarray(mean, images.dtype)) / jnp.asarray(std, images.dtype)


def uses_batch_statistics(path: str, train: bool,
                          bn_trainable: Sequence[str] | None) -> bool:
  """Whether the BatchNorm at torchvision name `path` normalises with batch statistics.

  Args:
    path: the layer's torchvision module name, e.g. "layer4.1.bn2".
    train: the model's training flag.
    bn_trainable: None (every BatchNorm follows `train`) or the torchvision
      prefixes of the BatchNorms that follow `train`; the others always use
      (and never update) their running statistics.
  """
  if not train:
    return False
  return bn_trainable is None or any(naming.is_under(path, p) for p in bn_trainable)


def batch_norm(path: str, *, train: bool, bn_trainable: Sequence[str] | None,
               name: str, epsilon: float = 1e-5, momentum: float = 0.1) -> nn.BatchNorm:
  """torch's BatchNorm2d(eps=epsilon, momentum=momentum) as a Flax layer named `name`
  (torchvision name `path`); `momentum` is torch's (Flax's is 1 - momentum)."""
  return nn.BatchNorm(
      use_running_average=not uses_batch_statistics(path, train, bn_trainable),
      momentum=1.0 - momentum, epsilon=epsilon, name=name)
