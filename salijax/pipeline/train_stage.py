"""The train stage: every run of the benchmark trained and exported (`trained_models`).

Runs in one process (data parallel over its local devices); each run resumes
on its own, and a run already exported is read back. The records it returns
are the context's, so later stages do not read them again.
"""

from typing import Any

from salijax.pipeline import trained_models
from salijax.pipeline.stage_context import Context


def run_stage(ctx: Context) -> dict[str, Any]:
  """Trains (or resumes) every run; returns {run name: test accuracy}."""
  with ctx.progress_bar("train", unit="run") as bar:
    bar.reset(total=len(ctx.runs))
    for run in ctx.runs:
      ctx.records[run.name] = trained_models.train_run(ctx.config, ctx.workdir, run,
                                                       progress=ctx.progress and ctx.lead)
      bar.update(1)
  return {run.name: ctx.records[run.name]["test_accuracy"] for run in ctx.runs}
