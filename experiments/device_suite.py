"""The one-shot device suite: what a few minutes of a GPU or TPU chip should measure.

Three sections, in this order, each row printed as it comes; the JSON report
(`output`) is rewritten after every section, so a run cut short keeps what it
measured:

  memory   RISE's and LIME's peak device memory at N = 1000 and 8000 masks or
           samples (B = 1, their default chunks; experiments/device_memory.py),
           first, so that the process's peak is theirs;
  forward  forward throughput of ResNet18, VGG11, EfficientNet-B0 and ViT-B/16
           in float32 and bfloat16 (`salijax.with_compute_dtype`) on random images;
  methods  every registered method and insertion/deletion against its
           pass-count floor (experiments/method_speed.py), each at the batch
           that fills the device (experiments/filling_batch.py), the ImageNet
           protocol's methods first, then the others grouped by batch.

The peers (Captum, zennit, Quantus, PAIR: --benchmark=anchors and quantus)
are left out: they run torch models for minutes on their own.

`SIZES["full"]` is for a GPU or TPU chip (224 px; fewer mask-search, Guided
IG and XRAI steps than their defaults, to keep each call short there; the
floor ratios do not depend on the counts), and stops starting new method
groups after `budget_sec`, listing the rest as skipped; `SIZES["tiny"]`
(32 px, ResNet18's forward only, 2 images, few masks and steps) runs on a
CPU in a test.

    report = run_suite(SIZES["tiny"], output="suite.json")
"""

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import salijax
from experiments import device_memory, method_speed
from experiments.filling_batch import filling_batch
from experiments.roofline import PROTOCOL_METHODS, PROTOCOL_OPTIONS
from experiments.run_environment import run_environment
from salijax import atomic_files
from salijax import models as models_lib
from salijax.train import throughput

PEERS = ("not run: Captum, zennit, Quantus and PAIR run torch models for minutes "
         "(python -m experiments.speed --benchmark=anchors, --benchmark=quantus)")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class SuiteSize(NamedTuple):
  """What one suite run measures, and how much."""

  image_size: int
  forward_models: tuple[str, ...]
  forward_batch: int
  method_model: str
  fill: int  # images per pass that fill the device (filling_batch)
  method_options: Mapping[str, Mapping[str, Any]]  # over PROTOCOL_OPTIONS and the defaults
  memory_counts: tuple[int, ...]  # RISE's masks and LIME's samples
  warmup: int
  repeats: int
  num_classes: int
  budget_sec: float | None  # no new method group after this many seconds


SIZES = {
    "full": SuiteSize(
        image_size=224, forward_models=("resnet18", "vgg11", "efficientnet_b0", "vit_b_16"),
        forward_batch=256, method_model="resnet18", fill=256,
        method_options={"mask_search": {"num_steps": 200}, "guided_ig": {"steps": 50},
                        "xrai": {"steps": 20}},
        memory_counts=(1000, 8000), warmup=1, repeats=3, num_classes=1000, budget_sec=270.0),
    "tiny": SuiteSize(
        image_size=32, forward_models=("resnet18",), forward_batch=2, method_model="resnet18",
        fill=2,
        method_options={
            "rise": {"num_masks": 4, "chunk": 2}, "lime": {"num_samples": 4, "chunk": 4},
            "kernel_shap": {"num_samples": 4, "chunk": 4}, "mask_search": {"num_steps": 2},
            "guided_ig": {"steps": 2}, "iba": {"steps": 2, "num_samples": 2},
            "integrated_gradients": {"steps": 2, "chunk": 2},
            "smoothgrad": {"num_samples": 2, "sample_chunk": 2},
            "blur_ig": {"steps": 2, "chunk": 2}, "xrai": {"steps": 2, "chunk": 2},
            "deeplift_shap": {"num_baselines": 2, "chunk": 2},
            "gradient_shap": {"num_samples": 2, "chunk": 2},
            "occlusion": {"window": 16, "stride": 16}, "sidu": {"chunk": 128},
            "sidu_feature_space": {"chunk": 128}, "score_cam": {"chunk": 128},
            "ablation_cam": {"chunk": 128}, "insertion_deletion": {"step_pixels": 256}},
        memory_counts=(4, 8), warmup=0, repeats=1, num_classes=10, budget_sec=None),
}


@jax.jit
def _logits(clf: salijax.Classifier, images: jax.Array) -> jax.Array:
  """f32[B,H,W,3] -> f32[B,K], in the Classifier's compute dtype."""
  return clf.logits(images)


