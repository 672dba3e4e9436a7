"""Orbax checkpoints of a training run: the latest state and the best model.

Two `ocp.CheckpointManager`s in the workdir:

- latest: the full `TrainState` (params, batch_stats, opt_state, step, metric
  window), saved every `checkpoint_every_steps` and at each epoch end; keeps 2.
- best: the model variables {"params", "batch_stats"} with their eval
  accuracy, saved at every eval; keeps the 1 with the highest accuracy (the
  later one on ties).

Saves are asynchronous (training goes on while orbax writes); orbax writes
each step to a temporary directory and renames it when complete, so a killed
run leaves only complete steps. `close()` waits for pending writes. Restores
go into abstract targets built with `jax.eval_shape`, with the shardings the
caller asks for.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from salijax.train import train_state as train_state_lib
from salijax.train import workdir as workdir_lib
from salijax.train.train_state import TrainState


class Checkpoints:
  """The latest and best checkpoint managers of a workdir (see module doc).

  Args:
    workdir: the run's workdir.
    read_only: the caller only restores (`load_trained`): no directory is
      created and unfinished steps are left alone (the cleanup would run in
      a background thread that `close()` does not wait for).
  """

  def __init__(self, workdir: str | os.PathLike, *, read_only: bool = False):
    workdir = os.path.abspath(workdir)  # orbax needs absolute paths.

    def options(**kwargs) -> ocp.CheckpointManagerOptions:
      return ocp.CheckpointManagerOptions(
          create=not read_only, cleanup_tmp_directories=not read_only, **kwargs)

    self._latest = ocp.CheckpointManager(
        workdir_lib.checkpoint_dir(workdir, "latest"), options=options(max_to_keep=2))
    self._best = ocp.CheckpointManager(
        workdir_lib.checkpoint_dir(workdir, "best"),
        options=options(max_to_keep=1, best_fn=lambda metrics: metrics["accuracy"],
                        best_mode="max"))

  def latest_step(self) -> int | None:
    """The step of the latest saved state, or None if there is none."""
    return self._latest.latest_step()

  def kept_steps(self) -> list[int]:
    """The steps of the saved states that are kept (the last 2), in increasing order."""
    return sorted(self._latest.all_steps())

  def best_step(self) -> int | None:
    """The step of the best saved variables, or None if there is none."""
    return self._best.best_step()

  def best_accuracy(self) -> float | None:
    """The eval accuracy of the best saved variables, or None if there is none."""
    step = self.best_step()
    return None if step is None else float(self._best.metrics(step)["accuracy"])

  def discard_after(self, step: int) -> None:
    """Deletes best-model steps after `step` (left by a run killed after saving them).

    A resumed run repeats the evals after `step`; their old steps would
    otherwise collide with the new saves.
    """
    for later in [s for s in self._best.all_steps() if s > step]:
      self._best.delete(later)

  def save_latest(self, state: TrainState) -> None:
    """Saves the full state at `state.step` (asynchronously)."""
    self._latest.save(int(state.step),
                      args=ocp.args.StandardSave(train_state_lib.to_checkpoint(state)),
                      force=True)

  def save_best(self, step: int, variables: Any, accuracy: float) -> None:
    """Offers `variables` at `step` with eval `accuracy`; waits until written.

    Waiting makes the best step durable before the latest state of the same
    step is saved, so a resume never skips an eval's candidate.
    """
    self._best.save(step, args=ocp.args.StandardSave(variables),
                    metrics={"accuracy": float(accuracy)}, force=True)
    self._best.wait_until_finished()

  def restore_latest(self, template: TrainState, step: int | None = None) -> TrainState:
    """Restores the state at `step` (default: latest) into `template`'s structure.

    `template` is an abstract state (`jax.eval_shape`) whose leaves carry the
    wanted shardings (`jax.ShapeDtypeStruct(..., sharding=)`).
    """
    step = self.latest_step() if step is None else step
    target = train_state_lib.to_checkpoint(template)
    restored = self._latest.restore(step, args=ocp.args.StandardRestore(target))
    return train_state_lib.from_checkpoint(template, restored)

  def restore_best(self, template: Any) -> Any:
    """Restores the best variables into `template` (abstract {"params", "batch_stats"})."""
    return self._best.restore(self.best_step(), args=ocp.args.StandardRestore(template))

  def close(self) -> None:
    """Waits for pending saves and releases the managers."""
    for manager in (self._latest, self._best):
      manager.wait_until_finished()
      manager.close()


def abstract_with_sharding(tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """`tree` (arrays or abstract) as `jax.ShapeDtypeStruct`s placed with `sharding`."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
