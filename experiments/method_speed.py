"""Speed of saliency methods and insertion/deletion against their forward-pass floor.

Every perturbation method costs forward passes (DESIGN.md, "Performance
model"): RISE N, SIDU c + 1 (c channels at the explained layer), LIME S
samples, insertion + deletion 2 (n + 1) with n = ceil(H W / step_pixels).
Its floor is that count times the batch size divided by F, the forward
throughput (images/s) of the same jitted classifier (`jax.jit(clf.apply)`) on
a batch shaped like the one the method forwards per step (batch_size * chunk
images), measured in the same process, in alternation with the method (see
`interleaved_medians`). Grad-CAM's floor is one forward of the batch. Each
row's `ratio` is method time / floor time, printed next to the issue's target:

    rows = method_benchmark(["resnet18"], 224, 1, methods=METHODS, num_masks=256,
                            lime_samples=256, step_pixels=224 * 16, warmup=1,
                            repeats=3, chunk=None)
    rows = rise_peak_memory("resnet18", 224, masks=(1000, 8000), chunk=256)

`rise_peak_memory` runs RISE once per number of masks, each in a fresh
(spawned) process, and reports its peak resident memory (ru_maxrss) and the
ratio to the first.
"""

import inspect
import math
import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from salijax import methods as methods_lib
from salijax import models as models_lib
from salijax import validation
from salijax.classifier import Classifier
from salijax.metrics.insertion_deletion import insertion_deletion, num_steps

METHODS = ("gradcam", "rise", "sidu", "lime", "insertion_deletion")
# Upper bounds on `ratio` from issue 3 (Grad-CAM: forwards of the batch).
TARGETS = {"gradcam": 3.0, "rise": 1.15, "sidu": 1.15, "lime": 1.25,
           "insertion_deletion": 1.15}
PEAK_MEMORY_TARGET = 1.10  # RISE peak RSS, most masks / fewest masks.


def _default_chunk(function: Callable[..., Any]) -> int:
  """The default of `function`'s keyword argument `chunk`."""
  return inspect.signature(function).parameters["chunk"].default


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
    for call, times in zip(calls, timings):
      start = time.perf_counter()
      jax.block_until_ready(call())
      times.append(time.perf_counter() - start)
  return [statistics.median(times) for times in timings]