def forward_rows(size: SuiteSize) -> list[dict]:
  """Forward images/s of each model of `size`, in float32 and in bfloat16."""
  rows = []
  for model in size.forward_models:
    module = models_lib.create(model, num_classes=size.num_classes)
    variables = models_lib.init(module, jax.random.key(0), size.image_size)
    images = jax.random.uniform(jax.random.key(1),
                                (size.forward_batch, size.image_size, size.image_size, 3))
    clf = models_lib.classifier(module, variables)
    for name, dtype in DTYPES.items():
      cast = salijax.with_compute_dtype(clf, dtype)
      timing = throughput.time_calls(lambda _, c=cast, x=images: _logits(c, x), None,
                                     batch_size=size.forward_batch, warmup=size.warmup,
                                     repeats=size.repeats)
      rows.append({"benchmark": "forward", "model": model, "dtype": name,
                   "image_size": size.image_size, "batch_size": size.forward_batch,
                   "images_per_sec": round(timing.images_per_sec, 2),
                   "compile_sec": round(timing.compile_sec, 2)})
      print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
  return rows


def _method_groups(size: SuiteSize, given: Mapping[str, Mapping[str, Any]]
                   ) -> list[tuple[int, list[str]]]:
  """[(B, methods)]: the protocol's methods first, then the others by B (one group per B)."""
  first = [*PROTOCOL_METHODS, "insertion_deletion"]
  module = models_lib.create(size.method_model, num_classes=size.num_classes)
  clf = models_lib.classifier(module, models_lib.init(module, jax.random.key(0),
                                                      size.image_size))
  image = jax.ShapeDtypeStruct((1, size.image_size, size.image_size, 3), jnp.float32)
  channels = int(jax.eval_shape(clf.features, clf.variables, image).shape[-1])

  def batch(name: str) -> int:
    return filling_batch(name, given.get(name, {}), height=size.image_size,
                         width=size.image_size, channels=channels, fill=size.fill)

  rest = sorted((m for m in method_speed.benchmarked_methods() if m not in first), key=batch)
  groups: list[tuple[int, list[str]]] = []
  for name in first + rest:
    if groups and groups[-1][0] == batch(name):
      groups[-1][1].append(name)
    else:
      groups.append((batch(name), [name]))
  return groups


def method_rows(size: SuiteSize, *, start: float) -> list[dict]:
  """Every method against its floor on `size.method_model`; skipped rows past the budget."""
  given = {name: dict(PROTOCOL_OPTIONS.get(name, {})) | dict(size.method_options.get(name, {}))
           for name in method_speed.benchmarked_methods()}
  rows = []
  for batch, names in _method_groups(size, given):
    if size.budget_sec is not None and time.perf_counter() - start > size.budget_sec:
      rows += [{"benchmark": "methods", "model": size.method_model, "method": name,
                "batch_size": batch, "skipped": f"past the {size.budget_sec:g} s budget"}
               for name in names]
      continue
    rows += method_speed.method_benchmark(
        [size.method_model], size.image_size, batch, methods=names,
        options={name: given[name] for name in names}, warmup=size.warmup,
        repeats=size.repeats, num_classes=size.num_classes)
  return rows


def _table_line(row: Mapping[str, Any]) -> str:
  kind = row["benchmark"]
  if kind == "forward":
    cells = (kind, row["model"], row["dtype"], row["batch_size"],
             f"{row['images_per_sec']:.4g} images/s", "")
  elif kind == "memory":
    cells = (kind, row["method"], f"N={row['count']}", 1,
             f"{row['peak_mib']:.1f} MiB ({row['peak_source']})", f"{row['ratio']:.3f}")
  elif "skipped" in row:
    cells = (kind, row["method"], "", row["batch_size"], row["skipped"], "")
  else:
    ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}"
    cells = (kind, row["method"], row["options"], row["batch_size"],
             f"{row['maps_per_sec']:.4g} maps/s", ratio)
  return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
  """Every row of the suite as one Markdown table."""
  return "\n".join(["| section | what | detail | B | measured | ratio (to floor / first N) |",
                    "|---|---|---|---:|---|---:|", *map(_table_line, rows)])


def run_suite(size: SuiteSize, *, fill: int | None = None, output: str | None = None) -> dict:
  """Runs the sections (module doc); prints the table; returns (and writes) the report.

  Args:
    size: one of SIZES (or its own).
    fill: images per pass that fill the device, over `size.fill`.
    output: a JSON path, rewritten after every section.

  Returns:
    {run_environment(), suite (the size's fields), peers, rows}.
  """
  if fill is not None:
    size = size._replace(fill=fill)
  start = time.perf_counter()
  report = {**run_environment(), "suite": size._asdict(), "peers": PEERS, "rows": []}
  sections = (
      lambda: device_memory.peak_memory_rows(size.method_model, size.image_size,
                                             counts=size.memory_counts,
                                             num_classes=size.num_classes),
      lambda: forward_rows(size),
      lambda: method_rows(size, start=start))
  for section in sections:
    report["rows"] += section()
    report["elapsed_sec"] = round(time.perf_counter() - start, 1)
    if output:
      atomic_files.write_json_atomic(output, report)
  print(markdown_table(report["rows"]), flush=True)
  return report
