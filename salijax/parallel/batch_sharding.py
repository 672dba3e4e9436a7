"""Running a method or metric with its batch split over the local devices (jax.sharding).

    mesh = local_mesh()                                   # every local device, axis "batch"
    maps = run_sharded(methods.rise, clf, images, labels, key=jax.random.key(0))
    result = run_sharded(metrics.insertion_deletion, clf, images, maps, labels)
    hits = run_sharded(metrics.pointing_game, None, maps, masks).hit     # no classifier

`run_sharded` pads the batch to a multiple of the mesh size by repeating the
last image (so the padding is valid input for every method and metric: a
real image, a real class, a non-constant map, a non-empty region), places
axis 0 of every batch argument split over the mesh (`shard_batch`) and the
classifier's variables and array keyword arguments such as `key` on every
device (`replicate`), calls the function as usual, and cuts the result back
to the B real images.

How the work is split: GSPMD. The function runs unchanged, with its host-side
checks on concrete values, and its `jax.jit` compiles one program for the
whole mesh from the inputs' shardings; XLA partitions it along the batch.
Every salijax method and metric is per-image independent with the batch
outermost in its loops, and the compiled programs split the model's
forward passes: with D devices each device convolves B / D of the images
times the method's chunk (masks, samples, channels or curve steps). What is
shared by the batch and computed on every device: RISE's masks, LIME's
samples, the `random` and `fake_cam` controls (which have no batch input and
are negligible). tests/parallel/sharded_equivalence.py checks the per-device
convolution batch of every method and metric. Another function whose images
interact (e.g. a gather across the batch) still gets the right result, but
XLA may gather the batch and repeat the work on every device: look at its
compiled program (`jax.jit(f).lower(...).compile().as_text()`).

The alternative, `jax.shard_map` (each device calls the function on its own
slice), was not chosen: the function would see tracers, so its value checks
would be skipped and LIME's host-side (`segmentation="skimage"`)
segmentation would fail, and the `random` map, drawn from
`fold_in(key, batch position)`, would restart the positions on every device
and change. With GSPMD the result equals the single-device call (up to float
rounding of the smaller per-device batches), whatever the number of devices
and the padding.
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def local_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh, axis `BATCH_AXIS`, over this process's devices (default: all of them).

  Args:
    devices: distinct devices of this process (`jax.local_devices()`), in mesh
      order; None for every local device.

  Returns:
    jax.sharding.Mesh of shape {BATCH_AXIS: len(devices)}.

  Raises:
    ValueError: no devices, a repeated device, or a device of another process.
  """
  devices = jax.local_devices() if devices is None else list(devices)
  if not devices:
    raise ValueError("devices must hold at least one device, got none")
  if len(set(devices)) != len(devices):
    raise ValueError(f"devices must be distinct, got {devices}")
  local = set(jax.local_devices())
  foreign = [d for d in devices if d not in local]
  if foreign:
    raise ValueError(f"devices must belong to this process (jax.local_devices()), got"
                     f" {foreign} of process {foreign[0].process_index}")
  return Mesh(np.array(devices), (BATCH_AXIS,))


def _mesh_size(mesh: Any) -> int:
  if not isinstance(mesh, Mesh):
    raise TypeError(f"mesh must be a jax.sharding.Mesh (local_mesh()), got {type(mesh).__name__}")
  if mesh.axis_names != (BATCH_AXIS,):
    raise ValueError(f"mesh must have the single axis {BATCH_AXIS!r} (local_mesh()), got axes"
                     f" {mesh.axis_names}")
  return int(mesh.devices.size)


