"""Each pretrained model sees an image as its torchvision weights' evaluation transform does."""

import numpy as np
import pytest

from salijax import porting
from salijax.pipeline import explain_image, model_loading

pytestmark = pytest.mark.xdist_group("pipeline_eval_preprocessing")


def test_manifest_transforms():
  assert porting.eval_preprocessing("efficientnet_b0") == {
      "resize": 256, "crop": 224, "interpolation": "bicubic"}
  assert porting.eval_preprocessing("mobilenet_v2", "IMAGENET1K_V2")["resize"] == 232
  for arch in ("resnet18", "vgg11", "mobilenet_v2", "mobilenet_v3_large"):
    assert porting.eval_preprocessing(arch) == porting.torchvision_checkpoints.DEFAULT_PREPROCESSING
  with pytest.raises(ValueError, match="weights"):
    porting.eval_preprocessing("efficientnet_b0", "IMAGENET1K_V2")


@pytest.fixture(scope="module")
def efficientnet(torch, torchvision, tmp_path_factory):
  """`pretrained_model` of a random-weight torchvision EfficientNet-B0 saved with torch.save."""
  path = tmp_path_factory.mktemp("pth") / "random_efficientnet_b0.pth"
  torch.save(torchvision.models.efficientnet_b0(weights=None).state_dict(), path)
  return model_loading.pretrained_model("efficientnet_b0", path)


def test_efficientnet_sees_torchvisions_bicubic_resize_and_crop(torchvision, efficientnet):
  """A 512 x 600 image: torchvision's Resize(256, bicubic) + CenterCrop(224) on the PIL image
  equals salijax's input to within one 8-bit step (both are PIL's bicubic at scale 1/2 with
  the same sample positions); the bilinear resize differs by more."""
  from PIL import Image  # noqa: PLC0415

  transforms = torchvision.transforms
  assert (efficientnet.image_size, efficientnet.crop_fraction,
          efficientnet.interpolation) == (224, 224 / 256, "bicubic")
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (512, 600, 3), dtype=np.uint8)
  expected = np.asarray(transforms.Compose([
      transforms.Resize(256, transforms.InterpolationMode.BICUBIC),
      transforms.CenterCrop(224)])(Image.fromarray(pixels)), np.float32) / 255
  got = explain_image.model_input(pixels.astype(np.float32) / 255, efficientnet)
  assert got.shape == (224, 224, 3)
  assert np.abs(got - expected).max() <= 1 / 255 + 1e-6
  bilinear = model_loading.LoadedModel(**{**vars(efficientnet), "interpolation": "bilinear"})
  assert np.abs(explain_image.model_input(pixels.astype(np.float32) / 255, bilinear)
                - expected).max() > 2 / 255
