"""torchvision's EfficientNet-B0 (efficientnet_b0) in Flax linen, NHWC.

Architecture as torchvision's: normalisation `(x - mean) / std`; `features`:
"features.0" a 3x3 stride 2 Conv2dNormActivation to 32 channels with SiLU;
stages "features.1" ... "features.7" of MBConv blocks (`STAGES`: expansion,
kernel, first stride, output channels, blocks; "features.S.J" is block J of
stage S); "features.8" a 1x1 Conv2dNormActivation to 1280 channels with SiLU;
"avgpool" (global average); the classifier Dropout(0.2) ("classifier.0",
training only) and the head ("classifier.1", `salijax.models.heads`).
BatchNorm epsilon 1e-5, momentum 0.1. SiLU is x * sigmoid(x). Build one with
`salijax.models.create`.

An MBConv block with input width i, output width o, expansion t: `block` =
[a 1x1 Conv2dNormActivation to t * i channels with SiLU (t > 1 only)], a k x k
depthwise Conv2dNormActivation (stride s) with SiLU, a SqueezeExcitation to
max(1, i // 4) channels with SiLU and sigmoid, a 1x1 Conv2dNormActivation to o
channels without activation. When s = 1 and i = o the block adds its input
after `stochastic_depth` (training only: drops the block for a whole example
with probability 0.2 * (index of the block among all 16) / 16).

Taps, each the output of that torchvision module (read and replaced by
`salijax.models.classifier(module, variables, layer=tap)`), in forward order:
  "features.0.0", "features.0.1", "features.0.2", "features.0": the stem.
  "features.S.J.block.K.0" ... "features.S.J.block.K" for each
    Conv2dNormActivation K of the block; for its SqueezeExcitation
    "features.S.J.block.K.avgpool", ".fc1", ".activation", ".fc2",
    ".scale_activation" and "features.S.J.block.K"; then "features.S.J.block"
    (= its last BatchNorm's output), "features.S.J.stochastic_depth" (residual
    blocks only: torch calls it only there), "features.S.J" (the block's
    output) and, after a stage's last block, "features.S".
  "features.8.0" ... "features.8": the last Conv2dNormActivation, the default
    explained layer (f32[B,H/32,W/32,1280]).
  "avgpool": f32[B,1,1,1280].

Flax module names follow `salijax.models.naming`: "features_0_0", ...,
"features_2_1" (a block) with "block_0_0", ..., "block_2" (the
SqueezeExcitation, with "fc1", "fc2", ...) and "stochastic_depth" inside,
"avgpool", "classifier_1" (or "classifier_1_1", "classifier_1_4" for
head="mlp").

Initialisation (torchvision's): convs kaiming normal (fan_out) with zero bias,
BatchNorm scale 1 and bias 0, the head's Dense layers U(-1/sqrt(out),
1/sqrt(out)) (out = the layer's output width) with zero bias.
"""

from typing import NamedTuple

import flax.linen as nn
import jax

from salijax.models import heads, mobile_blocks, normalization, param_layers
from salijax.models.mobile_blocks import Norm, Tap
from salijax.models.param_layers import ParamLayer
from salijax.models.parameter_free_layers import GlobalAvgPool

NORM = Norm(epsilon=1e-5, momentum=0.1)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
DROPOUT = 0.2
STOCHASTIC_DEPTH = 0.2
LINEAR_KERNEL = nn.initializers.variance_scaling(1 / 3, "fan_out", "uniform")


class StageSpec(NamedTuple):
  """A stage of MBConv blocks (torchvision's MBConvConfig at width and depth 1.0)."""

  expansion: int
  kernel: int
  stride: int
  out_channels: int
  num_blocks: int


# torchvision's efficientnet_b0 configuration, "features.1" to "features.7".
STAGES = (StageSpec(1, 3, 1, 16, 1), StageSpec(6, 3, 2, 24, 2), StageSpec(6, 5, 2, 40, 2),
          StageSpec(6, 3, 2, 80, 3), StageSpec(6, 5, 1, 112, 3), StageSpec(6, 5, 2, 192, 4),
          StageSpec(6, 3, 1, 320, 1))
LAST_FEATURE = f"features.{len(STAGES) + 1}"


class BlockSpec(NamedTuple):
  """One MBConv block: where it is and how it is shaped."""

  name: str  # "features.2.1"
  in_channels: int
  out_channels: int
  expansion: int
  kernel: int
  stride: int
  stochastic_depth: float
  last_in_stage: bool

  @property
  def residual(self) -> bool:
    return self.stride == 1 and self.in_channels == self.out_channels

  def expanded(self) -> int:
    return self.in_channels * self.expansion

  def layers(self) -> tuple[str, ...]:
    """The kinds of its `block` children in order: "expand", "depthwise", "se", "project"."""
    return (("expand",) if self.expansion != 1 else ()) + ("depthwise", "se", "project")


def blocks() -> tuple[BlockSpec, ...]:
  """Every MBConv block, in forward order."""
  total = sum(stage.num_blocks for stage in STAGES)
  specs: list[BlockSpec] = []
  channels = STEM_CHANNELS
  for s, stage in enumerate(STAGES, start=1):
    for j in range(stage.num_blocks):
      specs.append(BlockSpec(
          f"features.{s}.{j}", channels, stage.out_channels, stage.expansion, stage.kernel,
          stage.stride if j == 0 else 1, STOCHASTIC_DEPTH * len(specs) / total,
          j == stage.num_blocks - 1))
      channels = stage.out_channels
  return tuple(specs)


