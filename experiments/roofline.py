"""Roofline projections of every method and insertion/deletion from their compiled programs.

For each model and method, the method's call (the timed call of
experiments/method_speed.py) on B images (`filling_batch`: a batch whose
passes take `fill` images) is traced and compiled for this host, and its
FLOPs and bytes accessed per image are read from XLA's cost analysis with
every loop counted as often as it runs (experiments/program_cost.py; XLA
alone counts a loop's body once: `xla_once_*` keeps that figure beside it).
The time of one image on an accelerator with peak P FLOP/s and memory
bandwidth W bytes/s, at utilisations u_f of P and u_b of W, is projected as

  t = max(flops / (u_f P), bytes / (u_b W))

(compute- or memory-bound, whichever is slower). FLOPs do not depend on the
dtype; P is the bf16 dense peak; bytes are those of the float32 program as
XLA:CPU fuses it (a bfloat16 program moves about half as many, and a GPU's or
TPU's fusion differs), so memory-bound projections are upper bounds.
XLA:CPU's YNNPACK fusions merge chains of convolutions into one operation
whose intermediate activations the cost analysis does not count (VGG11's
eight convolutions become one): run with
XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= (none), as a GPU or TPU
reads and writes them; the report records XLA_FLAGS.
`floor_flops_per_image` is the pass-count floor's FLOPs (passes x the FLOPs
of one image's pass, from the compiled pass alone); methods whose passes run
only through the head (CAMs, Ablation-CAM, IBA) are below it.

`protocol_projection` adds up the ImageNet-validation protocol: 50,000 images
x (Grad-CAM, RISE-4000, SIDU, LIME-1000, and insertion/deletion at step 224 of
each of their four maps), on 1 and 8 chips (images split evenly, no
communication), against the goal of two hours on one H100.

    rows = method_costs(["resnet18"], 224, methods=["rise", "gradcam"])
    print(markdown_table(rows))
"""

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax

from experiments import method_speed, program_cost
from experiments.filling_batch import filling_batch
from experiments.run_environment import run_environment
from salijax import models as models_lib
from salijax import validation
from salijax.methods.registry import Shapes


class Accelerator(NamedTuple):
  """An accelerator chip's peaks: FLOP/s (bf16 dense) and memory bandwidth (bytes/s)."""

  name: str
  peak_flops: float
  bandwidth: float


ACCELERATORS = {
    "h100": Accelerator("NVIDIA H100 SXM", 989e12, 3.35e12),
    "tpu_v5e": Accelerator("TPU v5e chip", 197e12, 819e9),
}
FLOPS_UTILISATION = 0.4
BANDWIDTH_UTILISATION = 0.6

PROTOCOL_IMAGES = 50_000
PROTOCOL_METHODS = ("gradcam", "rise", "sidu", "lime")  # each map also scored by insertion_deletion
PROTOCOL_OPTIONS = {"rise": {"num_masks": 4000}, "lime": {"num_samples": 1000},
                    "insertion_deletion": {"step_pixels": 224}}
PROTOCOL_GOAL_HOURS = 2.0  # on one H100
PROTOCOL_DEVICES = (1, 8)


def projected_seconds(flops: float, bytes_accessed: float, accelerator: Accelerator, *,
                      flops_utilisation: float = FLOPS_UTILISATION,
                      bandwidth_utilisation: float = BANDWIDTH_UTILISATION) -> float:
  """max(flops / (u_f P), bytes / (u_b W)): the slower of compute and memory traffic."""
  for value, name in ((flops_utilisation, "flops_utilisation"),
                      (bandwidth_utilisation, "bandwidth_utilisation")):
    if not 0 < value <= 1:
      raise ValueError(f"{name}: expected a fraction in (0, 1], got {value!r}")
  return max(flops / (accelerator.peak_flops * flops_utilisation),
             bytes_accessed / (accelerator.bandwidth * bandwidth_utilisation))


def _bound(flops: float, bytes_accessed: float, accelerator: Accelerator, flops_utilisation: float,
           bandwidth_utilisation: float) -> str:
  compute = flops / (accelerator.peak_flops * flops_utilisation)
  return "compute" if compute >= bytes_accessed / (accelerator.bandwidth *
                                                   bandwidth_utilisation) else "memory"


