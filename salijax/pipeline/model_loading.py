"""Ready-to-explain models: a Classifier with its class names and its input geometry.

    model = pretrained_model("resnet18")                 # torchvision's ImageNet weights
    model = pretrained_model("vgg11", "weights/vgg11.pth")  # a .pth in torchvision's layout
    model = trained_model("workdir/train")               # a salijax training workdir
    model.classifier, model.class_names, model.image_size, model.crop_fraction
    model = at_layer(model, "layer3")                    # the same model, explained at layer3

An image is shown to a model as in its evaluation: the shorter side resized to
image_size / crop_fraction, then the centre image_size x image_size crop
(`salijax.data.preprocessing.eval_example`), with the model's interpolation.
For torchvision's weights that is the checkpoint's own evaluation transform
(`salijax.porting.eval_preprocessing`: resize 256 / crop 224, bilinear; bicubic
for efficientnet_b0); for a training workdir, the run's image_size and
crop_fraction, bilinear.
"""

import dataclasses
import functools
import importlib.resources
import json
import os
import pathlib
from typing import Any

from salijax import models, porting
from salijax.classifier import Classifier
from salijax.train import trained
from salijax.train import workdir as workdir_lib

IMAGENET_CLASSES = 1000


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A classifier ready to explain, with what is needed to show it an image."""

  name: str  # display name, e.g. "resnet18 (ImageNet)", "resnet18 (scratch, train)"
  classifier: Classifier
  class_names: tuple[str, ...]  # one per logit
  image_size: int  # the input side S the model expects: S x S pixels
  crop_fraction: float  # eval crop: resize the shorter side to S / crop_fraction, crop S x S
  interpolation: str = "bilinear"  # the resize's resampling, "bilinear" or "bicubic"
  module: Any = None  # the salijax.models module of a salijax model (None: another model)
  layer: str | None = None  # a salijax model's explained layer, a tap of `module`


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
  """The 1000 ImageNet class names in torchvision's logit order ("tench" first)."""
  text = importlib.resources.files(porting).joinpath("imagenet_classes.json").read_text()
  return tuple(json.loads(text))


def _checkpoint_path(arch: str, weights: str | os.PathLike,
                     cache_dir: str | os.PathLike | None) -> pathlib.Path:
  if weights == "torchvision":
    return porting.pretrained(arch, cache_dir=cache_dir)
  path = pathlib.Path(weights)
  if not path.is_file():
    raise ValueError(f"weights: expected 'torchvision' or the path of a .pth file in "
                     f"torchvision's layout, got {str(weights)!r}, which is not a file")
  return path


