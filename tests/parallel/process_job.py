"""One process of a job that explains and scores NUM_ITEMS images split over JAX processes.

Run by processes_test.py, once per process (all with the same --port and
--num_processes; --num_processes=1 is the single-process reference). Each
process joins the job (`salijax.parallel.initialize`; joining again with the
same arguments must do nothing, as another process must raise), takes its
share of the items, computes RISE maps and their insertion/deletion AUCs with
run_sharded over its local devices, and writes OUTDIR/part-I.npz; after a
barrier, process 0 merges the parts by item index into OUTDIR/merged.npz
(raising if an item is missing or repeated) and writes OUTDIR/report.json.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/parallel/process_job.py \
        --port=12345 --num_processes=2 --process_id=0 --outdir=/tmp/job
"""

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import tiny_classifiers  # noqa: E402

from salijax import methods, metrics, parallel  # noqa: E402

NUM_ITEMS = 10
SIZE = 32
FIELDS = ("maps", "insertion_auc", "deletion_auc")


def write_atomic(path: pathlib.Path, write) -> None:
  """write(file) into a temporary file next to `path`, then renamed over it."""
  tmp = path.with_name(f".{path.name}.tmp")
  with open(tmp, "wb") as f:
    write(f)
  os.replace(tmp, path)


def compute_part(indices: np.ndarray) -> dict[str, np.ndarray]:
  """RISE maps and insertion/deletion AUCs of the items `indices`, on the local devices."""
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(NUM_ITEMS, SIZE, SIZE, 3)).astype(np.float32)[indices]
  labels = rng.integers(0, 4, NUM_ITEMS).astype(np.int32)[indices]
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  maps = parallel.run_sharded(methods.rise, clf, images, labels, key=jax.random.key(1),
                              num_masks=16, cell=4, chunk=8)
  scores = parallel.run_sharded(metrics.insertion_deletion, clf, images, maps, labels,
                                step_pixels=128)
  return {"maps": np.asarray(maps), "insertion_auc": np.asarray(scores.insertion_auc),
          "deletion_auc": np.asarray(scores.deletion_auc)}


def merge(outdir: pathlib.Path, count: int) -> None:
  """Process 0: the parts of all `count` processes, by item index, into merged.npz."""
  parts = [np.load(outdir / f"part-{i}.npz") for i in range(count)]
  indices = np.concatenate([part["indices"] for part in parts])
  times = np.bincount(indices, minlength=NUM_ITEMS)
  if len(times) != NUM_ITEMS or (times != 1).any():
    raise ValueError(f"every item must be computed exactly once, got counts {times.tolist()}")
  merged = {}
  for field in FIELDS:
    values = np.concatenate([part[field] for part in parts])
    merged[field] = np.empty_like(values)
    merged[field][indices] = values
  report = {"process_count": count,
            "items": [part["indices"].tolist() for part in parts],
            "local_device_count": [int(part["local_device_count"]) for part in parts],
            "device_count": [int(part["device_count"]) for part in parts]}
  write_atomic(outdir / "merged.npz", lambda f: np.savez(f, **merged))
  write_atomic(outdir / "report.json", lambda f: f.write(json.dumps(report).encode()))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--port", type=int, required=True)
  parser.add_argument("--num_processes", type=int, required=True)
  parser.add_argument("--process_id", type=int, required=True)
  parser.add_argument("--outdir", type=pathlib.Path, required=True)
  args = parser.parse_args()
  address = f"127.0.0.1:{args.port}"
  parallel.initialize(address, args.num_processes, args.process_id, timeout_s=120)
  parallel.initialize(address, args.num_processes, args.process_id)  # joined: a no-op
  if args.num_processes > 1:
    try:
      parallel.initialize(address, args.num_processes, 1 - args.process_id)
      raise AssertionError("joining again as another process was not refused")
    except ValueError as error:
      if "already joined" not in str(error):
        raise
  indices = parallel.process_share(NUM_ITEMS)
  part = compute_part(indices)
  write_atomic(args.outdir / f"part-{parallel.process_index()}.npz",
               lambda f: np.savez(f, indices=indices, local_device_count=jax.local_device_count(),
                                  device_count=jax.device_count(), **part))
  parallel.barrier("parts written")
  if parallel.process_index() == 0:
    merge(args.outdir, parallel.process_count())


if __name__ == "__main__":
  main()
