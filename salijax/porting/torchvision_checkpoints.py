"""The official torchvision ImageNet checkpoints: downloaded once, verified, cached.

Usage::

  path = pretrained("resnet18")  # ~/.cache/salijax/torchvision/resnet18-f37072fd.pth
  variables = load_weights("resnet18", "torchvision", num_classes=10, key=key)

The URL and SHA-256 of each checkpoint come from `torchvision_manifest.json`,
next to this module (its origin and licences: third_party/README.md).

Cache: `cache_dir`, else `$SALIJAX_CACHE/torchvision`, else
`~/.cache/salijax/torchvision`. A file is downloaded to a temporary file in the
cache, verified, then renamed into place, so the cache never holds a partial
or unverified file. Checkpoints placed there by hand are used as they are.

Integrity: the manifest holds the full SHA-256 where it is published and
otherwise the 8 hex digits that end the file name. Such a prefix is checked,
and the file's full SHA-256 is recorded in `<file>.sha256` the first time;
from then on the file must match that record. Every call verifies the cached
file.

Mirror: `url_base`, else `$SALIJAX_TORCHVISION_URL_BASE`, replaces the URL up
to the file name (an http(s):// or file:// URL of a folder).
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import importlib.resources
import json
import logging
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
from typing import Any

from salijax.porting.pth_reader import read_pth
from salijax.porting.torchvision_to_flax import torchvision_to_flax

MANIFEST_FILE = "torchvision_manifest.json"
URL_BASE_ENV = "SALIJAX_TORCHVISION_URL_BASE"
CACHE_ENV = "SALIJAX_CACHE"
_TIMEOUT_S = 60
_CHUNK_BYTES = 1 << 20
_SPECS = ("torchvision", "none")
# torchvision's ImageClassification preset, where a weights entry sets no "preprocessing".
DEFAULT_PREPROCESSING = {"resize": 256, "crop": 224, "interpolation": "bilinear"}


@functools.cache
def manifest() -> dict[str, Any]:
  """The manifest: {"checkpoints": {arch: {weights: {"url", "sha256", ...}}}}."""
  text = importlib.resources.files(__package__).joinpath(MANIFEST_FILE).read_text()
  return json.loads(text)


def default_cache_dir() -> pathlib.Path:
  """`$SALIJAX_CACHE/torchvision`, else `~/.cache/salijax/torchvision`."""
  root = os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache" / "salijax"
  return pathlib.Path(root) / "torchvision"


def _checkpoint(arch: str, weights: str) -> dict[str, Any]:
  checkpoints = manifest()["checkpoints"]
  if arch not in checkpoints:
    raise ValueError(f"arch must be one of {sorted(checkpoints)}, got {arch!r}")
  if weights not in checkpoints[arch]:
    raise ValueError(
      f"weights must be one of {sorted(checkpoints[arch])} for {arch}, got {weights!r}"
    )
  return checkpoints[arch][weights]


def eval_preprocessing(arch: str, weights: str = "IMAGENET1K_V1") -> dict[str, Any]:
  """torchvision's evaluation transform of a checkpoint: {"resize": shorter side,
  "crop": centre square side, "interpolation": "bilinear" or "bicubic"} (resize 256,
  crop 224, bilinear unless the manifest says otherwise, e.g. efficientnet_b0: bicubic)."""
  return {**DEFAULT_PREPROCESSING, **_checkpoint(arch, weights).get("preprocessing", {})}


def _sha256(path: pathlib.Path) -> str:
  with open(path, "rb") as file:
    return hashlib.file_digest(file, "sha256").hexdigest()


def _write_atomically(path: pathlib.Path, text: str) -> None:
  fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
  try:
    with os.fdopen(fd, "w") as file:
      file.write(text)
    os.replace(temp, path)
  finally:
    pathlib.Path(temp).unlink(missing_ok=True)


def _sidecar(target: pathlib.Path) -> pathlib.Path:
  return target.with_name(target.name + ".sha256")


def _expected_sha256(target: pathlib.Path, manifest_sha256: str) -> str:
  """The full hash on record: the manifest's, else the sidecar's, else the prefix."""
  sidecar = _sidecar(target)
  if len(manifest_sha256) == 64 or not sidecar.exists():
    return manifest_sha256
  recorded = sidecar.read_text().strip()
  if len(recorded) != 64 or not recorded.startswith(manifest_sha256):
    raise ValueError(
      f"{sidecar} records SHA-256 {recorded!r}, expected 64 hex digits starting "
      f"with {manifest_sha256}; delete it and {target} to download both again"
    )
  return recorded


def _verify(target: pathlib.Path, actual: str, expected: str) -> None:
  """Checks `actual` against a full hash or a prefix; records a prefix's full hash."""
  if not actual.startswith(expected):
    raise ValueError(
      f"{target.name}: SHA-256 {actual} does not match the expected "
      f"{'prefix ' if len(expected) < 64 else ''}{expected}"
    )
  if len(expected) < 64:
    _write_atomically(_sidecar(target), actual + "\n")


