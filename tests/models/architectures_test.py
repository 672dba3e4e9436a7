"""Tests of salijax.models.architectures: create, init, and the model's shapes."""

import functools
import json
import math
import pathlib

import initialised_models
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models

THIRD_PARTY = pathlib.Path(__file__).parents[2] / "third_party" / "torchvision"
REFERENCE = json.loads((THIRD_PARTY / "state_dict_keys.json").read_text())
# Vision Transformer
REFERENCE["vit_b_16"] = json.loads(
    (THIRD_PARTY / "vit_b_16_state_dict_keys.json").read_text())["vit_b_16"]
STAT_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=shape).astype(np.float32))


def test_architectures_are_torchvisions_ten():
  assert set(models.ARCHITECTURES) == set(REFERENCE) - {"source"}
  assert len(models.ARCHITECTURES) == 10


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_variable_sizes_equal_torchvisions(arch):
  size = 224 if arch == "vit_b_16" else 32  # a ViT's positional embedding fixes its size
  shapes = jax.eval_shape(lambda: models.init(models.create(arch), jax.random.key(0), size))
  reference = REFERENCE[arch]
  params = sum(math.prod(s) for k, s, _ in reference if not k.endswith(STAT_SUFFIXES))
  stats = sum(math.prod(s) for k, s, _ in reference
              if k.endswith((".running_mean", ".running_var")))
  assert sum(x.size for x in jax.tree.leaves(shapes["params"])) == params
  assert sum(x.size for x in jax.tree.leaves(shapes.get("batch_stats", {}))) == stats
  assert ("batch_stats" in shapes) == (stats > 0)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(shapes))


def test_init_is_deterministic_in_the_key():
  a = initialised_models.variables("resnet18", 1)
  b = models.init(models.create("resnet18", num_classes=initialised_models.NUM_CLASSES),
                  jax.random.key(1), 32)
  c = initialised_models.variables("resnet18", 2)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  assert not np.array_equal(a["params"]["conv1"]["kernel"], c["params"]["conv1"]["kernel"])


def test_resnet_initialisers_are_torchvisions():
  params = initialised_models.variables("resnet18", 1)["params"]
  for kernel in (params["conv1"]["kernel"], params["layer4_1"]["conv2"]["kernel"],
                 params["layer3_0"]["downsample_0"]["kernel"]):
    kh, kw, _, out = kernel.shape
    assert float(jnp.std(kernel)) == pytest.approx(math.sqrt(2 / (out * kh * kw)), rel=0.05)
    assert float(jnp.mean(kernel)) == pytest.approx(0, abs=0.1 * math.sqrt(2 / (out * kh * kw)))
  np.testing.assert_array_equal(params["layer2_1"]["bn2"]["scale"], 1)
  np.testing.assert_array_equal(params["layer2_1"]["bn2"]["bias"], 0)
  fc = params["fc"]["kernel"]
  bound = 1 / math.sqrt(fc.shape[0])
  assert float(jnp.abs(fc).max()) <= bound
  assert float(jnp.std(fc)) == pytest.approx(bound / math.sqrt(3), rel=0.05)
  np.testing.assert_array_equal(params["fc"]["bias"], 0)


def test_vgg_initialisers_are_torchvisions():
  params = initialised_models.variables("vgg11")["params"]
  kernel = params["features_16"]["kernel"]
  assert float(jnp.std(kernel)) == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.05)
  np.testing.assert_array_equal(params["features_16"]["bias"], 0)
  for name in ("classifier_0", "classifier_6"):
    assert float(jnp.std(params[name]["kernel"])) == pytest.approx(0.01, rel=0.05)
    np.testing.assert_array_equal(params[name]["bias"], 0)


@pytest.mark.parametrize(("arch", "size"), [
    ("resnet18", (33, 47)), ("resnet18", (1, 1)), ("vgg11", (32, 32))])
def test_any_input_size_gives_logits(arch, size):
  module = models.create(arch, num_classes=initialised_models.NUM_CLASSES)
  logits = module.apply(initialised_models.variables(arch), _images((2, *size, 3)))
  assert logits.shape == (2, initialised_models.NUM_CLASSES) and logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()


