"""Tests of salijax.parallel.batch_sharding.

The 8-device equivalence runs tests/parallel/sharded_equivalence.py in a
subprocess (the device count is fixed when JAX starts); the other tests use
the devices of the pytest process (one CPU device).
"""

import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from salijax import methods, metrics
from salijax.classifier import Classifier
from salijax.parallel import (
    BATCH_AXIS,
    local_mesh,
    pad_batch,
    padded_size,
    replicate,
    run_sharded,
    shard_batch,
)

SCRIPT = pathlib.Path(__file__).with_name("sharded_equivalence.py")
METRICS = ("insertion_deletion", "confidence_change", "complexity", "pointing_game",
           "energy_pointing_game")
CONTROLS = ("fake_cam", "random")  # no model: nothing to convolve


def subprocess_env(**variables: str) -> dict[str, str]:
  """os.environ for a JAX subprocess on CPU, sharing the tests' persistent compile cache."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5", **variables)
  if jax.config.jax_compilation_cache_dir:
    env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
  return env


@pytest.mark.slow
def test_eight_devices_equal_one_device_and_the_plain_call():
  flags = " ".join([os.environ.get("XLA_FLAGS", ""),
                    "--xla_force_host_platform_device_count=8"]).strip()
  run = subprocess.run([sys.executable, str(SCRIPT)], env=subprocess_env(XLA_FLAGS=flags),
                       capture_output=True, text=True, timeout=300, check=False)
  output = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-5000:]}"
  assert run.returncode == 0, output
  lines = run.stdout.splitlines()
  assert lines[0] == "devices 8", output
  for name in methods.names() + METRICS:
    for batch in (8, 5):
      assert f"ok {name} {batch}" in lines, f"{name} batch {batch} not compared\n{output}"
  splits = {m[1]: (int(m[2]), int(m[3]))
            for m in (re.fullmatch(r"split (\S+) (\d+) (\d+)", line) for line in lines) if m}
  model_based = (set(methods.names()) - set(CONTROLS)) | {"insertion_deletion",
                                                           "confidence_change"}
  assert set(splits) == model_based | set(CONTROLS), output
  for name in model_based:
    whole, per_device = splits[name]
    assert whole > 0 and per_device * 8 == whole, f"{name}: {whole} images, {per_device} per device"


def test_local_mesh_spans_the_local_devices_along_the_batch_axis():
  mesh = local_mesh()
  assert mesh.axis_names == (BATCH_AXIS,)
  assert list(mesh.devices.flat) == jax.local_devices()
  assert local_mesh(jax.local_devices()[:1]).devices.size == 1
  with pytest.raises(ValueError, match="at least one device"):
    local_mesh([])
  with pytest.raises(ValueError, match="distinct"):
    local_mesh(jax.local_devices()[:1] * 2)


def test_padded_size_is_the_batch_on_one_device_and_checks_its_arguments():
  mesh = local_mesh(jax.local_devices()[:1])
  assert [padded_size(b, mesh) for b in (1, 5, 8)] == [1, 5, 8]
  for batch in (0, -1, 2.0, True):
    with pytest.raises(ValueError, match="batch must be a positive integer"):
      padded_size(batch, mesh)
  with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
    padded_size(5, jax.local_devices())
  other_axis = jax.sharding.Mesh(np.array(jax.local_devices()[:1]), ("data",))
  with pytest.raises(ValueError, match="single axis 'batch'"):
    padded_size(5, other_axis)


def test_pad_batch_repeats_the_last_element_of_every_leaf():
  images = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
  labels = jnp.array([4, 5, 6], jnp.int32)
  padded = pad_batch({"images": images, "labels": (labels,)}, 5)
  assert isinstance(padded["images"], np.ndarray)  # numpy stays on the host
  np.testing.assert_array_equal(padded["images"], images[[0, 1, 2, 2, 2]])
  np.testing.assert_array_equal(padded["labels"][0], [4, 5, 6, 6, 6])
  assert padded["labels"][0].dtype == jnp.int32
  assert pad_batch(labels, 3) is labels


@pytest.mark.parametrize("tree,size,error,pattern", [
    (np.zeros((3, 2)), 2, ValueError, r"batch of 1 to size=2.*\(3, 2\)"),
    (np.zeros((0, 2)), 2, ValueError, r"batch of 1 to size=2.*\(0, 2\)"),
    (np.float32(1.0), 2, ValueError, r"scalar"),
    ([1.0, 2.0], 2, TypeError, r"must hold arrays.*float"),
    (np.zeros((3, 2)), 0, ValueError, r"size must be a positive integer, got 0"),
])
def test_pad_batch_rejects_bad_leaves_and_sizes(tree, size, error, pattern):
  with pytest.raises(error, match=pattern):
    pad_batch(tree, size)


def test_shard_batch_and_replicate_place_arrays_on_the_mesh():
  mesh = local_mesh()
  count = mesh.devices.size
  maps = np.random.default_rng(0).uniform(size=(2 * count, 4, 4)).astype(np.float32)
  sharded = shard_batch({"maps": maps}, mesh)["maps"]
  assert sharded.sharding == NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
  assert {shard.data.shape for shard in sharded.addressable_shards} == {(2, 4, 4)}
  np.testing.assert_array_equal(sharded, maps)
  key = replicate(jax.random.key(7), mesh)
  assert key.sharding == NamedSharding(mesh, PartitionSpec())
  assert jax.random.key_data(key).tolist() == jax.random.key_data(jax.random.key(7)).tolist()
  with pytest.raises(ValueError, match="scalar"):
    shard_batch(np.float32(1.0), mesh)


def linear_classifier() -> Classifier:
  """Logits = mean colour @ w, 2 classes."""
  weights = jnp.array([[1.0, -1.0], [0.5, 0.0], [-2.0, 1.0]])
  return Classifier(variables={"w": weights},
                    apply=lambda v, images: images.mean(axis=(1, 2)) @ v["w"])


def test_run_sharded_equals_the_plain_call():
  clf = linear_classifier()
  rng = np.random.default_rng(1)
  images = rng.uniform(size=(3, 8, 8, 3)).astype(np.float32)
  labels = np.array([0, 1, 1], np.int32)
  key = jax.random.key(2)
  # The random control draws map i from fold_in(key, i): padding and sharding keep positions.
  np.testing.assert_array_equal(run_sharded(methods.random_map, clf, images, labels, key=key),
                                methods.random_map(clf, images, labels, key=key))
  maps = rng.uniform(size=(3, 8, 8)).astype(np.float32)
  got = run_sharded(metrics.confidence_change, clf, images, maps, labels)
  expected = metrics.confidence_change(clf, images, maps, labels)
  assert type(got) is type(expected)
  for got_leaf, expected_leaf in zip(got, expected, strict=True):
    np.testing.assert_allclose(got_leaf, expected_leaf, rtol=1e-6)
  np.testing.assert_array_equal(run_sharded(metrics.complexity, None, maps).entropy,
                                metrics.complexity(maps).entropy)
  # The function's own checks still run on the values.
  with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 2\)"):
    run_sharded(methods.fake_cam, clf, images, np.array([0, 1, 2], np.int32))


def test_run_sharded_rejects_bad_batches_and_results():
  clf = linear_classifier()
  images = np.zeros((3, 8, 8, 3), np.float32)
  with pytest.raises(ValueError, match="batch_args must hold at least one array"):
    run_sharded(methods.fake_cam, clf)
  with pytest.raises(ValueError, match=r"one batch size.*\[2, 3\]"):
    run_sharded(methods.fake_cam, clf, images, np.zeros(2, np.int32))
  with pytest.raises(TypeError, match=r"batch_args\[1\] must hold arrays"):
    run_sharded(methods.fake_cam, clf, images, [0, 0, 0])
  with pytest.raises(ValueError, match="padded batch 3 on axis 0, got shape \\(\\)"):
    run_sharded(lambda c, x: x.sum(), clf, images)
