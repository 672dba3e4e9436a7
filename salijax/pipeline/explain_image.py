"""Explaining people's own images: predictions and saliency maps of several models, as files.

    from salijax.pipeline import explain_image, model_loading
    models = [model_loading.pretrained_model("resnet18"),
              model_loading.trained_model("workdir/train")]
    records = explain_image.explain_images(
        ["photos/cat.jpg", "photos/dog.png"], models, ["gradcam", "rise"], "explanations",
        method_options={"rise": {"num_masks": 2000}})

Each model sees each image as in its evaluation (`model_input`: the shorter
side resized to image_size / crop_fraction, the centre image_size square
cropped, with the training pipeline's `salijax.data.preprocessing`). Its
softmax gives the top-k classes; every method explains the `target` class
(`salijax.pipeline.explain_target`: the top-1 by default, a class index or
name, or each of the top-k) with the key `fold_in(key(seed), index of the
method in methods)` (the same for every image, model and class, so a map
depends only on its image, model, class and method). With "topk" the classes
are the top min(top_k, fewest classes of any model), and the panel has one
row per (class rank, method), class-major ("top-1: gradcam", "top-1: rise",
"top-2: gradcam", ...); with any target but "top1" each map has its class
and probability under it and the title says what was explained.

`layers` (model name -> a tap of its salijax model, `salijax.models.tap_names`)
explains those models at another layer than `salijax.models.default_tap`
(`model_loading.at_layer`): Grad-CAM and the other layer methods read it.
Images are explained one at a time: each (model, method) compiles once, and
memory does not grow with the number of images.

With `fgsm=epsilon` (e.g. 2/255), each model's column is followed by one of
the image's FGSM version for that model (`salijax.perturbations.fgsm`: one
signed-gradient step of size epsilon on the [0, 1] model input, raising the
cross-entropy of the image's first explained class, clipped to [0, 1]),
named "FGSM <epsilon>: <model name>" (`fgsm_name`) in the panel, the records
and the .npz, and predicted and explained like an image of its own (the
target resolved on it: its own top-1 with "top1").

With `class_model=True`, each model also renders the class model of each
image's (first) explained class (Simonyan et al. 2014, `salijax.visualisation.class_model`:
the image that class's logit likes best, by gradient ascent from mid-grey at
the model's input size, with `class_model_options`): a row of the panel under
the image. It is computed once per (model, class) and call; it costs `steps`
(default 200) forward and backward passes of the model per class.

With a `commentary` (`salijax.pipeline.commentary.commentator`), each panel,
as soon as it is written, is sent with its top-k and method names to a
language model behind an OpenAI-compatible endpoint, and the answer is
written to <stem>.commentary.md (an error note instead if the request failed
after its retries; the other images go on). Without one, a <stem>.commentary.md
left by an earlier run is removed with the panel it described.

Files in out_dir, per image (<stem> = the file name without its suffix,
"<stem>_2", "<stem>_3", ... for repeated stems):

  <stem>.png         the panel: models side by side, the image with its top-k,
                     then one row per method (`salijax.report.explanation_panel`)
  <stem>.commentary.md
                     with commentary: the language model's Markdown on the panel
  <stem>.npz         "<model name>/image" f32[S,S,3], the model's input, and
                     "<model name>/<method>" f32[S,S], the maps (target "topk":
                     f32[k,S,S], the k explained classes' maps in rank order);
                     with class_model,
                     "<model name>/class_model" f32[S,S,3] and
                     "<model name>/class_model_logit" f32[steps+1], the explained
                     class's logit along the ascent (entry t after t steps)
  predictions.json   {"seed", "compute_dtype", "methods", "method_options", "target", "fgsm",
                     "class_model_options" (None without class models),
                     "commentary" ({"model", "endpoint"}, None without),
                     "models" (each {"name", "image_size", "crop_fraction",
                     "layer": the explained layer, None if not a salijax model}),
                     "images": the records}
  index.html         one page for a browser: every panel, each model's top-k and the
                     commentary <stem>.commentary.md of an image when that file exists
                     (`explain_image_page.write_page`: call it again after adding one)

Every file is written atomically. Unreadable images are all reported, with
their reasons, before any model runs.
"""

