"""Tests of the torch-free checkpoint reader.

The committed fixtures (tests/porting/testdata, written by make_fixtures.py
with torch) let the main tests run without torch; the tests that take the
`torch` fixture compare with torch itself on random state dicts.
"""

import collections
import io
import itertools
import os
import pathlib
import pickle
import pickletools
import subprocess
import sys
import zipfile

import ml_dtypes
import numpy as np
import pytest

from salijax.porting.pth_reader import CheckpointError, RefusedGlobalError, read_pth

TESTDATA = pathlib.Path(__file__).parent / "testdata"
FIXTURES = {
  "zip": TESTDATA / "tiny_state_dict.pth",
  "legacy": TESTDATA / "tiny_state_dict_legacy.pth",
}
# What torch's dtype names mean in numpy, written independently of the reader.
NUMPY_DTYPES = {
  "torch.float64": np.float64,
  "torch.float32": np.float32,
  "torch.float16": np.float16,
  "torch.bfloat16": ml_dtypes.bfloat16,
  "torch.int64": np.int64,
  "torch.int32": np.int32,
  "torch.int16": np.int16,
  "torch.int8": np.int8,
  "torch.uint8": np.uint8,
  "torch.uint16": np.uint16,
  "torch.uint32": np.uint32,
  "torch.uint64": np.uint64,
  "torch.bool": np.bool_,
}
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
SYS_INFO = {
  "protocol_version": 1001,
  "little_endian": True,
  "type_sizes": {"short": 2, "int": 4, "long": 4},
}


def bits(array: np.ndarray) -> np.ndarray:
  """The array as unsigned integers of its item size: compares NaNs and -0 exactly."""
  return array.view(f"u{array.dtype.itemsize}") if array.dtype != np.bool_ else array


def assert_same_arrays(actual: dict, expected: dict) -> None:
  assert list(actual) == list(expected)
  for name, want in expected.items():
    got = actual[name]
    assert got.dtype == want.dtype, name
    assert got.shape == want.shape, name
    np.testing.assert_array_equal(bits(got), bits(want), err_msg=name)


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_reads_committed_fixture_as_torch_converted_it(kind):
  expected_npz = np.load(TESTDATA / "tiny_state_dict_expected.npz")
  expected = {}
  for name, torch_dtype in expected_npz["_dtypes"]:
    dtype = np.dtype(NUMPY_DTYPES[torch_dtype])
    stored = expected_npz[name]  # bfloat16 is stored as its uint16 bit pattern.
    expected[name] = stored.view(dtype) if dtype == ml_dtypes.bfloat16 else stored
    assert expected[name].dtype == dtype
  assert_same_arrays(read_pth(FIXTURES[kind]), expected)


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_arrays_are_writable_contiguous_and_share_no_memory(kind):
  arrays = read_pth(str(FIXTURES[kind]))
  assert {"transposed", "window"} <= set(arrays)  # Views of one torch storage.
  for array in arrays.values():
    assert array.flags.writeable and array.flags.c_contiguous
  for a, b in itertools.combinations(arrays.values(), 2):
    assert not np.shares_memory(a, b)


# --- Refusing code in pickles ----------------------------------------------


class Payload:
  """Pickles as a call of `func(*args)`: what a malicious checkpoint does."""

  def __init__(self, func, *args):
    self.func, self.args = func, args

  def __reduce__(self):
    return self.func, self.args


def payloads(marker: pathlib.Path) -> dict[str, Payload]:
  """Each creates `marker` when unpickled by an unrestricted unpickler."""
  return {
    "os.system": Payload(os.system, f"touch {marker}"),
    "builtins.eval": Payload(eval, f"open({str(marker)!r}, 'w').close()"),
    "subprocess.call": Payload(subprocess.call, ["touch", str(marker)]),
  }


def write_zip(path: pathlib.Path, data_pkl: bytes, records: dict | None = None) -> None:
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", data_pkl)
    archive.writestr("archive/byteorder", "little")
    for name, data in (records or {}).items():
      archive.writestr(f"archive/{name}", data)


