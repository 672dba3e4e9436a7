"""torchvision's VGG (vgg11, vgg11_bn, vgg16) in Flax linen, NHWC.

Architecture as torchvision's: normalisation `(x - mean) / std`; `features`,
a sequence of 3x3 pad 1 convs (with bias), each followed by a BatchNorm
(`_bn` variants) and a ReLU, and 2x2 stride 2 max-pools; `avgpool`, an
adaptive average pool to 7x7 with torch's bins
(`salijax.models.parameter_free_layers`),
so any input of at least 32x32 pixels works; `classifier`: Linear(25088, 4096),
ReLU, Dropout(0.5), Linear(4096, 4096), ReLU, Dropout(0.5) (4096 =
`classifier_width`, which `salijax.models.create` can narrow; 0.5 =
`classifier_dropout`, torchvision's `dropout` argument), then the head
(`salijax.models.heads`; torchvision's is Linear(4096, num_classes)). The pooled
map is flattened in H,W,C order (torch: C,H,W); the weight port reorders the
rows of `classifier.0` to match. Build one with `salijax.models.create`.

Taps, each the output of that torchvision module (read and replaced by
`salijax.models.classifier(module, variables, layer=tap)`):
"features.N" for every index N of `features` (conv, BatchNorm, ReLU and pool
outputs, with torchvision's indices: in vgg11 "features.18" is the last conv,
"features.19" its ReLU, "features.20" the last pool), and "avgpool" (f32[B,7,7,512]).

Flax module names follow `salijax.models.naming`: "features_0",
"features_1" (a BatchNorm in vgg11_bn, or a ReLU), ..., "avgpool", "classifier_0",
"classifier_3",
"classifier_6" (or "classifier_6_1", "classifier_6_4" for head="mlp").

Initialisation (torchvision's): convs kaiming normal (fan_out, ReLU gain) with
zero bias, BatchNorm scale 1 and bias 0, Linear layers N(0, 0.01) with zero bias
(scaled up behind a narrowed classifier, `VGG.linear_kernel`).
"""

from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax

from salijax.models import heads, naming, normalization, param_layers
from salijax.models.param_layers import ParamLayer
from salijax.models.parameter_free_layers import Activation, AdaptiveAvgPool, MaxPool

KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
LINEAR_KERNEL = nn.initializers.normal(0.01)
POOL = "M"
VGG11_LAYERS = (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL)
VGG16_LAYERS = (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
                512, 512, 512, POOL)
POOLED_SIZE = (7, 7)
HIDDEN = 4096
DROPOUT = 0.5
MIN_IMAGE_SIZE = 32

CONV, BN, RELU, MAX_POOL = "conv", "bn", "relu", "max_pool"


class FeatureLayer(NamedTuple):
  """One module of `features`: its index, what it is, its output channels."""

  index: int
  kind: str  # CONV, BN, RELU or MAX_POOL
  channels: int


