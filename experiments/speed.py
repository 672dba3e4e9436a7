r"""Throughput benchmarks: prints one row per measurement (images/s, median of repeats).

  python -m experiments.speed --benchmark=train --models=resnet18,vgg11 \
    --image_size=64,80,96 --batch_size=64

--benchmark=train times, for every model and image size, the jitted train step
(forward + backward + SGD update) and the jitted inference forward pass, on
random on-device inputs (no input pipeline), after warm-up, each call waited
for with block_until_ready. Ratios within one run are the reliable numbers on
a shared machine. --output writes the rows as JSON too.

--benchmark=methods times every registered saliency method and insertion/deletion
against its pass-count floor (forward or gradient passes) in the same process
(experiments/method_speed.py); --methods picks some, --method_options sets any
method's options (those that set the cost: masks, samples, steps, chunks):

  python -m experiments.speed --benchmark=methods --models=resnet18,vgg11 \
    --image_size=224 --batch_size=1 --num_masks=4000 --lime_samples=1000 \
    --method_options=iba.steps=10,mask_search.num_steps=5000,smoothgrad.num_samples=25

--benchmark=rise_memory gives the peak RSS of RISE with 1000 and 8000 masks.

--benchmark=quantus times salijax's model-based metrics beside Quantus 0.6 (the
test extra) on one ResNet18 in torch and in salijax, with the same images and
maps, and each metric against its pass-count floor (experiments/quantus_speed.py):

  python -m experiments.speed --benchmark=quantus --image_size=112,224 --batch_size=8

--benchmark=roofline projects every method's and insertion/deletion's time per image on an
H100 and a TPU v5e chip from the FLOPs and bytes of its program compiled here (compiling
only; experiments/roofline.py), and the ImageNet-validation protocol's hours from them:

  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python -m experiments.speed \
    --benchmark=roofline --models=resnet18,vgg11 --image_size=224 --num_classes=1000 \
    --json=roofline.json

(the XLA flag keeps XLA:CPU from fusing chains of convolutions, whose
activations its cost analysis would then not count).

--benchmark=suite is the one-shot device suite (experiments/device_suite.py): forward
throughput in float32 and bfloat16, every method against its floor, RISE's and LIME's peak
device memory; one table and a JSON report (--json) with the device, versions and date.
--suite_size=tiny runs it in seconds on a CPU:

  python -m experiments.speed --benchmark=suite --json=suite.json

--benchmark=anchors times the methods that have an anchor library beside it
(Captum's Occlusion, KernelSHAP, DeepLIFT and DeepLIFT-SHAP; PAIR's XRAI,
Guided IG and Blur IG; zennit's LRP) on the same ResNet18, images and work
(experiments/anchor_speed.py); --methods picks some:

  python -m experiments.speed --benchmark=anchors --image_size=224 --batch_size=8 --repeats=3

--benchmark=loop_gradients times a model's input gradient called on its own, inside a
lax.scan, and inside a lax.scan under salijax.wrapping.explicit_kernel_transposes
(experiments/loop_gradient_speed.py; the first --models and --image_size):

  python -m experiments.speed --benchmark=loop_gradients --image_size=224 --batch_size=8

--benchmark=cpu_convolutions times each model's forward, input gradient (alone and in a
lax.scan), parameter gradient and training step with jaxlib's default YNNPACK list on a CPU,
with XLA's convolutions (YNNPACK's dots and reductions) and with YNNPACK for the dots only,
compiled three ways in one process (experiments/cpu_convolution_speed.py):

  python -m experiments.speed --benchmark=cpu_convolutions --models=resnet18,vgg11 \
    --image_size=112,224 --batch_size=8 --repeats=5

Every benchmark runs with XLA's own convolutions on a CPU
(`salijax.cpu_convolutions.use_xla_convolutions`) unless XLA_FLAGS chooses.

A benchmark is a function `() -> list[dict]` (one row per measurement, read
from its flags; roofline and suite: a report dict) registered in BENCHMARKS.
"""

import os
from collections.abc import Callable

import jax
from absl import app, flags, logging

from experiments import (
    anchor_speed,
    cpu_convolution_speed,
    device_suite,
    loop_gradient_speed,
    method_speed,
    quantus_speed,
    roofline,
)
from salijax import atomic_files, cpu_convolutions
from salijax.train import throughput

