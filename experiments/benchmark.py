r"""The saliency benchmark, end to end: data, training, explanation, evaluation, report.

  python -m experiments.benchmark --config=experiments/configs/benchmark.py \
      --workdir=workdir/benchmark

Restarting the same command resumes: finished stages and finished batches are
skipped. The report (tables, summary.md, figures, manifest.json) is written to
WORKDIR/report. Several JAX processes run it together (experiments/process_flags.py):
every stage, training included, is shared by all of them, e.g. two on one machine:

  for i in 0 1; do
    python -m experiments.benchmark --config=... --workdir=W \
      --coordinator_address=127.0.0.1:8476 --num_processes=2 --process_id=$i &
  done; wait

or on every worker of a TPU slice, `--coordinator_address=auto` (README: "Several
devices and hosts"). Each process uses its local devices (on CPUs add
XLA_FLAGS=--xla_force_host_platform_device_count=N to split a process's batches).

experiments/configs/protocol.py adds the label modes (ground truth, predicted,
least likely class) and the perturbations (rotations, resize, crop, FGSM) of
the ACML 2024 protocol; protocol_imagenette.py is its ImageNet-weights version.
"""

from absl import app, flags
from ml_collections import config_flags

from experiments import orbax_logging, process_flags
from salijax import cpu_convolutions, pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "Benchmark config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory of every stage's outputs.")
_STAGES_THROUGH = flags.DEFINE_enum(
    "stages_through", "report", list(pipeline.STAGES),
    "Stop after this stage (e.g. train).")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show progress lines on stderr: per stage, "
                              "and per training epoch.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cpu_convolutions.use_xla_convolutions()
  process_flags.join()
  orbax_logging.drop_orbax_info()
  pipeline.run_benchmark(_CONFIG.value, _WORKDIR.value, progress=_PROGRESS.value,
                         stages_through=_STAGES_THROUGH.value)


if __name__ == "__main__":
  app.run(main)
