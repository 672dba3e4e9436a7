"""The benchmark's workdir: where every stage puts its outputs, written atomically.

  WORKDIR/config.json                         the run's config (another config is refused,
                                              except for changes of `mutable` fields)
  WORKDIR/data/eval_set.json                  the explained images: dataset indices, labels
  WORKDIR/train/<run>/                        a salijax.train workdir per run ("resnet18_scratch")
  WORKDIR/models/<run>.msgpack, <run>.json    the trained variables and what they are
  WORKDIR/perturb/<run>/<perturbation>/batch_NNNNN.npz
                                              perturbed images f32[b,H,W,3]
  WORKDIR/predict/<run>/batch_NNNNN.npz       class probabilities of the clean images,
                                              predictions on the perturbed ones
  WORKDIR/explain/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz
                                              maps f32[b,H,W] ("none": the clean images)
  WORKDIR/evaluate/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz
                                              per-image metrics and curves
  WORKDIR/sanity/<run>/<method>.npz           the parameter-randomisation check
  WORKDIR/report/                             results.csv/json, summary.md, manifest.json, figures
  WORKDIR/<stage>/DONE.json                   the stage finished (its wall time and summary;
                                              "config": the mutable fields it used)

Every file is written to a temporary name and renamed, so a killed run leaves
only complete files; a stage skips the units whose file exists, a stage
whose DONE.json exists is skipped as a whole, and a unit file that cannot be
read is computed again (`batch_units.read`).
"""

import io
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from salijax import atomic_files
from salijax.train import workdir as train_workdir


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, Any]) -> None:
  """An .npz of `arrays` (name -> array), written atomically."""
  buffer = io.BytesIO()
  np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
  write_bytes_atomic(path, buffer.getvalue())


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The arrays of an .npz written by `save_arrays`."""
  with np.load(path, allow_pickle=False) as stored:
    return {name: stored[name] for name in stored.files}


write_bytes_atomic = atomic_files.write_bytes_atomic
write_json = atomic_files.write_json_atomic


def read_json(path: str | os.PathLike) -> Any:
  return json.loads(pathlib.Path(path).read_text())


def done_path(workdir: str | os.PathLike, stage: str) -> pathlib.Path:
  return pathlib.Path(workdir) / stage / "DONE.json"


def stage_done(workdir: str | os.PathLike, stage: str) -> dict[str, Any] | None:
  """The DONE.json of `stage` ({"seconds", ...}), or None while it is not finished."""
  path = done_path(workdir, stage)
  return read_json(path) if path.exists() else None


def mark_done(workdir: str | os.PathLike, stage: str, record: Mapping[str, Any]) -> None:
  write_json(done_path(workdir, stage), dict(record))


def run_dir(workdir: str | os.PathLike, stage: str, run: str) -> pathlib.Path:
  return pathlib.Path(workdir) / stage / run


def batch_path(workdir: str | os.PathLike, stage: str, run: str, *parts: str,
               batch: int) -> pathlib.Path:
  """<stage>/<run>/<part>/.../batch_NNNNN.npz, e.g. parts = (method, label_mode, perturbation)."""
  return run_dir(workdir, stage, run).joinpath(*parts) / f"batch_{batch:05d}.npz"


def check_same_config(workdir: str | os.PathLike, config: ml_collections.ConfigDict,
                      mutable: Sequence[str] = (), before: Mapping[str, Any] | None = None
                      ) -> None:
  """Stores the config on the first run; raises ValueError if the workdir holds another one.

  A config that differs only in the top-level fields `mutable` replaces the stored one (the
  stages that use them know from their DONE.json's "config", `done_matches`). `before`: the
  values of top-level fields that a workdir made before they existed ran with.
  """
  path = pathlib.Path(workdir) / "config.json"
  current = train_workdir.config_as_json(config)
  if not path.exists():
    write_json(path, current)
    return
  stored = {**(before or {}), **read_json(path)}
  if stored != current:
    differing = sorted(_differences(stored, current))
    fixed = [d for d in differing if d.split(".")[0] not in mutable]
    if fixed:
      raise ValueError(
          f"workdir: {workdir} holds a benchmark with a different config (differs in "
          f"{', '.join(fixed)}); use another workdir, or the same config to resume")
    write_json(path, current)


def config_part(config: ml_collections.ConfigDict, fields: Sequence[str]) -> dict[str, Any]:
  """{field: its JSON value} of the top-level `fields` of `config` (a DONE.json's "config")."""
  return {field: json.loads(json.dumps(
      config[field].to_dict() if isinstance(config[field], ml_collections.ConfigDict)
      else config[field])) for field in fields}


def done_matches(done: Mapping[str, Any], config: ml_collections.ConfigDict,
                 fields: Sequence[str], before: Mapping[str, Any]) -> bool:
  """Whether a stage's DONE.json record was made with `config`'s `fields`; a record without
  "config" was made with `before` (the values of a workdir older than those fields)."""
  if not fields:
    return True
  recorded = done.get("config", {})
  return all(recorded.get(field, before.get(field)) == value
             for field, value in config_part(config, fields).items())


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
  if isinstance(a, dict) and isinstance(b, dict):
    keys = set(a) | set(b)
    return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
  return [] if a == b else [prefix.rstrip(".")]
