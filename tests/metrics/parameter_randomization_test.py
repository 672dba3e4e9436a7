"""Tests of salijax.metrics.parameter_randomization on salijax's models: a small ResNet18 and the
VGG block lists (any other Classifier: sanity_check_wrapped_test.py)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.metrics import parameter_randomization

RESNET18_BLOCKS = ("fc", "layer4.1", "layer4.0", "layer3.1", "layer3.0", "layer2.1", "layer2.0",
                   "layer1.1", "layer1.0", "stem")


def block_of_leaf(collection_path: tuple[str, ...]) -> str:
  """Independent reference: the ResNet18 block of a leaf, from its top-level Flax module name."""
  top = collection_path[1]
  if top.startswith("fc"):
    return "fc"
  if top in ("conv1", "bn1"):
    return "stem"
  return top.replace("_", ".")  # "layer4_1" -> "layer4.1"


def leaves(variables) -> dict[tuple[str, ...], np.ndarray]:
  flat = jax.tree_util.tree_flatten_with_path(variables)[0]
  return {tuple(str(entry.key) for entry in path): np.asarray(x) for path, x in flat}


IMAGES = jnp.zeros((1, 32, 32, 3), jnp.float32)  # only their shape is used


@functools.lru_cache(maxsize=1)
def trained_resnet18():
  """(Classifier, 'trained' variables, fresh variables of KEY) of a 5-class ResNet18.

  The 'trained' BatchNorms have scale, bias and statistics unlike a fresh model's,
  so re-initialising or resetting them is visible.
  """
  module = models.create("resnet18", num_classes=5, head="mlp")
  variables = models.init(module, jax.random.key(1), 32)
  rng = np.random.default_rng(0)

  def perturb(path, x):
    if any(getattr(entry, "key", None) in ("scale", "bias", "mean", "var") for entry in path):
      return x + np.abs(rng.normal(size=x.shape)).astype(np.float32) + 0.1
    return x

  variables = jax.tree_util.tree_map_with_path(perturb, variables)
  return models.classifier(module, variables), variables, models.init(module, KEY, 32)


KEY = jax.random.key(7)


def blocks_of(arch: str, **options) -> tuple[str, ...]:
  module = models.create(arch, num_classes=5, **options)
  variables = jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32))
  return parameter_randomization.randomization_blocks(models.classifier(module, variables),
                                                      IMAGES)


def test_block_names_from_the_logits_down():
  assert blocks_of("resnet18") == RESNET18_BLOCKS
  assert blocks_of("resnet50")[:4] == ("fc", "layer4.2", "layer4.1", "layer4.0")
  # torchvision vgg11_bn: convs at features 0, 4, 8, 11, 15, 18, 22, 25, each followed by a BN.
  convs = (25, 22, 18, 15, 11, 8, 4, 0)
  assert blocks_of("vgg11_bn", head="mlp", classifier_width=16) == (
      "classifier.6", "classifier.3", "classifier.0", *(f"features.{i}" for i in convs))
  assert blocks_of("vgg11", classifier_width=16) == (
      "classifier.6", "classifier.3", "classifier.0",
      *(f"features.{i}" for i in (18, 16, 13, 11, 8, 6, 3, 0)))


def test_vgg_blocks_hold_the_batch_norm_after_each_conv_and_both_head_layers():
  module = models.create("vgg11_bn", num_classes=5, head="mlp", classifier_width=16)
  variables = jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32))
  blocks = models.parameter_blocks(models.classifier(module, variables))
  convs = (0, 4, 8, 11, 15, 18, 22, 25)
  assert blocks == {"classifier_6_1": "classifier.6", "classifier_6_4": "classifier.6",
                    "classifier_3": "classifier.3", "classifier_0": "classifier.0",
                    **{f"features_{i}": f"features.{i}" for i in convs},
                    **{f"features_{i + 1}": f"features.{i}" for i in convs}}


FRESH_RTOL = 4 * float(np.finfo(np.float32).eps)


def check_randomized(got, trained, fresh, randomized_blocks, batch_stats):
  """Leaves of `randomized_blocks` equal the fresh init's, differ from the trained; others same."""
  assert got.keys() == trained.keys()
  for path, value in got.items():
    redrawn = block_of_leaf(path) in randomized_blocks
    if path[0] == "batch_stats" and batch_stats == "keep":
      redrawn = False
    if not redrawn:
      np.testing.assert_array_equal(value, trained[path], err_msg=str(path))
    else:
      # The same random bits, turned into weights by a compiled initialiser (salijax's) and
      # op by op (the test's): a few float32 operations that may round an ulp apart.
      np.testing.assert_allclose(value, fresh[path], rtol=FRESH_RTOL, atol=0, err_msg=str(path))
      assert not np.array_equal(value, trained[path]), path
      if path[0] == "batch_stats":  # reset: mean 0, variance 1
        np.testing.assert_array_equal(value, 0.0 if path[-1] == "mean" else 1.0)


