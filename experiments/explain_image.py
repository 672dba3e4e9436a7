r"""Explains your own images: each model's top-k classes and saliency maps of its top class
(or of the classes --target names, at the layer --layer names).

With torchvision's ImageNet weights (downloaded once into ~/.cache/salijax):

  python -m experiments.explain_image --image=photos/cat.jpg --image=photos/dog.png \
    --model=resnet18 --model=vgg11

With a model trained by experiments.train, next to an ImageNet one, only Grad-CAM and a
shorter RISE, into another folder:

  python -m experiments.explain_image --image=photos/star.png --checkpoint=workdir/train \
    --model=resnet18 --methods=gradcam,rise --num_masks=1000 --out_dir=explanations/star

With a .pth file in torchvision's layout for every --model (offline use):

  python -m experiments.explain_image --image=photos/cat.jpg --model=resnet18 \
    --weights=resnet18-f37072fd.pth

Grad-CAM (and every method that reads a layer) at another layer than each model's
default (the taps: salijax.models.tap_names; here resnet18's layer3 and vgg11's
features.14), explaining the class "tabby" (a class index works too, or
--target=topk: each of the top --top_k classes, one panel row per class and method):

  python -m experiments.explain_image --image=photos/cat.jpg --model=resnet18 \
    --model=vgg11 --layer=resnet18=layer3 --layer=vgg11=features.14 --target=tabby

A single --layer=LAYER applies to every model (e.g. two resnets); an unknown layer
or class stops with an error naming some valid ones before any model runs.

With, beside each model's column, the image's FGSM adversarial version for that model
(one signed-gradient step of 2/255 on the [0, 1] image against the explained class),
predicted and explained like the image:

  python -m experiments.explain_image --image=photos/cat.jpg --model=resnet18 --fgsm=2/255

With each model's class model of each image's explained (top-1) class (Simonyan et al.
2014: the image that class's logit likes best) as an extra row of the panel, in 100 steps:

  python -m experiments.explain_image --image=photos/cat.jpg --model=resnet18 \
    --class_model --class_model_steps=100 --class_model_l2=0.001

With the models' forwards in bfloat16 on a GPU or TPU (the maps stay float32; README:
Precision):

  python -m experiments.explain_image --image=photos/cat.jpg --model=resnet18 \
    --compute_dtype=bfloat16

With a language model's commentary on each panel (OPENAI_API_KEY and, for another
endpoint than OpenAI's, OPENAI_BASE_URL; the panels are sent there):

  OPENAI_BASE_URL=http://localhost:8000/v1 OPENAI_API_KEY=unused \
    python -m experiments.explain_image --image=photos/cat.jpg --model=resnet18 \
    --commentary=on --commentary_model=qwen2.5-vl-7b-instruct

  python -m experiments.explain_image --show_commentary_prompt  # the prompt sent

Writes, per image, OUT_DIR/<stem>.png (the models [and FGSM versions] side by side:
the image and its top-k, [the class model,] then one row per method [and explained
class, each named under its map]) and OUT_DIR/<stem>.npz (the model inputs, maps [and
class models]), [OUT_DIR/<stem>.commentary.md,] plus OUT_DIR/predictions.json (see
salijax.pipeline.explain_image: with the target, fgsm, each model's layer and each
image's explained classes) and OUT_DIR/index.html, every panel with each model's top-k
(and its commentary where one exists) in one page that opens from disk in a browser.
"""

import os
import sys

from absl import app, flags

from experiments import orbax_logging
from salijax import compute_dtype, cpu_convolutions
from salijax import models as models_lib
from salijax.pipeline import (
    commentary,
    explain_image,
    explain_image_page,
    explain_target,
    model_loading,
)

_IMAGES = flags.DEFINE_multi_string("image", None, "An image file (repeat the flag for more).")
_MODELS = flags.DEFINE_multi_string(
    "model", [], "An architecture with ImageNet weights (repeatable): one of "
    f"{', '.join(models_lib.ARCHITECTURES)}.")
_WEIGHTS = flags.DEFINE_string(
    "weights", "torchvision", "For --model: 'torchvision' (the official checkpoint) or the "
    "path of a .pth file in torchvision's layout.")
