r"""Throughput benchmarks: prints one row per measurement (images/s, median of repeats).

  python -m experiments.speed --benchmark=train --models=resnet18,vgg11 \
    --image_size=64,80,96 --batch_size=64

--benchmark=train times, for every model and image size, the jitted train step
(forward + backward + SGD update) and the jitted inference forward pass, on
random on-device inputs (no input pipeline), after warm-up, each call waited
for with block_until_ready. Ratios within one run are the reliable numbers on
a shared machine. --output writes the rows as JSON too.

A benchmark is a function `() -> list[dict]` (one row per measurement, read
from its flags) registered in BENCHMARKS; new ones (e.g. saliency methods) add
an entry, an --benchmark enum value and their own flags.
"""

from collections.abc import Callable

import jax
from absl import app, flags, logging

from salijax.train import throughput
from salijax.train import workdir as workdir_lib

_BENCHMARK = flags.DEFINE_enum("benchmark", "train", ["train"], "What to time.")
_MODELS = flags.DEFINE_list("models", ["resnet18"], "Architectures (salijax.models).")
_IMAGE_SIZES = flags.DEFINE_list("image_size", ["80"], "Square image sizes in pixels "
                                  "(one or a comma-separated list).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Images per call.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Outputs of the model head.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls after compilation.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls; the median is reported.")
_OUTPUT = flags.DEFINE_string("output", None, "Optional path of a JSON file of the rows.")


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


BENCHMARKS: dict[str, Callable[[], list[dict]]] = {"train": train_benchmark}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.info("jax %s on %s", jax.__version__, jax.devices())
  rows = BENCHMARKS[_BENCHMARK.value]()
  if _OUTPUT.value:
    workdir_lib.write_json_atomic(_OUTPUT.value, rows)


if __name__ == "__main__":
  app.run(main)
