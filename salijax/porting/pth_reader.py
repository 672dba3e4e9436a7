"""Reads PyTorch checkpoints (`torch.save` files) into numpy arrays, without torch.

Usage::

  state_dict = read_pth("resnet18-f37072fd.pth")  # {"conv1.weight": f32[64,3,7,7], ...}

Both formats that `torch.save` writes are read:

* zip (the default since torch 1.6): `<prefix>/data.pkl` is the pickled object,
  `<prefix>/data/<key>` holds the raw bytes of storage `<key>`, and
  `<prefix>/byteorder` holds `little` or `big` (absent in old files: little).
* legacy (`_use_new_zipfile_serialization=False` and files written before torch
  1.6, such as torchvision's 2017 checkpoints): back to back, the pickles of the
  magic number, the protocol version (1001), the system info (`little_endian`),
  the object and the list of storage keys; then, for each key in that list, the
  storage's element count as an int64 and its raw bytes.

Safety: every pickle is read by an unpickler that resolves only the globals in
`_ALLOWED_GLOBALS` (the tensor rebuild functions, the storage types, the new
dtypes, `collections.OrderedDict`), each mapped to a torch-free stand-in in
this module. Any other global (`os.system`, `builtins.eval`, a class of the
saving program, ...) raises `RefusedGlobalError` when the pickle names it,
before anything it names can run.

What is returned: the checkpoint's state dict. The top level must be a mapping
of names to tensors; when it is not, the mapping of tensors under its
"state_dict" key, then under its "model" key (the usual training-checkpoint
layouts), is used. Tensors become C-contiguous numpy arrays with the tensor's
dtype (bfloat16 as `ml_dtypes.bfloat16`) and shape; no two share memory.
Storages are read lazily: only those of the returned tensors are read.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import pickle
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import ml_dtypes
import numpy as np

_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001
_NESTED_STATE_DICT_KEYS = ("state_dict", "model")


class CheckpointError(ValueError):
  """A file that is not a readable PyTorch checkpoint; the message names it."""


class RefusedGlobalError(CheckpointError, pickle.UnpicklingError):
  """A checkpoint's pickle names a global outside the allowlist."""


class _Invalid(Exception):
  """Internal: a malformed checkpoint; `read_pth` adds the path to the message."""


@dataclasses.dataclass(frozen=True)
class _TorchDtype:
  """Stand-in for a torch storage type or dtype: its numpy element dtype."""

  name: str
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _Storage:
  """Stand-in for a torch storage: `nbytes` bytes from `byte_offset` of root `key`."""

  key: str
  dtype: np.dtype
  byte_offset: int
  nbytes: int


@dataclasses.dataclass(frozen=True)
class _Tensor:
  """Stand-in for a torch tensor: a strided view (in elements) of a storage."""

  storage: _Storage
  dtype: np.dtype
  offset: int
  shape: tuple[int, ...]
  strides: tuple[int, ...]


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
  if not isinstance(value, tuple | list) or not all(
    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
  ):
    raise _Invalid(f"tensor {what} must be non-negative integers, got {value!r}")
  return tuple(value)


def _tensor(
  storage: Any, offset: Any, size: Any, stride: Any, dtype: np.dtype
) -> _Tensor:
  if not isinstance(storage, _Storage):
    raise _Invalid(f"tensor storage must be a storage, got {type(storage).__name__}")
  (offset,) = _int_tuple((offset,), "storage offset")
  shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
  if len(shape) != len(strides):
    raise _Invalid(f"tensor size {shape} and stride {strides} differ in length")
  return _Tensor(storage, dtype, offset, shape, strides)


def _rebuild_tensor(
  storage: Any, storage_offset: Any, size: Any, stride: Any
) -> _Tensor:
  """Stand-in for `torch._utils._rebuild_tensor` (torch < 0.4)."""
  dtype = storage.dtype if isinstance(storage, _Storage) else None
  return _tensor(storage, storage_offset, size, stride, dtype)


def _refuse_metadata(metadata: Any) -> None:
  """Tensor metadata (conj/neg bits) changes values; such tensors are refused."""
  if metadata:
    raise _Invalid(f"tensors with metadata {metadata!r} (conj/neg bits) are not supported")


