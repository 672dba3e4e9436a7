r"""Input-pipeline throughput: ImageNet-like JPEGs read, decoded, resized and cropped on the CPU.

  python -m experiments.input_pipeline_speed --num_images=500 --threads=1,2

Writes --num_images photo-like JPEGs (--height x --width, quality --quality;
`experiments.imagenet_stand_in`) into a TFDS `imagenet2012` stand-in in a
temporary data dir (array_record, as `tfds build` prepares the real one), then
times, in images/s (median of --repeats passes over every image):

  read+decode        source[i]: the record read and the JPEG decoded (TFDS decodes
                     with OpenCV where it is installed, else PIL)
  +resize+crop       + `preprocessing.eval_example`: the shorter side resized to
                     round(S / crop_fraction) (PIL, bilinear, antialiased), the
                     centre S x S crop, f32 in [0, 1] (what the benchmark feeds)
  +normalise         + (x - mean) / std with ImageNet's constants on the host (salijax's
                     models do it on the device; timed for comparison with torchvision)

on one thread, and the whole path (+resize+crop) by `salijax.data.example_pool`
with each number of --threads (the loader's pool): images per second of wall time
and per second of the process's CPU time (the rate of one core, even where other
processes share the cores). Prints one row per measurement, with the CPU model;
--json writes them too.
"""

import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
from absl import app, flags
from tensorflow_datasets.core.features import image_feature

import salijax.data
from experiments import imagenet_stand_in
from salijax.data import example_pool, preprocessing
from salijax.models.normalization import IMAGENET_MEAN, IMAGENET_STD

_NUM_IMAGES = flags.DEFINE_integer("num_images", 500, "JPEGs written and read per pass.")
_HEIGHT = flags.DEFINE_integer("height", 375, "Height of the JPEGs (ImageNet's typical 500x375).")
_WIDTH = flags.DEFINE_integer("width", 500, "Width of the JPEGs.")
_QUALITY = flags.DEFINE_integer("quality", 90, "JPEG quality.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "S, the side of the centre crop.")
_CROP_FRACTION = flags.DEFINE_float("crop_fraction", 0.875, "S / the resized shorter side.")
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "Pool sizes timed for the whole path.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Passes per measurement (the median is kept).")
_JSON = flags.DEFINE_string("json", None, "Also write the rows to this JSON file.")


def cpu_model() -> str:
  """lscpu's "Model name" (/proc/cpuinfo's "model name"), else platform.processor()."""
  try:
    with open("/proc/cpuinfo") as cpuinfo:
      for line in cpuinfo:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def images_per_second(run: Callable[[], object], count: int, repeats: int
                      ) -> dict[str, float]:
  """{"images_per_s": count / the median wall time, "images_per_cpu_s": count / the median
  CPU time of the process (all its threads)} of `repeats` calls of `run`, after one untimed
  call. On a shared machine the CPU-time rate is the one core's rate; the wall rate is lower
  by the share of the cores the other processes took."""
  run()
  walls, cpus = [], []
  for _ in range(repeats):
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
  return {"images_per_s": count / statistics.median(walls),
          "images_per_cpu_s": count / statistics.median(cpus)}


def pipeline_benchmark(source: salijax.data.Source, *, image_size: int, crop_fraction: float,
                       threads: list[int], repeats: int) -> list[dict]:
  """The rows (module doc) for every image of `source`."""
  indices = range(len(source))
  mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)

  def cropped(i: int) -> np.ndarray:
    return preprocessing.eval_example(source[i], image_size, crop_fraction)["image"]

  steps = {
      "read+decode": lambda i: source[i]["image"],
      "+resize+crop": cropped,
      "+normalise": lambda i: (cropped(i) - mean) / std,
  }
  rows = []
  for step, fn in steps.items():
    rate = images_per_second(lambda fn=fn: [fn(i) for i in indices], len(source), repeats)
    rows.append({"step": step, "threads": 1, **rate})
  for count in threads:
    rate = images_per_second(
        lambda count=count: example_pool.map_examples(cropped, indices, workers=count),
        len(source), repeats)
    rows.append({"step": "+resize+crop (pool)", "threads": count, **rate})
  return rows


def main(argv: list[str]) -> None:
  del argv
  rng = np.random.default_rng(0)
  jpegs = [imagenet_stand_in.photo_like_jpeg(rng, _HEIGHT.value, _WIDTH.value, _QUALITY.value)
           for _ in range(_NUM_IMAGES.value)]
  with tempfile.TemporaryDirectory() as data_dir:
    imagenet_stand_in.prepare(data_dir, [(jpeg, i % 1000) for i, jpeg in enumerate(jpegs)])
    source = salijax.data.load(imagenet_stand_in.NAME, imagenet_stand_in.SPLIT,
                               data_dir=data_dir)
    rows = pipeline_benchmark(source, image_size=_IMAGE_SIZE.value,
                              crop_fraction=_CROP_FRACTION.value,
                              threads=[int(t) for t in _THREADS.value], repeats=_REPEATS.value)
  setting = {"cpu": cpu_model(), "host_cores": example_pool.host_cores(),
             # TFDS's Image feature decodes with OpenCV where it imports, else with PIL.
             "decoder": "PIL" if image_feature.cv2 is None else "OpenCV",
             "jpeg": f"{_WIDTH.value}x{_HEIGHT.value} q{_QUALITY.value}",
             "mean_jpeg_kb": round(float(np.mean([len(j) for j in jpegs])) / 1000, 1),
             "image_size": _IMAGE_SIZE.value, "crop_fraction": _CROP_FRACTION.value,
             "date": time.strftime("%Y-%m-%d")}
  print(" ".join(f"{k}={v}" for k, v in setting.items()))
  for row in rows:
    print(f"{row['step']:22s} threads={row['threads']:<3d} {row['images_per_s']:8.1f} images/s"
          f" {row['images_per_cpu_s']:8.1f} images/CPU-s")
  if _JSON.value:
    with open(_JSON.value, "w") as file:
      json.dump({**setting, "rows": rows}, file, indent=1)


if __name__ == "__main__":
  app.run(main)