def legacy_bytes(sys_info=SYS_INFO, obj=None, keys=()) -> bytes:
  """A legacy checkpoint whose pickles are `sys_info`, `obj`, `keys` (no storages)."""
  return b"".join(
    pickle.dumps(x, protocol=2)
    for x in (LEGACY_MAGIC_NUMBER, 1001, sys_info, obj, keys)
  )


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.call"])
@pytest.mark.parametrize(
  "where", ["zip", "zip protocol 4", "legacy sys_info", "legacy data", "legacy keys"]
)
def test_refuses_code_before_it_runs(tmp_path, name, where):
  marker = tmp_path / "marker"
  payload = payloads(marker)[name]
  # The payload is live: an unrestricted unpickler runs it.
  pickle.loads(pickle.dumps(payload, protocol=2))
  assert marker.exists()
  marker.unlink()

  nested = {"fc.weight": [1.0], "fc.bias": {"deep": (payload,)}}
  path = tmp_path / "evil.pth"
  protocol = 4 if where == "zip protocol 4" else 2
  if where.startswith("zip"):
    write_zip(path, pickle.dumps(nested, protocol=protocol))
  elif where == "legacy sys_info":
    path.write_bytes(legacy_bytes(sys_info=payload))
  elif where == "legacy data":
    path.write_bytes(legacy_bytes(obj=nested))
  else:
    path.write_bytes(legacy_bytes(obj={}, keys=[payload]))

  with pytest.raises(RefusedGlobalError, match="refused global") as info:
    read_pth(path)
  assert not marker.exists()
  assert isinstance(info.value, ValueError)
  assert isinstance(info.value, pickle.UnpicklingError)
  assert str(path) in str(info.value)
  # The global as the pickle names it: posix.system, builtins.eval, ... or, as
  # protocol 2 renames Python 3 modules for Python 2, __builtin__.eval.
  named = f"{payload.func.__module__}.{payload.func.__name__}"
  if protocol == 2:
    (named,) = [
      arg.replace(" ", ".")
      for op, arg, _ in pickletools.genops(pickle.dumps(payload, protocol=2))
      if op.name == "GLOBAL"
    ]
  assert f"refused global {named}:" in str(info.value)


def test_reads_without_torch():
  # `sys.modules["torch"] = None` makes any `import torch` fail.
  code = (
    "import sys; sys.modules['torch'] = None\n"
    "from salijax.porting.pth_reader import read_pth\n"
    f"assert read_pth({str(FIXTURES['zip'])!r})['bn.num_batches_tracked'] == 7\n"
  )
  subprocess.run([sys.executable, "-c", code], check=True)


# --- Files that are not readable checkpoints ---------------------------------


def test_missing_file_names_the_path(tmp_path):
  path = tmp_path / "absent.pth"
  with pytest.raises(FileNotFoundError, match="absent.pth"):
    read_pth(path)


def non_checkpoints() -> dict[str, bytes]:
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w") as archive:
    archive.writestr("notes/readme.txt", "hello")
  return {
    "empty": b"",
    "text": b"conv1.weight = 1\n",
    "png": b"\x89PNG\r\n\x1a\n" + bytes(100),
    "pickle of a dict": pickle.dumps({"a": 1}, protocol=4),
    "zip without data.pkl": buffer.getvalue(),
    "legacy, wrong protocol": pickle.dumps(LEGACY_MAGIC_NUMBER, 2) + pickle.dumps(7, 2),
  }


@pytest.mark.parametrize(
  "kind",
  [
    "empty",
    "text",
    "png",
    "pickle of a dict",
    "zip without data.pkl",
    "legacy, wrong protocol",
  ],
)
def test_not_a_checkpoint_is_a_value_error_naming_the_path(tmp_path, kind):
  path = tmp_path / "file.pth"
  path.write_bytes(non_checkpoints()[kind])
  with pytest.raises(CheckpointError, match="file.pth") as info:
    read_pth(path)
  assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_every_truncation_is_a_value_error_naming_the_path(tmp_path, kind):
  data = FIXTURES[kind].read_bytes()
  for length in range(0, len(data), 3):
    path = tmp_path / f"cut{length}.pth"  # New files: truncating one is slow.
    path.write_bytes(data[:length])
    with pytest.raises(CheckpointError, match=f"cut{length}.pth"):
      read_pth(path)