_CHECKPOINTS = flags.DEFINE_multi_string(
    "checkpoint", [], "A salijax training workdir (repeatable); its best checkpoint is used.")
_METHODS = flags.DEFINE_list("methods", ["gradcam", "rise", "sidu", "lime"],
                             "Saliency methods, comma-separated.")
_OUT_DIR = flags.DEFINE_string("out_dir", "explanations", "Output folder.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the methods' random keys.")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes reported per image and model.", lower_bound=1)
_NUM_MASKS = flags.DEFINE_integer("num_masks", None, "RISE masks (default: RISE's 4000).",
                                  lower_bound=1)
_LIME_SAMPLES = flags.DEFINE_integer(
    "lime_samples", None, "LIME perturbed samples (default: LIME's 1000).", lower_bound=1)
_CLASS_MODEL = flags.DEFINE_bool(
    "class_model", False, "Also render, per model, the class model of each image's top-1 "
    "class (Simonyan et al. 2014): the image that class's logit likes best, by gradient "
    "ascent from grey, as a row of the panel under the image and '<model>/class_model' in "
    "the .npz. Costs --class_model_steps forward and backward passes per model and class.")
_CLASS_MODEL_STEPS = flags.DEFINE_integer(
    "class_model_steps", None, "With --class_model: ascent steps (default 200).", lower_bound=1)
_CLASS_MODEL_L2 = flags.DEFINE_float(
    "class_model_l2", None, "With --class_model: weight of the penalty ||I - 0.5||^2, a sum "
    "over pixels (default 0.01, for 72 px; about 0.001 at 224 px).", lower_bound=0.0)
_LAYERS = flags.DEFINE_multi_string(
    "layer", [], "The explained layer (a tap: salijax.models.tap_names of the model; default "
    "salijax.models.default_tap) as MODEL=LAYER, MODEL a --model or --checkpoint value as "
    "given (repeatable), or one LAYER for every model.")
_TARGET = flags.DEFINE_string(
    "target", explain_target.TOP1, "The explained class: 'top1' (each image's most probable), "
    "'topk' (each of the top --top_k classes, one panel row per class and method), a class "
    "index (digits) or a class name (case-insensitive).")
_FGSM = flags.DEFINE_string(
    "fgsm", None, "An epsilon in (0, 1] (a number or a fraction, e.g. 2/255): beside each "
    "model's column, the image's FGSM version for that model (one signed-gradient step "
    "raising the explained class's cross-entropy), predicted and explained too.")
_COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype", "float32", list(compute_dtype.DTYPES),
    "The dtype of every model forward: bfloat16 (or float16) for GPUs and TPUs, the maps and "
    "probabilities staying float32 (README: Precision).")
_COMMENTARY = flags.DEFINE_enum(
    "commentary", "off", ["off", "on", "optional"],
    "A language model's commentary on each panel, written to <stem>.commentary.md: 'on' "
    "needs OPENAI_API_KEY (else stops before any model runs) and exits with an error if "
    "an image's commentary failed (after writing everything); 'optional' goes on without "
    "commentary when no key is set, and only warns about failures. Each panel and image "
    "file name is sent to the endpoint (OPENAI_BASE_URL, default OpenAI's).")
_COMMENTARY_MODEL = flags.DEFINE_string(
    "commentary_model", commentary.DEFAULT_MODEL,
    "With --commentary: the model named in each request (one that reads images).")
_COMMENTARY_PROMPT = flags.DEFINE_string(
    "commentary_prompt", None, "With --commentary (or --show_commentary_prompt): a text "
    "file whose contents replace salijax's prompt.")
_SHOW_COMMENTARY_PROMPT = flags.DEFINE_bool(
    "show_commentary_prompt", False, "Print the commentary prompt (salijax's, or the "
    "--commentary_prompt file) and exit without explaining anything.")
_COMMENTARY_TIMEOUT = flags.DEFINE_float(
    "commentary_timeout", commentary.DEFAULT_TIMEOUT_S,
    "With --commentary: seconds one request may take (> 0).")
