"""Peak device memory of RISE and LIME for several numbers of masks or samples.

Each (method, N) is compiled for one image (B = 1, the method's default
chunk) and read in one of two ways, named in each row's `peak_source`:

  memory_stats     where the device reports it (GPUs, TPUs): the call is run
                   once and `device.memory_stats()['peak_bytes_in_use']` read
                   after it. That is the process's peak so far, so these rows
                   come first in a process, LIME (128 samples a forward)
                   before RISE (256 masks a forward), each N ascending: a row
                   is an upper bound of its call's peak.
  memory_analysis  otherwise (CPUs): what XLA's buffer assignment of the
                   compiled program needs, arguments + outputs + temporaries
                   - aliased bytes (`compiled.memory_analysis()`), not run.

Every row also has `program_mib`, the memory_analysis figure, and `ratio`, the
peak over the method's first N (RISE's goal: <= 1.10 from 1000 to 8000 masks).

    rows = peak_memory_rows("resnet18", 224, counts=(1000, 8000))
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from salijax import methods as methods_lib
from salijax import models as models_lib
from salijax import validation

COUNT_OPTIONS = {"lime": "num_samples", "rise": "num_masks"}  # measured in this order


def _program_bytes(compiled: jax.stages.Compiled) -> int:
  stats = compiled.memory_analysis()
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
          - stats.alias_size_in_bytes)


def peak_memory_rows(model: str, image_size: int, *, counts: Sequence[int] = (1000, 8000),
                     num_classes: int = 1000) -> list[dict]:
  """One row per method of COUNT_OPTIONS and N of `counts` (module doc).

  Raises:
    ValueError: no counts, or a non-positive size or count.
  """
  if not counts:
    raise ValueError(f"counts: expected at least one N, got {counts!r}")
  for value, name in ((image_size, "image_size"), (num_classes, "num_classes"),
                      *((n, "counts") for n in counts)):
    validation.check_positive_int(value, name)
  module = models_lib.create(model, num_classes=num_classes)
  clf = models_lib.classifier(module, models_lib.init(module, jax.random.key(0), image_size))
  images = jax.random.uniform(jax.random.key(1), (1, image_size, image_size, 3))
  labels = jnp.zeros((1,), jnp.int32)
  device = jax.devices()[0]
  rows = []
  for name, option in COUNT_OPTIONS.items():
    method = methods_lib.get(name)
    first = None
    for count in sorted(counts):
      def call(variables, x, y, key, method=method, option=option, count=count):
        return method(clf.replace(variables=variables), x, y, key=key, **{option: count})

      compiled = jax.jit(call).lower(clf.variables, images, labels, jax.random.key(2)).compile()
      program = _program_bytes(compiled)
      if device.memory_stats() is not None:
        jax.block_until_ready(compiled(clf.variables, images, labels, jax.random.key(2)))
        peak, source = device.memory_stats()["peak_bytes_in_use"], "memory_stats"
      else:
        peak, source = program, "memory_analysis"
      first = first or peak
      rows.append({"benchmark": "memory", "model": model, "method": name, "count": count,
                   "image_size": image_size, "batch_size": 1,
                   "peak_mib": round(peak / 2**20, 1), "peak_source": source,
                   "program_mib": round(program / 2**20, 1), "ratio": round(peak / first, 3)})
      print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
  return rows