def pretrained_model(arch: str, weights: str | os.PathLike = "torchvision", *,
                     cache_dir: str | os.PathLike | None = None,
                     layer: str | None = None) -> LoadedModel:
  """An ImageNet classifier with torchvision's weights (or a .pth in their layout).

  Args:
    arch: one of `salijax.models.ARCHITECTURES`.
    weights: "torchvision" (the official checkpoint, downloaded once into the
      cache, see `salijax.porting.pretrained`) or the path of a torchvision
      state_dict saved with `torch.save`, with torchvision's 1000-class head.
    cache_dir: the checkpoint cache for "torchvision".
    layer: the Classifier's explained layer (None = the architecture's default).

  Returns:
    The model named "<arch> (ImageNet)" (or "<arch> (<file name>)"), the 1000
    ImageNet class names, and torchvision's evaluation transform of the
    architecture's IMAGENET1K_V1 weights (`salijax.porting.eval_preprocessing`):
    image_size 224, crop_fraction 224 / 256, bilinear (efficientnet_b0: bicubic).

  Raises:
    ValueError: unknown `arch` or `layer`, `weights` neither "torchvision" nor a
      file, or a checkpoint that is not torchvision's `arch` with 1000 classes.
    OSError: the download failed (the message says where to put the file by hand).
  """
  if arch not in models.ARCHITECTURES:
    raise ValueError(f"arch: expected one of {models.ARCHITECTURES}, got {arch!r}")
  path = _checkpoint_path(arch, weights, cache_dir)
  state_dict = porting.read_pth(path)
  module = models.create(arch, num_classes=IMAGENET_CLASSES)
  head_weight = f"{models.head_prefix(module)}.weight"
  shape = getattr(state_dict.get(head_weight), "shape", None)
  if shape is None or shape[0] != IMAGENET_CLASSES:
    found = "no such key" if shape is None else f"shape {tuple(shape)}"
    raise ValueError(
        f"weights: {path} has no torchvision ImageNet head ({head_weight} with "
        f"{IMAGENET_CLASSES} rows; {found}); a model of other classes is explained "
        "from its salijax training workdir (trained_model)")
  variables = porting.torchvision_to_flax(arch, state_dict, num_classes=IMAGENET_CLASSES)
  name = f"{arch} (ImageNet)" if weights == "torchvision" else f"{arch} ({path.name})"
  preprocessing = porting.eval_preprocessing(arch)
  return LoadedModel(name=name, classifier=models.classifier(module, variables, layer),
                     class_names=imagenet_class_names(), image_size=preprocessing["crop"],
                     crop_fraction=preprocessing["crop"] / preprocessing["resize"],
                     interpolation=preprocessing["interpolation"], module=module,
                     layer=models.default_tap(module) if layer is None else layer)


def trained_model(workdir: str | os.PathLike, *, which: str = "best",
                  layer: str | None = None) -> LoadedModel:
  """The classifier trained in a salijax training workdir (`salijax.train.load_trained`).

  Args:
    workdir: the workdir of `salijax.train.train_and_evaluate`.
    which: "best" (highest eval accuracy) or "latest" checkpoint.
    layer: the Classifier's explained layer (None = the architecture's default).

  Returns:
    The model named "<arch> (<mode>, <workdir name>)", with the run's class
    names (run.json), image_size and crop_fraction.

  Raises:
    ValueError: no run or no such checkpoint in `workdir`, an unknown `which`
      or `layer`, or a run.json whose class names do not match its classes.
  """
  record = workdir_lib.read_run_record(workdir)
  module, variables, config = trained.load_trained(workdir, which)
  class_names = tuple(str(name) for name in record["class_names"])
  if len(class_names) != record["num_classes"]:
    raise ValueError(f"workdir: {workdir}/run.json lists {len(class_names)} class names "
                     f"for {record['num_classes']} classes")
  workdir_name = pathlib.Path(os.path.abspath(workdir)).name
  return LoadedModel(name=f"{config.model} ({config.mode}, {workdir_name})",
                     classifier=models.classifier(module, variables, layer),
                     class_names=class_names, image_size=int(config.image_size),
                     crop_fraction=float(config.crop_fraction), module=module,
                     layer=models.default_tap(module) if layer is None else layer)


def at_layer(model: LoadedModel, layer: str) -> LoadedModel:
  """`model` with its classifier explained at `layer`, a tap of its salijax model
  (`salijax.models.tap_names(model.module)`); the same variables.

  Raises:
    ValueError: `model` has no salijax module (not from pretrained_model or
      trained_model), or `layer` is not one of its taps (the error names some).
    TypeError: `model` is not a LoadedModel or `layer` not a string.
  """
  if not isinstance(model, LoadedModel):
    raise TypeError(f"model must be a LoadedModel, got {type(model).__name__}")
  if not isinstance(layer, str):
    raise TypeError(f"layer must be a tap name (a string), got {layer!r}")
  if model.module is None:
    raise ValueError(f"layer: {model.name} is not a salijax.models model (no module), so its"
                     " explained layer cannot be chosen")
  try:
    classifier = models.classifier(model.module, model.classifier.variables, layer)
  except ValueError as err:
    raise ValueError(f"{model.name}: {err}") from None
  return dataclasses.replace(model, classifier=classifier, layer=layer)