flags.register_validator("commentary_timeout", lambda seconds: seconds > 0, "must be > 0")
_COMMENTARY_RETRIES = flags.DEFINE_integer(
    "commentary_retries", commentary.DEFAULT_RETRIES, "With --commentary: how many times a "
    "request that timed out, could not connect or got HTTP 408/409/429/5xx is repeated.",
    lower_bound=0)
_COMMENTARY_BACKOFF = flags.DEFINE_float(
    "commentary_backoff", commentary.DEFAULT_BACKOFF_S, "With --commentary: seconds before "
    "the first retry; doubled before each further one.", lower_bound=0.0)
_COMMENTARY_FLAGS = ("commentary_model", "commentary_prompt", "commentary_timeout",
                    "commentary_retries", "commentary_backoff")
flags.register_multi_flags_validator(
    ["image", "show_commentary_prompt"],
    lambda values: bool(values["image"]) or values["show_commentary_prompt"],
    "--image is required (unless --show_commentary_prompt)")


def _method_options(methods: list[str]) -> dict[str, dict[str, int]]:
  options = {"rise": {"num_masks": _NUM_MASKS.value},
             "lime": {"num_samples": _LIME_SAMPLES.value}}
  return {method: {name: value for name, value in hyperparameters.items() if value is not None}
          for method, hyperparameters in options.items() if method in methods}


def _prompt() -> str:
  if _COMMENTARY_PROMPT.value is None:
    return commentary.default_prompt()
  try:
    return commentary.read_prompt(_COMMENTARY_PROMPT.value)
  except (OSError, ValueError) as err:
    raise app.UsageError(f"--commentary_prompt: {err}") from None


def _commentator() -> commentary.Commentator | None:
  """The commentator of the --commentary flags (None: off or skipped), before any model runs."""
  if _COMMENTARY.value == "off":
    given = [f"--{name}" for name in _COMMENTARY_FLAGS if flags.FLAGS[name].present]
    if given:
      raise app.UsageError(f"{', '.join(given)} need --commentary=on or --commentary=optional")
    return None
  try:
    return commentary.commentator(_COMMENTARY_MODEL.value, prompt=_prompt(),
                                  timeout_s=_COMMENTARY_TIMEOUT.value,
                                  retries=_COMMENTARY_RETRIES.value,
                                  backoff_s=_COMMENTARY_BACKOFF.value)
  except ValueError as err:
    raise app.UsageError(str(err)) from None
  except commentary.CommentaryUnavailable as err:
    if _COMMENTARY.value == "on":
      raise SystemExit(f"error: --commentary=on: {err}; --commentary=optional goes on"
                       " without") from None
    print(f"warning: commentary skipped: {err}", file=sys.stderr)
    return None


def _report_commentary_failures(records: list[dict]) -> None:
  failed = [record for record in records if record["commentary_error"] is not None]
  if not failed:
    return
  message = (f"commentary failed for {len(failed)} of the {len(records)} images (notes in"
             " their .commentary.md):\n  " + "\n  ".join(
                 f"{record['image']}: {record['commentary_error']}" for record in failed))
  if _COMMENTARY.value == "on":
    raise SystemExit(f"error: {message}")
  print(f"warning: {message}", file=sys.stderr)


def _layer_flags() -> dict[str | None, str]:
  """--layer as {a --model/--checkpoint value, or None for every model: the layer}."""
  sources = [*_MODELS.value, *_CHECKPOINTS.value]
  layers: dict[str | None, str] = {}
  for value in _LAYERS.value:
    source, _, layer = value.rpartition("=")  # a tap name has no "="; a path may have
    key = source or None
    if not layer:
      raise app.UsageError(f"--layer={value}: expected MODEL=LAYER or LAYER")
    if key is not None and key not in sources:
      raise app.UsageError(f"--layer={value}: {source!r} is no --model or --checkpoint value;"
                           f" they are {sources}")
    if key in layers or (layers and (key is None or None in layers)):
      raise app.UsageError("--layer: give one LAYER for every model, or MODEL=LAYER once per"
                           f" model, got {_LAYERS.value}")
    layers[key] = layer
  return layers


