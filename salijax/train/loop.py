"""`train_and_evaluate(config, workdir)`: the training run, resumable from its workdir.

A run trains `config.num_epochs` epochs, evaluates on `config.eval_split`
every `config.eval_every_epochs` epochs and after the last step, and writes
results.json when done. Everything that decides step `s` is derived from
the config and `s` (data: epoch `s // steps_per_epoch`, batch
`s % steps_per_epoch`; dropout: `fold_in(key, s)`), so a run killed at any
point and restarted on the same workdir continues from its latest checkpoint
and ends with bit-identical parameters and the same metrics as an
uninterrupted run.

Order at a step `s` that ends a log window / an epoch: log the train window,
evaluate and offer the best checkpoint (written synchronously), then save the
latest state; so a restored step `r` has all its logs and evals on disk, and
the ones after `r` are discarded and recomputed.

Devices: data parallel over every device of every JAX process
(`salijax.parallel.initialize` first for several): each process reads its
block of every batch, padded to fill its devices with rows that count for
nothing (`data_parallel`), so any batch size runs on any number of devices
with the results of one device (up to float rounding); the state is
replicated. With several processes, all of them run `train_and_evaluate` on
the same workdir (a file system they share): they write the checkpoints
together (orbax), process 0 writes run.json, the logs and results.json.
"""

import pathlib
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from salijax import atomic_files, data, parallel
from salijax.progress import Progress
from salijax.train import checkpointing, data_parallel, training_setup
from salijax.train import config as config_lib
from salijax.train import metrics_writer as metrics_writer_lib
from salijax.train import steps as steps_lib
from salijax.train import train_state as train_state_lib
from salijax.train import workdir as workdir_lib
from salijax.train.train_state import TrainState


def _load_sources(config: ml_collections.ConfigDict) -> tuple[data.Source, data.Source]:
  """The train and eval splits of the config's dataset."""
  synthetic = config.synthetic.to_dict() if config.dataset == "synthetic" else None
  kwargs = {"data_dir": config.data_dir or None, "synthetic": synthetic}
  return (data.load(config.dataset, config.train_split, **kwargs),
          data.load(config.dataset, config.eval_split, **kwargs))


class _Evaluator:
  """Evaluates variables on one split: mean loss and accuracy over its valid rows."""

  def __init__(self, module: nn.Module, source: data.Source,
               config: ml_collections.ConfigDict, replicated: NamedSharding,
               batch_sharding: NamedSharding):
    self._step = jax.jit(steps_lib.make_eval_step(module),
                         in_shardings=(replicated, batch_sharding, batch_sharding,
                                       batch_sharding),
                         out_shardings=replicated)
    self._source = source
    self._config = config
    self._mesh = batch_sharding.mesh

  def __call__(self, variables: Any) -> dict[str, float]:
    """{"loss", "accuracy"} of `variables` ({"params", "batch_stats"})."""
    size = self._config.eval_batch_size
    sums = None
    for local in data.batches(self._source, batch_size=size,
                              image_size=self._config.image_size, training=False,
                              crop_scale=tuple(self._config.crop_scale),
                              crop_fraction=self._config.crop_fraction,
                              share=data_parallel.share(),
                              interpolation=config_lib.eval_interpolation(self._config)):
      batch = data_parallel.global_batch(local, size, self._mesh)
      out = self._step(variables, batch["image"], batch["label"], batch["valid"])
      sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
    sums = jax.device_get(sums)
    return {"loss": float(sums["loss"] / sums["count"]),
            "accuracy": float(sums["correct"] / sums["count"])}


