"""torchvision's MobileNetV2 (mobilenet_v2, width 1.0) in Flax linen, NHWC.

Architecture as torchvision's: normalisation `(x - mean) / std`; `features`:
"features.0" a 3x3 stride 2 Conv2dNormActivation to 32 channels with ReLU6;
"features.1" ... "features.17" inverted residual blocks (expansion t, output
channels c, n blocks, the first of each group with stride s: (1, 16, 1, 1),
(6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
(6, 320, 1, 1)); "features.18" a 1x1 Conv2dNormActivation to 1280 channels
with ReLU6; a global average pool (a function in torchvision, so no tap); the
classifier Dropout(0.2) ("classifier.0", training only) and the head
("classifier.1", `salijax.models.heads`). BatchNorm epsilon 1e-5, momentum
0.1 (torch's defaults). Build one with `salijax.models.create`.

An inverted residual block "features.N" with input width i, output width o:
`conv` = [a 1x1 Conv2dNormActivation to t * i channels with ReLU6 (t > 1
only)], a 3x3 depthwise Conv2dNormActivation (stride s) with ReLU6, a 1x1
conv to o channels and a BatchNorm; the block adds its input when s = 1 and
i = o.

Taps, each the output of that torchvision module (read and replaced by
`salijax.models.classifier(module, variables, layer=tap)`), in forward order:
  "features.0.0", "features.0.1", "features.0.2", "features.0": conv, BatchNorm,
    ReLU6, and the Conv2dNormActivation's output (= its ReLU6's).
  "features.N.conv.K.0" ... "features.N.conv.K" for each Conv2dNormActivation K
    of block N, then "features.N.conv.L" (its last conv), "features.N.conv.L+1"
    (its last BatchNorm), "features.N.conv" (= that BatchNorm's output) and
    "features.N" (the block's output, after the residual addition).
  "features.18.0" ... "features.18": the last Conv2dNormActivation; the default
    explained layer is "features.18" (f32[B,H/32,W/32,1280]).

Flax module names follow `salijax.models.naming`: "features_0_0", ...,
"features_1" (a block) with "conv_0_0", "conv_0_1", ... inside,
"features_18_2", "classifier_1" (or "classifier_1_1", "classifier_1_4" for
head="mlp").

Initialisation (torchvision's): convs kaiming normal (fan_out), BatchNorm
scale 1 and bias 0, the head's Dense layers N(0, 0.01) with zero bias.
"""

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from salijax.models import heads, mobile_blocks, normalization, param_layers
from salijax.models.mobile_blocks import Norm, Tap
from salijax.models.param_layers import ParamLayer

NORM = Norm(epsilon=1e-5, momentum=0.1)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# (expansion t, output channels c, blocks n, first stride s), torchvision's table.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))
DROPOUT = 0.2


class BlockSpec(NamedTuple):
  """One inverted residual block: its torchvision name and shape."""

  name: str  # "features.3"
  in_channels: int
  out_channels: int
  stride: int
  expansion: int

  @property
  def residual(self) -> bool:
    return self.stride == 1 and self.in_channels == self.out_channels

  def expanded(self) -> int:
    return self.in_channels * self.expansion

  def conv_names(self) -> tuple[str, ...]:
    """The local names of its Conv2dNormActivations ("conv.0"[, "conv.1"])."""
    return tuple(f"conv.{k}" for k in range(2 if self.expansion != 1 else 1))


def blocks() -> tuple[BlockSpec, ...]:
  """Every inverted residual block, "features.1" to "features.17"."""
  specs, channels = [], STEM_CHANNELS
  for t, c, n, s in SETTINGS:
    for i in range(n):
      specs.append(BlockSpec(f"features.{len(specs) + 1}", channels, c, s if i == 0 else 1, t))
      channels = c
  return tuple(specs)


def _block_taps(block: BlockSpec) -> list[Tap]:
  taps = []
  for local in block.conv_names():
    taps += mobile_blocks.cna_taps(f"{block.name}.{local}", activation=True)
  last = len(block.conv_names())
  taps += [Tap(f"{block.name}.conv.{last}"), Tap(f"{block.name}.conv.{last + 1}")]
  return [*taps, Tap(f"{block.name}.conv", taps[-1].name), Tap(block.name)]


