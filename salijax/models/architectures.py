"""The salijax architectures by name: building, initialising, querying and wrapping models.

    module = create("resnet18", num_classes=10)
    variables = init(module, jax.random.key(0))     # {"params", "batch_stats"}
    logits = module.apply(variables, images)        # images f32[B,H,W,3] in [0, 1]
    clf = classifier(module, variables, layer=default_tap(module))  # salijax.Classifier
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.models import (
    efficientnet,
    heads,
    mobilenet_v2,
    mobilenet_v3,
    naming,
    normalization,
    resnet,
    vgg,
    vit,
)
from salijax.wrapping.wrap import wrap

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": functools.partial(resnet.ResNet, stage_sizes=(2, 2, 2, 2), bottleneck=False),
    "resnet34": functools.partial(resnet.ResNet, stage_sizes=(3, 4, 6, 3), bottleneck=False),
    "resnet50": functools.partial(resnet.ResNet, stage_sizes=(3, 4, 6, 3), bottleneck=True),
    "vgg11": functools.partial(vgg.VGG, layers=vgg.VGG11_LAYERS, batch_norm=False),
    "vgg11_bn": functools.partial(vgg.VGG, layers=vgg.VGG11_LAYERS, batch_norm=True),
    "vgg16": functools.partial(vgg.VGG, layers=vgg.VGG16_LAYERS, batch_norm=False),
    # EfficientNet and the MobileNets.
    "efficientnet_b0": efficientnet.EfficientNetB0,
    "mobilenet_v2": mobilenet_v2.MobileNetV2,
    "mobilenet_v3_large": mobilenet_v3.MobileNetV3Large,
    # Vision Transformer
    "vit_b_16": functools.partial(vit.VisionTransformer, shape=vit.VIT_B_16),
}
ARCHITECTURES: tuple[str, ...] = tuple(_BUILDERS)
Model = (resnet.ResNet | vgg.VGG
         | efficientnet.EfficientNetB0 | mobilenet_v2.MobileNetV2 | mobilenet_v3.MobileNetV3Large
         | vit.VisionTransformer)


def _channel_constants(value: Any, name: str) -> tuple[float, float, float]:
  values = tuple(float(v) for v in value)
  if len(values) != 3:
    raise ValueError(f"{name}: expected 3 per-channel values, got {value!r}")
  return values  # type: ignore[return-value]


def _check_model(module: Any) -> Model:
  if not isinstance(module, Model):
    raise TypeError(
        f"module: expected a salijax model (salijax.models.create), got {type(module).__name__}")
  return module


def create(arch: str, *, num_classes: int = 1000, head: str = "linear",
           normalize: bool = True, mean: Sequence[float] = normalization.IMAGENET_MEAN,
           std: Sequence[float] = normalization.IMAGENET_STD,
           bn_trainable: Sequence[str] | None = None,
           classifier_width: int | None = None,
           classifier_dropout: float | None = None) -> Model:
  """An (unbound) Flax model of architecture `arch`.

  Args:
    arch: one of `ARCHITECTURES`.
    num_classes: the number of logits.
    head: "linear" (torchvision's last layer) or "mlp" (`salijax.models.heads`).
    normalize: whether the model applies `(images - mean) / std` to its input.
    mean, std: the per-channel normalisation constants (ImageNet's by default).
    bn_trainable: None = every BatchNorm follows `train`; else the torchvision
      module prefixes (e.g. ("layer4", "fc"); "head" = the head's prefix) of the
      BatchNorms that use batch statistics and update their running statistics
      when `train=True`; all others always use their running statistics.
      A ViT has no BatchNorm: its prefixes are checked and change nothing.
    classifier_width: VGG only: the width of its two hidden classifier layers
      (None = torchvision's 4096). A narrower one (e.g. 256) trains from
      scratch on a CPU in minutes; torchvision's weights need 4096.
    classifier_dropout: VGG only: the dropout rate of its two hidden classifier
      layers, in [0, 1) (None = torchvision's 0.5); only `train=True` uses it.

  Raises:
    ValueError: an unknown `arch`, `head` or `bn_trainable` prefix, a
      non-positive `num_classes`, `mean`/`std` not 3 values (std > 0), or
      `classifier_width`/`classifier_dropout` out of range or for a non-VGG model.
  """
  if arch not in _BUILDERS:
    raise ValueError(f"arch: expected one of {ARCHITECTURES}, got {arch!r}")
  if head not in heads.HEADS:
    raise ValueError(f"head: expected one of {heads.HEADS}, got {head!r}")
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
  mean = _channel_constants(mean, "mean")
  std = _channel_constants(std, "std")
  if min(std) <= 0:
    raise ValueError(f"std: expected 3 positive values, got {std!r}")
  vgg_options = {}
  if classifier_width is not None:
    if not arch.startswith("vgg"):
      raise ValueError(f"classifier_width: only VGG models have one, got {classifier_width!r} "
                       f"for {arch}")
    if (isinstance(classifier_width, bool) or not isinstance(classifier_width, int)
        or classifier_width < 1):
      raise ValueError(f"classifier_width: expected a positive int, got {classifier_width!r}")
    vgg_options["classifier_width"] = classifier_width
  if classifier_dropout is not None:
    if not arch.startswith("vgg"):
      raise ValueError(f"classifier_dropout: only VGG models have one, got "
                       f"{classifier_dropout!r} for {arch}")
    if (isinstance(classifier_dropout, bool) or not isinstance(classifier_dropout, (int, float))
        or not 0.0 <= classifier_dropout < 1.0):
      raise ValueError(f"classifier_dropout: expected a number in [0, 1), got "
                       f"{classifier_dropout!r}")
    vgg_options["classifier_dropout"] = float(classifier_dropout)
  module = _BUILDERS[arch](num_classes=num_classes, head=head, normalize=bool(normalize),
                           mean=mean, std=std, **vgg_options)
  if bn_trainable is None:
    return module
  if isinstance(bn_trainable, str):
    raise TypeError(f"bn_trainable: expected a sequence of prefixes, got the str {bn_trainable!r}")
  valid = naming.with_ancestors(layer.name for layer in module.param_layers())
  prefixes = tuple(module.head_spec().prefix if p == "head" else p for p in bn_trainable)
  unknown = [p for p, q in zip(bn_trainable, prefixes, strict=True) if q not in valid]
  if unknown:
    raise ValueError(
        f"bn_trainable: expected torchvision module prefixes of {arch} such as "
        f"{sorted(_top_level_names(module))}, got unknown {unknown!r}")
  if isinstance(module, vit.VisionTransformer):
    return module
  return module.clone(bn_trainable=prefixes)


def _top_level_names(module: Model) -> set[str]:
  return {layer.name.split(".")[0] for layer in module.param_layers()} | {"head"}


def init(module: nn.Module, key: jax.Array, image_size: int = 224) -> dict[str, Any]:
  """Fresh variables of `module`: {"params", "batch_stats" (models with BatchNorm)}.

  Deterministic in `key`; the initialisers are torchvision's (each model's doc).
  The parameter shapes do not depend on `image_size` (>= 32 for VGG), except
  a ViT's positional embedding: its variables take image_size x image_size
  images only (image_size a multiple of its patch size; 224 for vit_b_16's
  torchvision weights).
  """
  if isinstance(_check_model(module), vit.VisionTransformer):
    module.check_image_size(image_size)
  min_size = vgg.MIN_IMAGE_SIZE if isinstance(module, vgg.VGG) else 1
  if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < min_size:
    raise ValueError(f"image_size: expected an int >= {min_size}, got {image_size!r}")
  # Not jitted: compiling the whole model costs more than running it once.
  return module.init(key, jnp.zeros((1, image_size, image_size, 3), jnp.float32))


def tap_names(module: nn.Module) -> tuple[str, ...]:
  """Every tap name of `module`, in forward order (each model's doc defines them)."""
  return _check_model(module).tap_names()


def check_tap(module: nn.Module, tap: str) -> None:
  """ValueError naming `layer` if `tap` is not a tap of `module`."""
  names = tap_names(module)
  if tap not in names:
    examples = ", ".join(repr(n) for n in names[:4] + names[-4:])
    raise ValueError(
        f"layer: expected a tap name of this model ({len(names)} names, e.g. "
        f"{examples}; salijax.models.tap_names lists them all), got {tap!r}")


def tap_path(module: nn.Module, tap: str) -> str:
  """The `/`-path of the Flax module whose output is `tap` (ValueError if it is none)."""
  check_tap(module, tap)
  return module.tap_path(tap)


def default_tap(module: nn.Module) -> str:
  """The usual explained layer: "layer4" for a ResNet, the last ReLU of a VGG's features,
  the last Conv2dNormActivation of EfficientNet-B0 ("features.8"), MobileNetV2
  ("features.18") and MobileNetV3-Large ("features.16"), the last block's "ln_1" for a ViT
  (`salijax.models.vit` says why)."""
  return _check_model(module).default_tap()


def head_prefix(module: nn.Module) -> str:
  """The torchvision name of the replaceable head: "fc", "classifier.6" (VGG),
  "classifier.1" (EfficientNet-B0, MobileNetV2), "classifier.3" (MobileNetV3-Large) or
  "heads.head" (ViT)."""
  return _check_model(module).head_spec().prefix


def classifier(module: nn.Module, variables: Any, layer: str | None = None) -> Classifier:
  """A `Classifier` of a salijax model, in inference mode: `salijax.wrap` at the tap's
  module, so a tap is read and replaced as any wrapped model's layer is, and two
  Classifiers of one model and layer share compiled programs.

  Args:
    module: a model from `salijax.models.create`.
    variables: its variables ({"params", "batch_stats"}), the Classifier's leaves.
    layer: the tap (a torchvision module name) that `features` returns and
      `head` starts from; None = `salijax.models.default_tap(module)`. A ViT's
      token taps [B,N,C] are read as maps [B,h,w,C] without the class token.

  Raises:
    ValueError: `layer` is not a tap of `module`.
  """
  layer = default_tap(module) if layer is None else layer
  prefix_tokens = vit.PREFIX_TOKENS if isinstance(module, vit.VisionTransformer) else None
  return wrap(module, variables, layer=tap_path(module, layer), prefix_tokens=prefix_tokens)