def _block_taps(spec: BlockSpec) -> list[Tap]:
  taps: list[Tap] = []
  for k, kind in enumerate(spec.layers()):
    child = f"{spec.name}.block.{k}"
    taps += (mobile_blocks.se_taps(child) if kind == "se"
             else mobile_blocks.cna_taps(child, activation=kind != "project"))
  taps.append(Tap(f"{spec.name}.block", taps[-1].name))
  if spec.residual:
    taps.append(Tap(f"{spec.name}.stochastic_depth"))
  taps.append(Tap(spec.name))
  if spec.last_in_stage:
    taps.append(Tap(spec.name.rsplit(".", 1)[0], spec.name))
  return taps


def _block_param_layers(spec: BlockSpec) -> list[ParamLayer]:
  layers: list[ParamLayer] = []
  for k, kind in enumerate(spec.layers()):
    child = f"{spec.name}.block.{k}"
    layers += (mobile_blocks.se_param_layers(child) if kind == "se"
               else mobile_blocks.cna_param_layers(child))
  return layers


class MBConv(nn.Module):
  """An EfficientNet block (module doc): f32[B,H,W,i] -> f32[B,H/s,W/s,o]."""

  spec: BlockSpec
  bn_trainable: tuple[str, ...] | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    spec, y = self.spec, x
    for k, kind in enumerate(spec.layers()):
      if kind == "se":
        y = mobile_blocks.SqueezeExcitation(max(1, spec.in_channels // 4), jax.nn.silu,
                                            jax.nn.sigmoid, name=f"block_{k}")(y)
        continue
      depthwise = kind == "depthwise"
      y = mobile_blocks.conv_norm_activation(
          y, f"{spec.name}.block.{k}",
          spec.out_channels if kind == "project" else spec.expanded(), norm=NORM,
          activation=None if kind == "project" else jax.nn.silu, train=train,
          bn_trainable=self.bn_trainable, kernel=spec.kernel if depthwise else 1,
          stride=spec.stride if depthwise else 1, groups=spec.expanded() if depthwise else 1)
    if not spec.residual:
      return y
    return mobile_blocks.StochasticDepth(spec.stochastic_depth, name="stochastic_depth")(
        y, train) + x


class EfficientNetB0(mobile_blocks.MobileNetwork):
  """torchvision's EfficientNet-B0 (see the module doc for the architecture and the taps).

  `__call__(images f32[B,H,W,3] in [0, 1], train=False)` -> logits
  f32[B,num_classes] (no softmax). train=True uses dropout and stochastic
  depth (rng "dropout") and batch statistics in the BatchNorms that
  `bn_trainable` selects (mutable "batch_stats").

  Attributes: `mobile_blocks.MobileNetwork`'s.
  """

  def taps(self) -> tuple[Tap, ...]:
    taps = mobile_blocks.cna_taps("features.0", activation=True)
    for spec in blocks():
      taps += _block_taps(spec)
    return tuple(taps + mobile_blocks.cna_taps(LAST_FEATURE, activation=True)
                 + [Tap("avgpool")])

  def default_tap(self) -> str:
    """The last Conv2dNormActivation, "features.8"."""
    return LAST_FEATURE

  def head_spec(self) -> heads.HeadSpec:
    """The replaceable head ("classifier.1")."""
    return heads.HeadSpec(kind=self.head, num_classes=self.num_classes, prefix="classifier.1",
                          kernel_init=LINEAR_KERNEL)

  def param_layers(self) -> tuple[ParamLayer, ...]:
    """Every layer with parameters, in torchvision's state_dict order."""
    layers = mobile_blocks.cna_param_layers("features.0")
    for spec in blocks():
      layers += _block_param_layers(spec)
    layers += mobile_blocks.cna_param_layers(LAST_FEATURE)
    return tuple(layers + [ParamLayer(n, param_layers.LINEAR) for n in self.head_spec().layers()])

  def tap_path(self, tap: str) -> str:
    """The `/`-path of the Flax module whose output is `tap` ("features.8" ->
    "features_8_2", "features.2" -> "features_2_1")."""
    return mobile_blocks.tap_paths(self.taps())[tap]

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    normalization.check_images(images)
    x = normalization.normalize_images(images, self.mean, self.std) if self.normalize else images
    cna = dict(norm=NORM, activation=jax.nn.silu, train=train, bn_trainable=self.bn_trainable)
    x = mobile_blocks.conv_norm_activation(x, "features.0", STEM_CHANNELS, kernel=3, stride=2,
                                           **cna)
    for spec in blocks():
      x = MBConv(spec, self.bn_trainable, name=spec.name.replace(".", "_"))(x, train)
    x = mobile_blocks.conv_norm_activation(x, LAST_FEATURE, LAST_CHANNELS, **cna)
    x = GlobalAvgPool(name="avgpool")(x).reshape(x.shape[0], -1)
    x = nn.Dropout(DROPOUT, deterministic=not train)(x)
    return heads.classification_head(x, self.head_spec(), train)