def _log_start(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  logging.info("jax %s, backend %s, %d devices: %s", jax.__version__,
               jax.default_backend(), jax.device_count(), jax.devices())
  logging.info("workdir %s, config:\n%s", workdir, config)


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains (or resumes) the run of `config` in `workdir`; returns the final results.

  Returns:
    The content of workdir/results.json: {"eval_split", "loss", "accuracy"
    (final params on eval_split), "best_step", "best_accuracy", "steps",
    "epochs", "resumed_from_step", "wall_time_sec" (this invocation)}.

  Raises:
    ValueError: an invalid config, or a workdir holding a different run.
  """
  start_time = time.perf_counter()
  config_lib.validate_config(config)
  for field in ("batch_size", "eval_batch_size"):
    data_parallel.check_batch_size(field, config[field])
  workdir = pathlib.Path(workdir)
  lead = jax.process_index() == 0
  same_run = workdir_lib.check_same_run(workdir, config)
  _log_start(config, workdir)
  mesh = data_parallel.data_mesh()
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(data_parallel.DATA_AXIS))

  if lead:  # prepares the dataset on first use; then the other processes read it
    train_source, eval_source = _load_sources(config)
  parallel.barrier("salijax-train-data")
  if not lead:
    train_source, eval_source = _load_sources(config)
  steps_per_epoch = data.num_batches(train_source, config.batch_size, training=True)
  if steps_per_epoch < 1:
    raise ValueError(f"config.batch_size: expected at most the {len(train_source)} "
                     f"training examples, got {config.batch_size}")
  if not same_run and lead:
    workdir_lib.write_run_record(workdir, config, num_classes=train_source.num_classes,
                                 class_names=list(train_source.class_names),
                                 steps_per_epoch=steps_per_epoch)
  parallel.barrier("salijax-train-run-record")
  setup = training_setup.build_setup(config, num_classes=train_source.num_classes,
                                     steps_per_epoch=steps_per_epoch)
  abstract = checkpointing.abstract_with_sharding(
      training_setup.abstract_state(setup, config), replicated)

  checkpoints = checkpointing.Checkpoints(workdir)
  writer = None
  try:
    start_step = checkpoints.latest_step()
    if start_step is None:
      start_step = 0
      state = data_parallel.replicate(training_setup.initial_state(setup, config), mesh)
    else:
      state = checkpoints.restore_latest(abstract, start_step)
      logging.info("resuming from step %d of %d", start_step, setup.total_steps)
    checkpoints.discard_after(start_step)
    if lead:
      writer = metrics_writer_lib.MetricsWriter(workdir, resume_step=start_step)
    evaluate = _Evaluator(setup.module, eval_source, config, replicated, batch_sharding)
    state, final_eval = _train(config, setup, state, start_step, checkpoints, writer,
                               evaluate, train_source, replicated, batch_sharding)
    if final_eval is None:  # The workdir held a finished run: evaluate its final state.
      final_eval = evaluate(state.variables)
    best_step, best_accuracy = checkpoints.best_step(), checkpoints.best_accuracy()
  finally:
    if writer is not None:
      writer.close()
    checkpoints.close()
  results = {
      "eval_split": config.eval_split,
      **final_eval,
      "best_step": best_step,
      "best_accuracy": best_accuracy,
      "steps": setup.total_steps,
      "epochs": config.num_epochs,
      "resumed_from_step": start_step,
      "wall_time_sec": time.perf_counter() - start_time,
  }
  if lead:
    atomic_files.write_json_atomic(workdir_lib.results_path(workdir), results)
  logging.info("results: %s", results)
  return results


def _train(config: ml_collections.ConfigDict, setup: training_setup.TrainingSetup,
           state: TrainState, start_step: int, checkpoints: checkpointing.Checkpoints,
           writer: metrics_writer_lib.MetricsWriter | None, evaluate: _Evaluator,
           train_source: data.Source, replicated: NamedSharding,
           batch_sharding: NamedSharding) -> tuple[TrainState, dict[str, float] | None]:
  """Runs steps `start_step + 1 .. total_steps`; `writer` None: not process 0, no logs.

  Returns:
    The final state and its eval (None if there was no step left to run).
  """
  spe, total = setup.steps_per_epoch, setup.total_steps
  if start_step >= total:
    return state, None
  mesh = batch_sharding.mesh
  rows = data_parallel.rows_per_process(config.batch_size, mesh) * jax.process_count()
  image_spec = jax.ShapeDtypeStruct(
      (rows, config.image_size, config.image_size, 3), jnp.float32, sharding=batch_sharding)
  label_spec = jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=batch_sharding)
  valid_spec = jax.ShapeDtypeStruct((rows,), jnp.bool_, sharding=batch_sharding)
  compile_start = time.perf_counter()
  train_step = jax.jit(
      steps_lib.make_train_step(setup.module, setup.tx, setup.trainable,
                                dropout_key=training_setup.dropout_key(config),
                                label_smoothing=config.label_smoothing),
      in_shardings=(replicated, batch_sharding, batch_sharding, batch_sharding),
      out_shardings=replicated,
  ).lower(state, image_spec, label_spec, valid_spec).compile()
  logging.info("train step compiled in %.1f s", time.perf_counter() - compile_start)

  last_eval = None
  step = start_step
  progress = Progress("train", unit="step", per_unit=("img", config.batch_size),
                      enabled=config.progress_bar and writer is not None)
  window_start, window_first_step = time.perf_counter(), step
  with progress:
    while step < total:
      epoch, start_batch = divmod(step, spe)
      progress.reset(spe, desc=f"epoch {epoch + 1}/{config.num_epochs}", initial=start_batch)
      for local in data.batches(train_source, batch_size=config.batch_size,
                                image_size=config.image_size, training=True,
                                seed=config.seed, epoch=epoch, start_batch=start_batch,
                                crop_scale=tuple(config.crop_scale),
                                crop_fraction=config.crop_fraction,
                                share=data_parallel.share()):
        batch = data_parallel.global_batch(local, config.batch_size, mesh)
        state = train_step(state, batch["image"], batch["label"], batch["valid"])
        step += 1
        progress.update(1)
        epoch_end = step % spe == 0
        if step % config.log_every_steps == 0 or epoch_end:
          window = jax.device_get(state.window)
          seconds = time.perf_counter() - window_start
          values = {
              "loss": float(window["loss"] / window["count"]),
              "accuracy": float(window["correct"] / window["count"]),
              "learning_rate": float(setup.schedule(step - 1)),
              "images_per_sec": (step - window_first_step) * config.batch_size / seconds,
          }
          if writer is not None:
            writer.write_train(step=step, epoch=step / spe, **values)
          progress.set_postfix(loss=f"{values['loss']:.4f}",
                               acc=f"{values['accuracy']:.3f}")
          state = state.replace(window=data_parallel.replicate(train_state_lib.empty_window(),
                                                              mesh))
        if epoch_end and ((step // spe) % config.eval_every_epochs == 0 or step == total):
          last_eval = evaluate(state.variables)
          if writer is not None:
            writer.write_eval(step=step, epoch=step / spe, split=config.eval_split,
                              **last_eval)
          logging.info("step %d (epoch %d): %s %s", step, step // spe, config.eval_split,
                       last_eval)
          checkpoints.save_best(step, state.variables, last_eval["accuracy"])
        if step % config.checkpoint_every_steps == 0 or epoch_end:
          checkpoints.save_latest(state)
        if step % config.log_every_steps == 0 or epoch_end:
          window_start, window_first_step = time.perf_counter(), step
  return state, last_eval
