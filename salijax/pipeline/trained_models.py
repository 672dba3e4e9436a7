"""The benchmark's trained models: trained once, then read by every later stage.

The training stage trains each run with `salijax.train.train_and_evaluate`
(resumable on its own) in train/<run>/ and exports the final variables to
models/<run>.msgpack (flax serialisation) with models/<run>.json (what the
model is, its class names and accuracy). A run in mode "pretrained" is not
trained: config.pretrained's ImageNet weights are ported and exported as they
are (1000 classes, no accuracy in the record: the report measures it on the
evaluation images). Later stages read only these two files, so they need
neither orbax nor the training state, and any number of processes can read
them. With several JAX processes, all of them train each run together (data
parallel, `salijax.train.loop`) and process 0 exports it.
"""

import pathlib
from typing import Any

import flax.serialization
import jax
import ml_collections
import numpy as np
from absl import logging

from salijax import models, parallel, train
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import model_loading
from salijax.pipeline.benchmark_config import PRETRAINED, Run, train_config
from salijax.train import config as train_config_lib


def paths(workdir: str, run: Run) -> tuple[pathlib.Path, pathlib.Path]:
  """models/<run>.msgpack (the variables) and models/<run>.json (the record)."""
  base = pathlib.Path(workdir) / "models" / run.name
  return base.with_suffix(".msgpack"), base.with_suffix(".json")


def train_run(config: ml_collections.ConfigDict, workdir: str, run: Run, *,
              progress: bool = False) -> dict[str, Any] | None:
  """Trains (or resumes, or finds finished) `run`, exports it; returns its models/<run>.json.

  `progress` shows the training's progress line per epoch (its steps, steps/s
  and images/s), whatever config.train.progress_bar says. With several JAX
  processes, all of them call it and train together; process 0 exports the
  model (the others get None, and read the record once the stage's barrier has
  passed).
  """
  variables_path, record_path = paths(workdir, run)
  exported = record_path.exists() and variables_path.exists()
  parallel.barrier(f"salijax-train-{run.name}")  # every process has looked
  if exported:
    return bw.read_json(record_path)
  if run.mode == PRETRAINED:  # process 0 exports it, untrained
    return _export_pretrained(config, workdir, run) if parallel.process_index() == 0 else None
  run_config = train_config(config, run)
  run_config.progress_bar = progress
  run_workdir = bw.run_dir(workdir, "train", run.name)
  results = train.train_and_evaluate(run_config, str(run_workdir))
  module, variables, _ = train.load_trained(str(run_workdir), which="latest")
  variables = jax.device_get(variables)
  if parallel.process_index() != 0:
    return None
  bw.write_bytes_atomic(variables_path, flax.serialization.to_bytes(variables))
  record = {
      "run": run.name, "model": run.model, "mode": run.mode,
      "num_classes": int(module.num_classes), "head": run_config.head,
      **train_config_lib.vgg_options(run_config),
      "image_size": run_config.image_size, "test_accuracy": results["accuracy"],
      "test_loss": results["loss"], "eval_split": results["eval_split"],
      "steps": results["steps"], "epochs": results["epochs"],
      "class_names": bw.read_json(run_workdir / "run.json")["class_names"],
  }
  bw.write_json(record_path, record)
  logging.info("%s: test accuracy %.4f", run.name, record["test_accuracy"])
  return record


def _export_pretrained(config: ml_collections.ConfigDict, workdir: str, run: Run
                       ) -> dict[str, Any]:
  """Exports config.pretrained's ImageNet `run.model` untrained; returns its record."""
  variables_path, record_path = paths(workdir, run)
  loaded = model_loading.pretrained_model(run.model, config.pretrained)
  bw.write_bytes_atomic(variables_path, flax.serialization.to_bytes(
      jax.device_get(loaded.classifier.variables)))
  record = {
      "run": run.name, "model": run.model, "mode": run.mode,
      "num_classes": len(loaded.class_names), "head": "linear", "classifier_width": None,
      "classifier_dropout": None, "image_size": config.image_size, "test_accuracy": None,
      "test_loss": None, "eval_split": config.eval_split, "steps": 0, "epochs": 0,
      "class_names": list(loaded.class_names), "weights": str(config.pretrained),
  }
  bw.write_json(record_path, record)
  logging.info("%s: %s exported untrained", run.name, loaded.name)
  return record


def load_run_record(workdir: str, run: Run) -> dict[str, Any]:
  """models/<run>.json: run, model, mode, num_classes, head, classifier_width,
  classifier_dropout, image_size, test_accuracy, test_loss, eval_split, steps,
  epochs, class_names (and weights for a "pretrained" run, whose test_accuracy and
  test_loss are None)."""
  return bw.read_json(paths(workdir, run)[1])


def load_run(workdir: str, run: Run, record: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
  """(module, variables) of a run the training stage exported; `record` its models/<run>.json."""
  variables_path, _ = paths(workdir, run)
  module = models.create(record["model"], num_classes=record["num_classes"],
                         head=record["head"], classifier_width=record["classifier_width"],
                         # Records written before classifier_dropout existed lack it.
                         classifier_dropout=record.get("classifier_dropout"))
  template = jax.eval_shape(lambda: models.init(module, jax.random.key(0),
                                                record["image_size"]))
  template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template)
  variables = flax.serialization.from_bytes(template, variables_path.read_bytes())
  return module, variables
