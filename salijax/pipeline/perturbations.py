"""The benchmark's perturbations of the evaluation images (config.perturbations).

Every unit of the explain and evaluate stages has a perturbation p; "none" is
the clean images. The others (a comma list in config.perturbations):

  rotate<d>, resize<f>, crop<f>   geometric augmentations (salijax.metrics.augmentation:
                                  out-of-image pixels are 0 and not valid)
  fgsm<eps>                       FGSM adversarial images against the true class
                                  (salijax.adversarial.fgsm), eps in [0, 1] pixel units

The methods explain p(I) and every metric scores those maps on p(I) (the
whole perturbed image, black corners included), for the same class as on
the clean image (the label modes are resolved on the clean image). The
robustness measures compare the map of p(I) with p applied to the map of I,
on p's valid pixels: a geometric augmentation moves the map and has invalid
pixels; FGSM does not move anything (identity geometry, every pixel valid).
The object masks (or boxes, made masks) of the pointing games move with the
image: a pixel of the moved mask is in the object when its bilinear value is
>= 0.5 and it is valid; an object moved out of the image has no pointing score.

The perturbed images are not stored: each stage that needs them computes
them again from the clean batch (the predict, explain and evaluate units).
Augmentations are exact; FGSM is one forward and backward pass, the same
result on a CPU, while a GPU may round its gradients differently from one
process to another (XLA_FLAGS=--xla_gpu_deterministic_ops=true makes it
repeatable).

    images = perturbed_images(clf, batch["image"], batch["label"], "rotate45")
    moved = move_maps(clean_maps, "rotate45")
    valid = valid_pixels("rotate45", H, W)
"""

import re
from typing import Any

import jax.numpy as jnp
import numpy as np

from salijax import adversarial, metrics, parallel
from salijax.metrics.pointing_game import boxes_to_masks

NONE = "none"
_FGSM = re.compile(r"fgsm(\d+(?:\.\d+)?)")


def fgsm_epsilon(name: str) -> float | None:
  """eps of "fgsm<eps>", or None for another name."""
  match = _FGSM.fullmatch(name)
  return None if match is None else float(match.group(1))


def check_name(name: Any) -> None:
  """Raises ValueError unless `name` is "none", an augmentation or fgsm<eps> with eps in [0, 1]."""
  if not isinstance(name, str):
    raise ValueError(f"perturbation: expected a name (str), got {name!r}")
  if name == NONE:
    return
  epsilon = fgsm_epsilon(name)
  if epsilon is not None:
    if epsilon > 1.0:
      raise ValueError(f"perturbation: the FGSM step of {name!r} must be in [0, 1]")
    return
  try:
    metrics.parse_augmentation(name)
  except ValueError as error:
    raise ValueError(f"perturbation: expected 'none', fgsm<eps> (e.g. 'fgsm0.03') or an "
                     f"augmentation ({error})") from None


def is_geometric(name: str) -> bool:
  """Whether `name` moves pixels (an augmentation), not "none" or an FGSM step."""
  return name != NONE and fgsm_epsilon(name) is None


def perturbed_images(clf: Any, images: Any, true_labels: Any, name: str) -> np.ndarray:
  """p(images) f32[B,H,W,3]: `images` for "none"; FGSM split over the local devices."""
  check_name(name)
  epsilon = fgsm_epsilon(name)
  if name == NONE:
    return np.asarray(images, np.float32)
  if epsilon is not None:
    return np.asarray(parallel.run_sharded(adversarial.fgsm, clf, jnp.asarray(images),
                                           jnp.asarray(true_labels), epsilon=epsilon))
  return np.asarray(metrics.augment_images(images, name))


def move_maps(maps: Any, name: str) -> np.ndarray:
  """p applied to maps f32[B,H,W]: moved by an augmentation, unchanged otherwise."""
  return np.asarray(metrics.augment_maps(maps, name) if is_geometric(name) else maps, np.float32)


def valid_pixels(name: str, height: int, width: int) -> np.ndarray:
  """bool[H,W]: the pixels whose source lies inside the image (all of them unless geometric)."""
  if is_geometric(name):
    return metrics.valid_pixels(name, height, width)
  return np.ones((height, width), bool)


def move_regions(region: np.ndarray, name: str, height: int,
                 width: int) -> tuple[np.ndarray, np.ndarray]:
  """The object regions of p(I) (module doc): (region, bool[B] whether it is not empty).

  Args:
    region: masks bool[B,H,W] or boxes f32[B,4] of the clean images.
    name: the perturbation.
    height, width: the image size.

  Returns:
    `region` unchanged unless `name` is geometric, else the moved masks
    bool[B,H,W]; and which images keep a non-empty region.
  """
  if not is_geometric(name):
    return region, np.ones(len(region), bool)
  masks = np.asarray(region)
  if masks.ndim == 2:
    masks = np.asarray(boxes_to_masks(jnp.asarray(region), height, width))
  moved = (np.asarray(metrics.augment_maps(masks.astype(np.float32), name)) >= 0.5) & (
      metrics.valid_pixels(name, height, width))
  return moved, moved.reshape(len(moved), -1).any(axis=1)