def test_normalisation_is_inside_the_model():
  mean, std = (0.3, 0.5, 0.7), (0.2, 0.25, 0.5)
  images = _images((2, 32, 32, 3))
  normalised = (images - jnp.asarray(mean)) / jnp.asarray(std)
  create = functools.partial(models.create, "resnet18",
                             num_classes=initialised_models.NUM_CLASSES)
  default, raw, custom = create(), create(normalize=False), create(mean=mean, std=std)
  variables = initialised_models.variables("resnet18", random_statistics=True)
  imagenet = (images - jnp.asarray(models.IMAGENET_MEAN)) / jnp.asarray(models.IMAGENET_STD)
  # Op by op, the model's first op is this float32 normalisation: then the same ops.
  np.testing.assert_array_equal(default.apply(variables, images), raw.apply(variables, imagenet))
  np.testing.assert_array_equal(custom.apply(variables, images), raw.apply(variables, normalised))
  assert not np.allclose(custom.apply(variables, images), default.apply(variables, images))


@pytest.mark.parametrize(("kwargs", "argument", "shown"), [
    ({"arch": "resnet101"}, "arch", "'resnet101'"),
    ({"head": "conv"}, "head", "'conv'"),
    ({"num_classes": 0}, "num_classes", "0"),
    ({"num_classes": 2.0}, "num_classes", "2.0"),
    ({"mean": (0.5, 0.5)}, "mean", "(0.5, 0.5)"),
    ({"std": (0.2, 0.0, 0.2)}, "std", "(0.2, 0.0, 0.2)"),
    ({"bn_trainable": ("layer5",)}, "bn_trainable", "'layer5'"),
    ({"bn_trainable": ("features.1",)}, "bn_trainable", "'features.1'"),
    ({"classifier_width": 256}, "classifier_width", "resnet18"),
    ({"arch": "vgg11", "classifier_width": 0}, "classifier_width", "0"),
    ({"classifier_dropout": 0.0}, "classifier_dropout", "resnet18"),
    ({"arch": "vgg11", "classifier_dropout": 1.0}, "classifier_dropout", "1.0"),
    ({"arch": "vgg11", "classifier_dropout": -0.1}, "classifier_dropout", "-0.1"),
])
def test_create_rejects_bad_arguments(kwargs, argument, shown):
  with pytest.raises(ValueError, match=argument) as error:
    models.create(**{"arch": "resnet18", **kwargs})
  assert shown in str(error.value)


def test_create_lists_valid_values():
  with pytest.raises(ValueError, match="resnet18.*vgg16"):
    models.create("resnet101")
  with pytest.raises(ValueError, match="'linear', 'mlp'"):
    models.create("vgg11", head="conv")
  with pytest.raises(TypeError, match="bn_trainable"):
    models.create("resnet18", bn_trainable="layer4")


def test_bn_trainable_accepts_module_prefixes_and_head():
  module = models.create("resnet18", bn_trainable=["layer4.1", "layer2.0.downsample.1", "head"])
  assert module.bn_trainable == ("layer4.1", "layer2.0.downsample.1", "fc")
  assert models.create("vgg11_bn", bn_trainable=("classifier.6",)).bn_trainable == (
      "classifier.6",)


def test_classifier_dropout_sets_vggs_training_dropout():
  """With rate 0 the training logits do not depend on the dropout key; at 0.5 they do."""
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))

  def train_logits(module, variables, seed):
    logits, _ = module.apply(variables, images, train=True, mutable=["batch_stats"],
                             rngs={"dropout": jax.random.key(seed)})
    return logits

  for rate, differs in ((0.0, False), (0.5, True)):
    module = models.create("vgg11_bn", num_classes=3, classifier_width=16,
                           classifier_dropout=rate)
    assert module.classifier_dropout == rate
    variables = models.init(module, jax.random.key(0), 32)
    first, second = train_logits(module, variables, 0), train_logits(module, variables, 1)
    assert np.allclose(first, second) != differs
  assert models.create("vgg11").classifier_dropout == 0.5  # torchvision's


def test_bad_images_and_sizes_raise():
  module = models.create("vgg11")
  variables = jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32))
  with pytest.raises(ValueError, match="images.*32"):
    jax.eval_shape(module.apply, variables, jnp.zeros((1, 31, 64, 3)))
  with pytest.raises(ValueError, match=r"images.*\[B, H, W, 3\]"):
    jax.eval_shape(module.apply, variables, jnp.zeros((1, 3, 64, 64)))
  with pytest.raises(TypeError, match="images.*uint8"):
    jax.eval_shape(module.apply, variables, jnp.zeros((1, 64, 64, 3), jnp.uint8))
  with pytest.raises(ValueError, match="image_size.*32"):
    models.init(module, jax.random.key(0), 16)
  with pytest.raises(TypeError, match="module"):
    models.init(object(), jax.random.key(0))
