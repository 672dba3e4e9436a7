"""The sanity check on models wrapped by salijax.wrap (Flax linen, Equinox): Grad-CAM passes on
models whose trained maps all lie in one region; the controls, which ignore the model, fail."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import wrapped_models

from salijax import methods
from salijax.metrics import map_similarity
from salijax.metrics.sanity_check import sanity_check

KEY = jax.random.key(0)
IMAGES = wrapped_models.smooth_images(0)
LABELS = jnp.array([0, 1, 2, 3], jnp.int32)
CLASSIFIERS = {"linen": (wrapped_models.linen_classifier, wrapped_models.LINEN_BLOCKS),
               "equinox": (wrapped_models.equinox_classifier, wrapped_models.EQUINOX_BLOCKS)}
# Measured: the fully randomised maps' mean similarity sits 0.17 (Equinox, Spearman) to 0.6
# below the baseline; 0.1 leaves room for other images or seeds, and is far above rounding.
MARGIN = 0.1


@pytest.mark.parametrize("framework", CLASSIFIERS)
def test_gradcam_passes_when_the_model_is_randomised_from_the_logits(framework):
  build, blocks = CLASSIFIERS[framework]
  clf = build()
  trained = np.asarray(methods.gradcam(clf, IMAGES, LABELS))
  outside = np.ones(trained.shape[1:], bool)
  outside[3:15, 15:29] = False  # REGION and the 1-pixel reach of the explained 3 x 3 conv
  assert (trained[:, outside] == 0).all()  # the model's region is Grad-CAM's
  check = sanity_check(methods.gradcam, clf, IMAGES, LABELS, key=KEY)
  assert check.block_names == blocks
  for name in map_similarity.SIMILARITIES:
    assert check.similarity[name].shape == (len(blocks), 4)
    assert check.similarity[name][-1].mean() < check.baseline[name].mean() - MARGIN, name
  assert check.passed == dict.fromkeys(map_similarity.SIMILARITIES, True)


@pytest.mark.parametrize("framework", CLASSIFIERS)
@pytest.mark.parametrize("mode", ["cascading", "independent"])
def test_the_controls_ignore_the_model_and_fail(framework, mode):
  clf = CLASSIFIERS[framework][0]()
  random = sanity_check(methods.get("random"), clf, IMAGES, LABELS, key=KEY, mode=mode,
                        measures=("spearman",))
  # The same maps: exact ranks (a correlation's square roots and division round).
  np.testing.assert_allclose(random.similarity["spearman"], 1.0, rtol=0,
                             atol=4 * float_tolerance.EPS)
  assert random.passed == {"spearman": False}
  fake = sanity_check(methods.get("fake_cam"), clf, IMAGES, LABELS, key=KEY, mode=mode,
                      measures=("spearman",))
  # Constant maps have no rank correlation (0), with the randomised maps or each other.
  np.testing.assert_array_equal(fake.similarity["spearman"], 0.0)
  np.testing.assert_array_equal(fake.baseline["spearman"], 0.0)
  assert fake.passed == {"spearman": False}


def test_independent_rows_follow_the_blocks_given():
  clf = wrapped_models.equinox_classifier()
  check = sanity_check(methods.gradcam, clf, IMAGES, LABELS, key=KEY, mode="independent",
                       blocks=("gate", "head"), measures=("ssim",))
  assert check.block_names == ("gate", "head")
  # Only re-drawing the gate moves the maps out of the region.
  assert check.similarity["ssim"][0].mean() < check.similarity["ssim"][1].mean() - MARGIN
