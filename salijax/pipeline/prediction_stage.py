"""The predict stage: each run's class probabilities of the evaluation images.

A unit is (run, batch) (`batch_units.run_units`), shared out over the
processes; it writes predict/<run>/batch_NNNNN.npz:

  position i32[b] (into the evaluation set), true i32[b] (the ground truth),
  probabilities f32[b,K] (softmax of the clean images),
  perturbations str[P] (config.perturbations, in order),
  perturbed_predicted i32[P,b] (the class predicted on each perturbed image)

Later stages read the explained classes from these files (`explained_labels`),
so every method, metric and label mode uses the same ones: "ground_truth" is
the true class, "predicted" the most likely and "least_likely" the least
likely class of the clean image (ties: the lowest class index). The report's
diagnostics.json lists each image's most and least likely classes from here.
"""

import pathlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from salijax import parallel
from salijax.pipeline import batch_units, evaluation_set, perturbations
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.benchmark_config import Run, names_list


class PredictionUnit(NamedTuple):
  """One unit of the predict stage: a batch of the evaluation set under one run."""

  run: Run
  batch: int


def path(workdir: str, unit: PredictionUnit) -> pathlib.Path:
  """predict/<run>/batch_NNNNN.npz."""
  return bw.batch_path(workdir, "predict", unit.run.name, batch=unit.batch)


@jax.jit
def _probabilities(clf: Any, images: jax.Array) -> jax.Array:
  return jax.nn.softmax(clf.apply(clf.variables, images), axis=-1)


def probabilities(clf: Any, images: np.ndarray) -> np.ndarray:
  """f32[B,H,W,3] -> softmax probabilities f32[B,K], split over the local devices."""
  return np.asarray(parallel.run_sharded(_probabilities, clf, images))


def explained_labels(label_mode: str, true: np.ndarray, probs: np.ndarray) -> np.ndarray:
  """i32[b]: the class each image's maps explain under `label_mode` (module doc)."""
  if label_mode == "ground_truth":
    return np.asarray(true, np.int32)
  if label_mode == "predicted":
    return np.argmax(probs, axis=-1).astype(np.int32)
  if label_mode == "least_likely":
    return np.argmin(probs, axis=-1).astype(np.int32)
  raise ValueError(f"label_mode: expected 'ground_truth', 'predicted' or 'least_likely', got"
                   f" {label_mode!r}")


def predict_unit(config: ml_collections.ConfigDict, clf: Any,
                 batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (see the module doc); `batch` from `eval_batch`."""
  valid = batch["valid"]
  names = names_list(config.perturbations)
  perturbed = [probabilities(clf, perturbations.perturbed_images(
      clf, batch["image"], batch["label"], name)).argmax(-1)[valid] for name in names]
  return {"position": batch["position"][valid], "true": batch["label"][valid],
          "probabilities": probabilities(clf, batch["image"])[valid].astype(np.float32),
          "perturbations": np.array(names, dtype=str),
          "perturbed_predicted": np.array(perturbed, np.int32).reshape(len(names),
                                                                       int(valid.sum()))}


def load_unit(workdir: str, run: Run, batch: int) -> dict[str, np.ndarray]:
  """The arrays of the predict file of (run, batch)."""
  return bw.load_arrays(path(workdir, PredictionUnit(run, batch)))


def run_stage(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
              eval_set: evaluation_set.EvaluationSet, bar: Any) -> None:
  """This process's share of the (run, batch) units (`batch_units.run_units`)."""
  num_batches = len(eval_set.batch_indices(config.batch_size))
  all_units = [PredictionUnit(run, b) for run in runs for b in range(num_batches)]
  batch_units.run_units(config, workdir, eval_set, bar, all_units,
                        lambda unit: path(workdir, unit),
                        lambda clf, batch, unit: predict_unit(config, clf, batch))