def test_corrupt_zip_storage_is_detected(tmp_path):
  data = bytearray(FIXTURES["zip"].read_bytes())
  with zipfile.ZipFile(FIXTURES["zip"]) as archive:
    (name,) = [n for n in archive.namelist() if n.endswith("/data/0")]
    info = archive.getinfo(name)  # conv.weight's values.
  with open(FIXTURES["zip"], "rb") as file:  # The data follow the local header.
    file.seek(info.header_offset + 26)
    name_length, extra_length = np.frombuffer(file.read(4), "<u2")
  data[info.header_offset + 30 + name_length + extra_length + 5] ^= 0xFF
  path = tmp_path / "flipped.pth"
  path.write_bytes(bytes(data))
  with pytest.raises(CheckpointError, match="flipped.pth.*CRC"):
    read_pth(path)


class SkippingUnpickler(pickle.Unpickler):
  """Reads past a pickle, resolving every global and storage to a no-op."""

  def find_class(self, module, name):
    return lambda *args: None

  def persistent_load(self, pid):
    return None


def test_legacy_element_count_mismatch_is_detected(tmp_path):
  data = bytearray(FIXTURES["legacy"].read_bytes())
  file = io.BytesIO(data)
  for _ in range(5):  # Magic, protocol, sys_info, data, keys.
    SkippingUnpickler(file).load()
  count_at = file.tell()  # The first storage's int64 element count.
  data[count_at] ^= 0x01
  path = tmp_path / "count.pth"
  path.write_bytes(bytes(data))
  with pytest.raises(CheckpointError, match="count.pth.*elements"):
    read_pth(path)


def test_storage_too_small_for_the_tensor_is_detected(tmp_path):
  # Tensors whose size and stride reach past their storage must not read memory.
  data = FIXTURES["zip"].read_bytes()
  with zipfile.ZipFile(io.BytesIO(data)) as archive:
    (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    data_pkl = archive.read(name)
    records = {
      n.split("/", 1)[1]: archive.read(n)
      for n in archive.namelist()
      if n.split("/", 1)[1] not in ("data.pkl", "byteorder")
    }
  # int32 is arange(-2, 3): its size 5 pickles as BININT1 5 after its
  # storage's persistent id (BINPERSID) and storage offset (BININT1 0).
  persid_at = data_pkl.index(b"Q", data_pkl.index(b"int32"))
  size_at = data_pkl.index(b"K\x05", persid_at)
  bad = data_pkl[:size_at] + b"K\x09" + data_pkl[size_at + 2 :]
  path = tmp_path / "overrun.pth"
  write_zip(path, bad, records)
  with pytest.raises(CheckpointError, match="overrun.pth.*needs 9 elements"):
    read_pth(path)


# --- Comparisons with torch ----------------------------------------------------


def random_state_dict(torch, seed: int) -> dict:
  """Tensors of every supported dtype, with views, strides and odd shapes."""
  g = torch.Generator().manual_seed(seed)
  rng = np.random.default_rng(seed)

  def shape():
    return tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(0, 5)))

  floats = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
  ints = [
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.uint16,
    torch.uint32,
    torch.uint64,
  ]
  state = {}
  for dtype in floats:
    state[f"{dtype}"] = torch.randn(shape(), generator=g).to(dtype)
  for dtype in ints:
    state[f"{dtype}"] = torch.randint(0, 100, shape(), generator=g).to(dtype)
  state["bool"] = torch.rand(shape(), generator=g) > 0.5
  base = torch.randn(4, 6, 5, generator=g)
  state["base"] = base
  state["permuted"] = base.permute(2, 0, 1)
  state["strided"] = base[1:, ::2, 1::3]
  state["expanded"] = torch.randn(1, 3, generator=g).expand(4, 3)  # Stride 0.
  state["channels_last"] = torch.randn(2, 3, 4, 4, generator=g).to(
    memory_format=torch.channels_last
  )
  state["empty"] = torch.zeros(3, 0, 2)
  state["scalar"] = torch.tensor(int(rng.integers(0, 10**12)))
  state["special"] = torch.tensor([float("nan"), float("inf"), -0.0, 1e-40])
  state["parameter"] = torch.nn.Parameter(torch.randn(3, generator=g))
  keys = list(state)
  rng.shuffle(keys)
  return {k: state[k] for k in keys}