def method_costs(models: Sequence[str], image_size: int, *, methods: Sequence[str] | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None, fill: int = 256,
                 num_classes: int = 1000, flops_utilisation: float = FLOPS_UTILISATION,
                 bandwidth_utilisation: float = BANDWIDTH_UTILISATION) -> list[dict]:
  """One row per (model, method): FLOPs and bytes per image and the projected times.

  Args:
    models: architectures (`salijax.models.ARCHITECTURES`), randomly initialised.
    image_size: square image side in pixels.
    methods: names from `method_speed.benchmarked_methods()`; None for all.
    options: {method: {option: value}} over each method's defaults (PROTOCOL_OPTIONS
      first).
    fill: images per pass that fill the device (`filling_batch`).
    num_classes: outputs of the model head.
    flops_utilisation, bandwidth_utilisation: u_f and u_b of the projection.

  Returns:
    Rows with flops_per_image, bytes_per_image, xla_once_flops_per_image and
    xla_once_bytes_per_image (loops counted once), uncounted_loops (while loops
    of unknown trip count, counted once), floor_flops_per_image,
    flops_over_floor, and `{accelerator}_sec_per_image` and `{accelerator}_bound`
    for each of ACCELERATORS.
  """
  known = method_speed.benchmarked_methods()
  methods = known if methods is None else tuple(methods)
  unknown = [m for m in methods if m not in known]
  if unknown:
    raise ValueError(f"methods: expected names from {known}, got unknown {unknown}")
  validation.check_positive_int(image_size, "image_size")
  projection = {"flops_utilisation": flops_utilisation,
                "bandwidth_utilisation": bandwidth_utilisation}
  projected_seconds(0.0, 0.0, ACCELERATORS["h100"], **projection)  # checks the fractions
  rows = []
  for model in models:
    module = models_lib.create(model, num_classes=num_classes)
    clf = models_lib.classifier(module, models_lib.init(module, jax.random.key(0), image_size))
    image = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jax.numpy.float32)
    channels = 0 if clf.features is None else int(
        jax.eval_shape(clf.features, clf.variables, image).shape[-1])
    pass_costs: dict[tuple[str, int], program_cost.Cost] = {}
    for name in methods:
      given = dict(PROTOCOL_OPTIONS.get(name, {})) | dict((options or {}).get(name, {}))
      batch = filling_batch(name, given, height=image_size, width=image_size, channels=channels,
                            fill=fill)
      images = jax.ShapeDtypeStruct((batch, image_size, image_size, 3), jax.numpy.float32)
      labels = jax.ShapeDtypeStruct((batch,), jax.numpy.int32)
      passes = method_speed.cost(name, method_speed.resolve_options(name, given),
                                 Shapes(batch, image_size, image_size, channels))

      def call(variables, x, y, clf=clf, name=name, given=given):
        return method_speed.timed_call(name, clf.replace(variables=variables), x, y, given)()

      cost = program_cost.program_cost(call, clf.variables, images, labels)
      once = program_cost.compiled_cost(call, clf.variables, images, labels)
      floor = None
      if passes.kind is not None:
        pass_batch = batch * passes.per_pass
        if (passes.kind, pass_batch) not in pass_costs:
          def run_pass(variables, x, y, clf=clf, kind=passes.kind):
            return method_speed.pass_functions(clf.replace(variables=variables))[kind](x, y)
          pass_costs[passes.kind, pass_batch] = program_cost.compiled_cost(
              run_pass, clf.variables,
              jax.ShapeDtypeStruct((pass_batch, image_size, image_size, 3), jax.numpy.float32),
              jax.ShapeDtypeStruct((pass_batch,), jax.numpy.int32))
        floor = passes.passes * pass_costs[passes.kind, pass_batch].flops / pass_batch
      flops, bytes_accessed = cost.flops / batch, cost.bytes_accessed / batch
      row = {
          "benchmark": "roofline", "model": model, "method": name,
          "options": ",".join(f"{k}={v}" for k, v in sorted(given.items())),
          "image_size": image_size, "batch_size": batch, "pass_kind": passes.kind,
          "passes_per_image": passes.passes, "flops_per_image": flops,
          "bytes_per_image": bytes_accessed, "xla_once_flops_per_image": once.flops / batch,
          "xla_once_bytes_per_image": once.bytes_accessed / batch,
          "uncounted_loops": cost.uncounted_loops, "floor_flops_per_image": floor,
          "flops_over_floor": None if not floor else flops / floor,
      }
      for key, accelerator in ACCELERATORS.items():
        row[f"{key}_sec_per_image"] = projected_seconds(flops, bytes_accessed, accelerator,
                                                        **projection)
        row[f"{key}_bound"] = _bound(flops, bytes_accessed, accelerator, **projection)
      rows.append(row)
      print(f"model={model} method={name} batch={batch} gflops/image={flops / 1e9:.4g} "
            f"mb/image={bytes_accessed / 1e6:.4g} h100_ms={row['h100_sec_per_image'] * 1e3:.4g}",
            flush=True)
  return rows


