"""torchvision's MobileNetV3-Large (mobilenet_v3_large, width 1.0) in Flax linen, NHWC.

Architecture as torchvision's: normalisation `(x - mean) / std`; `features`:
"features.0" a 3x3 stride 2 Conv2dNormActivation to 16 channels with
Hardswish; "features.1" ... "features.15" inverted residual blocks (`BLOCKS`:
input, kernel, expanded and output channels, squeeze-excitation, activation,
stride); "features.16" a 1x1 Conv2dNormActivation to 960 channels with
Hardswish; "avgpool" (global average); the classifier Linear(960, 1280)
("classifier.0"), Hardswish, Dropout(0.2) (training only) and the head
("classifier.3", `salijax.models.heads`). BatchNorm epsilon 1e-3 and torch
momentum 0.01. Hardswish is x * relu6(x + 3) / 6, Hardsigmoid relu6(x + 3) / 6.
Build one with `salijax.models.create`.

An inverted residual block "features.N": `block` = [a 1x1
Conv2dNormActivation to the expanded width with the activation (only if it
differs from the input width)], a k x k depthwise Conv2dNormActivation
(stride s) with the activation, [a SqueezeExcitation to
`make_divisible(expanded / 4)` channels with ReLU and Hardsigmoid], a 1x1
Conv2dNormActivation to the output width without activation; the block adds
its input when s = 1 and the widths agree.

Taps, each the output of that torchvision module (read and replaced by
`salijax.models.classifier(module, variables, layer=tap)`), in forward order:
  "features.0.0", "features.0.1", "features.0.2", "features.0": the stem.
  "features.N.block.K.0" ... "features.N.block.K" for each Conv2dNormActivation
    K of block N; for its SqueezeExcitation K "features.N.block.K.avgpool",
    ".fc1", ".activation", ".fc2", ".scale_activation" and "features.N.block.K"
    (the rescaled input); then "features.N.block" (= its last BatchNorm's
    output) and "features.N" (after the residual addition).
  "features.16.0" ... "features.16": the last Conv2dNormActivation, the default
    explained layer (f32[B,H/32,W/32,960]).
  "avgpool": f32[B,1,1,960].

Flax module names follow `salijax.models.naming`: "features_0_0", ...,
"features_4" (a block) with "block_0_0", ..., "block_2" (a SqueezeExcitation,
with "fc1", "fc2", ...) inside, "avgpool", "classifier_0", "classifier_3" (or
"classifier_3_1", "classifier_3_4" for head="mlp").

Initialisation (torchvision's): convs kaiming normal (fan_out) with zero bias,
BatchNorm scale 1 and bias 0, Linear layers N(0, 0.01) with zero bias.
"""

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax

from salijax.models import heads, mobile_blocks, normalization, param_layers
from salijax.models.mobile_blocks import Norm, Tap
from salijax.models.param_layers import ParamLayer
from salijax.models.parameter_free_layers import Activation, GlobalAvgPool

NORM = Norm(epsilon=1e-3, momentum=0.01)
STEM_CHANNELS = 16
LAST_CONV_CHANNELS = 960
CLASSIFIER_WIDTH = 1280
DROPOUT = 0.2
RELU, HARDSWISH = "RE", "HS"
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    RELU: jax.nn.relu, HARDSWISH: jax.nn.hard_swish}


class BlockSpec(NamedTuple):
  """One inverted residual block (torchvision's InvertedResidualConfig, no dilation)."""

  in_channels: int
  kernel: int
  expanded: int
  out_channels: int
  squeeze_excitation: bool
  activation: str  # RELU or HARDSWISH
  stride: int

  @property
  def residual(self) -> bool:
    return self.stride == 1 and self.in_channels == self.out_channels

  def layers(self) -> tuple[str, ...]:
    """The kinds of its `block` children in order: "expand", "depthwise", "se", "project"."""
    return ((("expand",) if self.expanded != self.in_channels else ()) + ("depthwise",)
            + (("se",) if self.squeeze_excitation else ()) + ("project",))


# torchvision's mobilenet_v3_large configuration, "features.1" to "features.15".
BLOCKS = (
    BlockSpec(16, 3, 16, 16, False, RELU, 1), BlockSpec(16, 3, 64, 24, False, RELU, 2),
    BlockSpec(24, 3, 72, 24, False, RELU, 1), BlockSpec(24, 5, 72, 40, True, RELU, 2),
    BlockSpec(40, 5, 120, 40, True, RELU, 1), BlockSpec(40, 5, 120, 40, True, RELU, 1),
    BlockSpec(40, 3, 240, 80, False, HARDSWISH, 2),
    BlockSpec(80, 3, 200, 80, False, HARDSWISH, 1),
    BlockSpec(80, 3, 184, 80, False, HARDSWISH, 1),
    BlockSpec(80, 3, 184, 80, False, HARDSWISH, 1),
    BlockSpec(80, 3, 480, 112, True, HARDSWISH, 1),
    BlockSpec(112, 3, 672, 112, True, HARDSWISH, 1),
    BlockSpec(112, 5, 672, 160, True, HARDSWISH, 2),
    BlockSpec(160, 5, 960, 160, True, HARDSWISH, 1),
    BlockSpec(160, 5, 960, 160, True, HARDSWISH, 1),
)
LAST_FEATURE = f"features.{len(BLOCKS) + 1}"