def torch_to_numpy(torch, tensor) -> np.ndarray:
  tensor = tensor.detach()
  if tensor.dtype == torch.bfloat16:
    return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
  return tensor.numpy()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_state_dicts_read_back_equal(torch, tmp_path, legacy, seed):
  state = random_state_dict(torch, seed)
  path = tmp_path / "random.pth"
  torch.save(state, path, _use_new_zipfile_serialization=not legacy)
  expected = {k: torch_to_numpy(torch, t) for k, t in state.items()}
  assert_same_arrays(read_pth(path), expected)


@pytest.mark.parametrize("legacy", [False, True])
def test_state_dict_under_state_dict_or_model_key(torch, tmp_path, legacy):
  state = {"w": torch.arange(3.0), "b": torch.tensor(2)}
  expected = {k: t.numpy() for k, t in state.items()}
  for layout in (
    {"state_dict": state, "epoch": 3},
    {"model": state, "optimizer": {"state": {0: {"step": torch.tensor(1.0)}}}},
    {"state_dict": {"note": "not tensors"}, "model": state},
  ):
    path = tmp_path / "nested.pth"
    torch.save(layout, path, _use_new_zipfile_serialization=not legacy)
    assert_same_arrays(read_pth(path), expected)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize(
  "obj, message",
  [
    ("list", "top level is a list"),
    ("tensor", "top level is a tensor"),
    ("mixed", "'epoch': 'int'"),
    ("empty", "it is empty"),
    ("int keys", "keys must be strings"),
  ],
)
def test_top_level_that_is_not_a_mapping_of_tensors(
  torch, tmp_path, legacy, obj, message
):
  t = torch.ones(2)
  obj = {
    "list": [t, t],
    "tensor": t,
    "mixed": {"w": t, "epoch": 3},
    "empty": {},
    "int keys": {0: t},
  }[obj]
  path = tmp_path / "odd.pth"
  torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
  with pytest.raises(CheckpointError, match="odd.pth") as info:
    read_pth(path)
  assert message in str(info.value)


def test_only_the_returned_tensors_storages_are_read(torch, tmp_path):
  state = {"w": torch.arange(4.0)}
  path = tmp_path / "lazy.pth"
  torch.save({"model": state, "optimizer": torch.zeros(1000)}, path)
  with zipfile.ZipFile(path) as archive:
    records = {n: archive.read(n) for n in archive.namelist()}
  records["lazy/data/1"] = b"\xff" * 8  # The optimizer's storage: truncated.
  with zipfile.ZipFile(path, "w") as archive:
    for name, data in records.items():
      archive.writestr(name, data)
  np.testing.assert_array_equal(read_pth(path)["w"], np.arange(4.0, dtype=np.float32))


def test_refuses_torch_globals_outside_the_allowlist(torch, tmp_path):
  path = tmp_path / "complex.pth"
  torch.save({"z": torch.ones(2, dtype=torch.complex64)}, path)
  with pytest.raises(RefusedGlobalError, match="torch.ComplexFloatStorage"):
    read_pth(path)


def test_big_endian_zip(torch, tmp_path):
  state = {
    "f64": torch.randn(3, dtype=torch.float64),
    "f32": torch.randn(2, 3).t(),
    "bf16": torch.randn(5).bfloat16(),
    "i16": torch.tensor([-2, 300], dtype=torch.int16),
    "u64": torch.tensor([1, 2**63], dtype=torch.uint64),
    "bool": torch.tensor([True, False]),
  }
  little = tmp_path / "little.pth"
  torch.save(state, little)
  big = tmp_path / "big.pth"
  with zipfile.ZipFile(little) as src, zipfile.ZipFile(big, "w") as dst:
    for name in src.namelist():
      data = src.read(name)
      if name == "little/byteorder":
        data = b"big"
      elif name.startswith("little/data/"):  # Storage i belongs to the i-th tensor.
        itemsize = list(state.values())[int(name.rsplit("/", 1)[1])].element_size()
        data = np.frombuffer(data, f"<u{itemsize}").astype(f">u{itemsize}").tobytes()
      dst.writestr(name, data)
  expected = {k: torch_to_numpy(torch, t) for k, t in state.items()}
  # torch itself reads the rewritten file as the original, except "u64": torch
  # swaps bytes per storage type, and uint64 tensors sit in byte storages.
  by_torch = torch.load(big, weights_only=True)
  assert_same_arrays(
    {k: torch_to_numpy(torch, t) for k, t in by_torch.items() if k != "u64"},
    {k: v for k, v in expected.items() if k != "u64"},
  )
  assert_same_arrays(read_pth(big), expected)


