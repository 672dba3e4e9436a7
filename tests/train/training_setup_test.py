"""Tests of what trains in each mode: frozen parameters and BatchNorm statistics stay exact.

(Mode "scratch", where everything changes, is tested by loop_test.)
"""

import math
import warnings

import float_tolerance
import jax
import numpy as np
import pytest

from salijax import models, porting
from salijax.train import steps, training_setup


def bits(tree):
  """The leaves as raw bytes, so -0.0 != 0.0 and NaN payloads count."""
  return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def train_a_few_steps(config, num_steps=2, negative_zero=False):
  """Builds the setup of `config` and trains `num_steps` steps on random images.

  With `negative_zero`, every parameter starts as -0.0 or a negative value
  (p + 0.0 would turn -0.0 into +0.0: a frozen parameter must keep its bits).
  """
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # pretrained="none" in transfer modes.
    setup = training_setup.build_setup(config, num_classes=10, steps_per_epoch=3)
  state = training_setup.initial_state(setup, config)
  if negative_zero:
    state = state.replace(params=jax.tree.map(lambda p: -0.0 * (p == 0) - abs(p) / 2,
                                              state.params))
  step_fn = jax.jit(steps.make_train_step(
      setup.module, setup.tx, setup.trainable,
      dropout_key=training_setup.dropout_key(config), label_smoothing=0.1))
  key = jax.random.key(1)
  images = jax.random.uniform(key, (8, config.image_size, config.image_size, 3))
  labels = jax.random.randint(key, (8,), 0, 10)
  before = state
  for _ in range(num_steps):
    state = step_fn(state, images, labels, jax.numpy.ones(8, bool))
  return setup, before, state


def changed(before, after):
  """{torchvision layer name: whether any of its leaves changed}."""
  out = {}
  for (path, old), new in zip(jax.tree_util.tree_flatten_with_path(before)[0],
                              jax.tree.leaves(after), strict=True):
    name = ".".join(k.key for k in path[:-1]).replace("_", ".")
    out[name] = out.get(name, False) or old.tobytes() != np.asarray(new).tobytes()
  return out


def test_feature_extraction_changes_the_head_only(tiny_config):
  tiny_config.mode = "feature_extraction"
  _, before, after = train_a_few_steps(tiny_config, negative_zero=True)
  assert any(np.signbit(x).any() and not x.any() for x in jax.tree.leaves(before.params))
  params = changed(before.params, after.params)
  assert params.pop("fc")
  assert params and not any(params.values())
  backbone = {k: v for k, v in before.params.items() if k != "fc"}
  assert bits({k: v for k, v in after.params.items() if k != "fc"}) == bits(backbone)
  assert bits(after.batch_stats) == bits(before.batch_stats)


def test_finetune_listed_layers_only(tiny_config):
  tiny_config.mode = "finetune"
  tiny_config.trainable_layers = "layer4,head"
  _, before, after = train_a_few_steps(tiny_config)
  for name, did_change in changed(before.params, after.params).items():
    assert did_change == (name.startswith("layer4.") or name == "fc"), name
  for name, did_change in changed(before.batch_stats, after.batch_stats).items():
    assert did_change == name.startswith("layer4."), name


def test_vgg_feature_extraction_trains_classifier_6_only(tiny_config):
  tiny_config.model = "vgg11"
  tiny_config.mode = "feature_extraction"
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    setup = training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
  assert models.head_prefix(setup.module) == "classifier.6"
  trainable = {
      ".".join(k.key for k in path[:-1]): t
      for path, t in jax.tree_util.tree_flatten_with_path(setup.trainable)[0]}
  assert trainable.pop("classifier_6") and not any(trainable.values())