def _rebuild_tensor_v2(
  storage: Any,
  storage_offset: Any,
  size: Any,
  stride: Any,
  requires_grad: Any,
  backward_hooks: Any,
  metadata: Any = None,
) -> _Tensor:
  """Stand-in for `torch._utils._rebuild_tensor_v2`: the dtype is the storage's."""
  del requires_grad, backward_hooks  # Irrelevant to the values.
  _refuse_metadata(metadata)
  return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(
  storage: Any,
  storage_offset: Any,
  size: Any,
  stride: Any,
  requires_grad: Any,
  backward_hooks: Any,
  dtype: Any,
  metadata: Any = None,
) -> _Tensor:
  """Stand-in for `torch._utils._rebuild_tensor_v3`: untyped storage, explicit dtype."""
  del requires_grad, backward_hooks  # Irrelevant to the values.
  _refuse_metadata(metadata)
  if not isinstance(dtype, _TorchDtype) or dtype.name.endswith("Storage"):
    raise _Invalid(f"_rebuild_tensor_v3 needs a torch dtype, got {dtype!r}")
  return _tensor(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> _Tensor:
  """Stand-in for `torch._utils._rebuild_parameter`: a parameter is its data."""
  del requires_grad, backward_hooks  # Irrelevant to the values.
  if not isinstance(data, _Tensor):
    raise _Invalid(f"parameter data must be a tensor, got {type(data).__name__}")
  return data


_STORAGE_DTYPES = {
  "DoubleStorage": np.dtype(np.float64),
  "FloatStorage": np.dtype(np.float32),
  "HalfStorage": np.dtype(np.float16),
  "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
  "LongStorage": np.dtype(np.int64),
  "IntStorage": np.dtype(np.int32),
  "ShortStorage": np.dtype(np.int16),
  "CharStorage": np.dtype(np.int8),
  "ByteStorage": np.dtype(np.uint8),
  "BoolStorage": np.dtype(np.bool_),
}
# Dtypes that torch >= 2.3 pickles by name with an untyped storage (v3).
_V3_DTYPES = {
  "uint16": np.dtype(np.uint16),
  "uint32": np.dtype(np.uint32),
  "uint64": np.dtype(np.uint64),
}

_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
  ("collections", "OrderedDict"): collections.OrderedDict,
  ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
  ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
  ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
  ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
  ("torch.storage", "UntypedStorage"): _TorchDtype(
    "torch.storage.UntypedStorage", np.dtype(np.uint8)
  ),
  **{
    (module, name): _TorchDtype(f"{module}.{name}", dtype)
    # Files saved from a GPU before torch 1.0 name the torch.cuda storage types.
    for module in ("torch", "torch.cuda")
    for name, dtype in _STORAGE_DTYPES.items()
  },
  **{
    ("torch", name): _TorchDtype(f"torch.{name}", dtype)
    for name, dtype in _V3_DTYPES.items()
  },
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only `_ALLOWED_GLOBALS`; hands persistent ids to `persistent_load`."""

  def __init__(
    self,
    file: IO[bytes],
    path: pathlib.Path,
    persistent_load: Callable[[Any], _Storage] | None = None,
  ):
    super().__init__(file, encoding="utf-8")
    self._path = path
    self._persistent_load = persistent_load

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise RefusedGlobalError(
        f"{self._path}: refused global {module}.{name}: a checkpoint may only name "
        "tensor rebuild functions, storage types and collections.OrderedDict"
      ) from None

  def persistent_load(self, pid: Any) -> _Storage:
    if self._persistent_load is None:
      raise _Invalid(f"unexpected persistent id {pid!r}")
    return self._persistent_load(pid)


def _storage_type(value: Any) -> np.dtype:
  if not isinstance(value, _TorchDtype) or not value.name.endswith("Storage"):
    raise _Invalid(f"expected a storage type, got {value!r}")
  return value.dtype


def _numel(value: Any) -> int:
  (numel,) = _int_tuple((value,), "storage element count")
  return numel


class _StorageSource:
  """Reads root storages' bytes once each; tracks which buffer an array owns."""

  def __init__(self, byteorder: str):
    self.byteorder = byteorder
    self._buffers: dict[str, np.ndarray] = {}
    self._claimed: set[str] = set()

  def _read_root(self, key: str) -> np.ndarray:
    raise NotImplementedError

  def read(self, storage: _Storage) -> np.ndarray:
    """The storage's bytes: u8[nbytes], a view of its root's buffer."""
    if storage.key not in self._buffers:
      self._buffers[storage.key] = self._read_root(storage.key)
    root = self._buffers[storage.key]
    if storage.byte_offset + storage.nbytes > root.size:
      raise _Invalid(
        f"storage view of {storage.nbytes} bytes at byte {storage.byte_offset} "
        f"exceeds storage {storage.key!r} of {root.size} bytes"
      )
    return root[storage.byte_offset : storage.byte_offset + storage.nbytes]

  def claim(self, key: str) -> bool:
    """True once per root key: the first array to cover a buffer may keep it."""
    if key in self._claimed:
      return False
    self._claimed.add(key)
    return True


class _ZipStorages(_StorageSource):
  """Storages of a zip checkpoint: record `<prefix>/data/<key>`."""

  def __init__(self, archive: zipfile.ZipFile, prefix: str, byteorder: str):
    super().__init__(byteorder)
    self._archive = archive
    self._prefix = prefix
    self._nbytes: dict[str, int] = {}

  def persistent_load(self, pid: Any) -> _Storage:
    if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
      raise _Invalid(f"unexpected persistent id {pid!r}")
    _, storage_type, key, _, numel = pid
    dtype = _storage_type(storage_type)
    nbytes = _numel(numel) * dtype.itemsize
    if not isinstance(key, str) or self._nbytes.setdefault(key, nbytes) != nbytes:
      raise _Invalid(f"storage {key!r} is referenced with different sizes or key types")
    return _Storage(key, dtype, 0, nbytes)

  def _read_root(self, key: str) -> np.ndarray:
    name = f"{self._prefix}/data/{key}"
    try:
      info = self._archive.getinfo(name)
    except KeyError:
      raise _Invalid(f"record {name!r} is missing") from None
    if info.file_size != self._nbytes[key]:
      raise _Invalid(
        f"record {name!r} holds {info.file_size} bytes, expected {self._nbytes[key]}"
      )
    buffer = np.empty(info.file_size, np.uint8)
    with self._archive.open(info) as record:  # Checks the CRC-32 at the end.
      if record.readinto(memoryview(buffer)) != info.file_size or record.read(1):
        raise _Invalid(f"record {name!r} is shorter than its header says")
    return buffer


class _LegacyStorages(_StorageSource):
  """Storages of a legacy checkpoint: located after the pickles by `locate`."""

  def __init__(self, file: IO[bytes], byteorder: str):
    super().__init__(byteorder)
    self._file = file
    self._roots: dict[str, tuple[np.dtype, int]] = {}  # key -> (dtype, numel)
    self._offsets: dict[str, int] = {}

  def persistent_load(self, pid: Any) -> _Storage:
    if not isinstance(pid, tuple) or len(pid) != 6 or pid[0] != "storage":
      raise _Invalid(f"unexpected persistent id {pid!r}")
    _, storage_type, key, _, numel, view = pid
    dtype, numel = _storage_type(storage_type), _numel(numel)
    if not isinstance(key, str) or self._roots.setdefault(key, (dtype, numel)) != (
      dtype,
      numel,
    ):
      raise _Invalid(f"storage {key!r} is referenced with different types or sizes")
    if view is None:
      return _Storage(key, dtype, 0, numel * dtype.itemsize)
    if not isinstance(view, tuple) or len(view) != 3:
      raise _Invalid(f"unexpected storage view {view!r}")
    _, view_offset, view_numel = view  # In elements of the root's dtype.
    return _Storage(
      key,
      dtype,
      _numel(view_offset) * dtype.itemsize,
      _numel(view_numel) * dtype.itemsize,
    )

  def locate(self, keys: Any, end: int) -> None:
    """Finds each storage's bytes, stored in `keys` order up to file offset `end`."""
    if not isinstance(keys, list) or sorted(keys) != sorted(self._roots):
      raise _Invalid(
        f"storage key list {keys!r} differs from the referenced storages "
        f"{sorted(self._roots)}"
      )
    position = self._file.tell()
    for key in keys:
      dtype, numel = self._roots[key]
      self._file.seek(position)
      count = self._file.read(8)
      if len(count) != 8:
        raise _Invalid(f"file ends before storage {key!r}")
      if int.from_bytes(count, self.byteorder) != numel:
        raise _Invalid(
          f"storage {key!r} holds {int.from_bytes(count, self.byteorder)} elements, "
          f"the pickle says {numel}"
        )
      self._offsets[key] = position + 8
      position += 8 + numel * dtype.itemsize
      if position > end:
        raise _Invalid(f"file ends inside storage {key!r}")

  def _read_root(self, key: str) -> np.ndarray:
    dtype, numel = self._roots[key]
    buffer = np.empty(numel * dtype.itemsize, np.uint8)
    self._file.seek(self._offsets[key])
    if self._file.readinto(memoryview(buffer)) != buffer.size:
      raise _Invalid(f"file ends inside storage {key!r}")
    return buffer


def _load_zip(file: IO[bytes], path: pathlib.Path) -> tuple[Any, _StorageSource]:
  try:
    archive = zipfile.ZipFile(file)
  except zipfile.BadZipFile as err:
    raise _Invalid(f"a truncated or corrupt zip archive ({err})") from None
  pickles = [
    n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")
  ]
  if len(pickles) != 1:
    raise _Invalid(
      f"a zip archive with {len(pickles)} '<prefix>/data.pkl' records, "
      "not a PyTorch checkpoint"
    )
  prefix = pickles[0].split("/")[0]
  byteorder = "little"
  if f"{prefix}/byteorder" in archive.namelist():
    byteorder = archive.read(f"{prefix}/byteorder").decode("ascii", "replace")
    if byteorder not in ("little", "big"):
      raise _Invalid(f"unknown byteorder {byteorder!r}")
  storages = _ZipStorages(archive, prefix, byteorder)
  with archive.open(pickles[0]) as data_pkl:
    obj = _RestrictedUnpickler(data_pkl, path, storages.persistent_load).load()
  return obj, storages


def _load_legacy(file: IO[bytes], path: pathlib.Path) -> tuple[Any, _StorageSource]:
  end = file.seek(0, os.SEEK_END)
  file.seek(0)
  if file.read(1) != b"\x80":
    raise _Invalid("neither a zip archive nor a pickle: not a PyTorch checkpoint")
  file.seek(0)
  if _RestrictedUnpickler(file, path).load() != _LEGACY_MAGIC_NUMBER:
    raise _Invalid("a pickle without torch's magic number: not a PyTorch checkpoint")
  version = _RestrictedUnpickler(file, path).load()
  if version != _LEGACY_PROTOCOL_VERSION:
    raise _Invalid(f"legacy protocol version {version!r}, expected 1001")
  sys_info = _RestrictedUnpickler(file, path).load()
  if not isinstance(sys_info, dict) or not isinstance(
    sys_info.get("little_endian"), bool
  ):
    raise _Invalid(f"system info {sys_info!r} lacks 'little_endian'")
  storages = _LegacyStorages(file, "little" if sys_info["little_endian"] else "big")
  obj = _RestrictedUnpickler(file, path, storages.persistent_load).load()
  storages.locate(_RestrictedUnpickler(file, path).load(), end)
  return obj, storages


def _is_tensor_mapping(obj: Any) -> bool:
  return (
    isinstance(obj, Mapping)
    and bool(obj)
    and all(isinstance(v, _Tensor) for v in obj.values())
  )


def _kind(obj: Any) -> str:
  return "tensor" if isinstance(obj, _Tensor) else type(obj).__name__


def _state_dict(obj: Any) -> Mapping[str, _Tensor]:
  """The mapping of tensors: `obj` itself, or under a `_NESTED_STATE_DICT_KEYS` key."""
  if not isinstance(obj, Mapping):
    raise _Invalid(
      f"the top level is a {_kind(obj)}, expected a mapping of names to tensors"
    )
  candidates = [obj] + [obj[k] for k in _NESTED_STATE_DICT_KEYS if k in obj]
  state = next((c for c in candidates if _is_tensor_mapping(c)), None)
  if state is None:
    not_tensors = {k: _kind(v) for k, v in obj.items() if not isinstance(v, _Tensor)}
    raise _Invalid(
      "expected a mapping of names to tensors (at the top level or under "
      f"{' or '.join(map(repr, _NESTED_STATE_DICT_KEYS))}); top-level entries that "
      f"are not tensors: {dict(list(not_tensors.items())[:5]) or 'none (it is empty)'}"
    )
  if not all(isinstance(k, str) for k in state):
    raise _Invalid(f"state dict keys must be strings, got {list(state)[:5]!r}")
  return state


def _to_array(tensor: _Tensor, storages: _StorageSource) -> np.ndarray:
  """The tensor's values: a C-contiguous array sharing no memory with another."""
  raw = storages.read(tensor.storage)
  dtype = tensor.dtype
  if raw.size % dtype.itemsize:
    raise _Invalid(f"storage of {raw.size} bytes does not hold whole {dtype} elements")
  numel = raw.size // dtype.itemsize
  if 0 in tensor.shape:
    return np.empty(tensor.shape, dtype)
  extent = (
    tensor.offset
    + 1
    + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.strides, strict=True))
  )
  if extent > numel:
    raise _Invalid(
      f"tensor of shape {tensor.shape}, strides {tensor.strides} at offset "
      f"{tensor.offset} needs {extent} elements, its storage holds {numel}"
    )
  order = "<" if storages.byteorder == "little" else ">"
  as_stored = np.dtype(f"{order}u{dtype.itemsize}")
  swap = dtype.itemsize > 1 and not as_stored.isnative
  stored = raw.view(as_stored if swap else dtype)
  view = np.lib.stride_tricks.as_strided(
    stored[tensor.offset :],
    shape=tensor.shape,
    strides=tuple(s * dtype.itemsize for s in tensor.strides),
    writeable=False,
  )
  if swap:
    return view.astype(f"=u{dtype.itemsize}").view(dtype)
  covers_storage = tensor.offset == 0 and view.size == numel and view.flags.c_contiguous
  if covers_storage and storages.claim(tensor.storage.key):
    return stored.reshape(tensor.shape)
  return view.copy()


