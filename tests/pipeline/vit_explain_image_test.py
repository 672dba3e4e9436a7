"""explain_images on a Vision Transformer: its token layer's CAMs, at ViT's eval preprocessing."""

import jax
import numpy as np
import pytest
from PIL import Image

from experiments.configs import benchmark as benchmark_configs
from salijax import methods, models, porting
from salijax.data.image_file import read_image
from salijax.pipeline import benchmark_config, explain_image, model_loading
from salijax.pipeline.model_loading import LoadedModel

METHODS = ("gradcam", "layercam", "score_cam")
VIT_EVAL = porting.eval_preprocessing("vit_b_16")  # resize 256, crop 224, bilinear
SEED = 5


@pytest.fixture(scope="module")
def vit_model():
  """A tiny random ViT (32 px, patch 8) shown images as torchvision's vit_b_16 weights are:
  the shorter side resized to 256/224 of the input, the centre crop."""
  shape = models.ViTShape(patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
  module = models.VisionTransformer(shape=shape, num_classes=3)
  variables = models.init(module, jax.random.key(0), 32)
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape),
                        variables["params"])
  return LoadedModel(name="vit", classifier=models.classifier(module, {"params": params}),
                     class_names=("a", "b", "c"), image_size=32,
                     crop_fraction=VIT_EVAL["crop"] / VIT_EVAL["resize"])


def test_vit_maps_are_the_methods_on_the_model_input(vit_model, tmp_path):
  path = tmp_path / "wide.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)).save(path)
  (record,) = explain_image.explain_images([str(path)], [vit_model], METHODS, tmp_path / "out",
                                           seed=SEED, top_k=2)
  with np.load(record["arrays"]) as arrays:
    image = arrays["vit/image"]
    np.testing.assert_array_equal(image, explain_image.model_input(read_image(path), vit_model))
    label = np.array([record["predictions"]["vit"][0]["class"]], np.int32)
    for index, method in enumerate(METHODS):
      key = jax.random.fold_in(jax.random.key(SEED), index)
      expected = np.asarray(methods.get(method)(vit_model.classifier, image[None], label,
                                                key=key))[0]
      assert expected.shape == (32, 32) and expected.max() > 0
      np.testing.assert_array_equal(arrays[f"vit/{method}"], expected)


def test_pretrained_vit_b_16_is_shown_torchvisions_eval_crop(monkeypatch, tmp_path):
  """torchvision's ViT_B_16_Weights.IMAGENET1K_V1 preprocessing: resize the shorter side to
  256 (bilinear), centre crop 224. The port is replaced by the variables' shapes (vit_b_16's
  weights are 330 MB); what is checked is the geometry `pretrained_model` picks."""
  path = tmp_path / "vit_b_16.pth"
  path.write_bytes(b"")
  module = models.create("vit_b_16")
  shapes = jax.eval_shape(lambda: models.init(module, jax.random.key(0)))
  monkeypatch.setattr(model_loading.porting, "read_pth",
                      lambda _: {"heads.head.weight": np.zeros((1000, 768), np.float32)})
  monkeypatch.setattr(model_loading.porting, "torchvision_to_flax", lambda *_, **__: shapes)
  loaded = model_loading.pretrained_model("vit_b_16", path)
  assert loaded.image_size == 224
  assert round(loaded.image_size / loaded.crop_fraction) == 256
  assert loaded.classifier.variables is shapes


def test_benchmark_config_takes_vit_b_16_at_a_multiple_of_its_patch():
  config = benchmark_configs.get_config()
  config.models = "resnet18,vit_b_16"
  with pytest.raises(ValueError, match="image_size.*multiple of vit_b_16's patch size 16"):
    benchmark_config.validate_config(config)  # the default 72 px
  config.image_size = config.synthetic.image_size = 80
  benchmark_config.validate_config(config)
  assert [run.model for run in benchmark_config.runs(config)] == ["resnet18", "vit_b_16"]
