"""Examples read and preprocessed on several host cores, by a pool of threads.

Reading a record, decoding its JPEG (PIL or OpenCV, through TFDS) and PIL's
resize release the GIL for most of their time, so threads run them in parallel
on as many cores: one core decodes and crops a few hundred ImageNet images a
second (~365 in BENCHMARKS.md, "Input pipeline"), which keeps up with neither a
GPU's forward passes nor its cheaper saliency methods. The pools are shared by every caller
and kept for the life of the process.

  rows = map_examples(lambda i: eval_example(source[i], 224), indices)  # in order
"""

import concurrent.futures
import functools
import os
from collections.abc import Callable, Iterable
from typing import TypeVar

Row = TypeVar("Row")


def host_cores() -> int:
  """The CPU cores this process may run on."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


@functools.cache
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
  return concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                               thread_name_prefix="salijax-examples")


def map_examples(fn: Callable[[int], Row], indices: Iterable[int], *,
                 workers: int | None = None) -> list[Row]:
  """[fn(i) for i in indices], computed by `workers` threads (None: `host_cores()`), in order.

  One worker, or one index, runs in the calling thread. An exception of `fn` is raised here.
  """
  indices = list(indices)
  workers = host_cores() if workers is None else workers
  if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
    raise ValueError(f"workers: expected a positive int or None, got {workers!r}")
  if workers == 1 or len(indices) <= 1:
    return [fn(i) for i in indices]
  return list(_pool(workers).map(fn, indices))