def read_pth(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
  """Reads the state dict of a PyTorch checkpoint without importing torch.

  Args:
    path: a file written by `torch.save` (zip or legacy format) holding a
      mapping of names to tensors, at the top level or under "state_dict" or
      "model".

  Returns:
    {name: array} in the checkpoint's order; each array has the tensor's shape
    and dtype (e.g. conv weights f32[O,I,H,W], `num_batches_tracked` i64[]).

  Raises:
    FileNotFoundError: `path` does not exist.
    RefusedGlobalError: a pickle names a global outside the allowlist.
    CheckpointError: (a ValueError naming `path`) the file is truncated,
      corrupt, not a PyTorch checkpoint, or holds no mapping of tensors.
  """
  path = pathlib.Path(path)
  with open(path, "rb") as file:
    try:
      is_zip = file.read(4) == b"PK\x03\x04"  # As torch tells the formats apart.
      file.seek(0)
      obj, storages = _load_zip(file, path) if is_zip else _load_legacy(file, path)
      return {k: _to_array(t, storages) for k, t in _state_dict(obj).items()}
    except (RefusedGlobalError, MemoryError):
      raise
    except _Invalid as err:
      raise CheckpointError(f"{path}: {err}") from None
    except Exception as err:  # Any failure to decode untrusted bytes.
      raise CheckpointError(
        f"{path}: not a readable PyTorch checkpoint, truncated or corrupt "
        f"({type(err).__name__}: {err})"
      ) from err