def _block_taps(name: str, spec: BlockSpec) -> list[Tap]:
  taps: list[Tap] = []
  for k, kind in enumerate(spec.layers()):
    child = f"{name}.block.{k}"
    taps += (mobile_blocks.se_taps(child) if kind == "se"
             else mobile_blocks.cna_taps(child, activation=kind != "project"))
  return [*taps, Tap(f"{name}.block", taps[-1].name), Tap(name)]


def _block_param_layers(name: str, spec: BlockSpec) -> list[ParamLayer]:
  layers: list[ParamLayer] = []
  for k, kind in enumerate(spec.layers()):
    child = f"{name}.block.{k}"
    layers += (mobile_blocks.se_param_layers(child) if kind == "se"
               else mobile_blocks.cna_param_layers(child))
  return layers


class InvertedResidual(nn.Module):
  """A MobileNetV3 block (module doc): f32[B,H,W,Cin] -> f32[B,H/s,W/s,Cout]."""

  spec: BlockSpec
  torch_name: str  # "features.4"
  bn_trainable: tuple[str, ...] | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    spec, y = self.spec, x
    activation = ACTIVATIONS[spec.activation]
    for k, kind in enumerate(spec.layers()):
      child = f"{self.torch_name}.block.{k}"
      if kind == "se":
        y = mobile_blocks.SqueezeExcitation(
            mobile_blocks.make_divisible(spec.expanded // 4), jax.nn.relu,
            jax.nn.hard_sigmoid, name=f"block_{k}")(y)
        continue
      depthwise = kind == "depthwise"
      y = mobile_blocks.conv_norm_activation(
          y, child, spec.out_channels if kind == "project" else spec.expanded, norm=NORM,
          activation=None if kind == "project" else activation, train=train,
          bn_trainable=self.bn_trainable, kernel=spec.kernel if depthwise else 1,
          stride=spec.stride if depthwise else 1, groups=spec.expanded if depthwise else 1)
    return x + y if spec.residual else y


class MobileNetV3Large(mobile_blocks.MobileNetwork):
  """torchvision's MobileNetV3-Large (see the module doc for the architecture and the taps).

  `__call__(images f32[B,H,W,3] in [0, 1], train=False)` -> logits
  f32[B,num_classes] (no softmax). train=True uses dropout (rng "dropout") and
  batch statistics in the BatchNorms that `bn_trainable` selects (mutable
  "batch_stats").

  Attributes: `mobile_blocks.MobileNetwork`'s.
  """

  def taps(self) -> tuple[Tap, ...]:
    taps = mobile_blocks.cna_taps("features.0", activation=True)
    for n, spec in enumerate(BLOCKS, start=1):
      taps += _block_taps(f"features.{n}", spec)
    return tuple(taps + mobile_blocks.cna_taps(LAST_FEATURE, activation=True)
                 + [Tap("avgpool")])

  def default_tap(self) -> str:
    """The last Conv2dNormActivation, "features.16"."""
    return LAST_FEATURE

  def head_spec(self) -> heads.HeadSpec:
    """The replaceable head ("classifier.3")."""
    return heads.HeadSpec(kind=self.head, num_classes=self.num_classes, prefix="classifier.3",
                          kernel_init=mobile_blocks.TORCH_LINEAR_NORMAL)

  def param_layers(self) -> tuple[ParamLayer, ...]:
    """Every layer with parameters, in torchvision's state_dict order."""
    layers = mobile_blocks.cna_param_layers("features.0")
    for n, spec in enumerate(BLOCKS, start=1):
      layers += _block_param_layers(f"features.{n}", spec)
    layers += mobile_blocks.cna_param_layers(LAST_FEATURE)
    layers.append(ParamLayer("classifier.0", param_layers.LINEAR))
    return tuple(layers + [ParamLayer(n, param_layers.LINEAR) for n in self.head_spec().layers()])

  def tap_path(self, tap: str) -> str:
    """The `/`-path of the Flax module whose output is `tap` ("features.16" ->
    "features_16_2", "features.4.block.2.fc1" -> "features_4/block_2/fc1")."""
    return mobile_blocks.tap_paths(self.taps())[tap]

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    normalization.check_images(images)
    x = normalization.normalize_images(images, self.mean, self.std) if self.normalize else images
    cna = dict(norm=NORM, activation=jax.nn.hard_swish, train=train,
               bn_trainable=self.bn_trainable)
    x = mobile_blocks.conv_norm_activation(x, "features.0", STEM_CHANNELS, kernel=3, stride=2,
                                           **cna)
    for n, spec in enumerate(BLOCKS, start=1):
      x = InvertedResidual(spec, f"features.{n}", self.bn_trainable, name=f"features_{n}")(
          x, train)
    x = mobile_blocks.conv_norm_activation(x, LAST_FEATURE, LAST_CONV_CHANNELS, **cna)
    x = GlobalAvgPool(name="avgpool")(x).reshape(x.shape[0], -1)
    x = nn.Dense(CLASSIFIER_WIDTH, kernel_init=mobile_blocks.TORCH_LINEAR_NORMAL,
                 bias_init=nn.initializers.zeros, name="classifier_0")(x)
    x = Activation(jax.nn.hard_swish, name="classifier_1")(x)
    x = nn.Dropout(DROPOUT, deterministic=not train)(x)
    return heads.classification_head(x, self.head_spec(), train)