import dataclasses
import io
import json
import math
import os
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from absl import logging

from salijax import atomic_files, perturbations, validation, visualisation
from salijax import methods as methods_lib
from salijax.classifier import Classifier
from salijax.compute_dtype import dtype_name, with_compute_dtype
from salijax.data import image_file, preprocessing
from salijax.pipeline import commentary as commentary_lib
from salijax.pipeline import explain_image_page, explain_target
from salijax.pipeline.model_loading import LoadedModel, at_layer
from salijax.report import plotting
from salijax.report.explanation_panel import PanelColumn, explanation_panel
from salijax.visualisation.class_model import check_hyperparameters

PREDICTIONS_FILE = explain_image_page.PREDICTIONS_FILE  # "predictions.json"
CLASS_MODEL_OPTIONS = ("steps", "learning_rate", "l2")  # of salijax.visualisation.class_model


def check_methods(methods: Sequence[str],
                  method_options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
  """Raises ValueError unless `methods` are distinct registered names with options only for them."""
  if isinstance(methods, str) or not methods:
    raise ValueError(f"methods must be a non-empty sequence of method names, got {methods!r}")
  unknown = [name for name in methods if name not in methods_lib.names()]
  if unknown:
    raise ValueError(f"methods: unknown {unknown}; the methods are {list(methods_lib.names())}")
  if len(set(methods)) != len(methods):
    raise ValueError(f"methods must not repeat a name, got {list(methods)}")
  for name, options in (method_options or {}).items():
    if name not in methods:
      raise ValueError(f"method_options: options for {name!r}, which is not among the"
                       f" methods {list(methods)}")
    if not isinstance(options, Mapping):
      raise TypeError(f"method_options[{name!r}] must be a mapping of hyperparameters,"
                      f" got {type(options).__name__}")
    try:
      methods_lib.info(name).resolve(options)  # the registry's checks, before any image
    except (TypeError, ValueError) as error:
      raise type(error)(f"method_options[{name!r}]: {error}") from error


def _read_each(paths: Sequence[str | os.PathLike]
               ) -> Iterator[tuple[np.ndarray | None, str | None]]:
  """(image f32[H,W,3], None) or (None, the reason it cannot be read) for each path."""
  if isinstance(paths, str | os.PathLike) or not paths:
    raise ValueError(f"paths must be a non-empty sequence of image paths, got {paths!r}")
  for path in paths:
    try:
      yield image_file.read_image(path), None
    except (FileNotFoundError, ValueError) as err:
      yield None, str(err)


def _unreadable_error(problems: list[str], total: int) -> ValueError:
  return ValueError(f"{len(problems)} of the {total} images cannot be read:\n  "
                    + "\n  ".join(problems))


def check_images(paths: Sequence[str | os.PathLike]) -> None:
  """Reads every image; raises one ValueError listing every unreadable path with its reason."""
  problems = [problem for _, problem in _read_each(paths) if problem is not None]
  if problems:
    raise _unreadable_error(problems, len(paths))


def model_input(image: np.ndarray, model: LoadedModel) -> np.ndarray:
  """An image f32[H,W,3] in [0, 1] as `model` sees it: f32[S,S,3], S = model.image_size.

  The shorter side is resized to S / crop_fraction (with model.interpolation)
  and the centre S x S cropped, by the evaluation transform of training
  (`salijax.data.preprocessing.eval_example`, on 8-bit pixels).
  """
  pixels = np.round(np.asarray(image, np.float32) * 255).astype(np.uint8)
  example = {"image": pixels, "label": 0}
  return preprocessing.eval_example(example, model.image_size, model.crop_fraction,
                                    model.interpolation)["image"]


@jax.jit
def _probabilities(clf: Classifier, images: jax.Array) -> jax.Array:
  return jax.nn.softmax(clf.logits(images), axis=-1)


def top_k_classes(model: LoadedModel, images: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
  """The k most probable classes (softmax) of each image f32[B,S,S,3], most probable first.

  Returns:
    Per image, [{"class": index, "name": class name, "probability": p}, ...],
    min(k, K) entries; ties in index order.

  Raises:
    ValueError: the model's class names do not match its number of logits.
  """
  classes = validation.num_classes(model.classifier, images)
  if len(model.class_names) != classes:
    raise ValueError(f"models: {model.name} has {len(model.class_names)} class names for"
                     f" {classes} logits")
  probabilities = np.asarray(_probabilities(model.classifier, images))
  order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
  return [[{"class": int(c), "name": model.class_names[c], "probability": float(p[c])}
           for c in row] for row, p in zip(order, probabilities, strict=True)]


def _unique(names: Sequence[str], separator: str) -> list[str]:
  """`names` with repeats renamed name<separator>2, name<separator>3, ..., clashing with none."""
  unique: list[str] = []
  for name in names:
    candidate, count = name, 1
    while candidate in unique or (candidate != name and candidate in names):
      count += 1
      candidate = f"{name}{separator}{count}"
    unique.append(candidate)
  return unique


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return buffer.getvalue()


def check_class_model_options(class_model: bool,
                              options: Mapping[str, Any] | None) -> dict[str, Any] | None:
  """The class model options to use (None: no class models), or ValueError/TypeError."""
  if not isinstance(class_model, bool):
    raise TypeError(f"class_model must be a bool, got {class_model!r}")
  if options is not None and not isinstance(options, Mapping):
    raise TypeError(f"class_model_options must be a mapping, got {type(options).__name__}")
  if not class_model:
    if options:
      raise ValueError(f"class_model_options {dict(options)} given with class_model=False")
    return None
  unknown = sorted(set(options or {}) - set(CLASS_MODEL_OPTIONS))
  if unknown:
    raise ValueError(f"class_model_options: unknown {unknown}; the options are"
                     f" {list(CLASS_MODEL_OPTIONS)}")
  try:
    check_hyperparameters(**(options or {}))
  except ValueError as err:
    raise ValueError(f"class_model_options: {err}") from None
  return dict(options or {})


def _check_arguments(models: Sequence[LoadedModel], top_k: int, seed: int, cmap: str,
                     commentary: commentary_lib.Commentator | None) -> None:
  if isinstance(models, LoadedModel) or not models:
    raise ValueError(f"models must be a non-empty sequence of LoadedModel, got {models!r}")
  for index, model in enumerate(models):
    if not isinstance(model, LoadedModel):
      raise TypeError(f"models[{index}] must be a LoadedModel (salijax.pipeline.model_loading),"
                      f" got {type(model).__name__}")
  validation.check_positive_int(top_k, "top_k")
  if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
    raise TypeError(f"seed must be an int, got {seed!r}")
  if cmap not in plotting.pyplot().colormaps():
    raise ValueError(f"cmap must be a matplotlib colormap name, got {cmap!r}")
  if commentary is not None and not isinstance(commentary, commentary_lib.Commentator):
    raise TypeError("commentary must be None or a Commentator (salijax.pipeline.commentary),"
                    f" got {type(commentary).__name__}")


def _at_layers(models: Sequence[LoadedModel],
               layers: Mapping[str, str] | None) -> list[LoadedModel]:
  """`models`, those named in `layers` rebuilt at their layer (`model_loading.at_layer`)."""
  if layers is None:
    return list(models)
  if not isinstance(layers, Mapping):
    raise TypeError(f"layers must be a mapping of model name to layer, got {layers!r}")
  names = [model.name for model in models]
  unknown = [name for name in layers if name not in names]
  if unknown:
    raise ValueError(f"layers: no model is named {unknown}; the models are {names}")
  try:
    return [at_layer(model, layers[model.name]) if model.name in layers else model
            for model in models]
  except ValueError as err:
    raise ValueError(f"layers: {err}") from None


def _explained_classes(model: LoadedModel, batch: np.ndarray, ranked: list[dict[str, Any]],
                       fixed: int | None, count: int) -> list[dict[str, Any]]:
  """The classes explained for one image, as top_k_classes entries: the fixed class, else
  the first `count` of `ranked`."""
  if fixed is None:
    return ranked[:count]
  probability = float(np.asarray(_probabilities(model.classifier, batch))[0, fixed])
  return [{"class": fixed, "name": model.class_names[fixed], "probability": probability}]


def _what_is_explained(target: str | int, count: int) -> str:
  """The panel title's words on the explained classes (target not "top1")."""
  if target == explain_target.TOPK:
    return f"maps of each model's top-{count} classes"
  return f"maps of class {target!r}"


@dataclasses.dataclass(frozen=True)
class _Explaining:
  """What explain_images does with each (model, image): its settings and class model cache."""

  methods: Sequence[str]
  keys: list[jax.Array]  # one per method
  method_options: dict[str, dict[str, Any]]
  top_k: int
  target: str | int
  count: int  # classes explained per image: top-k ones with "topk", else 1
  class_model_options: dict[str, Any] | None
  class_models: dict[tuple[int, int], visualisation.ClassModel]  # by (model index, class)


def _explain_one(how: _Explaining, index: int, model: LoadedModel, name: str, image: np.ndarray,
                 fixed: int | None
                 ) -> tuple[PanelColumn, list[dict[str, Any]], list[dict[str, Any]],
                            dict[str, np.ndarray]]:
  """One panel column: model number `index`'s top-k, explained classes and maps of `image`
  f32[S,S,3], with its arrays "<name>/..." (module doc)."""
  batch = image[None]
  topk = how.target == explain_target.TOPK
  (ranked,) = top_k_classes(model, batch, how.top_k)
  classes = _explained_classes(model, batch, ranked, fixed, how.count)
  maps, explained_rows = {}, {}
  for rank, entry in enumerate(classes, start=1):
    labels = np.array([entry["class"]], np.int32)
    for method, key in zip(how.methods, how.keys, strict=True):
      saliency = methods_lib.get(method)(model.classifier, batch, labels, key=key,
                                         **how.method_options.get(method, {}))
      row = f"top-{rank}: {method}" if topk else method
      maps[row] = np.asarray(saliency[0], np.float32)
      explained_rows[row] = f"{entry['name']} ({100 * entry['probability']:.1f} %)"
  arrays = {f"{name}/image": image}
  for method in how.methods:
    arrays[f"{name}/{method}"] = (
        np.stack([maps[f"top-{rank}: {method}"] for rank in range(1, how.count + 1)])
        if topk else maps[method])
  class_model_image = None
  if how.class_model_options is not None:
    cached = (index, int(classes[0]["class"]))
    if cached not in how.class_models:
      how.class_models[cached] = visualisation.class_model(
          model.classifier, np.array([cached[1]], np.int32), image_size=model.image_size,
          **how.class_model_options)
    result = how.class_models[cached]
    class_model_image = np.asarray(result.images[0], np.float32)
    arrays[f"{name}/class_model"] = class_model_image
    arrays[f"{name}/class_model_logit"] = np.asarray(result.target_logit[0], np.float32)
  column = PanelColumn(name, image, [(c["name"], c["probability"]) for c in ranked], maps,
                       class_model=class_model_image,
                       explained=None if how.target == explain_target.TOP1 else explained_rows)
  return column, ranked, classes, arrays


def fgsm_name(name: str, epsilon: float) -> str:
  """The column name of model `name`'s FGSM version of an image: "FGSM <epsilon>: <name>"."""
  return f"FGSM {epsilon:.3g}: {name}"


def _check_fgsm(fgsm: float | None) -> None:
  if fgsm is None:
    return
  if isinstance(fgsm, bool) or not isinstance(fgsm, int | float | np.integer | np.floating):
    raise TypeError(f"fgsm must be None or an epsilon in [0, 1], got {fgsm!r}")
  if not (math.isfinite(fgsm) and 0 < fgsm <= 1):
    raise ValueError(f"fgsm must be an epsilon in (0, 1] (pixel units, e.g. 2/255), got {fgsm!r}")


def explain_images(paths: Sequence[str | os.PathLike], models: Sequence[LoadedModel],
                   methods: Sequence[str], out_dir: str | os.PathLike, *, seed: int = 0,
                   top_k: int = 5, method_options: Mapping[str, Mapping[str, Any]] | None = None,
                   cmap: str = "jet", class_model: bool = False,
                   class_model_options: Mapping[str, Any] | None = None,
                   commentary: commentary_lib.Commentator | None = None,
                   layers: Mapping[str, str] | None = None, target: str | int = "top1",
                   fgsm: float | None = None,
                   compute_dtype: str = "float32") -> list[dict[str, Any]]:
  """Predicts and explains each image with each model and method; writes the files (module doc).

  Args:
    paths: the image files (`salijax.data.image_file.read_image` formats).
    models: the models (`model_loading.pretrained_model` / `trained_model`);
      repeated names get " #2", " #3", ...
    methods: registered method names (`salijax.methods.names()`), the panel's rows.
    out_dir: the output folder, created if missing.
    seed: the seed of the methods' keys.
    top_k: how many classes to report per image and model.
    method_options: method name -> hyperparameters passed to it
      (e.g. {"rise": {"num_masks": 2000}}).
    cmap: the matplotlib colormap of the panels.
    class_model: also render each model's class model of each image's
      (first) explained class (module doc).
    class_model_options: keyword arguments of
      `salijax.visualisation.class_model` ("steps", "learning_rate", "l2");
      only with class_model.
    commentary: the language model that comments on each panel, or None
      (module doc).
    layers: model name -> the layer to explain it at, a tap of its salijax
      model (every model of that name; the others keep theirs).
    target: the explained class: "top1", "topk", a class index or a class
      name (`salijax.pipeline.explain_target`).
    fgsm: None, or the epsilon of an FGSM version of each image beside each
      model's column, in (0, 1] (module doc).
    compute_dtype: the dtype of every model forward (predictions, methods,
      FGSM, class models): "float32", "bfloat16" or "float16"
      (`salijax.compute_dtype`: the maps and probabilities stay float32).

  Returns:
    One record per image, in the order of `paths`: {"image": the path, "stem",
    "panel": the .png path, "arrays": the .npz path, "predictions": {model
    name (and FGSM column name): the top-k list of `top_k_classes`},
    "explained": {model name: the
    explained classes, entries like top_k_classes'}, "commentary": the
    .commentary.md path (None without commentary), "commentary_error": None or
    why the request failed}.

  Raises:
    ValueError: unreadable images (all listed, before any model runs); empty
      or unknown methods, options for other methods; empty models; bad top_k
      or cmap; class names that do not match a model's logits; class model
      options without class_model, unknown or with bad values; layers for no
      model, of a model that is not a salijax model, or not a tap of it; a
      target index beyond a model's classes, a name that no class (or several)
      of a model has; an fgsm outside (0, 1]; another compute_dtype. All
      before any image is read.
    TypeError: a model that is not a LoadedModel, a non-int seed, a non-bool
      class_model, a commentary that is not a Commentator, layers not a
      mapping, a target of another type, an fgsm that is not a number.
  """
  check_methods(methods, method_options)
  _check_arguments(models, top_k, seed, cmap, commentary)
  class_model_options = check_class_model_options(class_model, class_model_options)
  _check_fgsm(fgsm)
  compute_dtype = dtype_name(compute_dtype)
  models = [dataclasses.replace(model, classifier=with_compute_dtype(model.classifier,
                                                                     compute_dtype))
            for model in _at_layers(models, layers)]
  fixed = [explain_target.fixed_class(target, model.class_names, model.name)
           for model in models]
  topk = target == explain_target.TOPK
  count = min(top_k, *(len(model.class_names) for model in models)) if topk else 1
  fgsm = None if fgsm is None else float(fgsm)
  method_options = {name: dict(options) for name, options in (method_options or {}).items()}
  names = _unique([model.name for model in models], " #")
  inputs: list[list[np.ndarray]] = []  # [image][model] f32[S,S,3]
  problems = []
  for image, problem in _read_each(paths):
    if problem is not None:
      problems.append(problem)
    elif not problems:
      inputs.append([model_input(image, model) for model in models])
  if problems:
    raise _unreadable_error(problems, len(paths))

  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  stems = _unique([pathlib.Path(path).stem for path in paths], "_")
  keys = [jax.random.fold_in(jax.random.key(seed), index) for index in range(len(methods))]
  how = _Explaining(methods, keys, method_options, top_k, target, count, class_model_options,
                    class_models={})
  records = []
  for path, stem, model_inputs in zip(paths, stems, inputs, strict=True):
    arrays: dict[str, np.ndarray] = {}
    columns, predictions, explained = [], {}, {}
    for index, (model, name, image) in enumerate(zip(models, names, model_inputs, strict=True)):
      shown = [(name, image)]
      if fgsm is not None:  # against the image's (first) explained class
        first = _explained_classes(model, image[None], top_k_classes(model, image[None], 1)[0],
                                   fixed[index], 1)[0]["class"]
        attacked = perturbations.fgsm(model.classifier, image[None],
                                      np.array([first], np.int32), epsilon=fgsm)
        shown.append((fgsm_name(name, fgsm), np.asarray(attacked[0], np.float32)))
      for shown_name, shown_image in shown:
        column, ranked, classes, column_arrays = _explain_one(
            how, index, model, shown_name, shown_image, fixed[index])
        columns.append(column)
        arrays.update(column_arrays)
        predictions[shown_name], explained[shown_name] = ranked, classes
        logging.info("%s, %s: %s (%.1f %%)", path, shown_name, ranked[0]["name"],
                     100 * ranked[0]["probability"])
    panel, npz = out_dir / f"{stem}.png", out_dir / f"{stem}.npz"
    title = pathlib.Path(path).name
    if target != explain_target.TOP1:
      title += f": {_what_is_explained(target, count)}"
    explanation_panel(panel, columns, title=title, cmap=cmap)
    atomic_files.write_bytes_atomic(npz, _npz_bytes(arrays))
    commentary_file, commentary_error = commentary_lib.commentary_path(panel), None
    if commentary is None:
      commentary_file.unlink(missing_ok=True)  # an earlier run's, on the panel just replaced
    else:
      facts = commentary_lib.panel_facts(
          pathlib.Path(path).name, predictions, methods, class_model_options is not None,
          explained=None if target == explain_target.TOP1 else explained)
      commentary_error = commentary_lib.write_commentary(commentary, panel, facts)
    records.append({"image": str(path), "stem": stem, "panel": str(panel), "arrays": str(npz),
                    "predictions": predictions, "explained": explained,
                    "commentary": None if commentary is None else str(commentary_file),
                    "commentary_error": commentary_error})
  models_json = [{"name": name, "image_size": model.image_size,
                  "crop_fraction": model.crop_fraction, "layer": model.layer}
                 for name, model in zip(names, models, strict=True)]
  commentary_json = None if commentary is None else {"model": commentary.model,
                                                      "endpoint": commentary.endpoint}
  summary = {"seed": seed, "compute_dtype": compute_dtype, "methods": list(methods),
             "method_options": method_options,
             "target": target if isinstance(target, str) else int(target), "fgsm": fgsm,
             "class_model_options": class_model_options, "commentary": commentary_json,
             "models": models_json, "images": records}
  atomic_files.write_bytes_atomic(out_dir / PREDICTIONS_FILE,
                                  (json.dumps(summary, indent=2, default=repr) + "\n").encode())
  explain_image_page.write_page(out_dir)
  return records
