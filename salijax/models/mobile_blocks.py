"""The layers EfficientNet and the MobileNets share, as torchvision builds them.

- `conv_norm_activation`: torchvision's `Conv2dNormActivation(in, out, k,
  stride, groups)`: a k x k conv without bias, padding (k - 1) // 2, then a
  BatchNorm, then (optionally) an activation. torch names its three modules
  "<name>.0", "<name>.1", "<name>.2"; here they are Flax modules with those
  names (`salijax.models.naming`), siblings in the calling module.
- `SqueezeExcitation`: torchvision's `ops.SqueezeExcitation`:
  `x * scale_activation(fc2(activation(fc1(avgpool(x)))))`, fc1 and fc2 1x1
  convs with bias; every one of them is a Flax module with torch's name.
- `StochasticDepth`: torchvision's `ops.StochasticDepth(p, "row")`: identity
  in inference; in training each example's input is zeroed with probability
  p and the others are scaled by 1 / (1 - p) (rng "dropout").
- `make_divisible`: torchvision's `_make_divisible(v, 8)` channel rounding.
- Taps: each model lists its taps in forward order as `Tap(name, same_as)`;
  a container without a Flax module of its own (a torch `Sequential`) has the
  output of its last child, `same_as`; `tap_paths` resolves them to Flax paths.

Initialisation (torchvision's for all three models): convs kaiming normal
(fan_out, ReLU gain) with zero bias, BatchNorm scale 1 and bias 0.
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from salijax.models import naming, normalization, param_layers
from salijax.models.param_layers import ParamLayer
from salijax.models.parameter_free_layers import Activation, GlobalAvgPool

KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
TORCH_LINEAR_NORMAL = nn.initializers.normal(0.01)


class Norm(NamedTuple):
  """A model's BatchNorm settings, in torch's convention (momentum 0.1 = Flax's 0.9)."""

  epsilon: float
  momentum: float


class Tap(NamedTuple):
  """A tap: its torchvision name, and None or the earlier tap whose output it is."""

  name: str
  same_as: str | None = None


class MobileNetwork(nn.Module):
  """The fields and tap names shared by EfficientNet-B0, MobileNetV2 and MobileNetV3-Large;
  a subclass defines `taps()` (its Taps in forward order) and `__call__`.

  Attributes:
    num_classes: the number of logits.
    head: "linear" or "mlp" (`salijax.models.heads`).
    normalize: apply `(images - mean) / std` first.
    mean, std: per-channel normalisation constants (ImageNet's by default).
    bn_trainable: None (every BatchNorm follows `train`) or the torchvision
      prefixes of the BatchNorms that do; the others always use their running
      statistics.
  """

  num_classes: int = 1000
  head: str = "linear"
  normalize: bool = True
  mean: tuple[float, ...] = normalization.IMAGENET_MEAN
  std: tuple[float, ...] = normalization.IMAGENET_STD
  bn_trainable: tuple[str, ...] | None = None

  def taps(self) -> tuple[Tap, ...]:
    raise NotImplementedError

  def tap_names(self) -> tuple[str, ...]:
    """Every tap name, in forward order (see the module doc)."""
    return tuple(tap.name for tap in self.taps())


def tap_paths(taps: Sequence[Tap]) -> dict[str, str]:
  """Tap name -> the `/`-path of the Flax module whose output it is."""
  paths: dict[str, str] = {}
  for tap in taps:
    paths[tap.name] = (paths[tap.same_as] if tap.same_as is not None
                       else "/".join(naming.flax_path(tap.name)))
  return paths


def join(prefix: str, name: str) -> str:
  """A torchvision module name inside `prefix` ("" = the model itself)."""
  return f"{prefix}.{name}" if prefix else name


def make_divisible(value: float, divisor: int = 8) -> int:
  """`value` rounded to the nearest multiple of `divisor` (at least `divisor`), never
  below 90 % of `value` (torchvision's `_make_divisible`)."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * value else rounded


def cna_taps(name: str, activation: bool) -> list[Tap]:
  """The taps of a Conv2dNormActivation at torchvision name `name`."""
  children = [Tap(f"{name}.{i}") for i in range(3 if activation else 2)]
  return [*children, Tap(name, children[-1].name)]


def cna_param_layers(name: str) -> list[ParamLayer]:
  """The parameter layers of a Conv2dNormActivation at torchvision name `name`."""
  return [ParamLayer(f"{name}.0", param_layers.CONV),
          ParamLayer(f"{name}.1", param_layers.BATCH_NORM)]


def batch_norm(full_name: str, norm: Norm, *, train: bool,
               bn_trainable: Sequence[str] | None) -> nn.BatchNorm:
  """The BatchNorm at torchvision name `full_name`, named by its last path level."""
  return normalization.batch_norm(full_name, train=train, bn_trainable=bn_trainable,
                                  name=naming.flax_path(full_name)[-1],
                                  epsilon=norm.epsilon, momentum=norm.momentum)


def conv(x: jax.Array, full_name: str, features: int, kernel: int = 1, stride: int = 1,
         groups: int = 1, bias: bool = False) -> jax.Array:
  """torch's Conv2d(padding=(kernel - 1) // 2) at torchvision name `full_name`:
  f32[B,H,W,Cin] -> f32[B,ceil(H/stride),ceil(W/stride),features]."""
  pad = (kernel - 1) // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), feature_group_count=groups, use_bias=bias,
                 kernel_init=KAIMING_FAN_OUT, bias_init=nn.initializers.zeros,
                 name=naming.flax_path(full_name)[-1])(x)


def conv_norm_activation(x: jax.Array, full_name: str, features: int, *, norm: Norm,
                         activation: Callable[[jax.Array], jax.Array] | None, train: bool,
                         bn_trainable: Sequence[str] | None, kernel: int = 1, stride: int = 1,
                         groups: int = 1) -> jax.Array:
  """torchvision's Conv2dNormActivation at `full_name`; call inside a compact method."""
  x = conv(x, f"{full_name}.0", features, kernel, stride, groups)
  x = batch_norm(f"{full_name}.1", norm, train=train, bn_trainable=bn_trainable)(x)
  if activation is not None:
    x = Activation(activation, name=naming.flax_path(f"{full_name}.2")[-1])(x)
  return x


SE_CHILDREN = ("avgpool", "fc1", "activation", "fc2", "scale_activation")


def se_taps(name: str) -> list[Tap]:
  """The taps of a SqueezeExcitation at `name`, in forward order, then its output."""
  return [*(Tap(f"{name}.{child}") for child in SE_CHILDREN), Tap(name)]


def se_param_layers(name: str) -> list[ParamLayer]:
  """fc1 and fc2, 1x1 convs with bias."""
  return [ParamLayer(f"{name}.fc1", param_layers.CONV_BIAS),
          ParamLayer(f"{name}.fc2", param_layers.CONV_BIAS)]


class SqueezeExcitation(nn.Module):
  """torchvision's SqueezeExcitation: f32[B,H,W,C] -> f32[B,H,W,C] (module doc)."""

  squeeze: int
  activation: Callable[[jax.Array], jax.Array]
  scale_activation: Callable[[jax.Array], jax.Array]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = GlobalAvgPool(name="avgpool")(x)
    scale = conv(scale, "fc1", self.squeeze, bias=True)
    scale = Activation(self.activation, name="activation")(scale)
    scale = conv(scale, "fc2", x.shape[-1], bias=True)
    scale = Activation(self.scale_activation, name="scale_activation")(scale)
    return scale * x


class StochasticDepth(nn.Module):
  """torchvision's StochasticDepth(rate, "row"): any f32[B,...] -> same (module doc)."""

  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    survival = 1.0 - self.rate
    keep = jax.random.bernoulli(self.make_rng("dropout"), survival,
                                (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(keep, x / survival, jnp.zeros_like(x))