def padded_size(batch: int, mesh: Mesh) -> int:
  """The smallest multiple of the mesh's device count that is >= batch (>= 1)."""
  if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
    raise ValueError(f"batch must be a positive integer, got {batch!r}")
  devices = _mesh_size(mesh)
  return -(-int(batch) // devices) * devices


def _leading_size(leaf: Any, name: str) -> int:
  shape = getattr(leaf, "shape", None)
  if shape is None:
    raise TypeError(f"{name} must hold arrays with the batch on axis 0, got"
                    f" {type(leaf).__name__}")
  if len(shape) == 0:
    raise ValueError(f"{name} must hold arrays with the batch on axis 0, got a scalar")
  return int(shape[0])


def pad_batch(tree: Any, size: int) -> Any:
  """Pads axis 0 of every array leaf to `size` by repeating its last element.

  Args:
    tree: a pytree of arrays (numpy or jax) with the batch B >= 1 on axis 0.
    size: the padded batch, >= B.

  Returns:
    The same tree, leaves [size, ...]: elements B..size-1 copy element B-1;
    numpy leaves stay numpy, the others become jax arrays.

  Raises:
    ValueError: a leaf with an empty or longer batch, or a scalar leaf.
    TypeError: a leaf that is not an array.
  """
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
    raise ValueError(f"size must be a positive integer, got {size!r}")

  def pad(leaf: Any) -> Any:
    batch = _leading_size(leaf, "tree")
    if not 1 <= batch <= size:
      raise ValueError(f"tree leaves must have a batch of 1 to size={size} on axis 0, got"
                       f" shape {tuple(leaf.shape)}")
    if batch == size:
      return leaf
    xp = np if isinstance(leaf, np.ndarray) else jnp
    return xp.concatenate([leaf, xp.repeat(leaf[-1:], size - batch, axis=0)])

  return jax.tree.map(pad, tree)


def shard_batch(tree: Any, mesh: Mesh) -> Any:
  """Places every array leaf on the mesh with axis 0 split over its devices.

  Raises:
    ValueError: a leaf whose axis 0 the device count does not divide (pad_batch first).
  """
  devices = _mesh_size(mesh)
  sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))

  def place(leaf: Any) -> jax.Array:
    batch = _leading_size(leaf, "tree")
    if batch % devices:
      raise ValueError(f"tree leaves must have a batch divisible by the {devices} mesh devices,"
                       f" got shape {tuple(leaf.shape)} (pad_batch to padded_size first)")
    return jax.device_put(leaf, sharding)

  return jax.tree.map(place, tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every array leaf whole on every device of the mesh."""
  _mesh_size(mesh)
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def _is_array(value: Any) -> bool:
  return isinstance(value, (jax.Array, np.ndarray))


def run_sharded(fn: Callable[..., Any], clf: Any, *batch_args: Any, mesh: Mesh | None = None,
                **kwargs: Any) -> Any:
  """fn(clf, *batch_args, **kwargs) with the batch split over the mesh's devices (module doc).

  Args:
    fn: a salijax method or metric, or any function of the same shape whose
      result has the batch on axis 0 of every leaf and whose result for an
      image does not depend on the images after it.
    clf: the Classifier (or any pytree), replicated on every device; None for
      functions without one (`complexity`, `pointing_game`), called as
      fn(*batch_args, **kwargs).
    *batch_args: pytrees of arrays with the same batch B >= 1 on axis 0
      (images, labels, maps, masks...): padded to `padded_size(B, mesh)` and
      sharded.
    mesh: the devices, `local_mesh()` by default.
    **kwargs: passed on; array values (such as `key`) replicated.

  Returns:
    fn's result with every leaf cut back to the B real images.

  Raises:
    ValueError: no batch arguments, batch arguments of different batch sizes,
      or a result leaf without the padded batch on axis 0.
    TypeError: a batch argument leaf that is not an array.
  """
  mesh = local_mesh() if mesh is None else mesh
  if not batch_args:
    raise ValueError("batch_args must hold at least one array with the batch on axis 0, got none")
  sizes = {_leading_size(leaf, f"batch_args[{i}]")
           for i, arg in enumerate(batch_args) for leaf in jax.tree.leaves(arg)}
  if len(sizes) != 1:
    raise ValueError(f"batch_args must share one batch size on axis 0, got sizes {sorted(sizes)}")
  (batch,) = sizes
  size = padded_size(batch, mesh)
  placed = shard_batch(pad_batch(batch_args, size), mesh)
  kwargs = {name: jax.tree.map(lambda v: replicate(v, mesh) if _is_array(v) else v, value)
            for name, value in kwargs.items()}
  if clf is None:
    result = fn(*placed, **kwargs)
  else:
    result = fn(replicate(clf, mesh), *placed, **kwargs)

  def cut(leaf: Any) -> Any:
    shape = getattr(leaf, "shape", ())
    if len(shape) == 0 or shape[0] != size:
      raise ValueError(f"fn must return arrays with the padded batch {size} on axis 0, got"
                       f" shape {tuple(shape)}")
    if isinstance(leaf, jax.Array) and not isinstance(leaf.sharding, NamedSharding):
      # A host callback's result sits whole on one device (xrai's); back onto the mesh.
      leaf = jax.device_put(leaf, NamedSharding(mesh, PartitionSpec(BATCH_AXIS)))
    return leaf[:batch]

  return jax.tree.map(cut, result)
