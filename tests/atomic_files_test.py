"""Tests of salijax.atomic_files."""

import json
import os
import stat

import pytest

from salijax import atomic_files


def test_json_replaces_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "sub" / "results.json"
  atomic_files.write_json_atomic(path, {"a": 1})
  atomic_files.write_json_atomic(path, {"a": 2})
  assert json.loads(path.read_text()) == {"a": 2}
  assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_files_get_the_umask_permissions_not_private_ones(tmp_path):
  old = os.umask(0o022)
  try:
    atomic_files.write_text_atomic(tmp_path / "summary.md", "x")
  finally:
    os.umask(old)
  assert stat.S_IMODE((tmp_path / "summary.md").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
  path = tmp_path / "a.bin"
  atomic_files.write_bytes_atomic(path, b"old")
  with pytest.raises(TypeError):
    atomic_files.write_bytes_atomic(path, "not bytes")  # type: ignore[arg-type]
  assert path.read_bytes() == b"old"
  assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