def _method_plan(name: str, clf: Classifier, images: jax.Array, labels: jax.Array, *,
                 num_masks: int, lime_samples: int, step_pixels: int,
                 chunk: int | None) -> tuple[Callable[[], Any], int, int]:
  """(call, forwards per image, images per forward) of one timed method."""
  batch, height, width, _ = images.shape
  key = jax.random.key(0)
  if name == "gradcam":
    return lambda: methods_lib.gradcam(clf, images, labels), 1, batch
  if name == "rise":
    per_forward = min(chunk or _default_chunk(methods_lib.rise), num_masks)
    return (lambda: methods_lib.rise(clf, images, labels, key=key, num_masks=num_masks,
                                     chunk=per_forward), num_masks, batch * per_forward)
  if name == "sidu":
    channels = jax.eval_shape(clf.features, clf.variables, images).shape[-1]
    per_forward = min(chunk or _default_chunk(methods_lib.sidu), channels)
    return (lambda: methods_lib.sidu(clf, images, labels, chunk=per_forward), channels + 1,
            batch * per_forward)
  if name == "lime":
    per_forward = min(chunk or _default_chunk(methods_lib.lime), lime_samples)
    return (lambda: methods_lib.lime(clf, images, labels, key=key, num_samples=lime_samples,
                                     chunk=per_forward), lime_samples, batch * per_forward)
  # insertion_deletion: each forward takes max(1, chunk // B) steps of every image.
  forwards = 2 * (num_steps(height, width, step_pixels) + 1)
  steps = min(max(1, (chunk or _default_chunk(insertion_deletion)) // batch), forwards)
  per_forward = batch * steps
  maps = jax.random.uniform(jax.random.key(1), (batch, height, width))
  call = lambda: insertion_deletion(clf, images, maps, labels, step_pixels=step_pixels,
                                    chunk=per_forward)
  return call, forwards, per_forward


def method_benchmark(models: Sequence[str], image_size: int, batch_size: int, *,
                     methods: Sequence[str] = METHODS, num_masks: int = 4000,
                     lime_samples: int = 1000, step_pixels: int = 224, warmup: int = 2,
                     repeats: int = 10, chunk: int | None = None,
                     num_classes: int = 10) -> list[dict]:
  """Times each method and its forward-pass floor; prints and returns one row each.

  Args:
    models: architectures (`salijax.models.ARCHITECTURES`), randomly initialised.
    image_size: square image side in pixels.
    batch_size: images explained per call.
    methods: names from `METHODS`.
    num_masks: RISE's N.
    lime_samples: LIME's S (its jax SLIC is part of the timed call).
    step_pixels: insertion/deletion's pixels per step.
    warmup: untimed calls of each after the compiling call.
    repeats: timed rounds (one method call, one forward call); medians are
      reported.
    chunk: masks/channels/samples (step images for insertion/deletion) per
      forward; None = each method's default.
    num_classes: outputs of the model head.

  Returns:
    One dict per (model, method): forwards_per_image, forward_batch,
    forward_images_per_sec (F), method_sec, maps_per_sec, floor_sec
    (= batch_size * forwards_per_image / F), ratio (= method_sec / floor_sec),
    target and meets_target.

  Raises:
    ValueError: an unknown method, a non-positive size/count or a negative
      warmup.
  """
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise ValueError(f"methods: expected names from {METHODS}, got unknown {unknown}")
  for value, name in ((image_size, "image_size"), (batch_size, "batch_size"),
                      (num_masks, "num_masks"), (lime_samples, "lime_samples"),
                      (step_pixels, "step_pixels"), (repeats, "repeats"),
                      (num_classes, "num_classes")):
    validation.check_positive_int(value, name)
  if chunk is not None:
    validation.check_positive_int(chunk, "chunk")
  if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
    raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")
  rows = []
  for model in models:
    module = models_lib.create(model, num_classes=num_classes)
    clf = models_lib.classifier(module, models_lib.init(module, jax.random.key(0), image_size))
    images = jax.random.uniform(jax.random.key(1), (batch_size, image_size, image_size, 3))
    labels = jax.random.randint(jax.random.key(2), (batch_size,), 0, num_classes)
    forward = jax.jit(clf.apply)
    for name in methods:
      call, forwards, forward_batch = _method_plan(
          name, clf, images, labels, num_masks=num_masks, lime_samples=lime_samples,
          step_pixels=step_pixels, chunk=chunk)
      batch = jax.random.uniform(jax.random.key(3), (forward_batch, image_size, image_size, 3))
      method_sec, forward_sec = interleaved_medians(
          [call, lambda x=batch: forward(clf.variables, x)], warmup=warmup, repeats=repeats)
      forward_rate = forward_batch / forward_sec
      floor_sec = batch_size * forwards / forward_rate
      ratio = method_sec / floor_sec
      rows.append({
          "benchmark": "methods", "model": model, "method": name,
          "image_size": image_size, "batch_size": batch_size,
          "device": jax.devices()[0].device_kind, "forwards_per_image": forwards,
          "forward_batch": forward_batch,
          "forward_images_per_sec": round(forward_rate, 2),
          "method_sec": round(method_sec, 4),
          "maps_per_sec": round(batch_size / method_sec, 3),
          "floor_sec": round(floor_sec, 4), "ratio": round(ratio, 3),
          "target": TARGETS[name], "meets_target": ratio <= TARGETS[name],
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
  for num_masks, peak_kib in zip(masks, peaks_kib):
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
