"""Speed of every saliency method (and insertion/deletion) against its pass-count floor.

A map costs passes of one of two kinds (docs/design.md#performance-targets):

  forward   a forward of the whole classifier, `jax.jit(clf.apply)`;
  gradient  a forward and a backward of the target logits with respect to the
            input images, `jax.jit(jax.grad(sum of the target logits))`.

Each method's cost is the registry's (`salijax.methods.info(name).cost`): from
the method's options and the shapes, a `PassCount` (the pass kind, the passes
per image and the images one pass takes per explained image, i.e. the
method's chunk); insertion/deletion's is `insertion_deletion_cost`, 2 (n + 1)
forwards with n = ceil(H W / step_pixels). docs/design.md#performance-targets
lists every method's count.

The floor of a map is passes x B / P, with P the throughput (images/s) of the
pass kind on a batch shaped like the one the method runs per pass (B times
the images per pass), measured in the same process, in alternation with the
method (`interleaved_medians`). Each row's ratio is method time / floor,
against the target `TARGET` = 1.2 (docs/design.md#performance-targets). A method whose passes are
cheaper than the counted ones (ablation_cam and iba through the head only,
the CAMs) can be well below 1.

Options: every method runs with its own defaults except where `options`
({method: {option: value}}) or the shortcuts (`num_masks`: rise's,
`lime_samples`: lime's num_samples, `step_pixels`: insertion/deletion's,
`chunk`: every `chunk` option) say otherwise. IBA gets `feature_stats` =
(zeros, ones) of the layer's shape: statistics given, as in the paper, not
estimated from the batch (which needs B >= 2); their values do not change the
cost.

    rows = method_benchmark(["resnet18"], 80, 2, options={"rise": {"num_masks": 256},
                                                          "iba": {"steps": 5}})
    rows = rise_peak_memory("resnet18", 224, masks=(1000, 8000), chunk=256)

`rise_peak_memory` runs RISE once per number of masks, each in a fresh
(spawned) process, and reports its peak resident memory (ru_maxrss) and the
ratio to the first.
"""

import ast
import inspect
import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from salijax import methods as methods_lib
from salijax import models as models_lib
from salijax import validation
from salijax.classifier import Classifier
from salijax.methods.registry import PassCount, Shapes
from salijax.metrics.insertion_deletion import insertion_deletion, num_steps

TARGET = 1.2  # Every method within 1.2x of its pass-count floor (docs/design.md).
PEAK_MEMORY_TARGET = 1.10  # RISE peak RSS, most masks / fewest masks.