def _download(url: str, official_url: str, target: pathlib.Path, expected: str) -> None:
  """Downloads `url` to `target` through a verified temporary file."""
  logging.getLogger(__name__).info("downloading %s to %s", url, target)
  fd, temp = tempfile.mkstemp(
    dir=target.parent, prefix=f".{target.name}.", suffix=".part"
  )
  try:
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as file:
      try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
          while chunk := response.read(_CHUNK_BYTES):
            digest.update(chunk)
            file.write(chunk)
      except (
        urllib.error.URLError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
      ) as err:
        mirrored = f" (the official URL: {official_url})" if url != official_url else ""
        raise OSError(
          f"could not download {url} ({err}); fetch that URL{mirrored} by hand "
          f"and save the file as {target}"
        ) from err
    try:
      _verify(target, digest.hexdigest(), expected)
    except ValueError as err:
      raise ValueError(f"{err}; downloaded from {url}, not kept") from None
    os.chmod(temp, 0o644)
    os.replace(temp, target)
  finally:
    pathlib.Path(temp).unlink(missing_ok=True)


def pretrained(
  arch: str,
  *,
  cache_dir: str | os.PathLike[str] | None = None,
  weights: str = "IMAGENET1K_V1",
  url_base: str | None = None,
) -> pathlib.Path:
  """The local path of an official torchvision checkpoint, downloaded if not cached.

  Args:
    arch: an architecture of the manifest ("resnet18", "vgg11", ...).
    cache_dir: the cache folder (see the module docstring for the default).
    weights: the torchvision weights name ("IMAGENET1K_V1", ...).
    url_base: a mirror folder URL replacing the official one (default
      `$SALIJAX_TORCHVISION_URL_BASE`, else the manifest's URL).

  Returns:
    The verified checkpoint, `<cache_dir>/<file name of the URL>`.

  Raises:
    ValueError: an unknown `arch`/`weights`, or a file whose SHA-256 does not
      match (a wrong download is not kept; a wrong cached file is reported).
    OSError: the download failed; the message gives the URL and the path to
      save the file at by hand.
  """
  checkpoint = _checkpoint(arch, weights)
  official_base, file_name = checkpoint["url"].rsplit("/", 1)
  url_base = url_base or os.environ.get(URL_BASE_ENV) or official_base
  url = f"{url_base.rstrip('/')}/{file_name}"
  cache = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
  target = cache / file_name
  expected = _expected_sha256(target, checkpoint["sha256"])
  if target.exists():
    try:
      _verify(target, _sha256(target), expected)
    except ValueError as err:
      raise ValueError(f"cached {err}; delete {target} to download it again") from None
    return target
  cache.mkdir(parents=True, exist_ok=True)
  _download(url, checkpoint["url"], target, expected)
  return target


def load_weights(
  arch: str,
  spec: str | os.PathLike[str],
  *,
  num_classes: int,
  head: str = "linear",
  key: Any = None,
  cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any] | None:
  """Flax variables from the config value `pretrained`.

  Args:
    arch: the salijax architecture ("resnet18", ...).
    spec: "none" (returns None: the caller initialises randomly), "torchvision"
      (the official ImageNet checkpoint, see `pretrained`) or the path of a
      torchvision-layout `.pth` file.
    num_classes: classes of the returned head.
    head: head kind, as `torchvision_to_flax`.
    key: PRNG key for a head that does not come from the checkpoint.
    cache_dir: the cache folder for "torchvision".

  Returns:
    The variables (`torchvision_to_flax`'s result), or None for "none".
  """
  if not isinstance(spec, str | os.PathLike):
    raise TypeError(
      f"pretrained must be one of {_SPECS} or a path to a .pth file, got {spec!r}"
    )
  if spec == "none":
    return None
  if spec == "torchvision":
    path = pretrained(arch, cache_dir=cache_dir)
  else:
    path = pathlib.Path(spec)
    if not path.is_file():
      raise ValueError(
        f"pretrained must be one of {_SPECS} or a path to a .pth file, got "
        f"{str(spec)!r}, which is not a file"
      )
  return torchvision_to_flax(
    arch, read_pth(path), num_classes=num_classes, head=head, key=key
  )
