"""Tests of salijax.perturbations.by_name: names, perturbed images, moved maps and regions."""

import jax
import numpy as np
import pytest
import tiny_classifiers

from salijax import perturbations
from salijax.perturbations import augmentation


@pytest.mark.parametrize("name", ["none", "rotate45", "resize0.75", "crop0.8", "fgsm0.03",
                                  "fgsm1"])
def test_known_names_pass(name):
  perturbations.check_name(name)


@pytest.mark.parametrize("name, match", [
    ("fgsm1.5", "FGSM"), ("fgsm", "augmentation"), ("blur3", "augmentation"),
    ("resize2", "augmentation"), (3, "str"),
])
def test_bad_names_are_named(name, match):
  with pytest.raises(ValueError, match=f"perturbation.*{match}"):
    perturbations.check_name(name)


def test_images_maps_and_valid_pixels_per_kind():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  labels = np.array([0, 2], np.int32)
  maps = rng.normal(size=(2, 16, 16)).astype(np.float32)
  np.testing.assert_array_equal(perturbations.perturb(clf, images, labels, name="none"), images)
  attacked = np.asarray(perturbations.perturb(clf, images, labels, name="fgsm0.05"))
  np.testing.assert_array_equal(
      attacked, perturbations.fgsm(clf, images, labels, epsilon=0.05))  # the same call
  assert (np.abs(attacked - images) <= 0.05 + 1e-6).all() and (attacked != images).mean() > 0.9
  np.testing.assert_array_equal(perturbations.perturb(clf, images, labels, name="rotate45"),
                                augmentation.augment_images(images, "rotate45"))  # the same call
  for name in ("none", "fgsm0.05"):  # no geometry: maps stay, every pixel is valid
    np.testing.assert_array_equal(perturbations.move_maps(maps, name), maps)
    assert perturbations.valid_pixels(name, 16, 16).all()
  np.testing.assert_array_equal(perturbations.move_maps(maps, "rotate90"),
                                np.rot90(maps, 1, axes=(1, 2)))  # a permutation of the pixels
  np.testing.assert_array_equal(perturbations.valid_pixels("resize0.5", 16, 16),
                                augmentation.valid_pixels("resize0.5", 16, 16))
  assert not perturbations.valid_pixels("resize0.5", 16, 16).all()


def test_perturb_rejects_unknown_names():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  with pytest.raises(ValueError, match="perturbation.*augmentation"):
    perturbations.perturb(clf, np.zeros((1, 16, 16, 3), np.float32), np.zeros(1, np.int32),
                          name="blur3")


def test_regions_move_with_the_image_and_may_leave_it():
  masks = np.zeros((3, 16, 16), bool)
  masks[0, 2:6, 3:9] = True
  masks[1, 0, 0] = True  # a corner pixel: out of a 45-degree rotation
  masks[2, 6:10, 6:10] = True
  moved, present = perturbations.move_regions(masks, "rotate90", 16, 16)
  np.testing.assert_array_equal(moved, np.rot90(masks, 1, axes=(1, 2)))
  assert present.all()
  moved, present = perturbations.move_regions(masks, "rotate45", 16, 16)
  np.testing.assert_array_equal(present, [True, False, True])
  assert not (moved & ~augmentation.valid_pixels("rotate45", 16, 16)).any()
  same, present = perturbations.move_regions(masks, "fgsm0.1", 16, 16)
  assert same is masks and present.all()
  # Boxes become masks by pixel centres first: rows 4..7, columns 0..15.
  boxes = np.array([[0.25, 0.0, 0.5, 1.0]], np.float32)
  moved, present = perturbations.move_regions(boxes, "rotate90", 16, 16)
  box_mask = np.zeros((1, 16, 16), bool)
  box_mask[0, 4:8, :] = True
  np.testing.assert_array_equal(moved, np.rot90(box_mask, 1, axes=(1, 2)))
