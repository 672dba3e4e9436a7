"""What the benchmark's stages share: padding, method keys, probabilities, labels, images.

The stages import these instead of each other:

  padded             a unit's per-image arrays back to the padded batch
  method_key         the key of a method on a batch (the explain and sanity stages)
  probabilities      softmax of a batch, split over the local devices
  explained_labels   the class a label mode explains
  images             a batch's images under a perturbation (the perturb stage's units)
"""

import zlib
from typing import Any

import jax
import numpy as np

from salijax import parallel, perturbations
from salijax.pipeline import batch_units
from salijax.pipeline.benchmark_config import Run
from salijax.pipeline.stage_context import Context


def padded(values: np.ndarray, size: int) -> np.ndarray:
  """Pads axis 0 to `size` with copies of the last row (the batch's padding)."""
  return np.concatenate([values, np.repeat(values[-1:], size - len(values), axis=0)])


def method_key(seed: int, method: str, batch: int) -> jax.Array:
  """fold_in(fold_in(key(seed), crc32(method)), batch): the same for every label mode and
  perturbation, and for any unit order or number of processes (`explanation_stage`)."""
  method_id = zlib.crc32(method.encode()) & 0x7FFFFFFF
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), method_id), batch)


@jax.jit
def _probabilities(clf: Any, images: jax.Array) -> jax.Array:
  return jax.nn.softmax(clf.logits(images), axis=-1)


def probabilities(ctx: Context, clf: Any, images: np.ndarray) -> np.ndarray:
  """f32[B,H,W,3] -> softmax probabilities f32[B,K], split over the local devices."""
  return np.asarray(parallel.run_sharded(_probabilities, clf, images, mesh=ctx.mesh))


def explained_labels(label_mode: str, true: np.ndarray, probs: np.ndarray) -> np.ndarray:
  """i32[b]: the class each image's maps explain under `label_mode`: "ground_truth" the true
  class, "predicted" the most likely and "least_likely" the least likely one of `probs`
  (ties: the lowest class index)."""
  if label_mode == "ground_truth":
    return np.asarray(true, np.int32)
  if label_mode == "predicted":
    return np.argmax(probs, axis=-1).astype(np.int32)
  if label_mode == "least_likely":
    return np.argmin(probs, axis=-1).astype(np.int32)
  raise ValueError(f"label_mode: expected 'ground_truth', 'predicted' or 'least_likely', got"
                   f" {label_mode!r}")


def images(ctx: Context, run: Run, batch: dict[str, np.ndarray], batch_index: int,
           perturbation: str) -> np.ndarray:
  """f32[B,H,W,3]: batch `batch_index` (`batch`, from `evaluation_set.eval_batch`) under
  `perturbation`: its images for "none", else the perturb stage's unit, padded as `batch`."""
  if perturbation == perturbations.NONE:
    return batch["image"]
  stored = batch_units.read(ctx, "perturb",
                            batch_units.PerturbationUnit(run, perturbation, batch_index))
  return padded(stored["images"], len(batch["valid"]))
