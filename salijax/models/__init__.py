"""torchvision-exact Flax ResNet, VGG, EfficientNet-B0, MobileNetV2, MobileNetV3-Large and
ViT-B/16 classifiers, with taps at every named layer.

    from salijax import models
    module = models.create("resnet18", num_classes=10, head="mlp")
    variables = models.init(module, jax.random.key(0))
    clf = models.classifier(module, variables)        # layer = "layer4"
"""

from salijax.models.architectures import (
    ARCHITECTURES,
    classifier,
    create,
    default_tap,
    head_prefix,
    init,
    tap_names,
    tap_path,
)
from salijax.models.efficientnet import EfficientNetB0
from salijax.models.heads import HEADS
from salijax.models.mobilenet_v2 import MobileNetV2
from salijax.models.mobilenet_v3 import MobileNetV3Large
from salijax.models.normalization import IMAGENET_MEAN, IMAGENET_STD
from salijax.models.parameter_blocks import parameter_blocks
from salijax.models.resnet import ResNet
from salijax.models.trainable import trainable_mask
from salijax.models.vgg import VGG
from salijax.models.vit import VIT_B_16, VisionTransformer, ViTShape

__all__ = [
    "ARCHITECTURES",
    "EfficientNetB0",
    "HEADS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MobileNetV2",
    "MobileNetV3Large",
    "ResNet",
    "VGG",
    "VIT_B_16",
    "ViTShape",
    "VisionTransformer",
    "classifier",
    "create",
    "default_tap",
    "head_prefix",
    "init",
    "parameter_blocks",
    "tap_names",
    "tap_path",
    "trainable_mask",
]