_BENCHMARK = flags.DEFINE_enum("benchmark", "train", ["train", "methods", "rise_memory", "quantus",
                                                     "anchors", "roofline", "suite",
                                                     "loop_gradients", "cpu_convolutions"],
                                "What to time (or, for roofline, to compile).")
_MODELS = flags.DEFINE_list("models", ["resnet18"], "Architectures (salijax.models).")
_IMAGE_SIZES = flags.DEFINE_list("image_size", ["80"], "Square image sizes in pixels "
                                  "(one or a comma-separated list).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Images per call.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Outputs of the model head.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls after compilation.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls; the median is reported.")
_METHODS = flags.DEFINE_list("methods", None, "--benchmark=methods: what to time (default: "
                             "every registered method and insertion_deletion); "
                             "--benchmark=anchors: the methods timed (default: every pair).")
_METHOD_OPTIONS = flags.DEFINE_list(
    "method_options", [], "--benchmark=methods: method.option=value entries, e.g. "
    "rise.num_masks=256,iba.steps=5,smoothgrad.method=integrated_gradients (over the "
    "shortcut flags below).")
_NUM_MASKS = flags.DEFINE_integer("num_masks", None, "RISE masks (default: RISE's).")
_LIME_SAMPLES = flags.DEFINE_integer("lime_samples", None, "LIME samples (default: LIME's).")
_STEP_PIXELS = flags.DEFINE_integer("step_pixels", None, "Insertion/deletion pixels per step "
                                    "(default: the metric's).")
_CHUNK = flags.DEFINE_integer("chunk", None, "Every method's `chunk` option (default: each "
                              "method's); --benchmark=rise_memory: masks per forward (256).")
_METRICS = flags.DEFINE_list("metrics", None, "--benchmark=quantus: the metrics timed "
                             "(default: every pair of experiments/quantus_speed.py).")
_FILL = flags.DEFINE_integer("fill", None, "--benchmark=roofline and suite: images per pass "
                             "that fill the device (experiments/filling_batch.py; default: "
                             "256, the suite's size's).")
_FLOPS_UTILISATION = flags.DEFINE_float("flops_utilisation", roofline.FLOPS_UTILISATION,
                                        "--benchmark=roofline: fraction of the peak FLOP/s.")
_BANDWIDTH_UTILISATION = flags.DEFINE_float(
    "bandwidth_utilisation", roofline.BANDWIDTH_UTILISATION,
    "--benchmark=roofline: fraction of the peak memory bandwidth.")
_SUITE_SIZE = flags.DEFINE_enum("suite_size", "full", list(device_suite.SIZES),
                                "--benchmark=suite: full (224 px, for a GPU or TPU chip) or tiny "
                                "(32 px, 2 images, few masks: a CPU test).")
_OUTPUT = flags.DEFINE_string("output", None, "Optional path of a JSON file of the rows (the "
                              "report, for roofline and suite).")
flags.DEFINE_alias("json", "output")


def train_benchmark() -> list[dict]:
  """Rows of (model, image_size, batch_size, train and forward images/s)."""
  rows = []
  for model in _MODELS.value:
    for image_size in (int(s) for s in _IMAGE_SIZES.value):
      kwargs = {"image_size": image_size, "batch_size": _BATCH_SIZE.value,
                "num_classes": _NUM_CLASSES.value, "warmup": _WARMUP.value,
                "repeats": _REPEATS.value}
      train = throughput.train_throughput(model, **kwargs)
      forward = throughput.forward_throughput(model, **kwargs)
      rows.append({
          "benchmark": "train", "model": model, "image_size": image_size,
          "batch_size": _BATCH_SIZE.value, "device": jax.devices()[0].device_kind,
          "train_images_per_sec": round(train.images_per_sec, 1),
          "forward_images_per_sec": round(forward.images_per_sec, 1),
          "train_compile_sec": round(train.compile_sec, 2),
      })
      print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
  return rows


def methods_benchmark() -> list[dict]:
  """Rows of (model, method, maps/s, ratio to the pass-count floor)."""
  options = method_speed.parse_method_options(_METHOD_OPTIONS.value)
  return [row for size in _IMAGE_SIZES.value for row in method_speed.method_benchmark(
      _MODELS.value, int(size), _BATCH_SIZE.value, methods=_METHODS.value, options=options,
      num_masks=_NUM_MASKS.value, lime_samples=_LIME_SAMPLES.value,
      step_pixels=_STEP_PIXELS.value, warmup=_WARMUP.value, repeats=_REPEATS.value,
      chunk=_CHUNK.value, num_classes=_NUM_CLASSES.value)]


