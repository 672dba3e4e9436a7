"""Tests of salijax.pipeline.perturbations: names, perturbed images, moved maps and regions."""

import math
import pathlib
import sys

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import adversarial, metrics
from salijax.pipeline import perturbations

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402


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
  np.testing.assert_array_equal(perturbations.perturbed_images(clf, images, labels, "none"), images)
  attacked = perturbations.perturbed_images(clf, images, labels, "fgsm0.05")
  want = np.asarray(adversarial.fgsm(clf, images, labels, epsilon=0.05))
  # run_sharded compiles another program: a gradient component within its float32 error of 0
  # (random_cnn: ~sqrt(6 layers forward and back * fan-in 54) eps of its scale) may flip sign.
  gradients = np.asarray(jax.grad(lambda x: -jnp.take_along_axis(jax.nn.log_softmax(
      clf.apply(clf.variables, x)), jnp.asarray(labels)[:, None], axis=1).sum())(images))
  scale = np.abs(gradients).reshape(2, -1).max(axis=1)[:, None, None, None]
  sure = np.abs(gradients) > 2 * math.sqrt(6 * 54) * float_tolerance.EPS * scale
  assert sure.mean() > 0.99
  np.testing.assert_allclose(attacked[sure], want[sure], atol=1e-6)
  assert (np.abs(attacked - images) <= 0.05 + 1e-6).all()
  np.testing.assert_array_equal(perturbations.perturbed_images(clf, images, labels, "rotate45"),
                                metrics.augment_images(images, "rotate45"))  # the same call
  for name in ("none", "fgsm0.05"):  # no geometry: maps stay, every pixel is valid
    np.testing.assert_array_equal(perturbations.move_maps(maps, name), maps)
    assert perturbations.valid_pixels(name, 16, 16).all()
  np.testing.assert_array_equal(perturbations.move_maps(maps, "rotate90"),
                                np.rot90(maps, 1, axes=(1, 2)))  # a permutation of the pixels
  np.testing.assert_array_equal(perturbations.valid_pixels("resize0.5", 16, 16),
                                metrics.valid_pixels("resize0.5", 16, 16))


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
  assert not (moved & ~metrics.valid_pixels("rotate45", 16, 16)).any()
  same, present = perturbations.move_regions(masks, "fgsm0.1", 16, 16)
  assert same is masks and present.all()
  # Boxes become masks by pixel centres first: rows 4..7, columns 0..15.
  boxes = np.array([[0.25, 0.0, 0.5, 1.0]], np.float32)
  moved, present = perturbations.move_regions(boxes, "rotate90", 16, 16)
  box_mask = np.zeros((1, 16, 16), bool)
  box_mask[0, 4:8, :] = True
  np.testing.assert_array_equal(moved, np.rot90(box_mask, 1, axes=(1, 2)))