def chips_for_goal(sec_per_image: float, *, images: int = PROTOCOL_IMAGES,
                   hours: float = PROTOCOL_GOAL_HOURS) -> int:
  """The fewest chips that finish `images` within `hours`."""
  return max(1, math.ceil(images * sec_per_image / (hours * 3600)))


def _protocol_options_match(row: Mapping[str, Any]) -> bool:
  given = PROTOCOL_OPTIONS.get(row["method"], {})
  return row["options"] == ",".join(f"{k}={v}" for k, v in sorted(given.items()))


def protocol_projection(rows: Sequence[Mapping[str, Any]], *, images: int = PROTOCOL_IMAGES,
                        devices: Sequence[int] = PROTOCOL_DEVICES) -> list[dict]:
  """The ImageNet-val protocol's hours per model, accelerator and number of chips.

  Per image: the four methods of PROTOCOL_METHODS plus insertion/deletion once per
  map (4 times). Models whose rows lack one of them (or ran other options) are left out.
  """
  needed = (*PROTOCOL_METHODS, "insertion_deletion")
  out = []
  for model in dict.fromkeys(row["model"] for row in rows):
    by_method = {row["method"]: row for row in rows
                 if row["model"] == model and _protocol_options_match(row)}
    if not all(name in by_method for name in needed):
      continue
    for key, accelerator in ACCELERATORS.items():
      per_image = (sum(by_method[name][f"{key}_sec_per_image"] for name in PROTOCOL_METHODS)
                   + len(PROTOCOL_METHODS) * by_method["insertion_deletion"][
                       f"{key}_sec_per_image"])
      for count in devices:
        hours = images * per_image / count / 3600
        out.append({"benchmark": "protocol", "model": model, "accelerator": accelerator.name,
                    "devices": count, "images": images, "sec_per_image": per_image,
                    "hours": hours, "goal_hours": PROTOCOL_GOAL_HOURS,
                    "within_goal": hours <= PROTOCOL_GOAL_HOURS,
                    "chips_for_goal": chips_for_goal(per_image, images=images)})
  return out


def _ms(seconds: float) -> str:
  return f"{seconds * 1e3:.3g}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
  """The method rows as a Markdown table (per image: GFLOP, MB, projected ms)."""
  lines = ["| model | method | B | GFLOP/image | MB/image | XLA, loops once: GFLOP/image | "
           "FLOPs / floor | H100 ms/image | TPU v5e ms/image |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
  for row in rows:
    ratio = row["flops_over_floor"]
    loops = f" ({row['uncounted_loops']} while loop(s) once)" if row["uncounted_loops"] else ""
    lines.append(
        f"| {row['model']} | {row['method']}{loops} | {row['batch_size']} | "
        f"{row['flops_per_image'] / 1e9:.4g} | {row['bytes_per_image'] / 1e6:.4g} | "
        f"{row['xla_once_flops_per_image'] / 1e9:.4g} | "
        f"{'-' if ratio is None else f'{ratio:.2f}'} | "
        f"{_ms(row['h100_sec_per_image'])} ({row['h100_bound']}) | "
        f"{_ms(row['tpu_v5e_sec_per_image'])} ({row['tpu_v5e_bound']}) |")
  return "\n".join(lines)


def protocol_table(rows: Sequence[Mapping[str, Any]]) -> str:
  """The protocol rows as a Markdown table."""
  lines = ["| model | accelerator | chips | s/image | hours for 50,000 images | "
           "within 2 h | chips for 2 h |", "|---|---|---:|---:|---:|---|---:|"]
  lines += [f"| {r['model']} | {r['accelerator']} | {r['devices']} | {r['sec_per_image']:.3g} | "
            f"{r['hours']:.3g} | {'yes' if r['within_goal'] else 'no'} | "
            f"{r['chips_for_goal']} |" for r in rows]
  return "\n".join(lines)


def roofline_report(models: Sequence[str], image_size: int, **kwargs: Any) -> dict:
  """{run_environment(), accelerators, utilisations, rows, protocol}; prints both tables
  (Markdown)."""
  environment = run_environment()
  rows = method_costs(models, image_size, **kwargs)
  protocol = protocol_projection(rows)
  print(markdown_table(rows))
  if protocol:
    print()
    print(protocol_table(protocol))
  return {**environment, "accelerators": {k: a._asdict() for k, a in ACCELERATORS.items()},
          "flops_utilisation": kwargs.get("flops_utilisation", FLOPS_UTILISATION),
          "bandwidth_utilisation": kwargs.get("bandwidth_utilisation", BANDWIDTH_UTILISATION),
          "method": "experiments/roofline.py, experiments/program_cost.py",
          "xla_flags": os.environ.get("XLA_FLAGS", ""),
          "rows": rows, "protocol": protocol}