class VGG(nn.Module):
  """torchvision's VGG (see the module doc for the architecture and the taps).

  `__call__(images f32[B,H,W,3] in [0, 1] with H, W >= 32, train=False)` ->
  logits f32[B,num_classes] (no softmax). train=True uses dropout (rng
  "dropout") and batch statistics in the BatchNorms that `bn_trainable` selects
  (mutable "batch_stats").

  Attributes:
    layers: torchvision's configuration: conv widths, and `POOL` for max-pools.
    batch_norm: a BatchNorm after every conv (the `_bn` variants).
    num_classes: the number of logits.
    head: "linear" or "mlp" (`salijax.models.heads`).
    normalize: apply `(images - mean) / std` first.
    mean, std: per-channel normalisation constants (ImageNet's by default).
    bn_trainable: None (every BatchNorm follows `train`) or the torchvision
      prefixes of the BatchNorms that do; the others always use their running
      statistics.
    classifier_width: the width of `classifier.0` and `classifier.3`
      (torchvision's 4096; smaller widths train from scratch much faster, but
      torchvision weights need 4096).
    classifier_dropout: the dropout rate after `classifier.1` and `classifier.4`
      (torchvision's `dropout`, 0.5), in [0, 1).
    relu: the activation at every ReLU (`features`, `classifier`, mlp head) (nn.relu;
      `module.clone(relu=salijax.guided_relu.guided_relu)` is the same
      model, with the same variables, for guided backpropagation).
  """

  layers: tuple[int | str, ...]
  batch_norm: bool
  num_classes: int = 1000
  head: str = "linear"
  normalize: bool = True
  mean: tuple[float, ...] = normalization.IMAGENET_MEAN
  std: tuple[float, ...] = normalization.IMAGENET_STD
  bn_trainable: tuple[str, ...] | None = None
  classifier_width: int = HIDDEN
  classifier_dropout: float = DROPOUT
  relu: Callable[[jax.Array], jax.Array] = nn.relu

  def feature_layers(self) -> tuple[FeatureLayer, ...]:
    """Every module of `features`, in order, with torchvision's indices."""
    kinds = []
    channels = 3
    for layer in self.layers:
      if layer == POOL:
        kinds.append((MAX_POOL, channels))
        continue
      channels = layer
      kinds.append((CONV, channels))
      if self.batch_norm:
        kinds.append((BN, channels))
      kinds.append((RELU, channels))
    return tuple(FeatureLayer(i, kind, c) for i, (kind, c) in enumerate(kinds))

  def tap_names(self) -> tuple[str, ...]:
    """Every tap name, in forward order (see the module doc)."""
    return tuple(f"features.{f.index}" for f in self.feature_layers()) + ("avgpool",)

  def default_tap(self) -> str:
    """The ReLU after the last conv, e.g. "features.19" in vgg11."""
    return f"features.{[f.index for f in self.feature_layers() if f.kind == RELU][-1]}"

  def head_spec(self) -> heads.HeadSpec:
    """The replaceable head ("classifier.6")."""
    return heads.HeadSpec(kind=self.head, num_classes=self.num_classes, prefix="classifier.6",
                          kernel_init=self.linear_kernel(self.classifier_width))

  def param_layers(self) -> tuple[ParamLayer, ...]:
    """Every layer with parameters, in torchvision's state_dict order."""
    kinds = {CONV: param_layers.CONV_BIAS, BN: param_layers.BATCH_NORM}
    layers = [ParamLayer(f"features.{f.index}", kinds[f.kind])
              for f in self.feature_layers() if f.kind in kinds]
    layers += [ParamLayer("classifier.0", param_layers.FLAT_LINEAR),
               ParamLayer("classifier.3", param_layers.LINEAR)]
    layers += [ParamLayer(name, param_layers.LINEAR) for name in self.head_spec().layers()]
    return tuple(layers)

  def linear_kernel(self, fan_in: int) -> Callable[..., jax.Array]:
    """torchvision's N(0, 0.01) for a Linear layer; behind a narrowed classifier (fan_in <
    4096) N(0, 0.01 sqrt(4096 / fan_in)), which keeps torchvision's activation scale (with
    N(0, 0.01) a 256-wide classifier's logits barely depend on the image, and it does not train)."""
    if fan_in >= HIDDEN:
      return LINEAR_KERNEL
    return nn.initializers.normal(0.01 * (HIDDEN / fan_in) ** 0.5)

  def pooled_shape(self) -> tuple[int, int, int]:
    """(H, W, C) of the `avgpool` output that `classifier.0` flattens."""
    return (*POOLED_SIZE, self.feature_layers()[-1].channels)

  def tap_path(self, tap: str) -> str:
    """The `/`-path of the Flax module whose output is `tap` ("features.19" -> "features_19")."""
    return "/".join(naming.flax_path(tap))

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    normalization.check_images(images, min_size=MIN_IMAGE_SIZE)
    x = normalization.normalize_images(images, self.mean, self.std) if self.normalize else images
    for layer in self.feature_layers():
      path = f"features.{layer.index}"
      name = naming.flax_path(path)[0]
      if layer.kind == CONV:
        x = nn.Conv(layer.channels, (3, 3), padding=((1, 1), (1, 1)),
                    kernel_init=KAIMING_FAN_OUT, bias_init=nn.initializers.zeros, name=name)(x)
      elif layer.kind == BN:
        x = normalization.batch_norm(path, train=train, bn_trainable=self.bn_trainable,
                                     name=name)(x)
      elif layer.kind == RELU:
        x = Activation(self.relu, name=name)(x)
      else:
        x = MaxPool(2, 2, name=name)(x)
    x = AdaptiveAvgPool(POOLED_SIZE, name="avgpool")(x)
    x = x.reshape(x.shape[0], -1)
    for name in ("classifier_0", "classifier_3"):
      fan_in = x.shape[-1] if name == "classifier_0" else self.classifier_width
      x = nn.Dense(self.classifier_width, kernel_init=self.linear_kernel(fan_in),
                   bias_init=nn.initializers.zeros, name=name)(x)
      x = nn.Dropout(self.classifier_dropout, deterministic=not train)(self.relu(x))
    return heads.classification_head(x, self.head_spec(), train, relu=self.relu)
