"""Perturbations of images: geometric augmentations, FGSM, and their choice by name.

  from salijax import perturbations
  rotated = perturbations.augment_images(images, "rotate45")          # f32[B,H,W,3]
  attacked = perturbations.fgsm(clf, images, labels, epsilon=0.03)    # f32[B,H,W,3] in [0, 1]
  images = perturbations.perturb(clf, images, labels, name="fgsm0.03")  # any name, "none" too
  moved = perturbations.move_maps(maps, "rotate45")                   # f32[B,H,W]
  valid = perturbations.valid_pixels("rotate45", H, W)                # bool[H,W]
  robust = metrics.explanation_robustness(maps_of_rotated, moved, valid)
"""

from salijax.perturbations.augmentation import (
    Augmentation,
    augment_images,
    augment_maps,
    parse_augmentation,
)
from salijax.perturbations.by_name import (
    NONE,
    check_name,
    fgsm_epsilon,
    is_geometric,
    move_maps,
    move_regions,
    perturb,
    valid_pixels,
)
from salijax.perturbations.fgsm import fgsm

__all__ = ["NONE", "Augmentation", "augment_images", "augment_maps", "check_name", "fgsm",
           "fgsm_epsilon", "is_geometric", "move_maps", "move_regions", "parse_augmentation",
           "perturb", "valid_pixels"]