@pytest.mark.parametrize("batch_stats", ["reset", "keep"])
def test_cascading_redraws_exactly_the_blocks_so_far(batch_stats):
  clf, variables, fresh = trained_resnet18()
  trained, fresh = leaves(variables), leaves(fresh)
  names = []
  for block, randomized in parameter_randomization.cascading_randomization(
      clf, IMAGES, KEY, batch_stats=batch_stats):
    names.append(block)
    assert randomized.apply is clf.apply and randomized.features is clf.features
    check_randomized(leaves(randomized.variables), trained, fresh, set(names), batch_stats)
  assert tuple(names) == RESNET18_BLOCKS
  assert leaves(variables).keys() == trained.keys()  # the input is not modified
  for path, value in leaves(variables).items():
    np.testing.assert_array_equal(value, trained[path])


def test_independent_redraws_one_block_in_the_given_order():
  clf, variables, fresh = trained_resnet18()
  trained, fresh = leaves(variables), leaves(fresh)
  blocks = ("stem", "layer2.0", "fc")
  got = list(parameter_randomization.independent_randomization(clf, IMAGES, KEY, blocks=blocks))
  assert [block for block, _ in got] == list(blocks)
  for block, randomized in got:
    check_randomized(leaves(randomized.variables), trained, fresh, {block}, "reset")


def test_trained_leaves_are_the_same_arrays():
  clf, variables, _ = trained_resnet18()
  _, randomized = next(parameter_randomization.cascading_randomization(
      clf, IMAGES, KEY, blocks=["fc"]))
  assert randomized.variables["params"]["layer1_0"]["conv1"]["kernel"] is (
      variables["params"]["layer1_0"]["conv1"]["kernel"])


def test_an_init_function_gives_the_fresh_variables():
  clf, variables, _ = trained_resnet18()
  fresh = jax.tree.map(lambda x: x + 1.0, variables)
  _, randomized = next(parameter_randomization.independent_randomization(
      clf, IMAGES, KEY, blocks=["layer3.0"], init=lambda key: fresh))
  trained, fresh = leaves(variables), leaves(fresh)
  for path, value in leaves(randomized.variables).items():
    want = fresh[path] if block_of_leaf(path) == "layer3.0" else trained[path]
    np.testing.assert_array_equal(value, want, err_msg=str(path))


def test_bad_inputs():
  clf, variables, _ = trained_resnet18()
  cascade = parameter_randomization.cascading_randomization
  with pytest.raises(TypeError, match="clf must be a salijax.Classifier"):
    cascade(variables, IMAGES, KEY)
  with pytest.raises(ValueError, match="images must have shape"):
    cascade(clf, IMAGES[0], KEY)
  with pytest.raises(ValueError, match="batch_stats: expected one of"):
    cascade(clf, IMAGES, KEY, batch_stats="fresh")
  with pytest.raises(ValueError, match="blocks: expected distinct names"):
    cascade(clf, IMAGES, KEY, blocks=["layer5.0"])
  with pytest.raises(ValueError, match="blocks: expected distinct names"):
    cascade(clf, IMAGES, KEY, blocks=["fc", "fc"])
  with pytest.raises(TypeError, match="blocks: expected a sequence"):
    cascade(clf, IMAGES, KEY, blocks="fc")
  with pytest.raises(TypeError, match="key"):
    parameter_randomization.independent_randomization(clf, IMAGES, 3)
  with pytest.raises(TypeError, match="init: expected a function"):
    cascade(clf, IMAGES, KEY, init="normal")
  other = models.init(models.create("resnet18", num_classes=6, head="mlp"), KEY, 32)
  with pytest.raises(ValueError, match="init: expected variables with the tree, shapes"):
    cascade(clf, IMAGES, KEY, init=lambda key: other)
