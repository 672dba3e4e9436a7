"""torchvision's ResNet (resnet18, resnet34, resnet50) in Flax linen, NHWC.

Architecture as torchvision's (v1.5: a Bottleneck strides in its 3x3 conv):
normalisation `(x - mean) / std`; conv1 7x7 stride 2 pad 3 (no bias); bn1;
ReLU; max-pool 3x3 stride 2 pad 1 (padding never wins: it is -inf); four
stages of residual blocks (64, 128, 256, 512 planes; the first block of
stages 2-4 strides 2; a block whose stride or width changes has a 1x1 conv +
BatchNorm "downsample" on its skip path); global average pool; the head (see
`salijax.models.heads`). Build one with `salijax.models.create`.

Taps, each the output of that torchvision module (read and replaced by
`salijax.models.classifier(module, variables, layer=tap)`):
  "conv1", "bn1", "relu", "maxpool": the stem, in order.
  "layerI.J.convK", "layerI.J.bnK": inside block J of stage I, the output of
    its K-th conv and of the BatchNorm after it (before the ReLU that follows;
    for the last BatchNorm, before the residual addition). K = 1, 2 (basic
    block) or 1, 2, 3 (bottleneck).
  "layerI.J.downsample": the block's skip path after its 1x1 conv and
    BatchNorm (blocks that have one); a tap value there replaces the skip
    input of the addition, the main path is computed from the images.
  "layerI.J": the block's output, ReLU(main path + skip).
  "layerI": the stage's output (= its last block's output).
  "avgpool": the global average, f32[B,1,1,C].
A block's ReLU is no tap: torchvision applies one ReLU module twice in a
block, so "layerI.J.relu" names no single activation.

Flax module names follow `salijax.models.naming`: "conv1", "bn1", "relu",
"maxpool", "layer1_0/{conv1,bn1,conv2,bn2[,conv3,bn3]}", "layer2_0/downsample_0"
(conv), "layer2_0/downsample_1" (BatchNorm), "avgpool", "fc" (or "fc_1", "fc_4"
for head="mlp"); `ResNet.tap_path` gives the module whose output is a tap.

Initialisation (torchvision's): convs kaiming normal (fan_out, ReLU gain),
BatchNorm scale 1 and bias 0, and the head's Dense layers torch's default
Linear weight init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with a zero bias.
"""

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax

from salijax.models import heads, naming, normalization, param_layers
from salijax.models.param_layers import ParamLayer
from salijax.models.parameter_free_layers import Activation, GlobalAvgPool, MaxPool

KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
TORCH_LINEAR_KERNEL = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
STAGE_PLANES = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4


class ConvSpec(NamedTuple):
  """One conv of a block's main path."""

  size: int
  stride: int
  features: int


def block_convs(bottleneck: bool, planes: int, stride: int) -> tuple[ConvSpec, ...]:
  """The main-path convs of a basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) block."""
  if bottleneck:
    return (ConvSpec(1, 1, planes), ConvSpec(3, stride, planes),
            ConvSpec(1, 1, planes * BOTTLENECK_EXPANSION))
  return (ConvSpec(3, stride, planes), ConvSpec(3, 1, planes))


class BlockSpec(NamedTuple):
  """Where a residual block sits and how it is shaped."""

  path: str  # torchvision name, "layer2.0"
  stage: str  # "layer2"
  last_in_stage: bool
  planes: int
  stride: int
  downsample: bool


