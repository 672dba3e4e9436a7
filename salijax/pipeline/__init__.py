"""The end-to-end pipelines behind the experiment binaries, importable from Python.

  from experiments.configs import benchmark
  salijax.pipeline.run_benchmark(benchmark.get_config(), "workdir/benchmark")

`run_benchmark` (the benchmark's stages, resumable, multi-device and
multi-process) and `explain_images` (people's own images, any models).
"""

from salijax.pipeline.benchmark import STAGES, run_benchmark
from salijax.pipeline.benchmark_config import validate_config
from salijax.pipeline.explain_image import explain_images
from salijax.pipeline.model_loading import LoadedModel, pretrained_model, trained_model

__all__ = ["STAGES", "LoadedModel", "explain_images", "pretrained_model", "run_benchmark",
           "trained_model", "validate_config"]
