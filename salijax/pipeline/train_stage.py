"""The train stage: every run of the benchmark trained and exported (`trained_models`).

Data parallel over every device of every process (all processes train each
run together); each run resumes on its own, and a run already exported is
read back. The records it returns are the context's, so later stages do not
read them again (the processes other than 0 read them after the stage).
"""

from typing import Any

from salijax.pipeline import trained_models
from salijax.pipeline.stage_context import Context


def run_stage(ctx: Context) -> dict[str, Any]:
  """Trains (or resumes) every run; returns {run name: test accuracy}."""
  with ctx.progress_bar("train", unit="run") as bar:
    bar.reset(total=len(ctx.runs))
    for run in ctx.runs:
      record = trained_models.train_run(ctx.config, ctx.workdir, run,
                                        progress=ctx.progress and ctx.lead)
      if record is not None:
        ctx.records[run.name] = record
      bar.update(1)
  if not ctx.lead:
    return {}  # process 0 writes the summary
  return {run.name: ctx.records[run.name]["test_accuracy"] for run in ctx.runs}