class ResidualBlock(nn.Module):
  """torchvision's BasicBlock (`bottleneck=False`) or Bottleneck (True).

  `__call__(x f32[B,H,W,Cin], train) -> f32[B,H/stride,W/stride,Cout]`.
  """

  planes: int
  stride: int
  downsample: bool
  bottleneck: bool
  torch_name: str  # e.g. "layer2.0"
  bn_trainable: tuple[str, ...] | None = None
  relu: Callable[[jax.Array], jax.Array] = nn.relu

  def _batch_norm(self, name: str, train: bool) -> nn.BatchNorm:
    return normalization.batch_norm(f"{self.torch_name}.{naming.torch_name([name])}", train=train,
                                    bn_trainable=self.bn_trainable, name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    convs = block_convs(self.bottleneck, self.planes, self.stride)
    y = x
    for k, conv in enumerate(convs, start=1):
      pad = conv.size // 2
      y = nn.Conv(conv.features, (conv.size, conv.size), strides=(conv.stride, conv.stride),
                  padding=((pad, pad), (pad, pad)), use_bias=False,
                  kernel_init=KAIMING_FAN_OUT, name=f"conv{k}")(y)
      y = self._batch_norm(f"bn{k}", train)(y)
      if k < len(convs):
        y = self.relu(y)
    skip = x
    if self.downsample:
      skip = nn.Conv(convs[-1].features, (1, 1), strides=(self.stride, self.stride),
                     use_bias=False, kernel_init=KAIMING_FAN_OUT, name="downsample_0")(x)
      skip = self._batch_norm("downsample_1", train)(skip)
    return self.relu(y + skip)


class ResNet(nn.Module):
  """torchvision's ResNet (see the module doc for the architecture and the taps).

  `__call__(images f32[B,H,W,3] in [0, 1], train=False)` -> logits
  f32[B,num_classes] (no softmax). train=True uses dropout (rng "dropout",
  head="mlp" only) and batch statistics in the BatchNorms that `bn_trainable`
  selects (mutable "batch_stats").

  Attributes:
    stage_sizes: blocks per stage, (2, 2, 2, 2) for resnet18.
    bottleneck: Bottleneck blocks (resnet50) instead of basic ones.
    num_classes: the number of logits.
    head: "linear" or "mlp" (`salijax.models.heads`).
    normalize: apply `(images - mean) / std` first.
    mean, std: per-channel normalisation constants (ImageNet's by default).
    bn_trainable: None (every BatchNorm follows `train`) or the torchvision
      prefixes of the BatchNorms that do; the others always use their running
      statistics.
    relu: the activation at every ReLU (stem, blocks, mlp head) (nn.relu;
      `module.clone(relu=salijax.guided_relu.guided_relu)` is the same
      model, with the same variables, for guided backpropagation).
  """

  stage_sizes: tuple[int, ...]
  bottleneck: bool
  num_classes: int = 1000
  head: str = "linear"
  normalize: bool = True
  mean: tuple[float, ...] = normalization.IMAGENET_MEAN
  std: tuple[float, ...] = normalization.IMAGENET_STD
  bn_trainable: tuple[str, ...] | None = None
  relu: Callable[[jax.Array], jax.Array] = nn.relu

  def blocks(self) -> tuple[BlockSpec, ...]:
    """Every residual block, in forward order."""
    expansion = BOTTLENECK_EXPANSION if self.bottleneck else 1
    in_channels = STAGE_PLANES[0]
    specs = []
    for i, (size, planes) in enumerate(zip(self.stage_sizes, STAGE_PLANES, strict=True)):
      for j in range(size):
        stride = 2 if i > 0 and j == 0 else 1
        specs.append(BlockSpec(
            path=f"layer{i + 1}.{j}", stage=f"layer{i + 1}", last_in_stage=j == size - 1,
            planes=planes, stride=stride,
            downsample=stride != 1 or in_channels != planes * expansion))
        in_channels = planes * expansion
    return tuple(specs)

  def tap_names(self) -> tuple[str, ...]:
    """Every tap name, in forward order (see the module doc)."""
    names = ["conv1", "bn1", "relu", "maxpool"]
    for block in self.blocks():
      for k in range(1, len(block_convs(self.bottleneck, block.planes, block.stride)) + 1):
        names += [f"{block.path}.conv{k}", f"{block.path}.bn{k}"]
      if block.downsample:
        names.append(f"{block.path}.downsample")
      names.append(block.path)
      if block.last_in_stage:
        names.append(block.stage)
    names.append("avgpool")
    return tuple(names)

  def default_tap(self) -> str:
    """The last stage, "layer4"."""
    return self.blocks()[-1].stage

  def head_spec(self) -> heads.HeadSpec:
    """The replaceable head ("fc")."""
    return heads.HeadSpec(kind=self.head, num_classes=self.num_classes, prefix="fc",
                          kernel_init=TORCH_LINEAR_KERNEL)

  def param_layers(self) -> tuple[ParamLayer, ...]:
    """Every layer with parameters, in torchvision's state_dict order."""
    layers = [ParamLayer("conv1", param_layers.CONV), ParamLayer("bn1", param_layers.BATCH_NORM)]
    for block in self.blocks():
      for k in range(1, len(block_convs(self.bottleneck, block.planes, block.stride)) + 1):
        layers += [ParamLayer(f"{block.path}.conv{k}", param_layers.CONV),
                   ParamLayer(f"{block.path}.bn{k}", param_layers.BATCH_NORM)]
      if block.downsample:
        layers += [ParamLayer(f"{block.path}.downsample.0", param_layers.CONV),
                   ParamLayer(f"{block.path}.downsample.1", param_layers.BATCH_NORM)]
    layers += [ParamLayer(name, param_layers.LINEAR) for name in self.head_spec().layers()]
    return tuple(layers)

  def tap_path(self, tap: str) -> str:
    """The `/`-path of the Flax module whose output is `tap` ("layer4" -> "layer4_1")."""
    stages = {block.stage: block.path for block in self.blocks() if block.last_in_stage}
    name = stages.get(tap, tap)
    if name.endswith(".downsample"):
      name += ".1"
    return "/".join(naming.flax_path(name))

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    normalization.check_images(images)
    x = normalization.normalize_images(images, self.mean, self.std) if self.normalize else images
    x = nn.Conv(64, (7, 7), strides=(2, 2), padding=((3, 3), (3, 3)), use_bias=False,
                kernel_init=KAIMING_FAN_OUT, name="conv1")(x)
    x = normalization.batch_norm("bn1", train=train, bn_trainable=self.bn_trainable,
                                 name="bn1")(x)
    x = Activation(self.relu, name="relu")(x)
    x = MaxPool(3, 2, 1, name="maxpool")(x)
    for block in self.blocks():
      x = ResidualBlock(
          planes=block.planes, stride=block.stride, downsample=block.downsample,
          bottleneck=self.bottleneck, torch_name=block.path, bn_trainable=self.bn_trainable,
          relu=self.relu, name=naming.flax_path(block.path)[-1])(x, train)
    x = GlobalAvgPool(name="avgpool")(x)
    return heads.classification_head(x.reshape(x.shape[0], -1), self.head_spec(), train,
                                     relu=self.relu)