def _block_param_layers(block: BlockSpec) -> list[ParamLayer]:
  layers = []
  for local in block.conv_names():
    layers += mobile_blocks.cna_param_layers(f"{block.name}.{local}")
  last = len(block.conv_names())
  return layers + [ParamLayer(f"{block.name}.conv.{last}", param_layers.CONV),
                   ParamLayer(f"{block.name}.conv.{last + 1}", param_layers.BATCH_NORM)]


class InvertedResidual(nn.Module):
  """A MobileNetV2 block (module doc): f32[B,H,W,i] -> f32[B,H/s,W/s,o]."""

  spec: BlockSpec
  bn_trainable: tuple[str, ...] | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    spec, y = self.spec, x
    for local in spec.conv_names():
      depthwise = local == spec.conv_names()[-1]
      y = mobile_blocks.conv_norm_activation(
          y, f"{spec.name}.{local}", spec.expanded(), norm=NORM, activation=jax.nn.relu6,
          train=train, bn_trainable=self.bn_trainable, kernel=3 if depthwise else 1,
          stride=spec.stride if depthwise else 1, groups=spec.expanded() if depthwise else 1)
    last = len(spec.conv_names())
    y = mobile_blocks.conv(y, f"{spec.name}.conv.{last}", spec.out_channels)
    y = mobile_blocks.batch_norm(f"{spec.name}.conv.{last + 1}", NORM, train=train,
                                 bn_trainable=self.bn_trainable)(y)
    return x + y if spec.residual else y


class MobileNetV2(mobile_blocks.MobileNetwork):
  """torchvision's MobileNetV2 (see the module doc for the architecture and the taps).

  `__call__(images f32[B,H,W,3] in [0, 1], train=False)` -> logits
  f32[B,num_classes] (no softmax). train=True uses dropout (rng "dropout") and
  batch statistics in the BatchNorms that `bn_trainable` selects (mutable
  "batch_stats").

  Attributes: `mobile_blocks.MobileNetwork`'s.
  """

  def taps(self) -> tuple[Tap, ...]:
    taps = mobile_blocks.cna_taps("features.0", activation=True)
    for block in blocks():
      taps += _block_taps(block)
    return tuple(taps + mobile_blocks.cna_taps("features.18", activation=True))

  def default_tap(self) -> str:
    """The last Conv2dNormActivation, "features.18"."""
    return "features.18"

  def head_spec(self) -> heads.HeadSpec:
    """The replaceable head ("classifier.1")."""
    return heads.HeadSpec(kind=self.head, num_classes=self.num_classes, prefix="classifier.1",
                          kernel_init=mobile_blocks.TORCH_LINEAR_NORMAL)

  def param_layers(self) -> tuple[ParamLayer, ...]:
    """Every layer with parameters, in torchvision's state_dict order."""
    layers = mobile_blocks.cna_param_layers("features.0")
    for block in blocks():
      layers += _block_param_layers(block)
    layers += mobile_blocks.cna_param_layers("features.18")
    return tuple(layers + [ParamLayer(n, param_layers.LINEAR) for n in self.head_spec().layers()])

  def tap_path(self, tap: str) -> str:
    """The `/`-path of the Flax module whose output is `tap` ("features.18" ->
    "features_18_2", "features.2.conv" -> "features_2/conv_3")."""
    return mobile_blocks.tap_paths(self.taps())[tap]

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    normalization.check_images(images)
    x = normalization.normalize_images(images, self.mean, self.std) if self.normalize else images
    cna = dict(norm=NORM, activation=jax.nn.relu6, train=train, bn_trainable=self.bn_trainable)
    x = mobile_blocks.conv_norm_activation(x, "features.0", STEM_CHANNELS, kernel=3, stride=2,
                                           **cna)
    for block in blocks():
      x = InvertedResidual(block, self.bn_trainable, name=block.name.replace(".", "_"))(x, train)
    x = mobile_blocks.conv_norm_activation(x, "features.18", LAST_CHANNELS, **cna)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(DROPOUT, deterministic=not train)(x)
    return heads.classification_head(x, self.head_spec(), train)