def rise_memory_benchmark() -> list[dict]:
  """Rows of RISE's peak RSS with 1000 and 8000 masks, per model and size."""
  return [row for model in _MODELS.value for size in _IMAGE_SIZES.value
          for row in method_speed.rise_peak_memory(
              model, int(size), chunk=_CHUNK.value or 256, num_classes=_NUM_CLASSES.value)]


def quantus_benchmark() -> list[dict]:
  """Rows of (metric, image size, seconds per image in salijax and Quantus, floor ratio)."""
  return quantus_speed.quantus_benchmark(
      _METRICS.value, image_sizes=[int(s) for s in _IMAGE_SIZES.value],
      batch_size=_BATCH_SIZE.value, warmup=_WARMUP.value, repeats=_REPEATS.value,
      num_classes=_NUM_CLASSES.value)


def anchors_benchmark() -> list[dict]:
  """Rows of (method, anchor, seconds per image in salijax and the anchor, speedup)."""
  return [row for size in _IMAGE_SIZES.value for row in anchor_speed.anchor_benchmark(
      _METHODS.value, image_size=int(size), batch_size=_BATCH_SIZE.value, warmup=_WARMUP.value,
      repeats=_REPEATS.value, num_classes=_NUM_CLASSES.value)]


def loop_gradients_benchmark() -> list[dict]:
  """Rows of (way, ms per image per gradient, ratio to the gradient called on its own)."""
  return loop_gradient_speed.loop_gradient_benchmark(
      _MODELS.value[0], image_size=int(_IMAGE_SIZES.value[0]), batch_size=_BATCH_SIZE.value,
      warmup=_WARMUP.value, repeats=_REPEATS.value, num_classes=_NUM_CLASSES.value)


def cpu_convolutions_benchmark() -> list[dict]:
  """Rows of (model, image size, pass, ms per image with each YNNPACK list)."""
  return [row for size in _IMAGE_SIZES.value
          for row in cpu_convolution_speed.cpu_convolution_benchmark(
              _MODELS.value, image_size=int(size), batch_size=_BATCH_SIZE.value,
              warmup=_WARMUP.value, repeats=_REPEATS.value, num_classes=_NUM_CLASSES.value)]


def roofline_benchmark() -> dict:
  """The roofline report (experiments/roofline.py) at the one --image_size."""
  if len(_IMAGE_SIZES.value) != 1:
    raise app.UsageError(f"--benchmark=roofline takes one --image_size, got {_IMAGE_SIZES.value}")
  return roofline.roofline_report(
      _MODELS.value, int(_IMAGE_SIZES.value[0]), methods=_METHODS.value,
      options=method_speed.parse_method_options(_METHOD_OPTIONS.value), fill=_FILL.value or 256,
      num_classes=_NUM_CLASSES.value, flops_utilisation=_FLOPS_UTILISATION.value,
      bandwidth_utilisation=_BANDWIDTH_UTILISATION.value)


def suite_benchmark() -> dict:
  """The one-shot device suite's report (experiments/device_suite.py)."""
  return device_suite.run_suite(device_suite.SIZES[_SUITE_SIZE.value], fill=_FILL.value,
                                output=_OUTPUT.value)


BENCHMARKS: dict[str, Callable[[], list[dict] | dict]] = {
    "train": train_benchmark, "methods": methods_benchmark, "rise_memory": rise_memory_benchmark,
    "quantus": quantus_benchmark, "anchors": anchors_benchmark, "roofline": roofline_benchmark,
    "suite": suite_benchmark, "loop_gradients": loop_gradients_benchmark,
    "cpu_convolutions": cpu_convolutions_benchmark}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cpu_convolutions.use_xla_convolutions()
  logging.info("jax %s on %s; XLA_FLAGS=%r", jax.__version__, jax.devices(),
               os.environ.get("XLA_FLAGS", ""))
  result = BENCHMARKS[_BENCHMARK.value]()
  if _OUTPUT.value:
    atomic_files.write_json_atomic(_OUTPUT.value, result)


if __name__ == "__main__":
  app.run(main)
