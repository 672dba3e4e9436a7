"""Tests of salijax.metrics.parameter_randomization on models wrapped by salijax.wrap: Flax
linen and Haiku re-drawn by their own initialisers, Equinox by permuting each leaf."""

import jax
import numpy as np
import pytest
import wrapped_models

from salijax.metrics import parameter_randomization

KEY = jax.random.key(7)
IMAGES = wrapped_models.smooth_images(0, batch=2)


def flat(tree) -> list[tuple[tuple, jax.Array]]:
  """(path as dict keys / sequence indices / attribute names, leaf) of each leaf."""
  return [(tuple(getattr(e, "key", getattr(e, "idx", getattr(e, "name", None))) for e in path),
           leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def linen_case():
  """(clf, group of a leaf path, whether it is state, fresh variables): the test's own reading."""
  fresh = wrapped_models.LinenRegionCNN().init(KEY, IMAGES[:1])
  return (wrapped_models.linen_classifier(), lambda path: path[1],
          lambda path: path[0] == "batch_stats", fresh)


def haiku_case():
  fresh = wrapped_models.haiku_transformed().init(KEY, IMAGES[:1])
  return (wrapped_models.haiku_classifier(), lambda path: path[1].split("/~/")[0],
          lambda path: path[0] == 1, fresh)


def equinox_case():
  return wrapped_models.equinox_classifier(), lambda path: path[0], lambda path: False, None


CASES = {"linen": linen_case, "haiku": haiku_case, "equinox": equinox_case}
BLOCKS = {"linen": wrapped_models.LINEN_BLOCKS, "haiku": wrapped_models.HAIKU_BLOCKS,
          "equinox": wrapped_models.EQUINOX_BLOCKS}


def check_randomized(randomized, case, redrawn_groups, batch_stats="reset"):
  """Leaves of `redrawn_groups` are the fresh draw's (or, without one, a permutation of the
  trained leaf); every other leaf is the trained array itself."""
  clf, group_of, is_state, fresh = case
  fresh_leaves = None if fresh is None else [leaf for _, leaf in flat(fresh)]
  got = flat(randomized.variables)
  assert [path for path, _ in got] == [path for path, _ in flat(clf.variables)]
  for i, ((path, value), (_, trained)) in enumerate(zip(got, flat(clf.variables), strict=True)):
    redrawn = group_of(path) in redrawn_groups and not (is_state(path) and batch_stats == "keep")
    if not redrawn:
      assert value is trained, path
    elif fresh_leaves is not None:
      # Drawn from the same bits, but by a compiled initialiser (salijax's) and op by op (the
      # test's): float32 operations that may round an ulp apart, and Haiku's BatchNorm
      # averages, batch means of the initialiser's forward summed in another order.
      np.testing.assert_allclose(value, fresh_leaves[i], rtol=1e-6, err_msg=str(path))
      assert not np.array_equal(value, trained), path
    else:  # the same values in other places
      np.testing.assert_array_equal(np.sort(np.ravel(value)), np.sort(np.ravel(trained)))
      assert not np.array_equal(value, trained), path


@pytest.mark.parametrize("framework", CASES)
def test_cascading_redraws_cumulatively_from_the_logits(framework):
  case = CASES[framework]()
  names = []
  for block, randomized in parameter_randomization.cascading_randomization(case[0], IMAGES, KEY):
    names.append(block)
    assert randomized.apply is case[0].apply
    check_randomized(randomized, case, set(names))
  assert tuple(names) == BLOCKS[framework]


@pytest.mark.parametrize("framework", CASES)
def test_independent_redraws_one_group_at_a_time(framework):
  case = CASES[framework]()
  blocks = BLOCKS[framework][::-1]
  got = list(parameter_randomization.independent_randomization(case[0], IMAGES, KEY,
                                                               blocks=blocks))
  assert tuple(block for block, _ in got) == blocks
  for block, randomized in got:
    check_randomized(randomized, case, {block})


@pytest.mark.parametrize("framework", ["linen", "haiku"])
def test_keep_leaves_the_running_statistics_trained(framework):
  case = CASES[framework]()
  *_, (block, randomized) = parameter_randomization.cascading_randomization(
      case[0], IMAGES, KEY, batch_stats="keep")
  check_randomized(randomized, case, set(BLOCKS[framework]), batch_stats="keep")


def test_the_permutation_depends_on_the_key_only():
  clf = wrapped_models.equinox_classifier()

  def gate(key):
    _, randomized = next(parameter_randomization.independent_randomization(
        clf, IMAGES, key, blocks=["gate"]))
    return np.asarray(randomized.variables.gate)

  np.testing.assert_array_equal(gate(KEY), gate(KEY))
  assert not np.array_equal(gate(KEY), gate(jax.random.key(8)))