def test_vgg_classifier_options_reach_the_module(tiny_config):
  tiny_config.model = "vgg11_bn"
  tiny_config.classifier_width = 16
  tiny_config.classifier_dropout = 0.0
  setup = training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
  assert (setup.module.classifier_width, setup.module.classifier_dropout) == (16, 0.0)
  tiny_config.classifier_dropout = -1.0
  setup = training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
  assert setup.module.classifier_dropout == 0.5


def test_unknown_finetune_layer_is_refused(tiny_config):
  tiny_config.mode = "finetune"
  tiny_config.trainable_layers = "layer5"
  with pytest.raises(ValueError, match="layer5"):
    training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)


def fake_pretrained(setup, config, seed=0):
  """Random variables with the model's structure (what load_weights would return)."""
  rng = np.random.default_rng(seed)
  abstract = jax.eval_shape(
      lambda: models.init(setup.module, jax.random.key(0), config.image_size))
  return jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype), abstract)


def test_initial_state_starts_from_the_pretrained_weights(tiny_config, monkeypatch, tmp_path):
  path = tmp_path / "weights.pth"
  path.write_bytes(b"")
  tiny_config.mode = "finetune"
  tiny_config.pretrained = str(path)
  setup = training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
  weights = fake_pretrained(setup, tiny_config)
  calls = []

  def load_weights(arch, spec, *, num_classes, head, key):
    calls.append((arch, spec, num_classes, head))
    return weights

  monkeypatch.setattr(porting, "load_weights", load_weights)
  state = training_setup.initial_state(setup, tiny_config)
  assert calls == [("resnet18", str(path), 10, "linear")]
  assert bits(state.variables) == bits(weights)
  assert int(state.step) == 0


def test_pretrained_weights_of_another_model_are_refused(tiny_config, monkeypatch):
  tiny_config.mode = "finetune"
  setup = training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
  other = training_setup.build_setup(tiny_config, num_classes=7, steps_per_epoch=3)
  monkeypatch.setattr(porting, "load_weights",
                      lambda *args, **kwargs: fake_pretrained(other, tiny_config))
  with pytest.raises(ValueError, match="config.pretrained"):
    training_setup.initial_state(setup, tiny_config)


def test_lr_scales_scale_the_updates_of_the_prefixed_layers(tiny_config):
  _, before, plain = train_a_few_steps(tiny_config, num_steps=1)
  tiny_config.lr_scales = "layer4=0.25, fc=2"
  _, _, scaled = train_a_few_steps(tiny_config, num_steps=1)
  factors = {"layer4": 0.25, "fc": 2.0}
  for (path, old), new, ref in zip(jax.tree_util.tree_flatten_with_path(before.params)[0],
                                   jax.tree.leaves(scaled.params),
                                   jax.tree.leaves(plain.params), strict=True):
    factor = factors.get(path[0].key.split("_")[0], 1.0)
    new, old, ref = np.asarray(new), np.asarray(old), np.asarray(ref)
    # Each run rounds its new parameters (eps |p|); the two jitted programs may round the
    # gradients otherwise (resnet18: ~sqrt(layers * fan-in) eps of the update's scale).
    atol = (float_tolerance.EPS * (np.abs(new) + factor * np.abs(ref))
            + math.sqrt(18 * 3 * 3 * 512) * float_tolerance.EPS * factor * np.abs(ref - old).max())
    np.testing.assert_array_less(np.abs((new - old) - factor * (ref - old)), atol,
                                 err_msg=str(path))


@pytest.mark.parametrize("value", ["layer4", "layer4=0", "layer4=-1", "=2", "layer4=x"])
def test_bad_lr_scales_are_refused(tiny_config, value):
  tiny_config.lr_scales = value
  with pytest.raises(ValueError, match="lr_scales"):
    training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)


def test_lr_scales_of_an_unknown_layer_are_refused(tiny_config):
  tiny_config.lr_scales = "layer5=0.5"
  with pytest.raises(ValueError, match="layer5"):
    training_setup.build_setup(tiny_config, num_classes=10, steps_per_epoch=3)
