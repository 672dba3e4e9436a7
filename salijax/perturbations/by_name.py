"""Perturbations chosen by name, as in the benchmark's config.perturbations.

"none" is the clean images. The others:

  rotate<d>, resize<f>, crop<f>   geometric augmentations (`augmentation`:
                                  out-of-image pixels are 0 and not valid)
  fgsm<eps>                       FGSM adversarial images against the true class
                                  (`fgsm`), eps in [0, 1] pixel units

A geometric augmentation moves the pixels: the map of p(I) is compared with
p applied to the map of I on p's valid pixels, and object masks (or boxes,
made masks) move with the image: a pixel of the moved mask is in the object
when its bilinear value is >= 0.5 and it is valid. FGSM and "none" move
nothing (identity geometry, every pixel valid).

    images = perturb(clf, images, true_labels, "rotate45")   # f32[B,H,W,3]
    moved = move_maps(clean_maps, "rotate45")                 # f32[B,H,W]
    valid = valid_pixels("rotate45", H, W)                    # bool[H,W]
"""

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.metrics.pointing_game import boxes_to_masks
from salijax.perturbations import augmentation
from salijax.perturbations.fgsm import fgsm

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
    augmentation.parse_augmentation(name)
  except ValueError as error:
    raise ValueError(f"perturbation: expected 'none', fgsm<eps> (e.g. 'fgsm0.03') or an "
                     f"augmentation ({error})") from None


def is_geometric(name: str) -> bool:
  """Whether `name` moves pixels (an augmentation), not "none" or an FGSM step."""
  return name != NONE and fgsm_epsilon(name) is None


def perturb(clf: Any, images: Any, true_labels: Any, *, name: str) -> jax.Array:
  """p(images) f32[B,H,W,3] in [0, 1] (`images` for "none").

  Args:
    clf: the Classifier FGSM attacks (unused by the other perturbations).
    images: f32[B,H,W,3] in [0, 1].
    true_labels: i32[B], the classes FGSM attacks (unused by the others).
    name: the perturbation (module doc).

  Has the shape of a method (`salijax.parallel.run_sharded` splits it over devices).

  Raises:
    ValueError: an unknown name; bad images or labels for FGSM.
  """
  check_name(name)
  epsilon = fgsm_epsilon(name)
  if name == NONE:
    return jnp.asarray(images, jnp.float32)
  if epsilon is not None:
    return fgsm(clf, images, true_labels, epsilon=epsilon)
  return augmentation.augment_images(images, name)


def move_maps(maps: Any, name: str) -> np.ndarray:
  """p applied to maps f32[B,H,W]: moved by an augmentation, unchanged otherwise."""
  return np.asarray(augmentation.augment_maps(maps, name) if is_geometric(name) else maps,
                    np.float32)


def valid_pixels(name: str, height: int, width: int) -> np.ndarray:
  """bool[H,W]: the pixels whose source lies inside the image (all of them unless geometric)."""
  if is_geometric(name):
    return augmentation.valid_pixels(name, height, width)
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
  moved = (np.asarray(augmentation.augment_maps(masks.astype(np.float32), name)) >= 0.5) & (
      augmentation.valid_pixels(name, height, width))
  return moved, moved.reshape(len(moved), -1).any(axis=1)
