"""Every method and metric through run_sharded on 8 devices equals 1 device and the plain call.

Run by batch_sharding_test.py in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (the device count is fixed
when JAX starts). Case by case, run_sharded over the 8-device mesh must equal
run_sharded over a 1-device mesh for a batch of 8, and the plain call for a
batch of 5 (padded to 8 on the 8 devices). For the batch of 8 it also
compiles each model-based case for the 8 devices and checks that every
device convolves 1/8 of the images: the largest convolution batch of the
compiled program times 8 is the largest of the program before partitioning
(both 0 for the controls, which have no model). Prints "devices N", then
"ok CASE BATCH" per matching case and "split CASE WHOLE PER_DEVICE" per
checked program; exits 1 naming every mismatch.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/parallel/sharded_equivalence.py
"""

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import tiny_classifiers  # noqa: E402

from salijax import methods, metrics, parallel  # noqa: E402

SIZE = 32
BATCHES = (8, 5)
DEVICES = 8
METHOD_OPTIONS = {
    "rise": dict(num_masks=24, cell=4, chunk=8),
    "sidu": dict(chunk=3),
    "sidu_feature_space": dict(chunk=3),
    "lime": dict(num_samples=24, num_segments=16, slic_iterations=3, chunk=8),
    "iba": dict(steps=2, num_samples=2),
    "integrated_gradients": dict(steps=4, chunk=2),
    "smoothgrad": dict(num_samples=4, sample_chunk=2),
    # threshold 0: subtracting 0.96 x the mean amplifies 1-ulp layout differences ~25x.
    "mask_search": dict(num_steps=8, threshold=0.0),
    # fraction 1: every free feature moves at each step. A smaller fraction selects features
    # by their sorted |gradient|, where a 1-ulp difference between layouts can swap two.
    "guided_ig": dict(steps=8, fraction=1.0),
}
# (name, function, takes the classifier, batch argument names, keyword arguments)
METRICS = (
    ("insertion_deletion", metrics.insertion_deletion, True, ("images", "maps", "labels"),
     dict(step_pixels=64, chunk=64)),
    ("confidence_change", metrics.confidence_change, True, ("images", "maps", "labels"), {}),
    ("complexity", metrics.complexity, False, ("maps",), {}),
    ("pointing_game", metrics.pointing_game, False, ("maps", "masks"), dict(tolerance=3.0)),
    ("energy_pointing_game", metrics.energy_pointing_game, False, ("maps", "masks"), {}),
)
_WHOLE_CONVOLUTION = re.compile(r"stablehlo\.convolution.*-> tensor<(\d+)x")  # before SPMD
_DEVICE_CONVOLUTION = re.compile(r"= f32\[(\d+),[^\]]*\]\S* convolution\(")  # compiled


def cases():
  """(name, function, takes the classifier, batch argument names, keyword arguments)."""
  key = jax.random.key(3)
  for name in methods.names():
    yield name, methods.get(name), True, ("images", "labels"), dict(
        key=key, **METHOD_OPTIONS.get(name, {}))
  yield from METRICS


def inputs(batch: int) -> dict[str, jax.Array]:
  """Images, labels, non-constant maps and non-empty region masks of `batch` images."""
  rng = np.random.default_rng(0)
  masks = np.zeros((batch, SIZE, SIZE), bool)
  for i in range(batch):
    masks[i, 4 + i:16 + i, 8:20 + i] = True
  return {"images": jnp.asarray(rng.uniform(size=(batch, SIZE, SIZE, 3)), jnp.float32),
          "labels": jnp.asarray(rng.integers(0, 4, batch), jnp.int32),
          "maps": jnp.asarray(rng.uniform(size=(batch, SIZE, SIZE)), jnp.float32),
          "masks": jnp.asarray(masks)}


def mismatch(got, expected) -> str | None:
  """Why `got` differs from `expected` (same tree, shapes and dtypes; close values), or None."""
  if jax.tree.structure(got) != jax.tree.structure(expected):
    return f"tree {jax.tree.structure(got)} != {jax.tree.structure(expected)}"
  for got_leaf, expected_leaf in zip(jax.tree.leaves(got), jax.tree.leaves(expected),
                                     strict=True):
    got_leaf, expected_leaf = np.asarray(got_leaf), np.asarray(expected_leaf)
    if got_leaf.shape != expected_leaf.shape or got_leaf.dtype != expected_leaf.dtype:
      return (f"{got_leaf.dtype}{list(got_leaf.shape)} != "
              f"{expected_leaf.dtype}{list(expected_leaf.shape)}")
    try:
      if np.issubdtype(got_leaf.dtype, np.floating):
        np.testing.assert_allclose(got_leaf, expected_leaf, rtol=1e-5, atol=1e-6)
      else:
        np.testing.assert_array_equal(got_leaf, expected_leaf)
    except AssertionError as error:
      return str(error)
  return None


def convolution_batches(fn, clf, args, kwargs, mesh) -> tuple[int, int]:
  """The largest convolution batch of fn's program for `mesh`: whole, and per device (0: none)."""
  placed = parallel.shard_batch(args, mesh)
  lowered = jax.jit(lambda c, *a: fn(c, *a, **kwargs)).lower(parallel.replicate(clf, mesh),
                                                             *placed)
  whole = [int(b) for b in _WHOLE_CONVOLUTION.findall(lowered.as_text())]
  per_device = [int(b) for b in _DEVICE_CONVOLUTION.findall(lowered.compile().as_text())]
  return max(whole, default=0), max(per_device, default=0)


def main() -> int:
  print("devices", jax.device_count(), flush=True)
  if jax.device_count() != DEVICES:
    print(f"expected {DEVICES} devices (XLA_FLAGS=--xla_force_host_platform_device_count="
          f"{DEVICES}), got {jax.device_count()}", file=sys.stderr)
    return 1
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  one, eight = parallel.local_mesh(jax.devices()[:1]), parallel.local_mesh()
  failures = []
  for batch in BATCHES:
    data = inputs(batch)
    for name, fn, uses_clf, arg_names, kwargs in cases():
      args = tuple(data[a] for a in arg_names)
      model = clf if uses_clf else None
      if batch % DEVICES == 0:
        expected = parallel.run_sharded(fn, model, *args, mesh=one, **kwargs)
      else:
        expected = fn(*((clf,) if uses_clf else ()), *args, **kwargs)
      why = mismatch(parallel.run_sharded(fn, model, *args, mesh=eight, **kwargs), expected)
      if why:
        failures.append(f"{name} batch {batch}: {why}")
      else:
        print("ok", name, batch, flush=True)
      if uses_clf and batch % DEVICES == 0:
        whole, per_device = convolution_batches(fn, clf, args, kwargs, eight)
        print("split", name, whole, per_device, flush=True)
        if per_device * DEVICES != whole:
          failures.append(f"{name} batch {batch}: per-device convolution batch {per_device} on"
                          f" {DEVICES} devices for {whole} in all (the work is not split)")
  for failure in failures:
    print("MISMATCH", failure, file=sys.stderr)
  return 1 if failures else 0


if __name__ == "__main__":
  sys.exit(main())