def insertion_deletion_cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """2 (n + 1) forwards; each forward takes max(1, chunk // B) steps of every image."""
  forwards = 2 * (num_steps(shapes.height, shapes.width, options["step_pixels"]) + 1)
  return PassCount("forward", forwards, min(max(1, options["chunk"] // shapes.batch), forwards))


def benchmarked_methods() -> tuple[str, ...]:
  """The names `method_benchmark` can time: every registered method and insertion_deletion."""
  return (*methods_lib.names(), "insertion_deletion")


def cost(name: str, options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """What one map of `name` costs with its resolved `options` (module doc)."""
  if name == "insertion_deletion":
    return insertion_deletion_cost(options, shapes)
  return methods_lib.info(name).cost(options, shapes)


def _insertion_deletion_defaults() -> dict[str, Any]:
  return {name: p.default for name, p in inspect.signature(insertion_deletion).parameters.items()
          if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty}


def option_names(name: str) -> tuple[str, ...]:
  """The options `name` takes."""
  if name == "insertion_deletion":
    return tuple(_insertion_deletion_defaults())
  return tuple(methods_lib.info(name).options)


def resolve_options(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
  """The options `name` runs with: its defaults updated with `given`, checked.

  Raises:
    ValueError: an option `name` does not take (unless it takes more), or a bad value.
  """
  if name == "insertion_deletion":
    defaults = _insertion_deletion_defaults()
    unknown = sorted(set(given) - set(defaults))
    if unknown:
      raise ValueError(f"method_options: {name} has no option {unknown}; its options:"
                       f" {sorted(defaults)}")
    return defaults | dict(given)
  try:
    return methods_lib.info(name).resolve(given)
  except TypeError as error:
    raise ValueError(f"method_options: {error}") from error


def parse_method_options(entries: Sequence[str]) -> dict[str, dict[str, Any]]:
  """["rise.num_masks=256", "smoothgrad.method=integrated_gradients"] -> {method: {option: value}}.

  Values are Python literals (ints, floats, booleans) where they parse as one,
  strings otherwise.

  Raises:
    ValueError: an entry that is not `method.option=value`.
  """
  options: dict[str, dict[str, Any]] = {}
  for entry in entries:
    target, equals, text = entry.partition("=")
    method, dot, option = target.strip().partition(".")
    if not (equals and dot and method and option and text.strip()):
      raise ValueError(f"method_options: expected entries method.option=value, got {entry!r}")
    try:
      value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      value = text.strip()
    options.setdefault(method, {})[option] = value
  return options


def _print_row(row: dict) -> None:
  print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def interleaved_medians(calls: Sequence[Callable[[], Any]], *, warmup: int,
                        repeats: int) -> list[float]:
  """Median seconds of each call, timed in turn within every round.

  Each call is compiled (first call), run `warmup` more times, then timed in
  `repeats` rounds of one call each, waited for with `jax.block_until_ready`.
  Alternating the calls lets a load that changes on a shared machine slow all
  of them alike, so their ratios stay meaningful.
  """
  for _ in range(1 + warmup):
    for call in calls:
      jax.block_until_ready(call())
  timings: list[list[float]] = [[] for _ in calls]
  for _ in range(repeats):
    for call, times in zip(calls, timings, strict=True):
      start = time.perf_counter()
      jax.block_until_ready(call())
      times.append(time.perf_counter() - start)
  return [statistics.median(times) for times in timings]


def pass_functions(clf: Classifier) -> dict[str, Callable[[jax.Array, jax.Array], Any]]:
  """{kind: jitted (images f32[n,H,W,3], labels i32[n]) -> the pass's result}."""
  def target_logits(variables: Any, images: jax.Array, labels: jax.Array) -> jax.Array:
    logits = clf.apply(variables, images)
    return jnp.take_along_axis(logits, labels[:, None], axis=1).sum()

  forward = jax.jit(clf.apply)
  gradient = jax.jit(jax.grad(target_logits, argnums=1))
  return {"forward": lambda x, y: forward(clf.variables, x),
          "gradient": lambda x, y: gradient(clf.variables, x, y)}


def timed_call(name: str, clf: Classifier, images: jax.Array, labels: jax.Array,
                given: Mapping[str, Any]) -> Callable[[], Any]:
  """The call timed for `name`, with the options `given` (the rest: its defaults)."""
  if name == "insertion_deletion":
    maps = jax.random.uniform(jax.random.key(1), images.shape[:3])
    return lambda: insertion_deletion(clf, images, maps, labels, **given)
  if name == "iba" and "feature_stats" not in given:
    layer = jax.eval_shape(clf.features, clf.variables, images).shape[1:]
    given = dict(given, feature_stats=(jnp.zeros(layer), jnp.ones(layer)))
  method = methods_lib.get(name)
  key = jax.random.key(0)
  return lambda: method(clf, images, labels, key=key, **given)


def layer_channels(clf: Classifier, images: jax.Array) -> int:
  """The explained layer's channels (0 for a Classifier without `features`)."""
  if clf.features is None:
    return 0
  return int(jax.eval_shape(clf.features, clf.variables, images).shape[-1])


def _given_options(methods: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None,
                   num_masks: int | None, lime_samples: int | None, step_pixels: int | None,
                   chunk: int | None) -> dict[str, dict[str, Any]]:
  """{method: the options it is called with}: the shortcuts, then `options` over them."""
  shortcuts = {"rise": {"num_masks": num_masks}, "lime": {"num_samples": lime_samples},
               "insertion_deletion": {"step_pixels": step_pixels}}
  given = {}
  for name in methods:
    chosen = {k: v for k, v in shortcuts.get(name, {}).items() if v is not None}
    if chunk is not None and "chunk" in option_names(name):
      chosen["chunk"] = chunk
    given[name] = chosen | dict((options or {}).get(name, {}))
    resolve_options(name, given[name])  # unknown options fail before any timing
  return given


def method_benchmark(models: Sequence[str], image_size: int, batch_size: int, *,
                     methods: Sequence[str] | None = None,
                     options: Mapping[str, Mapping[str, Any]] | None = None,
                     num_masks: int | None = None, lime_samples: int | None = None,
                     step_pixels: int | None = None, chunk: int | None = None,
                     warmup: int = 2, repeats: int = 10, num_classes: int = 10) -> list[dict]:
  """Times each method and its pass-count floor; prints and returns one row each.

  Args:
    models: architectures (`salijax.models.ARCHITECTURES`), randomly initialised.
    image_size: square image side in pixels.
    batch_size: B, images explained per call.
    methods: names from `benchmarked_methods()`; None for all of them.
    options: {method: {option: value}}, e.g. {"iba": {"steps": 5}}; over the
      shortcuts below.
    num_masks: RISE's N (None: its default).
    lime_samples: LIME's S (its jax SLIC is part of the timed call).
    step_pixels: insertion/deletion's pixels per step.
    chunk: every method's `chunk` option (masks, channels, samples or path
      points per pass; step images per forward for insertion/deletion); None
      = each method's default.
    warmup: untimed calls of each after the compiling call.
    repeats: timed rounds (one method call, one pass call); medians are
      reported.
    num_classes: outputs of the model head.

  Returns:
    One dict per (model, method): options (those given), pass_kind,
    passes_per_image, pass_batch (images per pass), pass_images_per_sec (P),
    method_sec, maps_per_sec, floor_sec (= B * passes_per_image / P), ratio
    (= method_sec / floor_sec), target and meets_target; the last five are
    None for a method without passes.

  Raises:
    ValueError: an unknown method, options of an unknown method or an option
      the method does not take, a non-positive size/count or a negative warmup.
  """
  known = benchmarked_methods()
  methods = known if methods is None else tuple(methods)
  unknown = [m for m in methods if m not in known]
  if unknown:
    raise ValueError(f"methods: expected names from {known}, got unknown {unknown}")
  for value, name in ((image_size, "image_size"), (batch_size, "batch_size"),
                      (repeats, "repeats"), (num_classes, "num_classes")):
    validation.check_positive_int(value, name)
  for value, name in ((num_masks, "num_masks"), (lime_samples, "lime_samples"),
                      (step_pixels, "step_pixels"), (chunk, "chunk")):
    if value is not None:
      validation.check_positive_int(value, name)
  if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
    raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")
  unknown = sorted(set(options or {}) - set(known))
  if unknown:
    raise ValueError(f"method_options: expected method names from {known}, got {unknown}")
  given = _given_options(methods, options, num_masks, lime_samples, step_pixels, chunk)
  rows = []
  for model in models:
    module = models_lib.create(model, num_classes=num_classes)
    clf = models_lib.classifier(module, models_lib.init(module, jax.random.key(0), image_size))
    images = jax.random.uniform(jax.random.key(1), (batch_size, image_size, image_size, 3))
    labels = jax.random.randint(jax.random.key(2), (batch_size,), 0, num_classes)
    shapes = Shapes(batch_size, image_size, image_size, layer_channels(clf, images))
    passes = pass_functions(clf)
    for name in methods:
      cost_of_map = cost(name, resolve_options(name, given[name]), shapes)
      call = timed_call(name, clf, images, labels, given[name])
      pass_batch = batch_size * cost_of_map.per_pass
      if cost_of_map.kind is None:
        (method_sec,) = interleaved_medians([call], warmup=warmup, repeats=repeats)
        pass_rate = floor_sec = ratio = None
      else:
        x = jax.random.uniform(jax.random.key(3), (pass_batch, image_size, image_size, 3))
        y = jax.random.randint(jax.random.key(4), (pass_batch,), 0, num_classes)
        method_sec, pass_sec = interleaved_medians(
            [call, lambda x=x, y=y, run=passes[cost_of_map.kind]: run(x, y)], warmup=warmup,
            repeats=repeats)
        pass_rate = pass_batch / pass_sec
        floor_sec = batch_size * cost_of_map.passes / pass_rate
        ratio = method_sec / floor_sec
      rows.append({
          "benchmark": "methods", "model": model, "method": name,
          "options": ",".join(f"{k}={v}" for k, v in sorted(given[name].items())),
          "image_size": image_size, "batch_size": batch_size,
          "device": jax.devices()[0].device_kind, "pass_kind": cost_of_map.kind,
          "passes_per_image": cost_of_map.passes, "pass_batch": pass_batch,
          "pass_images_per_sec": None if pass_rate is None else round(pass_rate, 2),
          "method_sec": round(method_sec, 4),
          "maps_per_sec": round(batch_size / method_sec, 3),
          "floor_sec": None if floor_sec is None else round(floor_sec, 4),
          "ratio": None if ratio is None else round(ratio, 3),
          "target": None if ratio is None else TARGET,
          "meets_target": None if ratio is None else ratio <= TARGET,
      })
      _print_row(rows[-1])
  return rows


def _rise_peak_rss_kib(model: str, image_size: int, num_masks: int, chunk: int,
                       num_classes: int) -> int:
  """Runs RISE on one image in this process; its peak resident memory in KiB."""
  module = models_lib.create(model, num_classes=num_classes)
  clf = models_lib.classifier(module, models_lib.init(module, jax.random.key(0), image_size))
  images = jax.random.uniform(jax.random.key(1), (1, image_size, image_size, 3))
  jax.block_until_ready(methods_lib.rise(clf, images, jnp.zeros(1, jnp.int32),
                                         key=jax.random.key(2), num_masks=num_masks,
                                         chunk=chunk))
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def rise_peak_memory(model: str, image_size: int, *, masks: Sequence[int] = (1000, 8000),
                     chunk: int = 256, num_classes: int = 10) -> list[dict]:
  """Peak RSS of RISE (B = 1) for each number of masks, each in its own fresh process.

  Args:
    model: an architecture name, randomly initialised.
    image_size: square image side in pixels.
    masks: the numbers of masks N compared (the first is the reference).
    chunk: masks per forward, the same for every N.
    num_classes: outputs of the model head.

  Returns:
    One dict per N: peak_rss_mib and ratio (to the first N), with the target.

  Raises:
    ValueError: no masks or a non-positive size/count.
  """
  if not masks:
    raise ValueError(f"masks: expected at least one number of masks, got {masks!r}")
  for value, name in ((image_size, "image_size"), (chunk, "chunk"),
                      (num_classes, "num_classes"), *((n, "masks") for n in masks)):
    validation.check_positive_int(value, name)
  # A fresh spawned interpreter per N (maxtasksperchild=1), all N at once.
  with multiprocessing.get_context("spawn").Pool(len(masks), maxtasksperchild=1) as pool:
    peaks_kib = pool.starmap(
        _rise_peak_rss_kib,
        [(model, image_size, n, min(chunk, n), num_classes) for n in masks], chunksize=1)
  rows, first_mib = [], None
  for num_masks, peak_kib in zip(masks, peaks_kib, strict=True):
    peak_mib = peak_kib / 1024
    first_mib = first_mib or peak_mib
    ratio = peak_mib / first_mib
    rows.append({
        "benchmark": "rise_memory", "model": model, "image_size": image_size,
        "batch_size": 1, "num_masks": num_masks, "chunk": min(chunk, num_masks),
        "peak_rss_mib": round(peak_mib, 1), "ratio": round(ratio, 3),
        "target": PEAK_MEMORY_TARGET, "meets_target": ratio <= PEAK_MEMORY_TARGET,
    })
    _print_row(rows[-1])
  return rows
