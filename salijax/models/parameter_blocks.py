"""The blocks of a salijax model that parameter randomisation re-draws together.

`parameter_blocks(clf)` maps each top-level Flax module of a salijax model's
variables to its block, named as torchvision names modules:
  ResNet: "stem" (conv1 + bn1), every residual block ("layer1.0", ...,
    "layer4.1"; its convs, BatchNorms and downsample), the head ("fc", with
    "fc.1" and "fc.4" for head="mlp").
  VGG: every conv of `features` by its index ("features.0", ...), with the
    BatchNorm after it in the `_bn` variants, then "classifier.0",
    "classifier.3" and the head ("classifier.6").
  ViT: "class_token", "conv_proj", "encoder" (the positional embedding, every
    block and encoder.ln: one top-level Flax module) and the head ("heads.head").
  EfficientNet-B0, MobileNetV2, MobileNetV3-Large: every top-level Flax module
    by its torchvision name: the convs of the stem and the last
    Conv2dNormActivation ("features.0.0", "features.18.0"; their BatchNorms join
    them), every block ("features.2.1" in EfficientNet-B0, "features.5" in the
    MobileNets; all its convs, BatchNorms and squeeze-excitation),
    "classifier.0" (MobileNetV3-Large) and the head.

    parameter_blocks(models.classifier(module, variables))
    # {"conv1": "stem", "bn1": "stem", "layer1_0": "layer1.0", ..., "fc": "fc"}
"""

from typing import Any

from salijax.classifier import Classifier
from salijax.compute_dtype import original
from salijax.models import architectures, naming, param_layers, resnet, vit
from salijax.wrapping.linen_model import LinenModel
from salijax.wrapping.wrapped_classifier import WrappedLogits

STEM = "stem"


def _own_block(module: architectures.Model, layer: str) -> str:
  """The block of a layer that starts one (a BatchNorm joins the layer before it)."""
  head = module.head_spec().prefix
  if naming.is_under(layer, head):
    return head
  if isinstance(module, resnet.ResNet):
    parts = layer.split(".")
    return ".".join(parts[:2]) if parts[0].startswith("layer") else STEM
  if isinstance(module, vit.VisionTransformer):
    return layer.split(".")[0]
  return naming.torch_name(naming.flax_path(layer)[:1])


def _salijax_model(clf: Classifier) -> architectures.Model | None:
  """The salijax model a Classifier runs (`salijax.models.classifier`), or None."""
  logits = original(clf.apply)  # a compute dtype's cast: the model under it
  if isinstance(logits, WrappedLogits) and isinstance(logits.model, LinenModel):
    module: Any = logits.model.module
    if isinstance(module, architectures.Model):
      return module
  return None


def parameter_blocks(clf: Classifier) -> dict[str, str] | None:
  """Top-level variable name -> block of a salijax model's Classifier; None for other models."""
  module = _salijax_model(clf)
  if module is None:
    return None
  blocks: dict[str, str] = {}
  block = None
  for layer in module.param_layers():
    if layer.kind != param_layers.BATCH_NORM or block is None:
      block = _own_block(module, layer.name)
    blocks[naming.flax_path(layer.name)[0]] = block
  return blocks
