"""Training a ViT: feature extraction trains the head only, fine-tuning the listed prefixes.

The steps run on a tiny ViT (32 px, patch 8, 2 layers, hidden 32) with salijax's own
train step and optimizer; the config path (`build_setup`) is checked on vit_b_16's shapes.
"""

import warnings

import jax
import numpy as np
import pytest

from salijax import models
from salijax.data import synthetic_shapes
from salijax.train import config as config_lib
from salijax.train import optimizer, steps, train_state, training_setup

TINY = models.ViTShape(patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
NUM_CLASSES = 4


def _names(tree, head="mlp"):
  """{torchvision name of each leaf: the leaf}, through the model's own name table."""
  module = models.VisionTransformer(shape=TINY, head=head)
  layers = {models.naming.flax_path(layer.name): layer.name for layer in module.param_layers()}
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    keys = tuple(k.key for k in path)
    out[f"{layers.get(keys) or layers[keys[:-1]]}:{keys[-1]}"] = leaf
  return out


def _shape_images(num_images):
  """Synthetic-shapes images f32[N,32,32,3] in [0, 1] and their class labels i32[N]."""
  rng = np.random.default_rng(0)
  labels = np.arange(num_images) % NUM_CLASSES
  images = np.stack([synthetic_shapes.draw_example(rng, 32, int(label),
                                                   num_classes=NUM_CLASSES).image
                     for label in labels])
  return images.astype(np.float32) / 255.0, labels.astype(np.int32)


def _train(trainable_prefixes, num_steps=5):
  """(params before, params after, losses) of `num_steps` AdamW steps on one batch."""
  module = models.VisionTransformer(shape=TINY, num_classes=NUM_CLASSES, head="mlp")
  params = models.init(module, jax.random.key(0), 32)["params"]
  trainable = models.trainable_mask(module, params, trainable_prefixes)
  tx = optimizer.make_optimizer("adamw", learning_rate=lambda _: 3e-3, momentum=0.0,
                                nesterov=False, weight_decay=0.0, trainable=trainable)
  state = train_state.TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params,
                                 batch_stats={}, opt_state=tx.init(params),
                                 window=train_state.empty_window())
  step = jax.jit(steps.make_train_step(module, tx, trainable, dropout_key=jax.random.key(1),
                                       label_smoothing=0.0))
  images, labels = _shape_images(16)
  losses = []
  for _ in range(num_steps):
    window = state.window["loss"]
    state = step(state, images, labels, jax.numpy.ones(len(labels), bool))
    losses.append(float(state.window["loss"] - window) / len(labels))
  return params, state.params, losses


def _changed(before, after):
  return {name: not np.array_equal(old, new)
          for (name, old), new in zip(_names(before).items(), _names(after).values(),
                                      strict=True)}


def test_feature_extraction_trains_the_head_only():
  before, after, losses = _train(("head",))
  changed = _changed(before, after)
  assert all(changed[n] for n in changed if n.startswith("heads.head"))
  assert not any(changed[n] for n in changed if not n.startswith("heads.head"))
  assert losses[-1] < losses[0]


def test_finetuning_trains_the_listed_prefixes_only():
  before, after, losses = _train(("encoder.layers.encoder_layer_1", "encoder.ln", "head"))
  trained = ("encoder.layers.encoder_layer_1.", "encoder.ln:", "heads.head")
  for name, did_change in _changed(before, after).items():
    assert did_change == name.startswith(trained), name
  assert losses[-1] < losses[0]


def test_loose_parameters_are_prefixes_too():
  module = models.VisionTransformer(shape=TINY)
  params = models.init(module, jax.random.key(0), 32)["params"]
  mask = _names(models.trainable_mask(module, params, ("class_token", "encoder.pos_embedding")),
                head="linear")
  assert {n for n, m in mask.items() if m} == {"class_token:class_token",
                                               "encoder.pos_embedding:pos_embedding"}
  with pytest.raises(ValueError, match="trainable: expected prefixes.*'conv_proj'"):
    models.trainable_mask(module, params, ("encoder.layers.encoder_layer_7",))


@pytest.mark.parametrize(("mode", "layers", "trained"), [
    ("feature_extraction", "", ("heads.head",)),
    ("finetune", "encoder.layers.encoder_layer_11,head",
     ("encoder.layers.encoder_layer_11.", "heads.head"))])
def test_vit_b_16_config_setup(tiny_config, mode, layers, trained):
  """`config.model = "vit_b_16"` at the config's 32 px: the setup's mask (shapes only)."""
  tiny_config.model = "vit_b_16"
  tiny_config.mode = mode
  tiny_config.trainable_layers = layers
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # pretrained="none" in transfer modes.
    setup = training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
  layer_of = {models.naming.flax_path(layer.name): layer.name
              for layer in setup.module.param_layers()}
  for path, is_trainable in jax.tree_util.tree_flatten_with_path(setup.trainable)[0]:
    keys = tuple(k.key for k in path)
    name = layer_of.get(keys) or layer_of[keys[:-1]]
    assert is_trainable == name.startswith(trained), name
  abstract = training_setup.abstract_state(setup, tiny_config)
  assert abstract.params["encoder"]["pos_embedding"].shape == (1, 1 + 2 * 2, 768)


def test_config_image_size_must_fit_the_positional_embedding(tiny_config, tmp_path):
  tiny_config.model = "vit_b_16"
  tiny_config.image_size = 40
  with pytest.raises(ValueError, match="image_size.*a multiple of vit_b_16's patch size 16"):
    config_lib.validate_config(tiny_config)
  tiny_config.image_size = 32
  tiny_config.mode = "finetune"
  tiny_config.pretrained = "torchvision"
  with pytest.raises(ValueError, match="image_size.*224 for vit_b_16 with pretrained weights"):
    config_lib.validate_config(tiny_config)
  tiny_config.image_size = 224
  config_lib.validate_config(tiny_config)
