"""The re-drawn weights of parameter randomisation: one fresh draw of every leaf of a Classifier.

Taken, in this order of preference, from
  `init(key)`: the caller's initialisation, variables of the same tree,
    shapes and dtypes as `clf.variables`;
  the framework's own initialisers, for a Flax linen or Haiku model wrapped by
    `salijax.wrap` (`salijax.wrapping.initializer`), as Quantus's MPRT
    re-initialises a layer with its framework's initialiser: every layer as in
    a newly built model. salijax's ResNet and VGG are linen modules: torchvision's
    initialisers, BatchNorm scale 1, bias 0, running mean 0, variance 1;
  a permutation of each leaf's values, for any other Classifier (NNX, Equinox,
    plain functions, hand-made): leaf i shuffled with `fold_in(key, i)`. The
    same shape, dtype and values in random positions: the learned arrangement
    is gone while the scale and sign of every array stay (running variances
    stay positive), so the logits keep the trained model's scale. A constant
    leaf (a bias of zeros) stays as it is.

    leaves = fresh_leaves(clf, images, key)   # one per leaf of clf.variables
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.wrapping.initializer import initializer


def _permuted(key: jax.Array, leaf: Any) -> jax.Array:
  leaf = jnp.asarray(leaf)
  return jax.random.permutation(key, leaf.ravel()).reshape(leaf.shape)


def _signature(tree: Any) -> list[tuple[str, tuple[int, ...], np.dtype]]:
  return [(jax.tree_util.keystr(path), tuple(np.shape(leaf)), np.dtype(jnp.result_type(leaf)))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def fresh_leaves(clf: Classifier, images: jax.Array, key: jax.Array,
                 init: Callable[[jax.Array], Any] | None = None) -> list[jax.Array]:
  """The re-drawn value of every leaf of `clf.variables`, in `jax.tree.leaves` order.

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1]; a framework initialiser runs on the first.
    key: the PRNG key of the draw.
    init: None, or key -> fresh variables (module doc).

  Raises:
    TypeError: an `init` that is not callable.
    ValueError: fresh variables of another tree, shapes or dtypes than `clf.variables`.
  """
  if init is not None and not callable(init):
    raise TypeError(f"init: expected a function key -> variables, got {type(init).__name__}")
  framework_init = initializer(clf) if init is None else None
  if init is None and framework_init is None:
    leaves = jax.tree.leaves(clf.variables)
    return [_permuted(jax.random.fold_in(key, i), leaf) for i, leaf in enumerate(leaves)]
  fresh = init(key) if init is not None else framework_init(key, images)
  if _signature(fresh) != _signature(clf.variables):
    source = "init" if init is not None else "clf: the framework's initialiser"
    raise ValueError(f"{source}: expected variables with the tree, shapes and dtypes of"
                     " clf.variables, got different ones (pass `init` to draw them)")
  return jax.tree.leaves(fresh)
