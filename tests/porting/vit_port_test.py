"""Tests of the ViT port: key table vs torchvision's keys, .pth files through salijax's own
reader, the head, image sizes, errors, and the checkpoint entry of the manifest."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.porting import torchvision_checkpoints
from salijax.porting.pth_reader import read_pth
from salijax.porting.torchvision_to_flax import DROPPED, key_table, torchvision_to_flax

THIRD_PARTY = pathlib.Path(__file__).parents[2] / "third_party" / "torchvision"
REFERENCE = [(key, tuple(shape)) for key, shape, _ in json.loads(
    (THIRD_PARTY / "vit_b_16_state_dict_keys.json").read_text())["vit_b_16"]]
TINY = models.ViTShape(patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)


def _leaf(tree, path):
  for name in path:
    tree = tree[name]
  return tree


def test_key_table_is_torchvisions_state_dict_in_order_with_its_shapes():
  module = models.create("vit_b_16")
  table = key_table(module)
  assert list(table) == [key for key, _ in REFERENCE]
  assert all(entry is not DROPPED for entry in table.values())
  shapes = jax.eval_shape(lambda: models.init(module, jax.random.key(0)))
  for key, torch_shape in REFERENCE:
    entry = table[key]
    assert entry.transform.torch_shape(_leaf(shapes, (entry.collection, *entry.path)).shape) == (
        torch_shape), key


def _tiny_state_dict(torch, image_size=32, num_classes=4):
  from torchvision.models import vision_transformer  # noqa: PLC0415 - needs torch
  torch.manual_seed(0)
  model = vision_transformer.VisionTransformer(
      image_size=image_size, patch_size=TINY.patch_size, num_layers=TINY.num_layers,
      num_heads=TINY.num_heads, hidden_dim=TINY.hidden_dim, mlp_dim=TINY.mlp_dim,
      num_classes=num_classes)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.normal_()
  return model.state_dict()


@pytest.mark.parametrize("legacy", [False, True])
def test_saved_state_dict_ports_through_the_pth_reader(torch, tmp_path, legacy):
  """torch.save -> read_pth -> the port: every array lands, transformed, where the table says."""
  state_dict = _tiny_state_dict(torch)
  path = tmp_path / "vit.pth"
  torch.save(state_dict, path, _use_new_zipfile_serialization=not legacy)
  module = models.VisionTransformer(shape=TINY)
  variables = torchvision_to_flax(module, read_pth(path))
  table = key_table(module.clone(num_classes=4))
  assert len(jax.tree.leaves(variables)) == len(state_dict) == len(table)
  for key, tensor in state_dict.items():
    entry = table[key]
    expected = entry.transform.to_flax(tensor.numpy())
    np.testing.assert_array_equal(_leaf(variables, (entry.collection, *entry.path)), expected)
  block = variables["params"]["encoder"]["layers"]["encoder_layer_1"]["self_attention"]
  torch_in_proj = state_dict["encoder.layers.encoder_layer_1.self_attention.in_proj_weight"]
  np.testing.assert_array_equal(block["in_proj_kernel"], torch_in_proj.numpy().T)


def test_variables_are_for_the_checkpoints_image_size(torch):
  state_dict = {k: v.numpy() for k, v in _tiny_state_dict(torch, image_size=48).items()}
  module = models.VisionTransformer(shape=TINY)
  variables = torchvision_to_flax(module, state_dict)
  assert variables["params"]["encoder"]["pos_embedding"].shape == (1, 1 + 6 * 6, 32)
  logits = module.clone(num_classes=4).apply(variables, jnp.zeros((1, 48, 48, 3)))
  assert logits.shape == (1, 4)


def test_new_head_is_the_one_init_draws(torch):
  """Another class count: the checkpoint's head is dropped and `key` draws the head that
  `models.init` draws at "heads" (an mlp head: a linear one starts at zero)."""
  state_dict = {k: v.numpy() for k, v in _tiny_state_dict(torch).items()}
  module = models.VisionTransformer(shape=TINY)
  key = jax.random.key(7)
  variables = torchvision_to_flax(module, state_dict, num_classes=3, head="mlp", key=key)
  drawn = models.init(module.clone(num_classes=3, head="mlp"), key, 32)["params"]["heads"]
  assert jax.tree.structure(variables["params"]["heads"]) == jax.tree.structure(drawn)
  for ported, expected in zip(jax.tree.leaves(variables["params"]["heads"]),
                              jax.tree.leaves(drawn), strict=True):
    np.testing.assert_array_equal(ported, expected)
  np.testing.assert_array_equal(variables["params"]["class_token"], state_dict["class_token"])


def test_mismatches_are_all_reported(torch):
  state_dict = {k: v.numpy() for k, v in _tiny_state_dict(torch).items()}
  del state_dict["encoder.layers.encoder_layer_0.ln_2.bias"]
  key = "encoder.layers.encoder_layer_1.self_attention.in_proj_weight"
  state_dict[key] = np.zeros((3 * 32, 16), np.float32)
  with pytest.raises(ValueError) as error:
    torchvision_to_flax(models.VisionTransformer(shape=TINY), state_dict)
  message = str(error.value)
  assert "1 missing keys: encoder.layers.encoder_layer_0.ln_2.bias [32]" in message
  assert f"1 shape mismatches: {key}: expected [96, 32], got [96, 16]" in message


def test_arch_must_be_a_name_or_a_salijax_model():
  with pytest.raises(TypeError, match="arch: expected an architecture name or a salijax model"):
    torchvision_to_flax(object(), {})


def test_manifest_entry_fits_the_model():
  """The checkpoint's file name carries its SHA-256 prefix; its parameter count is the model's."""
  entry = torchvision_checkpoints.manifest()["checkpoints"]["vit_b_16"]["IMAGENET1K_V1"]
  assert entry["url"] == "https://download.pytorch.org/models/vit_b_16-c867db91.pth"
  assert entry["sha256"] == "c867db91"
  assert entry["min_size"] == [224, 224]
  shapes = jax.eval_shape(lambda: models.init(models.create("vit_b_16"), jax.random.key(0)))
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == entry["num_params"]