def _layers(sources: list[str], models: list[model_loading.LoadedModel],
            layer_flags: dict[str | None, str]) -> dict[str, str] | None:
  """explain_images' layers (model name -> layer) of --layer, for the models of `sources`."""
  if not layer_flags:
    return None
  layers: dict[str, str] = {}
  for source, model in zip(sources, models, strict=True):
    layer = layer_flags.get(source, layer_flags.get(None))
    if layer is None:
      continue
    if layers.setdefault(model.name, layer) != layer:
      raise app.UsageError(f"--layer: two models are named {model.name!r}; give them one layer")
  return layers


def _target() -> str | int:
  """--target as explain_images takes it: digits are a class index."""
  value = _TARGET.value.strip()
  return int(value) if value.isdigit() else value


def _fgsm() -> float | None:
  """--fgsm as a number: "0.01" or "2/255"."""
  if _FGSM.value is None:
    return None
  numerator, _, denominator = _FGSM.value.partition("/")
  try:
    epsilon = float(numerator) / float(denominator or 1)
  except (ValueError, ZeroDivisionError):
    raise app.UsageError(f"--fgsm: expected a number or a fraction such as 2/255, got"
                         f" {_FGSM.value!r}") from None
  if not 0 < epsilon <= 1:
    raise app.UsageError(f"--fgsm: expected an epsilon in (0, 1], got {_FGSM.value!r}")
  return epsilon


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Explaining only: YNNPACK for the dots only (salijax.cpu_convolutions says why).
  cpu_convolutions.use_xla_convolutions(flag=cpu_convolutions.DOTS_ONLY_FLAG)
  if _SHOW_COMMENTARY_PROMPT.value:
    print(_prompt(), end="")
    return
  if not _MODELS.value and not _CHECKPOINTS.value:
    raise app.UsageError("give at least one --model or --checkpoint")
  unknown = [arch for arch in _MODELS.value if arch not in models_lib.ARCHITECTURES]
  if unknown:
    raise app.UsageError(f"--model: unknown {unknown}; the architectures are "
                         f"{', '.join(models_lib.ARCHITECTURES)}")
  methods = _METHODS.value
  try:
    explain_image.check_methods(methods)
  except ValueError as err:
    raise app.UsageError(str(err)) from None
  options = _method_options(methods)
  class_model_options = {name: value for name, value in
                         (("steps", _CLASS_MODEL_STEPS.value), ("l2", _CLASS_MODEL_L2.value))
                         if value is not None}
  if class_model_options and not _CLASS_MODEL.value:
    raise app.UsageError("--class_model_steps and --class_model_l2 need --class_model")
  layer_flags = _layer_flags()
  fgsm = _fgsm()
  target = _target()
  try:
    explain_target.check_target(target)
  except (TypeError, ValueError) as err:
    raise app.UsageError(f"--target: {err}") from None
  commentator = _commentator()
  orbax_logging.drop_orbax_info()
  try:
    explain_image.check_images(_IMAGES.value)
    models = [model_loading.pretrained_model(arch, _WEIGHTS.value) for arch in _MODELS.value]
    models += [model_loading.trained_model(workdir) for workdir in _CHECKPOINTS.value]
    layers = _layers([*_MODELS.value, *_CHECKPOINTS.value], models, layer_flags)
    records = explain_image.explain_images(_IMAGES.value, models, methods, _OUT_DIR.value,
                                           seed=_SEED.value, top_k=_TOP_K.value,
                                           method_options=options,
                                           class_model=_CLASS_MODEL.value,
                                           class_model_options=class_model_options,
                                           commentary=commentator, layers=layers,
                                           target=target, fgsm=fgsm,
                                           compute_dtype=_COMPUTE_DTYPE.value)
  except (OSError, ValueError) as err:
    raise SystemExit(f"error: {err}") from None
  for record in records:
    print(record["panel"])
    if record["commentary"] is not None:
      print(record["commentary"])
  print(os.path.join(_OUT_DIR.value, explain_image.PREDICTIONS_FILE))
  print(os.path.join(_OUT_DIR.value, explain_image_page.PAGE_NAME))
  _report_commentary_failures(records)


if __name__ == "__main__":
  app.run(main)
