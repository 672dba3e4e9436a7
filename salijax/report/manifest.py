"""manifest.json: what produced a report (versions, code revision, devices, config, timings).

`build_manifest` returns plain JSON types only:

  salijax_version, python          the versions of salijax and of Python
  packages                         distribution name -> installed version (None if absent)
  git                              {"revision", "dirty"} of the checkout salijax runs from
                                   (dirty: tracked files modified), None outside a checkout
  devices, process_count           the JAX devices {"id", "platform", "kind", "process_index"}
  xla_flags, matmul_precision      $XLA_FLAGS and jax_default_matmul_precision
  config                           the full config (a ConfigDict or a mapping)
  created                          the UTC time, ISO 8601
  stage_seconds, extra             when given

    manifest = build_manifest(config, stage_seconds={"train": 812.5})
    atomic_files.write_json_atomic(report_dir / "manifest.json", manifest)

It never raises for the environment: a missing package, no git executable or
no checkout give None.
"""

import datetime
import importlib.metadata
import os
import pathlib
import platform
import subprocess
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

import salijax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets",
            "scikit-image", "ml-collections", "matplotlib")
GIT_TIMEOUT_SECONDS = 10


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
  """Distribution name -> installed version, None for one that is not installed."""
  versions = {}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def _git(directory: pathlib.Path, *args: str) -> str | None:
  """The stdout of `git args` run in `directory`, None if git fails or is missing."""
  try:
    done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True,
                          timeout=GIT_TIMEOUT_SECONDS, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return done.stdout if done.returncode == 0 else None


def git_state(directory: str | os.PathLike) -> dict[str, Any] | None:
  """{"revision": HEAD's hash, "dirty": tracked files modified} of the checkout holding
  `directory`, or None when it is not in a git checkout (or git is unavailable)."""
  directory = pathlib.Path(directory)
  revision = _git(directory, "rev-parse", "HEAD")
  status = _git(directory, "status", "--porcelain", "--untracked-files=no")
  if revision is None or status is None:
    return None
  return {"revision": revision.strip(), "dirty": bool(status.strip())}


def as_json(value: Any) -> Any:
  """`value` as plain JSON types: mappings -> dict (str keys), sequences -> list, numpy
  scalars and arrays -> numbers and lists; anything else that JSON lacks -> str(value)."""
  if isinstance(value, ml_collections.ConfigDict):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(key): as_json(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [as_json(item) for item in value]
  if isinstance(value, (np.ndarray, np.generic)):
    return as_json(value.tolist())
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return str(value)


def build_manifest(config: Mapping[str, Any] | ml_collections.ConfigDict, *,
                   stage_seconds: Mapping[str, float] | None = None,
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """The manifest of a run (module doc).

  Args:
    config: the run's config.
    stage_seconds: stage name -> wall-clock seconds, stored when given.
    extra: more entries, stored under "extra" when given.

  Returns:
    A dict of plain JSON types.

  Raises:
    TypeError: config, stage_seconds or extra not a mapping; a stage's seconds
      not a number.
  """
  if not isinstance(config, (Mapping, ml_collections.ConfigDict)):
    raise TypeError(f"config must be a ConfigDict or a mapping, got {type(config).__name__}")
  for name, value in (("stage_seconds", stage_seconds), ("extra", extra)):
    if value is not None and not isinstance(value, Mapping):
      raise TypeError(f"{name} must be a mapping or None, got {type(value).__name__}")
  manifest = {
      "salijax_version": salijax.__version__,
      "python": platform.python_version(),
      "packages": package_versions(),
      "git": git_state(pathlib.Path(salijax.__file__).parent),
      "devices": [{"id": device.id, "platform": device.platform, "kind": device.device_kind,
                   "process_index": device.process_index} for device in jax.devices()],
      "process_count": jax.process_count(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "matmul_precision": as_json(jax.config.jax_default_matmul_precision),
      "config": as_json(config),
      "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  if stage_seconds is not None:
    for stage, seconds in stage_seconds.items():
      if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)):
        raise TypeError(f"stage_seconds[{stage!r}] must be a number of seconds, got"
                        f" {seconds!r}")
    manifest["stage_seconds"] = {str(stage): float(seconds)
                                 for stage, seconds in stage_seconds.items()}
  if extra is not None:
    manifest["extra"] = as_json(extra)
  return manifest
