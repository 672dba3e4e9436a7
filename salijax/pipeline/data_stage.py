"""The data stage: prepares the dataset and chooses the evaluation images (`evaluation_set`).

Loads the training split once where some run trains (generating the synthetic
dataset on first use, checking a TFDS or image-folder one) and writes
data/eval_set.json, the images every later stage explains. Process 0 runs it.
"""

from typing import Any

from salijax.pipeline import benchmark_config, evaluation_set
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.stage_context import Context


def run_stage(ctx: Context) -> dict[str, Any]:
  """Writes data/eval_set.json; returns {"images": how many}."""
  if benchmark_config.trains(ctx.config):
    evaluation_set.load_source(ctx.config, ctx.config.train_split)  # prepares it
  source = evaluation_set.load_source(ctx.config, ctx.config.eval_split)
  eval_set = evaluation_set.select(ctx.config, source)
  bw.write_json(evaluation_set.path(ctx.workdir), eval_set.to_json())
  return {"images": len(eval_set.indices)}