class StorageRef:
  """Pickled as a legacy storage persistent id."""

  def __init__(self, storage_type, key, numel, view=None, location="cuda:0"):
    self.pid = ("storage", storage_type, key, location, numel, view)


class LegacyPickler(pickle.Pickler):
  def persistent_id(self, obj):
    return obj.pid if isinstance(obj, StorageRef) else None


def write_legacy(
  path, obj, storages: dict[str, np.ndarray], little_endian=True
) -> None:
  """A legacy checkpoint as torch < 1.6 wrote it, with hand-made pickles."""
  order = "little" if little_endian else "big"
  with open(path, "wb") as file:
    for header in (
      LEGACY_MAGIC_NUMBER,
      1001,
      {**SYS_INFO, "little_endian": little_endian},
    ):
      pickle.dump(header, file, protocol=2)
    LegacyPickler(file, protocol=2).dump(obj)
    pickle.dump(sorted(storages), file, protocol=2)
    for key in sorted(storages):
      values = storages[key]
      file.write(values.size.to_bytes(8, order))
      itemsize = values.dtype.itemsize
      stored = np.dtype(f"{'<' if little_endian else '>'}u{itemsize}")
      file.write(values.view(f"u{itemsize}").astype(stored).tobytes())


def test_old_legacy_features_read_as_torch_reads_them(torch, tmp_path):
  # torch < 0.4: `_rebuild_tensor`, GPU storage types, views of storages.
  storage = torch.cuda.FloatStorage
  rebuild = torch._utils._rebuild_tensor
  values = np.arange(12, dtype=np.float32)
  obj = {
    "window": Payload(rebuild, StorageRef(storage, "1", 12), 2, (2, 3), (3, 1)),
    "view": Payload(
      rebuild, StorageRef(storage, "1", 12, ("9", 4, 6)), 1, (2, 2), (1, 2)
    ),
    "count": Payload(rebuild, StorageRef(torch.cuda.LongStorage, "0", 1), 0, (), ()),
  }
  path = tmp_path / "old.pth"
  write_legacy(path, obj, {"1": values, "0": np.array([5], np.int64)})
  expected = {
    "window": values[2:8].reshape(2, 3),
    "view": np.array([[5.0, 7.0], [6.0, 8.0]], np.float32),
    "count": np.array(5, np.int64),
  }
  by_torch = torch.load(path, map_location="cpu", weights_only=False)
  assert_same_arrays({k: t.numpy() for k, t in by_torch.items()}, expected)
  assert_same_arrays(read_pth(path), expected)


def test_big_endian_legacy(torch, tmp_path):
  rebuild = torch._utils._rebuild_tensor_v2
  hooks = collections.OrderedDict()
  storages = {
    "a": np.array([1.5, -2.0, 3e300], np.float64),
    "b": np.array([1.0, -3.5], ml_dtypes.bfloat16),
    "c": np.array([70000, -1], np.int32),
  }
  types = {"a": torch.DoubleStorage, "b": torch.BFloat16Storage, "c": torch.IntStorage}
  obj = {
    k: Payload(
      rebuild,
      StorageRef(types[k], k, v.size, location="cpu"),
      0,
      v.shape,
      (1,),
      False,
      hooks,
    )
    for k, v in storages.items()
  }
  path = tmp_path / "big.pth"
  write_legacy(path, obj, storages, little_endian=False)
  assert_same_arrays(read_pth(path), storages)
